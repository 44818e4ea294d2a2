"""Agents behind one interface: act step by step, learn in one teacher-forced pass.

`make(kind, task, **options)` returns an `Agent`, which wraps a flax module (`Recurrent`,
`Transformer`, or a model of your own: `SequenceModel` says what it must provide) with the two
faces that must agree:
  policy(params) -> rollout.Policy         acting: one env step (one token, agents/tokens.py)
                                           at a time, recurrent carry or KV cache;
  teacher_force(params, traj) -> logits    learning: one pass over the whole braided trajectory.
A module that `learns_in_rollout` (the recurrent ones) is trained through its acting face
instead: the logits it produced while acting are the teacher-forced pass's, so one recurrence
per update suffices.

`register(kind, builder)` makes `kind` a `config.agent.kind`: `builder(task, **options)`
returns an `Agent`; the built-in kinds are registered the same way.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from causal_meta import rollout
from causal_meta.registry import Registry
from causal_meta.agents import packing, tokens
from causal_meta.agents.recurrent import Recurrent
from causal_meta.agents.transformer import POSITIONS, Transformer
from causal_meta.tasks.base import Task

KINDS = ("lstm", "gru", "transformer")  # the built-in kinds; `kinds()`: all registered


@runtime_checkable
class SequenceModel(Protocol):
  """What `Agent` needs of its flax module: one model, stepped when acting and run over a
  whole sequence when learning, the two giving the same outputs (tests/test_agents.py checks
  the built-in ones; check yours the same way).

  A = task.num_actions, O = task.num_observations, V = tokens.vocab_size(A, O): the module
  reads int32 tokens in [0, V) (agents/tokens.py: a token is one interaction) and outputs, at
  each position, the head [A + 2A·O]: A action logits, then O observation logits for each of
  the 2A actions-with-author (do(a) = a, expert a = A + a). `Agent` splits them.

  Methods (each called through `module.apply({"params": params}, ..., method=...)`, so they
  may read parameters):
    initial_carry() -> carry                       the memory before the first token (a
                                                   pytree of arrays; no batch axis).
    step(carry, token int32 [], **step_inputs) -> (carry, head [A + 2A·O])
                                                   feeds one token.
    __call__(tokens int32 [L]) -> head [L, A + 2A·O]
                                                   the teacher-forced pass: position l equals
                                                   `step` after tokens 0…l. `Agent.init` runs
                                                   it on L = horizon tokens, so it must touch
                                                   every parameter.
    step_inputs() -> dict (optional)               what `step` would otherwise recompute from
                                                   the parameters at every step (`Recurrent`:
                                                   the input projection of every token);
                                                   `Agent.policy` calls it once per rollout and
                                                   passes it to every `step` as keywords.

  Class attributes (declare them `ClassVar[bool]`, so that flax does not make them fields):
    learns_in_rollout  training differentiates through the rollout's own logits, one
                       recurrence per update (cheap for a recurrent step), instead of acting
                       and then running `__call__` over the trajectory (better for a pass that
                       is parallel over positions).
    packs_episodes     `__call__(tokens, positions, segments)` also accepts int [L] positions
                       within each episode and episode ids, attending only within an episode,
                       so that `config.agent.packing` > 1 can lay several episodes in a row
                       (agents/packing.py).
  """
  learns_in_rollout: ClassVar[bool]
  packs_episodes: ClassVar[bool]

  def initial_carry(self) -> Any: ...

  def step(self, carry: Any, token: jax.Array, **step_inputs: Any) -> tuple[Any, jax.Array]:
    ...

  def __call__(self, tokens: jax.Array) -> jax.Array: ...


_MEMBERS = ("learns_in_rollout", "packs_episodes", "initial_carry", "step", "__call__")


@dataclasses.dataclass(frozen=True)
class Agent:
  """A module plus the task's sizes. Hashable, so it can be closed over in jitted code.

  author_tokens: whether the agent reads who took each action (do(a) vs a, [O] Remark 14). A
  model trained on demonstrations only ever saw expert actions; deployed, it reads its own
  actions with the same symbol, which is exactly naive conditioning. So demonstration agents
  are author-blind (every action gets the expert symbol) and the others author-aware.

  num_outcomes: 0 for a plain model; `tokens.NUM_OUTCOMES` for a goal-conditioned one whose
  sequence starts with an outcome token instead of BOS ([D] App. C). `policy` and
  `teacher_force` then take the outcome (int; -1 = BOS, i.e. unconditioned).
  """
  module: nn.Module
  num_actions: int
  num_observations: int
  horizon: int
  author_tokens: bool = True
  num_outcomes: int = 0

  def __post_init__(self):
    missing = [m for m in _MEMBERS if not hasattr(self.module, m)]
    if missing:
      raise ValueError(f"agent: module {type(self.module).__name__} lacks "
                       f"{', '.join(missing)} (see causal_meta.agents.SequenceModel)")

  def _first(self, outcome):
    return tokens.start_token(-1 if outcome is None else outcome, self.num_actions,
                              self.num_observations)

  def _authors(self, intervened):
    return jnp.logical_and(intervened, self.author_tokens)

  def _split(self, out, actions, intervened):
    """Module head outputs [..., A + 2A·O] and the actions taken, int/bool [...] -> (action
    logits [..., A], observation logits [..., O] given the taken action with its author)."""
    A, O = self.num_actions, self.num_observations
    by_action = out[..., A:].reshape(out.shape[:-1] + (2 * A, O))
    row = tokens.action_part(actions, self._authors(intervened), A)
    return out[..., :A], jnp.take_along_axis(by_action, row[..., None, None], -2)[..., 0, :]

  def init(self, key: jax.Array) -> Any:
    """Fresh parameters."""
    return self.module.init(key, jnp.zeros((self.horizon,), jnp.int32))["params"]

  @property
  def packs_episodes(self) -> bool:
    """Whether `teacher_force` can pack episodes end to end (`packed`): the module says so
    (`SequenceModel.packs_episodes`; the transformer)."""
    return bool(self.module.packs_episodes)

  @property
  def learns_in_rollout(self) -> bool:
    """Whether training takes the losses from the rollout's own logits and differentiates
    through it (one recurrence per update: recurrent agents) rather than from a second,
    teacher-forced pass (the transformer, whose pass is parallel over positions). The module
    says so (`SequenceModel.learns_in_rollout`)."""
    return bool(self.module.learns_in_rollout)

  def policy(self, params, outcome=None) -> rollout.Policy:
    """Acting face for one episode: carry = (module carry, head output [A + 2A·O]), one
    module step per env step.

    outcome: None/-1 (start with BOS) or the outcome to condition on (int [])."""
    A, O = self.num_actions, self.num_observations
    kwargs = {}
    if hasattr(self.module, "step_inputs"):
      # Derived from params once: inside the rollout's loop XLA would derive it at every step.
      kwargs = self.module.apply({"params": params}, method="step_inputs")

    def step(carry, token):
      return self.module.apply({"params": params}, carry, token, method="step", **kwargs)

    def initial_carry():
      carry = self.module.apply({"params": params}, method="initial_carry")
      return step(carry, self._first(outcome))

    def observe(carry, action, intervened, observation):
      return step(carry[0], tokens.token(action, self._authors(intervened), observation, A, O))

    return rollout.Policy(initial_carry, lambda carry: carry[1][:A], observe,
                          lambda carry, action, intervened:
                          self._split(carry[1], action, intervened)[1])

  def teacher_force(self, params, traj: rollout.Trajectory, outcome=None,
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
                           self.num_actions, self.num_observations, first)
    if packed is None:
      out = self._pass(params, inputs)
    else:
      if not self.packs_episodes:
        raise ValueError(f"agent: only the transformer packs episodes (and modules that "
                         f"declare packs_episodes = True), not {type(self.module).__name__} "
                         f"(packed=None otherwise)")
      out = self._packed_pass(params, inputs, traj.mask, packed)
    action_logits, obs_logits = self._split(out, traj.actions, traj.intervened)
    chex.assert_shape(action_logits, (B, T, self.num_actions))
    chex.assert_shape(obs_logits, (B, T, self.num_observations))
    return action_logits, obs_logits

  def _pass(self, params, inputs, *rows):
    """The module's teacher-forced pass over int [B, L] inputs (and, packed, the rows'
    positions and segment ids [B, L]): head outputs [B, L, A + 2A·O]."""
    return jax.vmap(lambda *x: self.module.apply({"params": params}, *x))(inputs, *rows)

  def _packed_pass(self, params, inputs, mask, packed: packing.Packing):
    """inputs int [B, T], mask bool [B, T] -> head outputs [B, T, A + 2A·O], episode b's
    first Σ mask[b] tokens run in their packed row."""
    B, L = inputs.shape
    lengths = packing.token_lengths(mask)
    ids = jnp.broadcast_to(jnp.arange(1, B + 1)[:, None], (B, L))  # 0 = no episode
    pos = jnp.broadcast_to(jnp.arange(L), (B, L))
    rows = [packing.pack(packed, x, lengths) for x in (inputs, pos, ids)]
    return packing.unpack(packed, self._pass(params, *rows), L)


# ---------------------------------------------------------------------------- the registry
# kind -> builder(task, **options) -> Agent, in registration order (the built-ins first).
_BUILDERS = Registry("agent kind", "agents.register", sort=False)


def register(kind: str, builder: Callable[..., Agent], *, replace: bool = False) -> None:
  """Makes `make(kind, task, **options)` return `builder(task, **options)`, an `Agent`.

  From a config (`config.make_agent`), `options` are every field of `config.agent` but `kind`
  (hidden, width, …, packing, and any field you add, e.g. `config.agent.window = 4`), plus
  `author_tokens` (False for demonstration teaching: pass it to `Agent`, see there) and
  `scan_unroll`. Take the ones your model uses and absorb the rest with `**_`.

  Raises:
    ValueError: `kind` is not an identifier or is registered already (pass `replace=True` to
      rebind it, e.g. when a notebook cell runs again); `builder` is not callable.
  """
  _BUILDERS.add(kind, builder, replace)


def unregister(kind: str) -> Callable[..., Agent]:
  """Removes agent kind `kind`; returns its builder. ValueError if it is not registered."""
  return _BUILDERS.pop(_BUILDERS.check(kind))


def kinds() -> list[str]:
  """The registered agent kinds, built-ins first: those `make` (and `config.agent.kind`)
  accept."""
  return _BUILDERS.names()


def check_matches(agent: Agent, task: Task) -> None:
  """ValueError (one line) unless `agent` is an `Agent` for `task`'s alphabets and horizon."""
  if not isinstance(agent, Agent):
    raise ValueError(f"agent: must be a causal_meta.agents.Agent, got {type(agent).__name__}")
  have = (agent.num_actions, agent.num_observations, agent.horizon)
  want = (task.num_actions, task.num_observations, task.horizon)
  if have != want:
    raise ValueError(f"agent: built for {have[0]} actions, {have[1]} observations and horizon "
                     f"{have[2]}; task {task.name!r} has {want[0]}, {want[1]} and {want[2]}")


