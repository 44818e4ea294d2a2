"""The exact Bayes-optimal oracle for tasks with an enumerable latent ([O] eq. 2, Remarks 10
and 14; docs/papers.md).

A history's actions each carry an author: the agent (an intervention, do(a)) or the expert
(a condition). The posterior is

    P(θ | h_t) ∝ Q(θ) Π_τ Q(o_τ | θ, s_{τ-1}, a_τ) Π_{τ: a_τ by expert} Q(a_τ | θ, s_{τ-1}),

i.e. an intervened action's likelihood is dropped. "Interventional oracle" = every action
intervened; "conditional oracle" = every action conditioned (what naive conditioning learns).

The oracle is a Bayes filter with a *belief* = (log-weights [L], task state), updated by one
(action, author, observation) at a time. Everything is a pure function, jittable and vmappable;
the public helpers accept Python lists.

A latent that moves during the episode ([O] §3, Remark 10's recursion; `Task.changes_latent`)
makes it the forward filter of a hidden Markov chain: after the step's evidence, the belief is
predicted through the chain, log w'(θ') = logsumexp_θ (log w(θ) + log P(θ' | θ)). The belief
after h_t is then over θ_{t+1}, the latent of the next step, and `posterior` is P(θ_{t+1} | h_t).
A static task skips the prediction.

Edge case: under conditioning an action can have probability 0 under every θ (e.g. a deluded
agent's move that no deterministic expert would make). Such an action carries no information,
so its likelihood is then ignored rather than producing an undefined posterior.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from causal_meta.tasks.base import Task

Array = jax.Array


class Belief(NamedTuple):
  log_weights: Array  # float32 [L], normalised: log P(θ | h)
  state: Array        # int32 [*state_shape], the task state after h


class Predictives(NamedTuple):
  """Predictions at every step of [..., T] histories."""
  action_probs: Array       # [..., T, A]: P(a_t | h_{t-1})
  observation_probs: Array  # [..., T, O]: P(o_t | h_{t-1}, a_t)
  posterior: Array          # [..., T, L]: P(θ_t | h_{t-1}), before step t


def _log_expert(task: Task, state: Array) -> Array:
  """log Q(a | θ, s) for every θ: [L, A]."""
  thetas, _ = task.latents()
  return jax.nn.log_softmax(jax.vmap(task.expert_logits, (0, None))(thetas, state), -1)


def _log_observation(task: Task, state: Array, action: Array) -> Array:
  """log Q(o | θ, s, a) for every θ: [L, O]."""
  thetas, _ = task.latents()
  logits = jax.vmap(task.observation_logits, (0, None, None))(thetas, state, action)
  return jax.nn.log_softmax(logits, -1)


def _add_action_evidence(task, belief, action, intervened):
  """log-weights including Q(a | θ, s) if the action is the expert's (see module edge case)."""
  log_a = _log_expert(task, belief.state)[:, action]
  conditioned = belief.log_weights + log_a
  possible = jnp.isfinite(jax.nn.logsumexp(conditioned))
  use = jnp.logical_and(jnp.logical_not(intervened), possible)
  return jnp.where(use, conditioned, belief.log_weights)


def _normalise(log_w):
  return log_w - jax.nn.logsumexp(log_w)


def predict_latent(task: Task, log_weights: Array) -> Array:
  """log P(θ_{t+1} | ·) from log P(θ_t | ·) [L] through the latent's chain: [L]. The identity
  for a static task (nothing is computed)."""
  if not task.changes_latent:
    return log_weights
  return jax.nn.logsumexp(log_weights[:, None] + task.log_latent_transition(), axis=0)


def initial_belief(task: Task) -> Belief:
  """The prior belief."""
  return Belief(_normalise(task.log_prior()), task.initial_state())


def action_probs(task: Task, belief: Belief) -> Array:
  """P(a | h) = Σ_θ P(θ | h) Q(a | θ, s): [A]."""
  return jnp.exp(jax.nn.logsumexp(belief.log_weights[:, None] + _log_expert(task, belief.state),
                                  axis=0))


def observation_probs(task: Task, belief: Belief, action: Array, intervened: Array) -> Array:
  """P(o | h, a) for the action just taken by the given author: [O]."""
  log_w = _normalise(_add_action_evidence(task, belief, action, intervened))
  log_o = _log_observation(task, belief.state, action)
  return jnp.exp(jax.nn.logsumexp(log_w[:, None] + log_o, axis=0))


def update(task: Task, belief: Belief, action: Array, intervened: Array,
           observation: Array) -> Belief:
  """The belief after one step (for a moving latent, over the next step's θ). Steps after
  `done` leave the belief unchanged."""
  log_w = _add_action_evidence(task, belief, action, intervened)
  log_w = log_w + _log_observation(task, belief.state, action)[:, observation]
  # An observation impossible under every θ (padding, or a mismatched history) is ignored.
  log_w = jnp.where(jnp.isfinite(jax.nn.logsumexp(log_w)), _normalise(log_w),
                    belief.log_weights)
  log_w = predict_latent(task, log_w)
  active = jnp.logical_not(task.done(belief.state))
  new = Belief(log_w, task.next_state(belief.state, action, observation))
  return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, belief)


