"""Recurrent agents (LSTM, GRU): one cell, used step by step when acting and scanned when
learning, so the two faces share every parameter and every floating-point operation.

The LSTM's learning pass has a second, fast form (`Recurrent.batch_logits`, the default):
time-major over the whole batch, with a hand-written backward pass (`lstm_hidden`) that keeps
only the states h and c, recomputes the gates from them, and forms the weight gradients as
one matrix product over all steps instead of one per step. `Recurrent.__call__` (per episode,
autodiff) is the reference it is tested against and the form to edit when changing the cell.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


class Recurrent(nn.Module):
  """A token embedding, one LSTM or GRU cell of width `hidden`, and two linear heads.

  Shapes (one episode; vmap for a batch): token int32 [], carry (h, c) (LSTM) or (h,) (GRU)
  of [H] each, action logits [A], observation logits [O].
  """
  vocab_size: int
  num_actions: int
  num_observations: int
  hidden: int = 64
  cell: str = "lstm"
  scan_unroll: int = 1  # steps per iteration of the learning scan (same numbers)
  fused: bool = True  # LSTM: learn through `batch_logits` (False: the reference `__call__`)

  @property
  def batched_pass(self) -> bool:
    """Whether the learning pass is `batch_logits` (over the batch) rather than `__call__`."""
    return self.cell == "lstm" and self.fused

  def setup(self):
    H = self.hidden
    gates = 4 if self.cell == "lstm" else 3
    init = nn.initializers.lecun_normal()
    self.embedding = self.param("embedding", nn.initializers.normal(1.0), (self.vocab_size, H))
    self.w = self.param("w", init, (2 * H, gates * H))
    # LSTM forget-gate bias 1 (Jozefowicz et al. 2015): remember by default.
    bias = jnp.zeros((gates * H,))
    if self.cell == "lstm":
      bias = bias.at[H:2 * H].set(1.0)
    self.b = self.param("b", lambda *_: bias)
    self.w_out = self.param("w_out", init, (H, self.num_actions + self.num_observations))
    self.b_out = self.param("b_out", nn.initializers.zeros,
                            (self.num_actions + self.num_observations,))

  def initial_carry(self):
    H = self.hidden
    return (jnp.zeros((H,)), jnp.zeros((H,))) if self.cell == "lstm" else (jnp.zeros((H,)),)

  def input_table(self):
    """x·W_x for every token of the vocabulary: [V, gates·H]. Row v equals
    embedding[v] @ W_x bit for bit, so looking a token up here is the same as projecting it.
    `Agent.policy` computes it once, outside the rollout's loop, in which XLA would recompute
    it at every step."""
    return self.embedding @ self.w[:self.hidden]

  def step(self, carry, tokens, last_only=False, table=None):
    """Feeds int32 [n] tokens one after the other: (carry, action logits [n, A], observation
    logits [n, O]). last_only: logits for the last token only ([1, A], [1, O]), all acting
    needs. table: `input_table()`, if already computed."""
    w_h = self.w[self.hidden:]
    table = self.input_table() if table is None else table
    states = []
    for i in range(tokens.shape[0]):
      carry = _cell(self.cell, self.hidden, w_h, self.b, carry, table[tokens[i]])
      states.append(carry[0])
    out = (carry[0][None] if last_only else jnp.stack(states)) @ self.w_out + self.b_out
    return carry, out[:, :self.num_actions], out[:, self.num_actions:]

  def __call__(self, tokens):
    """Teacher-forced pass over int32 [L] tokens: ([L, A], [L, O]). The reference form.

    Only h·W_h is sequential: the input projection x·W_x of every token and the output head
    of every state are one matrix product each, outside the scan (same sums as `step`)."""
    # Read the parameters once, then a pure function: safe to close over inside lax.scan.
    w_h, b = self.w[self.hidden:], self.b
    x_proj = self.embedding[tokens] @ self.w[:self.hidden]  # [L, gates·H]

    def cell(carry, x):
      carry = _cell(self.cell, self.hidden, w_h, b, carry, x)
      return carry, carry[0]
    _, h = jax.lax.scan(cell, self.initial_carry(), x_proj, unroll=self.scan_unroll)  # h [L, H]
    out = h @ self.w_out + self.b_out
    return out[:, :self.num_actions], out[:, self.num_actions:]

  def batch_logits(self, tokens):
    """LSTM only: the same pass for a batch, int32 [B, L] -> ([B, L, A], [B, L, O]), through
    `lstm_hidden` (time-major, hand-written backward pass)."""
    h = lstm_hidden(self.input_table(), self.w[self.hidden:], self.b, tokens.T,
                    self.scan_unroll)  # [L, B, H]
    out = jnp.einsum("lbh,hk->blk", h, self.w_out) + self.b_out
    return out[..., :self.num_actions], out[..., self.num_actions:]


def _cell(kind, H, w_h, b, carry, x_proj):
  """One step from the token's input projection x·W_x [..., gates·H]: carry (h, c) or (h,)
  of [..., H] each -> new carry. w_h [H, gates·H]: the recurrent weights (rows H: of `w`)."""
  h = carry[0]
  if kind == "lstm":
    i, f, g, o = jnp.split(x_proj + h @ w_h + b, 4, axis=-1)
    c = jax.nn.sigmoid(f) * carry[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c
  # GRU (Cho et al. 2014), candidate computed from the reset-gated state
  zx = x_proj + b
  r = jax.nn.sigmoid(zx[:H] + h @ w_h[:, :H])
  u = jax.nn.sigmoid(zx[H:2 * H] + h @ w_h[:, H:2 * H])
  n = jnp.tanh(zx[2 * H:] + (r * h) @ w_h[:, 2 * H:])
  return ((1 - u) * n + u * h,)


# The fast LSTM learning pass. Shapes: V tokens, H hidden, L positions, B episodes.

def _lstm_states(table, w_h, b, tokens, scan_unroll):
  """Forward: table [V, 4H], w_h [H, 4H], b [4H], tokens int32 [L, B] -> (h, c) [L, B, H]
  each, the states after every token (the same sums as `_cell`)."""
  H = w_h.shape[0]
  carry = (jnp.zeros((tokens.shape[1], H), table.dtype),) * 2

  def step(carry, token):
    carry = _cell("lstm", H, w_h, b, carry, table[token])
    return carry, carry
  _, states = jax.lax.scan(step, carry, tokens, unroll=scan_unroll)
  return states


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def lstm_hidden(table, w_h, b, tokens, scan_unroll=1):
  """h [L, B, H]: the LSTM's state after each of the tokens int32 [L, B], from zero state.
  table [V, 4H] is the input projection of every token, w_h [H, 4H] the recurrent weights,
  b [4H] the bias (gate order i, f, g, o)."""
  return _lstm_states(table, w_h, b, tokens, scan_unroll)[0]


def _lstm_hidden_fwd(table, w_h, b, tokens, scan_unroll):
  h, c = _lstm_states(table, w_h, b, tokens, scan_unroll)
  return h, (table, w_h, b, tokens, h, c)


def _lstm_hidden_bwd(scan_unroll, residuals, dh_out):
  """Backpropagation through time from the saved states alone: each step recomputes its gates
  from (h_{t-1}, token), carries (dh, dc) back, and emits dz_t, the gradient of the gates'
  pre-activation; the weight gradients are then one matrix product over all (t, b)."""
  table, w_h, b, tokens, h, c = residuals
  zero = jnp.zeros_like(h[:1])
  h_prev = jnp.concatenate([zero, h[:-1]])
  dz = _gate_grads_scan(table, w_h, b, tokens, h_prev, c, dh_out, scan_unroll)
  # Both weight gradients in one product over all (t, b), so that dz, the largest array here,
  # is read once for them: row (t, b) of `inputs` is [one_hot(token), h_{t-1}].
  V = table.shape[0]
  inputs = jnp.concatenate([jax.nn.one_hot(tokens, V, dtype=dz.dtype), h_prev], -1)
  d_inputs = jnp.einsum("lbk,lbg->kg", inputs, dz)
  return d_inputs[:V], d_inputs[V:], jnp.sum(dz, (0, 1)), None


def _gate_grads_scan(table, w_h, b, tokens, h_prev, c, dh_out, scan_unroll):
  """dz [L, B, 4H], the gradient of each step's gate pre-activations, as a reverse scan;
  h_prev [L, B, H] the states before each token."""
  c_prev = jnp.concatenate([jnp.zeros_like(c[:1]), c[:-1]])

  def step(carry, xs):
    dh_next, dc_next = carry
    token, hp, cp, ct, g_out = xs
    i, f, g, o = jnp.split(table[token] + hp @ w_h + b, 4, axis=-1)
    i, f, o, g = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), jnp.tanh(g)
    dh = g_out + dh_next
    tc = jnp.tanh(ct)
    dc = dc_next + dh * o * (1 - tc * tc)
    dz = jnp.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
                          dh * tc * o * (1 - o)], axis=-1)
    return (dz @ w_h.T, dc * f), dz
  carry = (jnp.zeros_like(c[0]),) * 2
  return jax.lax.scan(step, carry, (tokens, h_prev, c_prev, c, dh_out), reverse=True,
                      unroll=scan_unroll)[1]


lstm_hidden.defvjp(_lstm_hidden_fwd, _lstm_hidden_bwd)