def make(kind: str, task: Task, **options) -> Agent:
  """Builds an agent of a registered `kind` for `task`: `builder(task, **options)` (see
  `register`), checked to be an `Agent` with the task's sizes.

  The built-in kinds ('lstm', 'gru', 'transformer') take `author_tokens`, `num_outcomes` (see
  `Agent`) and as options the fields of `config.agent` (hidden, width, num_layers, num_heads,
  mlp_ratio, position, attention_chunk, packing) and `scan_unroll`; the ones not given take
  their defaults from `config.default()`, where each is written and explained once
  (`config.make_agent` builds an agent from a whole, validated config). Recurrent agents use
  `hidden` and `scan_unroll`, the transformer the others.
  """
  agent = _BUILDERS[_BUILDERS.check(kind)](task, **options)
  if not isinstance(agent, Agent):
    raise ValueError(f"agent: the builder of kind {kind!r} returned {type(agent).__name__}, "
                     f"not a causal_meta.agents.Agent")
  check_matches(agent, task)
  return agent


def _build_builtin(kind: str, task: Task, author_tokens: bool = True, num_outcomes: int = 0,
                   **options) -> Agent:
  """The builder of the built-in kinds (`make`)."""
  from causal_meta import config  # config imports this module: the defaults, at call time
  defaults = dict(config.default().agent, scan_unroll=config.default().scan_unroll)
  unknown = set(options) - set(defaults)
  if unknown:
    raise ValueError(f"agent: unknown option(s) {', '.join(sorted(unknown))}; allowed: "
                     f"{', '.join(sorted(k for k in defaults if k != 'kind'))}")
  o = dict(defaults, **options)
  if num_outcomes not in (0, tokens.NUM_OUTCOMES):
    raise ValueError(f"agent: 'num_outcomes' must be 0 or {tokens.NUM_OUTCOMES}, "
                     f"got {num_outcomes!r}")
  vocab = tokens.vocab_size(task.num_actions, task.num_observations, num_outcomes)
  if kind in ("lstm", "gru"):
    module = Recurrent(vocab, task.num_actions, task.num_observations, o["hidden"], cell=kind,
                       scan_unroll=o["scan_unroll"])
  else:
    if o["width"] % o["num_heads"]:
      raise ValueError(f"agent: 'width' ({o['width']}) must be divisible by 'num_heads' "
                       f"({o['num_heads']})")
    # T + 1 positions, one more than an episode reads: a shorter table of learned
    # positions would draw every transformer's initial parameters differently.
    module = Transformer(vocab, task.num_actions, task.num_observations,
                         max_len=task.horizon + 1, width=o["width"],
                         num_layers=o["num_layers"], num_heads=o["num_heads"],
                         mlp_ratio=o["mlp_ratio"], position=o["position"],
                         attention_chunk=o["attention_chunk"])
  return Agent(module, task.num_actions, task.num_observations, task.horizon,
               bool(author_tokens), int(num_outcomes))


for _kind in KINDS:
  register(_kind, functools.partial(_build_builtin, _kind))
del _kind
