"""A causal decoder-only transformer with a fixed-size KV cache for acting.

Learning is one parallel causal pass over the token sequence; acting feeds an env step's one
token (agents/tokens.py), writing its keys and values into a cache of `max_len` slots, so a
step never recomputes the prefix.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

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
    mask = jnp.arange(L)[None, :] <= jnp.arange(L)[:, None]
    if segments is not None:
      mask &= segments[:, None] == segments[None, :]
    k, v = jnp.swapaxes(k, 0, 1), jnp.swapaxes(v, 0, 1)  # [H, L, D], the cache's layout
    if 0 < self.attention_chunk < L:
      out = chunked_causal_attention(q, k, v, mask, self.attention_chunk)
    else:
      out = attention(q, k, v, mask)
    return self._mlp(x + self.proj(out))

  def step(self, x, cache_k, cache_v, pos):
    """One position pos: x [1, width]; cache_k, cache_v [H, S, D] -> (y [1, width], cache_k,
    cache_v), the token's key and value written into slot pos before it attends.

    Heads lead the cache so that, batched over episodes, the attention products have their
    batch dimensions (episode, head) leading and read the cache without a transpose."""
    q, k, v = self._qkv(x, pos[None])  # each [1, H, D]
    cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, jnp.swapaxes(k, 0, 1), pos, 1)
    cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, jnp.swapaxes(v, 0, 1), pos, 1)
    mask = jnp.arange(cache_k.shape[1]) <= pos  # [S]
    return self._mlp(x + self.proj(attention(q, cache_k, cache_v, mask))), cache_k, cache_v


class Transformer(nn.Module):
  """Token embeddings, `num_layers` blocks, final LN, one linear head (as `Recurrent`'s).

  position: how a token's position enters: "learned" (an embedding added to the token's),
  "rope" (rotary: queries and keys rotated, attention sees relative offsets) or "none" (only
  the causal mask tells positions apart).

  attention_chunk: 0, or the learning pass attends this many queries at a time
  (`chunked_causal_attention`): the same logits, with memory for one chunk's scores instead
  of each layer's [H, L, L] (BENCHMARKS.md).

  Carry for acting: (keys, values, position int32 []), keys and values a tuple of one cache
  [H, max_len, D] per layer: kept apart (not stacked) so that each step writes one slot of
  each in place instead of copying the whole stack.
  """
  vocab_size: int
  num_actions: int
  num_observations: int
  max_len: int
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  position: str = "learned"
  attention_chunk: int = 0  # learning pass: > 0 attends in chunks of this many queries
  # agents.SequenceModel: learns in a teacher-forced pass; can pack episodes into rows.
  learns_in_rollout: ClassVar[bool] = False
  packs_episodes: ClassVar[bool] = True

  def setup(self):
    # The two parts of a token (agents/tokens.py), embedded apart and added.
    O = self.num_observations
    self.embed = nn.Embed(self.vocab_size // (O + 1), self.width)
    self.observation_embed = nn.Embed(O + 1, self.width)
    if self.position == "learned":
      self.pos_embed = self.param("pos_embed", nn.initializers.normal(0.02),
                                  (self.max_len, self.width))
    self.blocks = [Block(self.width, self.num_heads, self.mlp_ratio, self.position == "rope",
                         self.attention_chunk) for _ in range(self.num_layers)]
    self.ln_f = nn.LayerNorm()
    A = self.num_actions
    self.head = nn.Dense(A + 2 * A * O)

  def _embed(self, tokens):
    action_part, observation_part = jnp.divmod(tokens, self.num_observations + 1)
    return self.embed(action_part) + self.observation_embed(observation_part)

  def initial_carry(self):
    empty = jnp.zeros((self.num_heads, self.max_len, self.width // self.num_heads))
    empty = (empty,) * self.num_layers
    return empty, empty, jnp.zeros((), jnp.int32)

  def step(self, carry, token):
    """Feeds one int32 [] token through the layers: (carry, head output [A + 2A·O])."""
    keys, values, pos = carry
    x = self._embed(token[None])  # [1, width]
    if self.position == "learned":
      x = x + jax.lax.dynamic_slice_in_dim(self.pos_embed, pos, 1)
    new_k, new_v = [], []
    for layer, k, v in zip(self.blocks, keys, values):
      x, k, v = layer.step(x, k, v, pos)
      new_k.append(k)
      new_v.append(v)
    return (tuple(new_k), tuple(new_v), pos + 1), self.head(self.ln_f(x[0]))

  def __call__(self, tokens, positions=None, segments=None):
    """Teacher-forced causal pass over int32 [L] tokens: head outputs [L, A + 2A·O].

    A packed row (`packing.py`) gives each token its position in its own sequence
    (positions int [L], default 0…L-1) and the sequence it belongs to (segments int [L])."""
    x = self._embed(tokens)
    if self.position == "learned":
      x = x + (self.pos_embed[:x.shape[0]] if positions is None else self.pos_embed[positions])
    for block in self.blocks:
      x = block(x, positions, segments)
    return self.head(self.ln_f(x))
