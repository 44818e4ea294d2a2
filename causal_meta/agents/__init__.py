"""Agents behind one interface: act step by step, learn in one teacher-forced pass.

`make(kind, task, **sizes)` returns an `Agent`, which wraps a flax module (`Recurrent` or
`Transformer`) with the two faces that must agree:
  policy(params) -> rollout.Policy   acting: one env step (its action and observation tokens)
                                     at a time, recurrent carry or KV cache;
  unroll(params, traj) -> logits     learning: one pass over the whole braided trajectory.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from causal_meta import rollout
from causal_meta.agents import attention_kernel as attention_kernel_lib
from causal_meta.agents import lstm_kernel as lstm_kernel_lib
from causal_meta.agents import packing, tokens
from causal_meta.agents.recurrent import KERNELS, Recurrent
from causal_meta.agents.transformer import POSITIONS, Transformer
from causal_meta.tasks.base import Task

KINDS = ("lstm", "gru", "transformer")


@dataclasses.dataclass(frozen=True)
class Agent:
  """A module plus the task's sizes. Hashable, so it can be closed over in jitted code.

  author_tokens: whether the agent reads who took each action (do(a) vs a, [O] Remark 14). A
  model trained on demonstrations only ever saw expert actions; deployed, it reads its own
  actions with the same symbol, which is exactly naive conditioning. So demonstration agents
  are author-blind (every action gets the expert symbol) and the others author-aware.

  num_outcomes: 0 for a plain model; `tokens.NUM_OUTCOMES` for a goal-conditioned one whose
  sequence starts with an outcome token instead of BOS ([D] App. C). `policy` and `unroll`
  then take the outcome (int; -1 = BOS, i.e. unconditioned).
  """
  module: nn.Module
  num_actions: int
  num_observations: int
  horizon: int
  author_tokens: bool = True
  num_outcomes: int = 0

  def _first(self, outcome):
    return tokens.first_token(-1 if outcome is None else outcome, self.num_actions,
                              self.num_observations)

  def _authors(self, intervened):
    return jnp.logical_and(intervened, self.author_tokens)

  def init(self, key: jax.Array) -> Any:
    """Fresh parameters."""
    example = jnp.zeros((2 * self.horizon,), jnp.int32)
    return self.module.init(key, example)["params"]

  def _step(self, params, carry, tokens, return_states=False, **kwargs):
    """Feeds int32 [n] tokens: (carry, action logits [n, A], observation logits [n, O]), and
    with `return_states` (recurrent modules) the states after each token. kwargs: `last_only`
    (both modules) and the transformer's `cache_block` (`Transformer.step`)."""
    if return_states:
      kwargs["return_states"] = True
    return self.module.apply({"params": params}, carry, tokens, method="step", **kwargs)

  @property
  def packs_episodes(self) -> bool:
    """Whether `unroll` can pack episodes end to end (`packed`): the transformer."""
    return isinstance(self.module, Transformer)

  @property
  def segment_ends(self) -> tuple[int, ...]:
    """The env steps at which acting's segments end: one per block of the transformer's
    cache (BOS and the first segment's steps fill block 0, each later segment its own)."""
    ends = getattr(self.module, "cache_ends", ())
    return tuple((end - 1) // 2 for end in ends) or (self.horizon,)

  @property
  def reuses_acting_states(self) -> bool:
    """Whether learning can take the states acting computed (the fused LSTM pass)."""
    return getattr(self.module, "batched_pass", False)

  def policy(self, params, outcome=None, record_states=False) -> rollout.Policy:
    """Acting face for one episode: carry = (module carry, next-action logits [A], states).

    outcome: None/-1 (start with BOS) or the outcome to condition on (int []).
    record_states: keep the recurrent state after every token in the trajectory
      (`acting_states`) for `unroll` to reuse, when `reuses_acting_states`; else ignored.
    A transformer with its cache in blocks (`make(..., cache_segments=S)`) acts in S
    `rollout.Policy.segments`, each attending only to the blocks filled by its end.
    """
    A = self.num_actions
    record_states = record_states and self.reuses_acting_states
    transformer = isinstance(self.module, Transformer)
    # What the recurrent module's acting derives from params (its input table; the LSTM's
    # Pallas kernel's weights), derived here, once: inside the rollout's loop XLA would
    # derive it again at every step.
    weights = None if transformer else self.module.apply({"params": params},
                                                         method="acting_weights")

    def acting(cache_block):
      """The Policy whose transformer writes to `cache_block` (None: wherever pos lies)."""
      # Acting needs only the last token's action logits: the modules skip the rest.
      kwargs = dict(cache_block=cache_block) if transformer else dict(weights=weights)

      def step(carry, step_tokens):
        """(carry, action logits [n or 1, A], the states after each of the n tokens or None)."""
        out = self._step(params, carry, step_tokens, record_states, last_only=True, **kwargs)
        return out[0], out[1], out[3] if record_states else None

      def initial_carry():
        carry = self.module.apply({"params": params}, method="initial_carry")
        carry, action_logits, states = step(carry, self._first(outcome)[None])
        # Shaped like a step's two states, so the carry keeps its shape: (zeros, after BOS).
        states = jax.tree.map(lambda s: jnp.concatenate([jnp.zeros_like(s), s]), states)
        return carry, action_logits[0], states

      def observe(carry, action, intervened, observation):
        # The action and observation tokens in one call (one pass through a transformer).
        step_tokens = jnp.stack([tokens.action_token(action, self._authors(intervened), A),
                                 tokens.observation_token(observation, A)])
        carry, action_logits, states = step(carry[0], step_tokens)
        return carry, action_logits[-1], states

      return rollout.Policy(initial_carry, lambda carry: carry[1], observe,
                            (lambda carry: carry[2]) if record_states else None)

    policy = acting(None)
    ends = self.segment_ends
    if len(ends) > 1:  # segment j writes cache block j
      policy = policy._replace(segments=tuple((end, acting(j)) for j, end in enumerate(ends)))
    return policy

  def unroll(self, params, traj: rollout.Trajectory, outcome=None,
             packed: packing.Packing | None = None) -> tuple[jax.Array, jax.Array]:
    """Learning face: (action logits [B, T, A], observation logits [B, T, O]).

    action_logits[:, t] predicts a_t from (a_{<t}, o_{<t}); observation_logits[:, t] predicts
    o_t from (a_{≤t}, o_{<t}). outcome: None, or int [B] (or []) outcome tokens to start with.
    packed (transformer): run the episodes' steps that happened (`traj.mask`) end to end in
    the rows of this `packing.pack_episodes(traj.mask, rows)`, which must fit (`packed.fits`;
    `train.make_value_and_grad` falls back to the plain pass where it does not). The logits
    of those steps are the plain pass's; the others are not.
    """
    B, T = traj.actions.shape
    first = None if outcome is None else jnp.broadcast_to(self._first(outcome), (B,))
    inputs = tokens.encode(traj.actions, self._authors(traj.intervened), traj.observations,
                           self.num_actions, first)
    if packed is not None:
      if not self.packs_episodes:
        raise ValueError("agent: only the transformer packs episodes (packed=None otherwise)")
      action_logits, obs_logits = self._packed_pass(params, inputs, traj.mask, packed)
    elif self.reuses_acting_states:
      states = None
      if traj.acting_states is not None:
        states = _time_major_states(*traj.acting_states)
      action_logits, obs_logits = self.module.apply({"params": params}, inputs, states,
                                                    method="unroll_batch")
    else:
      action_logits, obs_logits = jax.vmap(
          lambda x: self.module.apply({"params": params}, x))(inputs)
    action_logits, obs_logits = action_logits[:, 0::2], obs_logits[:, 1::2]
    chex.assert_shape(action_logits, (B, T, self.num_actions))
    chex.assert_shape(obs_logits, (B, T, self.num_observations))
    return action_logits, obs_logits

  def _packed_pass(self, params, inputs, mask, packed: packing.Packing):
    """inputs int [B, 2T], mask bool [B, T] -> logits [B, 2T, A], [B, 2T, O], episode b's
    first 2·Σ mask[b] tokens run in their packed row."""
    B, L = inputs.shape
    lengths = packing.token_lengths(mask)
    ids = jnp.broadcast_to(jnp.arange(1, B + 1)[:, None], (B, L))  # 0 = no episode
    pos = jnp.broadcast_to(jnp.arange(L), (B, L))
    rows = [packing.pack(packed, x, lengths) for x in (inputs, pos, ids)]
    out = jax.vmap(lambda *x: self.module.apply({"params": params}, *x))(*rows)
    return tuple(packing.unpack(packed, y, L) for y in out)


def _time_major_states(first, steps):
  """Recorded states -> the learning pass's: first (h, c) [B, 2, H] (zeros, then the state
  after the first token), steps (h, c) [B, T, 2, H] (after each step's action and observation
  tokens) -> (h, c) [2T, B, H], the states after each of the 2T input tokens (the last
  observation is not one)."""
  def one(x0, xs):
    x = jnp.concatenate([x0[:, None], xs], 1)  # [B, T + 1, 2, H]
    B, T1, n, H = x.shape
    return jnp.transpose(x, (1, 2, 0, 3)).reshape(T1 * n, B, H)[1:-1]
  return jax.tree.map(one, first, steps)


def make(kind: str, task: Task, hidden: int = 64, width: int = 64, num_layers: int = 2,
         num_heads: int = 4, mlp_ratio: int = 4, author_tokens: bool = True,
         num_outcomes: int = 0, remat: bool = False, unroll: int = 1,
         fused_lstm: bool = True, position: str = "learned", attention_chunk: int = 0,
         lstm_kernel: str = "xla", cache_segments: int = 1,
         attention_kernel: str = "xla") -> Agent:
  """Builds an agent of `kind` ('lstm', 'gru' or 'transformer') for `task`'s alphabets.

  Recurrent agents use `hidden` (and `unroll`: steps per iteration of the learning scan;
  `fused_lstm`: the LSTM learns through the batched pass with a hand-written backward, whose
  recurrences run as XLA loops or, `lstm_kernel="pallas"`, as Pallas kernels, as do its
  acting steps); the transformer uses `width`, `num_layers`, `num_heads`, `mlp_ratio`,
  `position` (learned, rope or none; see `Transformer`), `remat` (recompute attention in the
  backward pass),
  `attention_chunk` (0, or the learning pass attends this many queries at a time),
  `attention_kernel` ("xla", or "pallas": learning and acting attend through fused Pallas
  kernels, `attention_kernel.py`) and `cache_segments` (acting in this many segments of the
  horizon, the KV cache in as many blocks, each step attending only to the blocks filled so
  far; `rollout.Policy.segments`).
  `author_tokens`, `num_outcomes`: see `Agent`.
  """
  if num_outcomes not in (0, tokens.NUM_OUTCOMES):
    raise ValueError(f"agent: 'num_outcomes' must be 0 or {tokens.NUM_OUTCOMES}, "
                     f"got {num_outcomes!r}")
  vocab = tokens.vocab_size(task.num_actions, task.num_observations, num_outcomes)
  sizes = dict(hidden=hidden, width=width, num_layers=num_layers, num_heads=num_heads,
               mlp_ratio=mlp_ratio, cache_segments=cache_segments)
  for name, value in sizes.items():
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"agent: '{name}' must be a positive integer, got {value!r}")
  if isinstance(attention_chunk, bool) or not isinstance(attention_chunk, int) or \
      attention_chunk < 0:
    raise ValueError(f"agent: 'attention_chunk' must be a non-negative integer, got "
                     f"{attention_chunk!r}")
  if lstm_kernel not in KERNELS:
    raise ValueError(f"agent: unknown 'lstm_kernel' {lstm_kernel!r}; allowed: "
                     f"{', '.join(KERNELS)}")
  if kind == "lstm" and lstm_kernel == "pallas":
    if not fused_lstm:
      raise ValueError("agent: 'lstm_kernel' 'pallas' needs fused_lstm=True (it is that "
                       "pass's kernel)")
    try:
      lstm_kernel_lib.check(hidden)
    except ValueError as e:
      raise ValueError(f"agent: {e}") from None
  if attention_kernel not in KERNELS:
    raise ValueError(f"agent: unknown 'attention_kernel' {attention_kernel!r}; allowed: "
                     f"{', '.join(KERNELS)}")
  if kind in ("lstm", "gru"):
    module = Recurrent(vocab, task.num_actions, task.num_observations, hidden, cell=kind,
                       unroll=unroll, fused=bool(fused_lstm), kernel=lstm_kernel)
  elif kind == "transformer":
    if position not in POSITIONS:
      raise ValueError(f"agent: unknown 'position' {position!r}; allowed: "
                       f"{', '.join(POSITIONS)}")
    if width % num_heads:
      raise ValueError(f"agent: 'width' ({width}) must be divisible by 'num_heads' "
                       f"({num_heads})")
    if attention_kernel == "pallas":
      if attention_chunk:
        raise ValueError("agent: 'attention_kernel' 'pallas' attends without chunks; set "
                         "attention_chunk=0")
      if cache_segments > 1:
        raise ValueError("agent: 'attention_kernel' 'pallas' reads only the filled part of "
                         "the KV cache itself; set cache_segments=1")
      try:
        attention_kernel_lib.check(width // num_heads)
      except ValueError as e:
        raise ValueError(f"agent: {e}") from None
    # BOS + 2T tokens: the last observation token is consumed (and unused) while acting.
    # Cache block j ends after segment j's last step (BOS + 2 tokens a step).
    cache_ends = ()
    if cache_segments > 1:
      cache_ends = tuple(2 * end + 1 for end in rollout.segment_ends(task.horizon,
                                                                     cache_segments))
    module = Transformer(vocab, task.num_actions, task.num_observations,
                         max_len=2 * task.horizon + 1, width=width, num_layers=num_layers,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, remat=remat,
                         position=position, attention_chunk=attention_chunk,
                         attention_kernel=attention_kernel, cache_ends=cache_ends)
  else:
    raise ValueError(f"unknown agent kind {kind!r}; allowed: {', '.join(KINDS)}")
  return Agent(module, task.num_actions, task.num_observations, task.horizon,
               bool(author_tokens), int(num_outcomes))
