"""The LSTM's recurrences as Pallas kernels (GPU, Triton): opt-in through
`config.agent.lstm_kernel="pallas"`.

`recurrent.lstm_hidden` runs each time step as a few XLA kernels over the whole batch, so every
step's [B, 4H] gate tensors go through device memory (BENCHMARKS.md: the H100 profile at
B = 65,536). Here (`logits`) one program owns a block of `BLOCK` episodes for all L steps: it
keeps h, c and the gates on chip and writes only what is needed next: the states h, c
[L, B, H] and the logits (forward); its block's sums of the weight gradients over all
steps, the output head's included (backward: it reads the logits' gradient; dh and the
gates' gradient dz [L, B, 4H], the pass's largest array, never leave the chip). Acting is
the same for one env step (`act`): it reads h, c [B, H] and writes them back with the action
logits. The weights are read per step from cache. The sums are `recurrent._cell`'s, gate by gate
(i, f, g, o), with the input projection looked up: a gather of the tokens' table rows.

Triton has no slicing of values, so the weights come split by gate: table [4, V', H] (V
padded to V' = 16·k rows of zeros, for the backward kernel's one-hot product), w_h
[4, H, H], b [4, H]. H must be a power of two ≥ 16.
Off a GPU the kernels run in Pallas's interpreter: the same numbers, slowly (the tests use
it). Speed on a GPU: not measured yet (`launch/gpu_benchmarks.sh unmet`, `session14`,
`tune_lstm`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

# Episodes per program (a power of two >= 16) and Triton's warps per program: untimed, chosen
# as the setting at which ptxas spills no register in any of the three kernels at H = 64
# (BENCHMARKS.md, sessions 20 and 21). A block's [BLOCK, H] tensors live in registers, ~15 in
# the backward step, beside its weight-gradient sums, [4, H + 16, H] per program. NUM_STAGES:
# Triton's software pipelining of the token loop; at 2 it fetches the next step's h, c and
# logits' gradient while this step computes (asynchronous copies in the compiled code,
# BENCHMARKS.md session 22), untimed, so off. `configure` changes them (`launch.benchmark
# --lstm_block --lstm_warps --lstm_stages`, for tuning on a GPU).
BLOCK = 16
NUM_WARPS = 8
NUM_STAGES = 1


def configure(block: int | None = None, num_warps: int | None = None,
              num_stages: int | None = None) -> None:
  """Sets BLOCK, NUM_WARPS and NUM_STAGES for kernels traced from now on (None keeps the
  current value). Raises ValueError, changing nothing, for a block that is not a power of two
  >= 16, warps not a power of two in 1…32, or stages not in 1…4."""
  for name, value, low, high, power_of_two in (("block", block, 16, None, True),
                                               ("num_warps", num_warps, 1, 32, True),
                                               ("num_stages", num_stages, 1, 4, False)):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or
                              value < low or (high and value > high) or
                              (power_of_two and value & (value - 1))):
      bound = f"in {low}…{high}" if high else f">= {low}"
      kind = "a power of two" if power_of_two else "an integer"
      raise ValueError(f"lstm_kernel: '{name}' must be {kind} {bound}, got {value!r}")
  global BLOCK, NUM_WARPS, NUM_STAGES
  BLOCK = BLOCK if block is None else block
  NUM_WARPS = NUM_WARPS if num_warps is None else num_warps
  NUM_STAGES = NUM_STAGES if num_stages is None else num_stages


def _on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def check(hidden: int) -> None:
  """Raises ValueError where the kernels cannot run: a TPU (they are Triton's), or a width
  Triton's products cannot take."""
  if jax.default_backend() == "tpu":
    raise ValueError("the pallas LSTM kernel is for GPUs (Triton); on a TPU use 'xla'")
  if hidden < 16 or hidden & (hidden - 1):
    raise ValueError(f"the pallas LSTM kernel needs 'hidden' a power of two >= 16, got {hidden}")


def _by_gate(table, w_h, b):
  """table [V, 4H], w_h [H, 4H], b [4H] -> [4, V', H], [4, H, H], [4, H] (gate-major)."""
  V, H = table.shape[0], w_h.shape[0]
  pad = -V % 16
  table = jnp.pad(table, ((0, pad), (0, 0)))
  split = lambda x: jnp.stack(jnp.split(x, 4, axis=-1))
  return split(table), split(w_h), b.reshape(4, H)


def _gates(tokens_ref, table_ref, w_ref, b_ref, t, h):
  """Step t's gates (i, f, g, o), activated, from h_{t-1} [n, H]: each [n, H]."""
  tokens = tokens_ref[t]
  # The input projection as a gather of the tokens' rows: exact, where a one-hot product must
  # run in full float32 to be: 256 more FMAs per thread per step, a quarter to two fifths of
  # the kernels' instructions (BENCHMARKS.md, session 22).
  z = [table_ref[k, tokens, :] + jnp.dot(h, w_ref[k]) + b_ref[k][None, :] for k in range(4)]
  return jax.nn.sigmoid(z[0]), jax.nn.sigmoid(z[1]), jnp.tanh(z[2]), jax.nn.sigmoid(z[3])


def _cell(tokens_ref, table_ref, w_ref, b_ref, t, h, c):
  """Step t of the cell from h_{t-1}, c_{t-1} [n, H]: (h_t, c_t)."""
  i, f, g, o = _gates(tokens_ref, table_ref, w_ref, b_ref, t, h)
  c = f * c + i * g
  return o * jnp.tanh(c), c


def _forward_kernel(tokens_ref, table_ref, w_ref, b_ref, w_out_ref, b_out_ref, h_ref, c_ref,
                    logits_ref):
  n, H = h_ref.shape[1:]

  def step(t, carry):
    h, c = _cell(tokens_ref, table_ref, w_ref, b_ref, t, *carry)
    h_ref[t] = h
    c_ref[t] = c
    # The head in full float32, off the tensor cores: as a TF32 product its layout makes ptxas
    # spill here (16 episodes, 8 warps: 604 bytes per thread, and the step's instructions
    # grow 7-fold; BENCHMARKS.md, sessions 21 and 22).
    logits_ref[t] = jnp.dot(h, w_out_ref[...], precision=jax.lax.Precision.HIGHEST) \
        + b_out_ref[...][None, :]
    return h, c
  zero = jnp.zeros((n, H), h_ref.dtype)
  jax.lax.fori_loop(0, tokens_ref.shape[0], step, (zero, zero))


def _backward_kernel(tokens_ref, table_ref, w_ref, b_ref, w_out_ref, b_out_ref, h_ref, c_ref,
                     d_logits_ref, d_table_ref, d_w_ref, d_w_out_ref):
  del b_out_ref  # its gradient, Σ d_logits, needs no recurrence
  L = tokens_ref.shape[0]
  n, H = h_ref.shape[1:]
  rows = table_ref.shape[1]

  def step(s, carry):
    dh_next, dc_next, d_table, d_w, d_w_out = carry
    t = L - 1 - s
    before = jnp.maximum(t - 1, 0)
    first = t == 0  # the state before the first token is zero
    hp = jnp.where(first, 0.0, h_ref[before])
    cp = jnp.where(first, 0.0, c_ref[before])
    i, f, g, o = _gates(tokens_ref, table_ref, w_ref, b_ref, t, hp)
    d_logits = d_logits_ref[t]
    dh = jnp.dot(d_logits, w_out_ref[...].T) + dh_next  # the head's, and the next step's
    tc = jnp.tanh(c_ref[t])
    dc = dc_next + dh * o * (1 - tc * tc)
    dz = (dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
          dh * tc * o * (1 - o))
    # The weight gradients, summed here over the block's episodes and steps: dz, [L, B, 4H],
    # never leaves the chip. Row v of the table's gradient sums dz over the steps reading v.
    one_hot = (tokens_ref[t][:, None] == jnp.arange(rows)[None, :]).astype(hp.dtype)
    d_table = tuple(d_table[k] + jnp.dot(one_hot.T, dz[k]) for k in range(4))
    d_w = tuple(d_w[k] + jnp.dot(hp.T, dz[k]) for k in range(4))
    d_w_out = d_w_out + jnp.dot(h_ref[t].T, d_logits)
    dh_prev = sum(jnp.dot(dz[k], w_ref[k].T) for k in range(4))
    return dh_prev, dc * f, d_table, d_w, d_w_out
  zero = jnp.zeros((n, H), h_ref.dtype)
  zeros = lambda shape: (jnp.zeros(shape, h_ref.dtype),) * 4
  _, _, d_table, d_w, d_w_out = jax.lax.fori_loop(
      0, L, step, (zero, zero, zeros((rows, H)), zeros((H, H)),
                   jnp.zeros(d_w_out_ref.shape[1:], h_ref.dtype)))
  for k in range(4):
    d_table_ref[0, k] = d_table[k]
    d_w_ref[0, k] = d_w[k]
  d_w_out_ref[0] = d_w_out


def _call(kernel, tokens, weights, inputs, outputs=(), partials=()):
  """Runs `kernel` over blocks of BLOCK episodes: tokens int [L, B], weights (whole, to every
  program), inputs [L, B, ...] and outputs (shapes [L, B, ...]) blocked along B, and partials
  (shapes [...]), one per program: [programs, ...]."""
  L, B = tokens.shape
  n = BLOCK  # always: Triton's products need power-of-two sizes >= 16
  pad = -B % n
  if pad:  # padded episodes read token 0 and get no upstream gradient (so add 0 to partials)
    tokens = jnp.pad(tokens, ((0, 0), (0, pad)))
    inputs = [jnp.pad(x, ((0, 0), (0, pad), (0, 0))) for x in inputs]
  programs = (B + pad) // n
  whole = lambda x: pl.BlockSpec(x.shape, lambda i: (0,) * x.ndim)
  blocked = lambda width: pl.BlockSpec((L, n, width), lambda i: (0, i, 0))
  own = lambda shape: pl.BlockSpec((1,) + shape, lambda i: (i,) + (0,) * len(shape))
  out = pl.pallas_call(
      kernel, grid=(programs,),
      in_specs=[pl.BlockSpec((L, n), lambda i: (0, i))] + [whole(w) for w in weights]
      + [blocked(x.shape[-1]) for x in inputs],
      out_specs=[blocked(o.shape[-1]) for o in outputs] + [own(p) for p in partials],
      out_shape=[jax.ShapeDtypeStruct((L, B + pad, o.shape[-1]), o.dtype) for o in outputs]
      + [jax.ShapeDtypeStruct((programs,) + p, weights[0].dtype) for p in partials],
      # Triton, named: without it a GPU may pick Pallas's other backend (Mosaic GPU).
      compiler_params=pl_triton.CompilerParams(num_warps=NUM_WARPS, num_stages=NUM_STAGES),
      interpret=not _on_gpu(),
  )(tokens, *weights, *inputs)
  return [o[:, :B] for o in out[:len(outputs)]] + list(out[len(outputs):])


def _act_kernel(tokens_ref, table_ref, w_ref, b_ref, w_out_ref, b_out_ref, h_ref, c_ref,
                h_out_ref, c_out_ref, logits_ref):
  step = lambda t, carry: _cell(tokens_ref, table_ref, w_ref, b_ref, t, *carry)
  # A loop, even over 2 tokens: unrolled, ptxas compiles it with 32 registers and spills 30 KB
  # per thread (BENCHMARKS.md, session 20); looped, like the learning kernels.
  h, c = jax.lax.fori_loop(0, tokens_ref.shape[0], step, (h_ref[...], c_ref[...]))
  h_out_ref[...] = h
  c_out_ref[...] = c
  logits_ref[...] = jnp.dot(h, w_out_ref[...]) + b_out_ref[...][None, :]


def act_weights(table, w_h, b, w_out, b_out):
  """The weights the kernels read (`act`'s; `logits` derives them itself) from the cell's
  (table [V, 4H], w_h [H, 4H], b [4H]; `_by_gate`) and the output head's (w_out [H, K],
  b_out [K]), the head padded with zero columns to a width Triton's products take (a power of
  two >= 16)."""
  K = w_out.shape[1]
  cols = max(16, 1 << (K - 1).bit_length())
  return _by_gate(table, w_h, b) + (jnp.pad(w_out, ((0, 0), (0, cols - K))),
                                    jnp.pad(b_out, (0, cols - K)))


def act(weights, h, c, tokens, num_logits):
  """Acting: an env step's tokens int [B, n] fed one after the other to B episodes' LSTMs from
  their states h, c [B, H] -> (h, c, logits [B, num_logits]), with `act_weights`'s weights:
  `recurrent.act` for a batch, one kernel for the whole step. Each program keeps BLOCK
  episodes' gates on chip; XLA's cell writes and rereads them, [B, 4H] per token."""
  B, H = h.shape
  cols = weights[-1].shape[0]
  n = BLOCK
  pad = -B % n
  tokens = jnp.pad(tokens, ((0, pad), (0, 0))).T  # [n_tokens, B'], time-major as `_gates` reads
  h, c = (jnp.pad(x, ((0, pad), (0, 0))) for x in (h, c))
  whole = lambda x: pl.BlockSpec(x.shape, lambda i: (0,) * x.ndim)
  rows = lambda width: pl.BlockSpec((n, width), lambda i: (i, 0))
  h, c, logits = pl.pallas_call(
      _act_kernel, grid=((B + pad) // n,),
      in_specs=[pl.BlockSpec((tokens.shape[0], n), lambda i: (0, i))]
      + [whole(w) for w in weights] + [rows(H), rows(H)],
      out_specs=[rows(H), rows(H), rows(cols)],
      out_shape=[jax.ShapeDtypeStruct((B + pad, H), h.dtype)] * 2
      + [jax.ShapeDtypeStruct((B + pad, cols), h.dtype)],
      # The states in place: each program reads its rows before it writes them.
      input_output_aliases={len(weights) + 1: 0, len(weights) + 2: 1},
      compiler_params=pl_triton.CompilerParams(num_warps=NUM_WARPS, num_stages=NUM_STAGES),
      interpret=not _on_gpu(),
  )(tokens, *weights, h, c)
  return h[:B], c[:B], logits[:B, :num_logits]


@jax.custom_vjp
def logits(table, w_h, b, w_out, b_out, tokens, states):
  """The learning pass, `recurrent.lstm_hidden` and the output head in one: the logits
  [L, B, K] of the LSTM (table [V, 4H], w_h [H, 4H], b [4H]; gates i, f, g, o) run from zero
  state over tokens int [L, B], each state through the head (w_out [H, K], b_out [K]).
  states: None, or (h, c) [L, B, H], the states those weights give on `tokens`, already
  computed (by acting); the forward kernel is then skipped. The gradient is the backward
  kernel's, the head's included (none flows into `states`, data)."""
  return _logits_fwd(table, w_h, b, w_out, b_out, tokens, states)[0]


def _logits_fwd(table, w_h, b, w_out, b_out, tokens, states):
  weights = act_weights(table, w_h, b, w_out, b_out)
  (L, B), (H, K) = tokens.shape, w_out.shape
  if states is None:
    state = jax.ShapeDtypeStruct((L, B, H), table.dtype)
    head = jax.ShapeDtypeStruct((L, B, weights[-1].shape[0]), table.dtype)
    h, c, out = _call(_forward_kernel, tokens, weights, [], [state, state, head])
    out = out[..., :K]
  else:
    h, c = states
    out = jnp.einsum("lbh,hk->lbk", h, w_out) + b_out
  return out, (table, weights, tokens, h, c, states)


def _logits_bwd(residuals, d_out):
  """Backpropagation through time from the states alone: each step recomputes its gates from
  (h_{t-1}, token) and carries (dh, dc) back; the weight gradients are summed in the kernel,
  per block of episodes, and the blocks' sums added here."""
  table, weights, tokens, h, c, states = residuals
  (V, H), K = (table.shape[0], h.shape[-1]), d_out.shape[-1]
  rows, cols = weights[0].shape[1], weights[-1].shape[0]
  d_out_padded = jnp.pad(d_out, ((0, 0), (0, 0), (0, cols - K)))
  d_table, d_w, d_w_out = _call(_backward_kernel, tokens, weights, [h, c, d_out_padded],
                                partials=[(4, rows, H), (4, H, H), (H, cols)])
  by_column = lambda x: jnp.sum(x, 0).transpose(1, 0, 2).reshape(x.shape[2], 4 * H)
  d_table = by_column(d_table)[:V]
  # b's gradient is Σ dz, which is also the sum of the table's rows (every step adds b and
  # one row).
  return (d_table, by_column(d_w), jnp.sum(d_table, 0), jnp.sum(d_w_out, 0)[:, :K],
          jnp.sum(d_out, (0, 1)), None, jax.tree.map(jnp.zeros_like, states))


logits.defvjp(_logits_fwd, _logits_bwd)
