"""Packing episodes end to end for the transformer's learning pass.

An episode that ends early (the padlock opens) leaves the rest of its row of T tokens as
padding that the learning pass computes and the loss masks out: with the padlock's expert
(ε = 0.42) over half of every row. Packed, a row holds several episodes, each attending only
to itself (`segments`) with its own positions, so the logits of every step that happened are
those of the unpacked pass, at a fraction of its cost (flax's lm1b packs sequences the same
way).

Rows are filled first-fit decreasing: the episodes, longest first, each go to the first row
with room. On the padlock's demonstrations that needs within 2% of the optimum, about
B / 2.1 rows.
"""

from __future__ import annotations

import chex
import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Packing:
  """Where each of B episodes goes in R rows of C tokens.

  row: int32 [B]      its row.
  offset: int32 [B]   the column of its first token.
  fits: bool []       every episode found a row (else `row`/`offset` are meaningless).
  num_rows: R (static: not a leaf of the pytree).
  """
  row: jax.Array
  offset: jax.Array
  fits: jax.Array
  num_rows: int = flax.struct.field(pytree_node=False)


def token_lengths(mask: jax.Array) -> jax.Array:
  """bool [B, T] steps that happened -> int32 [B] input tokens the learning pass needs: one
  per step (agents/tokens.py)."""
  return jnp.sum(mask, -1).astype(jnp.int32)


def pack_episodes(mask: jax.Array, num_rows: int) -> Packing:
  """Packs the episodes of bool [B, T] `mask` into `num_rows` rows of T tokens."""
  return first_fit_decreasing(token_lengths(mask), num_rows, mask.shape[-1])


def first_fit_decreasing(lengths: jax.Array, num_rows: int, row_len: int) -> Packing:
  """Packs episodes of int [B] `lengths` (tokens, each ≤ `row_len`) into `num_rows` rows.

  One `lax.scan` over the B episodes, longest first; each step looks at all R rows.
  """
  chex.assert_rank(lengths, 1)
  lengths = lengths.astype(jnp.int32)
  order = jnp.argsort(-lengths, stable=True)

  def place(free, n):
    room = free >= n
    r = jnp.argmax(room)  # the first row with room (0 if none: then fits is False)
    fits = room[r]
    return free.at[r].add(-jnp.where(fits, n, 0)), (r, row_len - free[r], fits)

  free = jnp.full((num_rows,), row_len, jnp.int32)
  _, (row, offset, fits) = jax.lax.scan(place, free, lengths[order])
  unsort = lambda x: jnp.zeros_like(x).at[order].set(x)
  return Packing(unsort(row.astype(jnp.int32)), unsort(offset.astype(jnp.int32)),
                 jnp.all(fits), num_rows)


def pack(packing: Packing, x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Lays episode b's first lengths[b] entries of x [B, L, ...] into row packing.row[b] from
  column packing.offset[b]: -> [R, L, ...], zeros where no episode is."""
  L, R = x.shape[1], packing.num_rows
  cols = packing.offset[:, None] + jnp.arange(L)
  rows = jnp.where(jnp.arange(L) < lengths[:, None], packing.row[:, None], R)
  out = jnp.zeros((R,) + x.shape[1:], x.dtype)
  return out.at[rows, cols].set(x, mode="drop")  # row R (past the end): left out


def unpack(packing: Packing, y: jax.Array, length: int) -> jax.Array:
  """The inverse of `pack` for y [R, L, ...]: -> [B, length, ...]. Entries past an episode's
  own length are another episode's (finite, and masked by the caller)."""
  cols = jnp.minimum(packing.offset[:, None] + jnp.arange(length), y.shape[1] - 1)
  return y[packing.row[:, None], cols]
