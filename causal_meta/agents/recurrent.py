"""Recurrent agents (LSTM, GRU): one cell, used step by step when acting and scanned when
learning, so the two faces share every parameter and every floating-point operation."""

from __future__ import annotations

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
  unroll: int = 1  # steps per iteration of the learning scan (same numbers)

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

  def step(self, carry, token):
    """One token: (carry, action logits [A], observation logits [O])."""
    x_proj = self.embedding[token] @ self.w[:self.hidden]
    carry = _cell(self.cell, self.hidden, self.w, self.b, carry, x_proj)
    out = carry[0] @ self.w_out + self.b_out
    return carry, out[:self.num_actions], out[self.num_actions:]

  def __call__(self, tokens):
    """Teacher-forced pass over int32 [L] tokens: ([L, A], [L, O]).

    Only h·W_h is sequential: the input projection x·W_x of every token and the output head
    of every state are one matrix product each, outside the scan (same sums as `step`)."""
    # Read the parameters once, then a pure function: safe to close over inside lax.scan.
    w, b = self.w, self.b
    x_proj = self.embedding[tokens] @ w[:self.hidden]  # [L, gates·H]

    def cell(carry, x):
      carry = _cell(self.cell, self.hidden, w, b, carry, x)
      return carry, carry[0]
    _, h = jax.lax.scan(cell, self.initial_carry(), x_proj, unroll=self.unroll)  # h [L, H]
    out = h @ self.w_out + self.b_out
    return out[:, :self.num_actions], out[:, self.num_actions:]


def _cell(kind, H, w, b, carry, x_proj):
  """One step from the token's input projection x·W_x [gates·H]: carry (h, c) or (h,) of
  [H] each -> new carry. w [2H, gates·H]: rows :H read the token, rows H: the state."""
  h = carry[0]
  if kind == "lstm":
    i, f, g, o = jnp.split(x_proj + h @ w[H:] + b, 4)
    c = jax.nn.sigmoid(f) * carry[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c
  # GRU (Cho et al. 2014), candidate computed from the reset-gated state
  zx = x_proj + b
  r = jax.nn.sigmoid(zx[:H] + h @ w[H:, :H])
  u = jax.nn.sigmoid(zx[H:2 * H] + h @ w[H:, H:2 * H])
  n = jnp.tanh(zx[2 * H:] + (r * h) @ w[H:, 2 * H:])
  return ((1 - u) * n + u * h,)
