"""The transformer's attention as fused Pallas kernels (flash attention; GPU, Triton), in both
its faces: opt-in through `config.agent.attention_kernel="pallas"`.

Learning (`causal_attention`). XLA's attention (`transformer.attention`) writes each layer's
[H, L, L] scores and softmax to device memory and reads them back, forward and backward: at
B = 256, T = 200 that is most of the learning pass's bytes (BENCHMARKS.md, session 19). Here
a program owns `BLOCK` queries of one head of one episode and walks the keys in blocks of
`BLOCK`, keeping the scores on chip with a running softmax (FlashAttention, Dao et al.,
2022); the backward pass recomputes them the same way. What goes to memory is q, k, v, the
output and one log-sum-exp per query. The kernels are JAX's own
(`jax.experimental.pallas.ops.gpu.attention.mha`, causal, with segment ids for packed rows);
this module pads the sequence to whole blocks.

Acting (`cached_attention`). Each env step's queries attend to the KV cache. XLA reads a
layer's whole cache once per query (or, with `cache_segments`, the blocks filled so far), in a
few kernels per query. Here one program per head reads the filled slots once, in blocks of
`BLOCK`, for all of the step's queries: one kernel per layer and step, and half the bytes
for the two queries of the bottom layer. The cache is sized in whole blocks for it.

Off a GPU the kernels run in Pallas's interpreter: the same numbers, slowly (the tests use
it). Speed on a GPU: not measured yet (`launch/gpu_benchmarks.sh session19`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

# Queries and keys per program (learning) and keys per loop step (acting): a power of two
# >= 16 (Triton's products and blocks), untuned. `configure` changes it
# (`launch.benchmark --attention_block`, for tuning).
BLOCK = 32


def configure(block: int | None = None) -> None:
  """Sets BLOCK for kernels and caches traced from now on (None keeps it). Raises ValueError,
  changing nothing, for a block that is not a power of two >= 16."""
  if block is not None and (isinstance(block, bool) or not isinstance(block, int) or
                            block < 16 or block & (block - 1)):
    raise ValueError(f"attention_kernel: 'block' must be a power of two >= 16, got {block!r}")
  global BLOCK
  BLOCK = BLOCK if block is None else block


def _on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def check(head_dim: int) -> None:
  """Raises ValueError where the kernels cannot run: a TPU (they are Triton's), or a head
  width Triton's products cannot take."""
  if jax.default_backend() == "tpu":
    raise ValueError("the pallas attention kernel is for GPUs (Triton); on a TPU use 'xla'")
  if head_dim < 16 or head_dim & (head_dim - 1):
    raise ValueError(f"the pallas attention kernel needs width / num_heads a power of two "
                     f">= 16, got {head_dim}")


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array,
                     segments: jax.Array | None = None) -> jax.Array:
  """Causal softmax attention of one sequence: q, k, v [L, H, D], segments None or int [L]
  (a token attends only to earlier tokens of its own segment) -> [L, H, D].

  `transformer.attention` under the causal mask, with its 1/√D scale. L is padded to whole
  blocks at the end: no real query reaches a padded key (they come later), and the padded
  queries' outputs are cut off, so they get no gradient."""
  # Imported here: JAX's kernel library is experimental, and a JAX without it must cost only
  # this option, not the package.
  from jax.experimental.pallas.ops.gpu import attention as pallas_attention
  L, _, D = q.shape
  pad = -L % BLOCK
  whole = lambda x: jnp.pad(x, ((0, pad), (0, 0), (0, 0)))[None]  # [1, L', H, D]
  if segments is not None:
    segments = jnp.pad(segments.astype(jnp.int32), (0, pad), constant_values=-1)[None]
  blocks = pallas_attention.BlockSizes(block_q=BLOCK, block_k=BLOCK, block_q_dkv=BLOCK,
                                       block_kv_dkv=BLOCK, block_q_dq=BLOCK, block_kv_dq=BLOCK)
  out = pallas_attention.mha(whole(q), whole(k), whole(v), segments, sm_scale=D ** -0.5,
                             causal=True, block_sizes=blocks, interpret=not _on_gpu())
  return out[0, :L]


def cache_len(max_len: int) -> int:
  """Slots of a KV cache read by `cached_attention`: max_len rounded up to whole blocks (the
  extra slots are never written and never attended to)."""
  return -(-max_len // BLOCK) * BLOCK


def _cached_kernel(q_ref, k_ref, v_ref, last_ref, o_ref, *, scale: float):
  """One head: q [m, D], the queries at positions last - m + 1, …, last; the cache's k, v
  [S, D] -> o [m, D]. Walks key blocks 0 … last // BLOCK with a running softmax per query
  (as JAX's `mha_forward_kernel`). A step has one or two queries: their scores are
  elementwise products and sums, not matrix products (which would need 16 rows)."""
  m = q_ref.shape[0]
  last = last_ref[()]
  queries = [q_ref[i] * scale for i in range(m)]  # [D] each

  def body(j, carry):
    block = pl.ds(j * BLOCK, BLOCK)
    k, v = k_ref[block, :], v_ref[block, :]  # [BLOCK, D]
    slots = j * BLOCK + jnp.arange(BLOCK)
    out = []
    for i, (q, (o, top, total)) in enumerate(zip(queries, carry)):
      s = jnp.where(slots <= last - (m - 1) + i, jnp.sum(k * q[None, :], axis=1), -jnp.inf)
      top_next = jnp.maximum(top, jnp.max(s))  # finite: every query sees slot 0 in block 0
      p = jnp.exp(s - top_next)
      correction = jnp.exp(top - top_next)
      out.append((correction * o + jnp.sum(p[:, None] * v, axis=0), top_next,
                  correction * total + jnp.sum(p)))
    return tuple(out)

  D = q_ref.shape[1]
  init = tuple((jnp.zeros((D,), jnp.float32), jnp.float32(-jnp.inf), jnp.float32(0))
               for _ in range(m))
  for i, (o, _, total) in enumerate(jax.lax.fori_loop(0, last // BLOCK + 1, body, init)):
    o_ref[i] = (o / total).astype(o_ref.dtype)


def cached_attention(q: jax.Array, keys: jax.Array, values: jax.Array,
                     last: jax.Array) -> jax.Array:
  """Acting's attention to the KV cache: q [m, H, D] (m = 1 or 2), the queries at positions
  last - m + 1, …, last; keys, values [H, S, D], the cache (S = `cache_len`), slots 0 … last
  written -> [m, H, D], each query attending to the slots up to its own position. As
  `transformer.attention` with the mask of those slots."""
  m, H, D = q.shape
  S = keys.shape[1]
  if m not in (1, 2) or S % BLOCK:
    raise ValueError(f"cached_attention: {m} queries (1 or 2) over {S} slots (a multiple of "
                     f"{BLOCK})")
  queries = pl.BlockSpec((m, None, D), lambda h: (0, h, 0))
  cache = pl.BlockSpec((None, S, D), lambda h: (h, 0, 0))
  return pl.pallas_call(
      functools.partial(_cached_kernel, scale=D ** -0.5), grid=(H,),
      in_specs=[queries, cache, cache, pl.BlockSpec((), lambda h: ())], out_specs=queries,
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=pl_triton.CompilerParams(num_warps=4, num_stages=2),
      interpret=not _on_gpu(), name="cached_attention",
  )(q, keys, values, jnp.asarray(last, jnp.int32))
