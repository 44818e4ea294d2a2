"""Recurrent agents (LSTM, GRU): one cell, used step by step when acting and scanned when
learning from fixed data, so the two faces share every parameter and every floating-point
operation.

Online training differentiates through the acting face itself (`rollout.braid(...,
with_logits=True)`, `Agent.learns_in_rollout`): one recurrence per update. On the 2-core CPU
that autodiff is faster than a second, teacher-forced pass, even one with a hand-written
LSTM backward (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp


class Recurrent(nn.Module):
  """Token embeddings, one LSTM or GRU cell of width `hidden`, and one linear head.

  Shapes (one episode; vmap for a batch): token int32 [], carry (h, c) (LSTM) or (h,) (GRU)
  of [H] each, head output [A + 2A·O]: the action logits, then the observation logits for
  each action with its author (`Agent` splits them; agents/tokens.py).
  """
  vocab_size: int
  num_actions: int
  num_observations: int
  hidden: int = 64
  cell: str = "lstm"
  scan_unroll: int = 1  # steps per iteration of the learning scan (same numbers)
  # agents.SequenceModel: trained through its rollout; one episode per row.
  learns_in_rollout: ClassVar[bool] = True
  packs_episodes: ClassVar[bool] = False

  def setup(self):
    H, A, O = self.hidden, self.num_actions, self.num_observations
    gates = 4 if self.cell == "lstm" else 3
    init = nn.initializers.lecun_normal()
    # The two parts of a token (agents/tokens.py), embedded apart and added: unit variance.
    embed = nn.initializers.normal(2 ** -0.5)
    self.embedding = self.param("embedding", embed, (self.vocab_size // (O + 1), H))
    self.observation_embedding = self.param("observation_embedding", embed, (O + 1, H))
    self.w = self.param("w", init, (2 * H, gates * H))
    # LSTM forget-gate bias 1 (Jozefowicz et al. 2015): remember by default.
    bias = jnp.zeros((gates * H,))
    if self.cell == "lstm":
      bias = bias.at[H:2 * H].set(1.0)
    self.b = self.param("b", lambda *_: bias)
    self.w_out = self.param("w_out", init, (H, A + 2 * A * O))
    self.b_out = self.param("b_out", nn.initializers.zeros, (A + 2 * A * O,))

  def initial_carry(self):
    H = self.hidden
    return (jnp.zeros((H,)), jnp.zeros((H,))) if self.cell == "lstm" else (jnp.zeros((H,)),)

  def input_table(self):
    """x·W_x for every token of the vocabulary: [V, gates·H], row a·(O+1) + o the sum of the
    two parts' embeddings, projected. Acting and learning both look tokens up here, so they
    share every sum; `Agent.policy` computes it once, outside the rollout's loop, in which XLA
    would recompute it at every step."""
    x = self.embedding[:, None] + self.observation_embedding[None]  # [V / (O+1), O+1, H]
    return x.reshape(-1, self.hidden) @ self.w[:self.hidden]

  def step_inputs(self):
    """What `step` reads besides the token (agents.SequenceModel): {"table": input_table()}."""
    return {"table": self.input_table()}

  def step(self, carry, token, table=None):
    """Feeds one int32 [] token: (carry, head output [A + 2A·O]). table: `input_table()`, if
    already computed."""
    table = self.input_table() if table is None else table
    carry = _cell(self.cell, self.hidden, self.w[self.hidden:], self.b, carry, table[token])
    return carry, carry[0] @ self.w_out + self.b_out

  def __call__(self, tokens):
    """Teacher-forced pass over int32 [L] tokens: head outputs [L, A + 2A·O].

    Only h·W_h is sequential: the input projection of every token and the head of every state
    are one matrix product each, outside the scan (the same sums as `step`)."""
    # Read the parameters once, then a pure function: safe to close over inside lax.scan.
    w_h, b = self.w[self.hidden:], self.b
    x_proj = self.input_table()[tokens]  # [L, gates·H]

    def cell(carry, x):
      carry = _cell(self.cell, self.hidden, w_h, b, carry, x)
      return carry, carry[0]
    _, h = jax.lax.scan(cell, self.initial_carry(), x_proj, unroll=self.scan_unroll)  # h [L, H]
    return h @ self.w_out + self.b_out


def _keep_activations(prim, *_, **__) -> bool:
  """What the backward pass keeps of a step (a `jax.checkpoint` policy): the gates' sigmoids
  and tanhs. Autodiff alone would also keep each one's derivative (σ(1−σ); 1 − tanh), 13
  [B, H] arrays per LSTM step with the carries. Re-forming those from the activations in
  the backward pass gives the same bits and keeps 8 (the GRU: 5 of 10): on the 2-core CPU
  the LSTM's update is 1.07–1.24× faster (BENCHMARKS.md)."""
  return prim.name in ("logistic", "tanh")


@functools.partial(jax.checkpoint, policy=_keep_activations, static_argnums=(0, 1))
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