def _filter(task: Task, actions: Array, observations: Array, intervened: Array) -> Belief:
  """Belief after a history of equal length [t]."""
  def body(belief, step):
    return update(task, belief, *step), None
  belief, _ = jax.lax.scan(body, initial_belief(task), (actions, intervened, observations))
  return belief


def _as_history(actions, observations, intervened, extra_action: int):
  actions = jnp.asarray(actions, jnp.int32).reshape(-1)
  observations = jnp.asarray(observations, jnp.int32).reshape(-1)
  if actions.shape[0] != observations.shape[0] + extra_action:
    raise ValueError(f"expected {observations.shape[0] + extra_action} actions for "
                     f"{observations.shape[0]} observations, got {actions.shape[0]}")
  intervened = jnp.broadcast_to(jnp.asarray(intervened, bool), actions.shape)
  return actions, observations, intervened


@functools.partial(jax.jit, static_argnums=0)
def _posterior(task, actions, observations, intervened):
  return jnp.exp(_filter(task, actions, observations, intervened).log_weights)


@functools.partial(jax.jit, static_argnums=0)
def _next_action(task, actions, observations, intervened):
  return action_probs(task, _filter(task, actions, observations, intervened))


@functools.partial(jax.jit, static_argnums=0)
def _next_observation(task, actions, observations, intervened):
  belief = _filter(task, actions[:-1], observations, intervened[:-1])
  return observation_probs(task, belief, actions[-1], intervened[-1])


def posterior(task: Task, actions: Any, observations: Any, intervened: Any = True) -> Array:
  """P(θ | h): [L] for a history of equal-length actions/observations (may be empty); for a
  moving latent, P(θ_{t+1} | h_t), the latent of the step to come.

  `intervened` is a bool per action (True: the agent's do(a)) or one bool for all.
  """
  return _posterior(task, *_as_history(actions, observations, intervened, 0))


def next_action_probs(task: Task, actions: Any, observations: Any,
                      intervened: Any = True) -> Array:
  """P(a_{t+1} | h_t): [A], for equal-length actions/observations [t] (t may be 0)."""
  return _next_action(task, *_as_history(actions, observations, intervened, 0))


def next_observation_probs(task: Task, actions: Any, observations: Any,
                           intervened: Any = True) -> Array:
  """P(o_{t+1} | h_t, a_{t+1}): [O]; `actions` [t+1] is one longer than `observations` [t]."""
  return _next_observation(task, *_as_history(actions, observations, intervened, 1))


def predictives(task: Task, actions: Array, observations: Array,
                intervened: Array) -> Predictives:
  """Predictives at every prefix of a batch of histories, in one `lax.scan` over time.

  Args:
    actions, observations: int [B, T]; intervened: bool [B, T] (or broadcastable).
  Returns:
    Predictives with action_probs [B, T, A], observation_probs [B, T, O], posterior [B, T, L].
  Jittable (task static); vmap over more leading axes as needed.
  """
  actions = jnp.asarray(actions, jnp.int32)
  observations = jnp.asarray(observations, jnp.int32)
  intervened = jnp.broadcast_to(jnp.asarray(intervened, bool), actions.shape)
  if actions.ndim != 2 or observations.shape != actions.shape:
    raise ValueError(f"predictives expects actions and observations of one shape [B, T], got "
                     f"{actions.shape} and {observations.shape}")

  def one(actions, observations, intervened):
    def body(belief, step):
      a, i, o = step
      out = (action_probs(task, belief), observation_probs(task, belief, a, i),
             jnp.exp(belief.log_weights))
      return update(task, belief, a, i, o), out
    _, out = jax.lax.scan(body, initial_belief(task), (actions, intervened, observations))
    return Predictives(*out)

  return jax.vmap(one)(actions, observations, intervened)


# ------------------------------------------------------------------------------------------------
# The oracles deployed as policies: the two reference curves of every experiment.

def policy(task: Task, causal: bool = True):
  """The oracle as a `rollout.Policy` acting on its own predictive.

  causal=True respects each action's author: deployed (all actions its own, all intervened) it
  is the interventional oracle, i.e. Thompson sampling ([O] Remark 5). causal=False treats
  every action as a condition: the conditional oracle, the deluded imitator.
  """
  from causal_meta import rollout  # local import: rollout is the engine, oracle the reference

  def observe(belief, action, intervened, observation):
    intervened = jnp.logical_and(intervened, causal)
    return update(task, belief, action, intervened, observation)

  return rollout.Policy(initial_carry=lambda: initial_belief(task),
                        action_logits=lambda belief: jnp.log(action_probs(task, belief)),
                        observe=observe)


@functools.partial(jax.jit, static_argnums=(0, 2, 3), static_argnames=("mesh",))
def run_policy(task: Task, key: Array, batch_size: int, causal: bool = True,
               theta: Array | None = None, mesh=None):
  """Deploys an oracle policy on `batch_size` episodes: (Trajectory, stats dict).

  stats: mean_reward, best_action_rate (last 5 steps), best_action_by_step [T], success_rate.
  mesh: split the episodes over its `data` axis (causal_meta.parallel); the same numbers.
  """
  from causal_meta import parallel, rollout
  traj = rollout.braid(task, policy(task, causal), key, batch_size, 0.0, theta)
  if mesh is not None:
    traj = parallel.shard_batch(traj, mesh)
  return traj, rollout.policy_stats(traj)
