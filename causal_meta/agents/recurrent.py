"""Recurrent agents (LSTM, GRU): one cell, used step by step when acting and scanned when
learning, so the two faces share every parameter and every floating-point operation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Recurrent(nn.Module):
  """A token embedding, one LSTM or GRU cell of width `hidden`, and two linear heads.

  Shapes (one episode; vmap for a batch): token int32 [], carry [2, H] (LSTM: h, c) or [1, H]
  (GRU), action logits [A], observation logits [O].
  """
  vocab_size: int
  num_actions: int
  num_observations: int
  hidden: int = 64
  cell: str = "lstm"

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
    return jnp.zeros((2 if self.cell == "lstm" else 1, self.hidden))

  def _cell(self, carry, token):
    params = (self.embedding, self.w, self.b, self.w_out, self.b_out)
    return _cell(self.cell, self.hidden, params, carry, token)

  def step(self, carry, token):
    """One token: (carry, action logits [A], observation logits [O])."""
    carry, out = self._cell(carry, token)
    return carry, out[:self.num_actions], out[self.num_actions:]

  def __call__(self, tokens):
    """Teacher-forced pass over int32 [L] tokens: ([L, A], [L, O])."""
    # Read the parameters once, then a pure function: safe to close over inside lax.scan.
    params = (self.embedding, self.w, self.b, self.w_out, self.b_out)
    cell = lambda carry, token: _cell(self.cell, self.hidden, params, carry, token)
    _, out = jax.lax.scan(cell, self.initial_carry(), tokens)
    return out[:, :self.num_actions], out[:, self.num_actions:]


def _cell(kind, H, params, carry, token):
  """carry [2 or 1, H], token int32 [] -> (carry, logits [A + O])."""
  embedding, w, b, w_out, b_out = params
  x = embedding[token]
  h = carry[0]
  if kind == "lstm":
    z = jnp.concatenate([x, h]) @ w + b
    i, f, g, o = jnp.split(z, 4)
    c = jax.nn.sigmoid(f) * carry[1] + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    new = jnp.stack([h, c])
  else:  # GRU (Cho et al. 2014), candidate computed from the reset-gated state
    zx = x @ w[:H] + b
    r = jax.nn.sigmoid(zx[:H] + h @ w[H:, :H])
    u = jax.nn.sigmoid(zx[H:2 * H] + h @ w[H:, H:2 * H])
    n = jnp.tanh(zx[2 * H:] + (r * h) @ w[H:, 2 * H:])
    h = (1 - u) * n + u * h
    new = h[None]
  return new, h @ w_out + b_out
