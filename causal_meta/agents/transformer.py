"""A causal decoder-only transformer with a fixed-size KV cache for acting.

Learning is one parallel causal pass over the token sequence; acting feeds the new tokens of
an env step (action and observation) in one call, writing their keys and values into a cache
of `max_len` slots, so a step never recomputes the prefix.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from causal_meta.agents import attention_kernel as attention_kernel_lib

_MASKED = -1e30  # finite: a fully masked row can never produce NaN

POSITIONS = ("learned", "rope", "none")


def rope(x: jax.Array, positions: jax.Array) -> jax.Array:
  """Rotary position embedding (Su et al., 2021): x [..., n, H, D] rotated by positions int
  [n], pairs (x_i, x_{i + D/2}) by angle position · 10000^(-2i/D). Queries and keys rotated
  this way score by their relative offset only."""
  half = x.shape[-1] // 2
  freq = 10000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions.astype(jnp.float32)[:, None, None] * freq  # [n, 1, D/2]
  cos, sin = jnp.cos(angle).astype(x.dtype), jnp.sin(angle).astype(x.dtype)
  x1, x2 = x[..., :half], x[..., half:2 * half]
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x[..., 2 * half:]], -1)


def attention(q: jax.Array, keys: jax.Array, values: jax.Array, mask: jax.Array) -> jax.Array:
  """Softmax attention: q [..., H, D], keys/values [H, S, D], mask bool [..., S] -> [..., H, D]."""
  scores = jnp.einsum("...hd,hsd->...hs", q, keys) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
  scores = jnp.where(mask[..., None, :], scores, _MASKED)
  return jnp.einsum("...hs,hsd->...hd", jax.nn.softmax(scores, -1), values)


def blocked_attention(q: jax.Array, keys, values, masks) -> jax.Array:
  """`attention` over a cache kept in blocks: q [H, D]; keys, values, masks: one [H, S_j, D],
  [H, S_j, D], bool [S_j] per block -> [H, D]. One softmax over all blocks' scores; each
  block is read whole, where a slice of one big cache would be copied out first."""
  if len(keys) == 1:
    return attention(q, keys[0], values[0], masks[0])
  scores = jnp.concatenate([jnp.einsum("hd,hsd->hs", q, k) for k in keys], -1)
  scores = jnp.where(jnp.concatenate(masks), scores / jnp.sqrt(q.shape[-1]).astype(q.dtype),
                     _MASKED)
  probs = jnp.split(jax.nn.softmax(scores, -1), np.cumsum([k.shape[1] for k in keys])[:-1], -1)
  return sum(jnp.einsum("hs,hsd->hd", p, v) for p, v in zip(probs, values))


def chunked_causal_attention(q, keys, values, mask, chunk: int) -> jax.Array:
  """`attention` over a causal mask, `chunk` queries at a time: q [L, H, D], keys/values
  [H, L, D], mask bool [L, L] (no key after its query) -> [L, H, D].

  Queries s … s+chunk-1 read only keys 0 … s+chunk-1: the rest are masked anyway, so the
  products skip the upper triangle (about half the attention FLOPs at long L). Each chunk is a
  `jax.checkpoint`: the backward pass recomputes its scores, so memory holds one chunk's
  [H, chunk, ≤L] scores at a time instead of every layer's [H, L, L] (memory-efficient
  attention, Rabe & Staats, 2021)."""
  L = q.shape[0]
  step = jax.checkpoint(attention)
  return jnp.concatenate([step(q[s:s + chunk], keys[:, :s + chunk], values[:, :s + chunk],
                               mask[s:s + chunk, :s + chunk]) for s in range(0, L, chunk)])


class Block(nn.Module):
  """Pre-LayerNorm block: x + attn(LN(x)), then x + MLP(LN(x))."""
  width: int
  num_heads: int
  mlp_ratio: int = 4
  rotary: bool = False  # rotate queries and keys by their positions (`rope`)
  attention_chunk: int = 0  # > 0: the full pass attends this many queries at a time
  attention_kernel: str = "xla"  # XLA ops, or Pallas kernels (flash attention)

  def setup(self):
    head = self.width // self.num_heads
    self.ln1, self.ln2 = nn.LayerNorm(), nn.LayerNorm()
    self.qkv = nn.DenseGeneral((3, self.num_heads, head))
    self.proj = nn.DenseGeneral(self.width, axis=(-2, -1))
    self.fc1 = nn.Dense(self.mlp_ratio * self.width)
    self.fc2 = nn.Dense(self.width)

  def _qkv(self, x, positions):
    """x [n, width], positions int [n] -> q, k, v, each [n, H, D]."""
    q, k, v = jnp.moveaxis(self.qkv(self.ln1(x)), -3, 0)
    if self.rotary:
      q, k = rope(q, positions), rope(k, positions)
    return q, k, v

  def _mlp(self, x):
    return x + self.fc2(nn.gelu(self.fc1(self.ln2(x))))

  def __call__(self, x, positions=None, segments=None):
    """Full causal pass: x [L, width]. positions: int [L] (default 0…L-1). segments: None
    (one sequence) or int [L], the sequence each token belongs to (packed rows): a token
    attends only to earlier tokens of its own."""
    L = x.shape[0]
    q, k, v = self._qkv(x, jnp.arange(L) if positions is None else positions)  # [L, H, D] each
    if self.attention_kernel == "pallas":
      return self._mlp(x + self.proj(attention_kernel_lib.causal_attention(q, k, v, segments)))
    mask = jnp.arange(L)[None, :] <= jnp.arange(L)[:, None]
    if segments is not None:
      mask &= segments[:, None] == segments[None, :]
    k, v = jnp.swapaxes(k, 0, 1), jnp.swapaxes(v, 0, 1)  # [H, L, D], the cache's layout
    if 0 < self.attention_chunk < L:
      out = chunked_causal_attention(q, k, v, mask, self.attention_chunk)
    else:
      out = attention(q, k, v, mask)
    return self._mlp(x + self.proj(out))

  def step(self, x, cache_k, cache_v, pos, starts, cache_block=None, last_only=False):
    """n consecutive positions pos, …, pos+n-1: x [n, width]; cache_k, cache_v: the cache's
    blocks, block j [H, S_j, D] holding slots starts[j], …; returns (y [n, width] (or [1,
    width], the last token's, with `last_only`), cache_k, cache_v).

    cache_block: None, or the (static) block holding positions pos … pos+n-1: the tokens are
    written there and attend to blocks 0 … cache_block only, the slots they can see. None: any
    positions; each token is written into whichever block holds it, and all blocks are read.
    last_only: attend and run the MLP for the last token only (all n are written): acting's
    top layer needs no more, as the other tokens' outputs there feed only unused logits.

    Heads lead the cache so that, batched over episodes, the attention products have their
    batch dimensions (episode, head) leading and read the cache without a transpose. The n
    tokens are written before any of them attends: a token written after another had read
    the cache would make XLA copy the cache in between."""
    n = x.shape[0]
    q, k, v = self._qkv(x, pos + jnp.arange(n))  # each [n, H, D]
    k, v = jnp.swapaxes(k, 0, 1), jnp.swapaxes(v, 0, 1)  # [H, n, D]
    if cache_block is not None or len(starts) == 1:
      j = cache_block or 0
      write = lambda c, new: c[:j] + (
          jax.lax.dynamic_update_slice_in_dim(c[j], new, pos - starts[j], 1),) + c[j + 1:]
    else:
      write = lambda c, new: tuple(_write_where_held(c_j, new, pos - s)
                                   for c_j, s in zip(c, starts))
    cache_k, cache_v = write(cache_k, k), write(cache_v, v)
    queries = [n - 1] if last_only else range(n)
    if self.attention_kernel == "pallas":  # one kernel reads each head's filled slots once
      att = attention_kernel_lib.cached_attention(q[queries[0]:], cache_k[0], cache_v[0],
                                                  pos + n - 1)
      return self._mlp(x[queries[0]:] + self.proj(att)), cache_k, cache_v
    read = len(starts) if cache_block is None else cache_block + 1
    masks = [start + jnp.arange(c.shape[1])[None, :] <= pos + jnp.arange(n)[:, None]
             for start, c in zip(starts[:read], cache_k)]  # [n, S_j] each
    # One query at a time: on the CPU, XLA runs the n-query product (the query axis between
    # the batch axes) 2-3x slower than n one-query products (BENCHMARKS.md).
    att = jnp.stack([self.proj(blocked_attention(q[i], cache_k[:read], cache_v[:read],
                                                 [m[i] for m in masks])) for i in queries])
    return self._mlp(x[queries[0]:] + att), cache_k, cache_v


def _write_where_held(cache, new, offset):
  """Writes new [H, n, D] at slots offset, … of cache [H, S, D], token by token, only those
  that fall inside it (offset is traced: which block holds a token is known at run time)."""
  S = cache.shape[1]
  for i in range(new.shape[1]):
    at = jnp.clip(offset + i, 0, S - 1)
    held = (offset + i >= 0) & (offset + i < S)
    old = jax.lax.dynamic_slice_in_dim(cache, at, 1, 1)
    cache = jax.lax.dynamic_update_slice_in_dim(cache, jnp.where(held, new[:, i:i + 1], old),
                                                at, 1)
  return cache


class Transformer(nn.Module):
  """Token embeddings, `num_layers` blocks, final LN, two linear heads.

  position: how a token's position enters: "learned" (an embedding added to the token's),
  "rope" (rotary: queries and keys rotated, attention sees relative offsets) or "none" (only
  the causal mask tells positions apart).

  attention_chunk: 0, or the learning pass attends this many queries at a time
  (`chunked_causal_attention`): the same logits, with memory for one chunk's scores instead
  of each layer's [H, L, L], the buffers that kept B = 4,096, T = 200 off an H100.

  attention_kernel: "xla", or "pallas": fused kernels that keep the scores on chip, for the
  learning pass and for acting's steps, which read only the filled part of a one-block cache
  (`attention_kernel.py`; GPU; interpreted, slowly, elsewhere).

  cache_ends: the KV cache as blocks of slots [0, e_0), [e_0, e_1), …, up to max_len (() or
  (max_len,): one block). A step told which block it writes (`step(..., cache_block=j)`) reads
  only blocks 0 … j: the rollout, run in segments, then reads the part of the cache filled so
  far instead of all of it (`Agent.policy`).

  Carry for acting: (keys, values, position int32 []), keys and values a tuple per layer of
  the cache's blocks [H, S_j, D]: kept apart (not stacked) so that each step writes one slot
  of each in place instead of copying the whole stack.
  """
  vocab_size: int
  num_actions: int
  num_observations: int
  max_len: int
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  remat: bool = False  # learning pass: recompute attention scores in the backward pass
  position: str = "learned"
  attention_chunk: int = 0  # learning pass: > 0 attends in chunks of this many queries
  attention_kernel: str = "xla"  # "pallas": both faces attend through fused kernels
  cache_ends: tuple[int, ...] = ()

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.width)
    if self.position == "learned":
      self.pos_embed = self.param("pos_embed", nn.initializers.normal(0.02),
                                  (self.max_len, self.width))
    block = Block
    if self.remat:
      # The learning pass keeps each block's projections (products with no batch dimension)
      # and recomputes the [H, L, L] scores and softmax. Acting (`step`) is unaffected. In
      # the CPU compiler's memory plan this does not lower the peak; `attention_chunk` does
      # (BENCHMARKS.md, sessions 5 and 14).
      block = nn.remat(Block, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable)
    self.blocks = [block(self.width, self.num_heads, self.mlp_ratio, self.position == "rope",
                         self.attention_chunk, self.attention_kernel)
                   for _ in range(self.num_layers)]
    self.ln_f = nn.LayerNorm()
    self.head = nn.Dense(self.num_actions + self.num_observations)

  def _heads(self, x):
    out = self.head(self.ln_f(x))
    return out[..., :self.num_actions], out[..., self.num_actions:]

  @property
  def cache_blocks(self) -> tuple[tuple[int, int], ...]:
    """(first slot, end slot) of each cache block."""
    ends = tuple(self.cache_ends) or (self.max_len,)
    if ends[-1] != self.max_len or list(ends) != sorted(set(ends)) or ends[0] < 1:
      raise ValueError(f"transformer: cache_ends {ends} must increase to max_len "
                       f"{self.max_len}")
    if self.attention_kernel == "pallas":  # one block, of whole kernel blocks
      if len(ends) > 1:
        raise ValueError("transformer: the pallas attention kernel reads only the filled "
                         "slots of a cache in one block; set cache_segments=1")
      ends = (attention_kernel_lib.cache_len(self.max_len),)
    return tuple(zip((0,) + ends[:-1], ends))

  def initial_carry(self):
    head = self.width // self.num_heads
    empty = tuple(jnp.zeros((self.num_heads, end - start, head))
                  for start, end in self.cache_blocks)
    empty = tuple(empty for _ in range(self.num_layers))
    return empty, empty, jnp.zeros((), jnp.int32)

  def step(self, carry, tokens, cache_block=None, last_only=False):
    """Feeds int32 [n] tokens in one pass through the layers: (carry, action logits [n, A],
    observation logits [n, O]). Acting feeds an env step's action and observation together.

    cache_block: None, or the (static) cache block that holds all n positions: attention then
    reads blocks 0 … cache_block only (`Block.step`). last_only: logits for the last token only
    ([1, A], [1, O]); the carry is the same."""
    keys, values, pos = carry
    x = self.embed(tokens)
    if self.position == "learned":
      x = x + jax.lax.dynamic_slice_in_dim(self.pos_embed, pos, tokens.shape[0])
    starts = tuple(start for start, _ in self.cache_blocks)
    new_k, new_v = [], []
    for i, (layer, k, v) in enumerate(zip(self.blocks, keys, values)):
      x, k, v = layer.step(x, k, v, pos, starts, cache_block,
                           last_only and i == self.num_layers - 1)
      new_k.append(k)
      new_v.append(v)
    return (tuple(new_k), tuple(new_v), pos + tokens.shape[0]), *self._heads(x)

  def __call__(self, tokens, positions=None, segments=None):
    """Teacher-forced causal pass over int32 [L] tokens: ([L, A], [L, O]).

    A packed row (`packing.py`) gives each token its position in its own sequence
    (positions int [L], default 0…L-1) and the sequence it belongs to (segments int [L])."""
    x = self.embed(tokens)
    if self.position == "learned":
      x = x + (self.pos_embed[:x.shape[0]] if positions is None else self.pos_embed[positions])
    for block in self.blocks:
      x = block(x, positions, segments)
    return self._heads(x)
