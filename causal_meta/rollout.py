"""The braided-rollout engine ([O] §4.1, Fig. 4, App. A).

Per episode θ ~ Q. At each step the policy proposes action logits and samples its action (plain
data: no gradient flows through it); the expert, who sees θ, samples what it would have done;
one of the two actions is taken (its author recorded); the task answers the taken action. For a
task whose latent moves ([O] §3, `Task.changes_latent`), θ_{t+1} ~ P(· | θ_t) is drawn after
the answer: the expert, the world and the best action of step t all read θ_t. The
result is a `Trajectory` of plain arrays that a learner replays in one teacher-forced pass, or,
for a recurrent learner, the policy's own predictions along the way (`with_logits`), whose
losses are differentiated through the rollout.

Who acts is set by `expert_prob`, the per-step probability that the expert's action is taken:
  counterfactual = 0 (the agent acts; the expert's action is the teaching target),
  demonstration  = 1 (the expert acts: naive conditioning / behaviour cloning),
  mixed          = p ([O] Remark 15),
and deployment is a counterfactual rollout whose targets are ignored.

A policy is three pure per-episode functions (`Policy`); the engine vmaps them over the batch
and scans over time, so a neural agent, the exact oracle and a random policy run the same code.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from causal_meta.tasks.base import Task

Array = jax.Array
Carry = Any

TEACHING_MODES = ("counterfactual", "demonstration", "mixed")


class Policy(NamedTuple):
  """One episode's acting interface (all pure; the engine vmaps over the batch).

  initial_carry: () -> carry, the memory before the first action.
  action_logits: carry -> float [A], logits of the next action.
  observe: (carry, action int [], intervened bool [], observation int []) -> carry; called
    after every step but an episode's last (nothing reads the memory after it).
  observation_logits: (carry, action int [], intervened bool []) -> float [O], the predicted
    observation given the action about to be taken; needed only by `braid(with_logits=True)`.
  """
  initial_carry: Callable[[], Carry]
  action_logits: Callable[[Carry], Array]
  observe: Callable[[Carry, Array, Array, Array], Carry]
  observation_logits: Callable[[Carry, Array, Array], Array] | None = None


class Trajectory(NamedTuple):
  """A batch of braided rollouts. B episodes, T steps.

  theta: int32 [B]              the latent of each episode (θ_1 if it moves: see `latents`).
  actions: int32 [B, T]         the actions taken.
  expert_actions: int32 [B, T]  what the expert would have done (the counterfactual target).
  observations: int32 [B, T]    the task's answers to the actions taken.
  intervened: bool [B, T]       author of the taken action: True = agent (do(a)), False = expert.
  mask: bool [B, T]             the step happened (the task was not done before it).
  done: bool [B, T]             the task is done after the step (e.g. the padlock opened).
  rewards: float32 [B, T]       r(o_t), 0 where masked.
  best_actions: int32 [B, T]    the expert's most likely action under θ (for best-action rates).
  expert_log_probs: float32 [B, T, A], the expert's log-policy log Q(· | θ, s_t) from which
                 expert_actions were drawn, or None (`braid(..., expert_policy=True)` keeps it):
                 the target of the "policy" counterfactual loss (losses.py).
  latents: int32 [B, T]         θ_t at each step for a task whose latent moves
                 (`Task.changes_latent`; `theta` is θ_1), else None.
  """
  theta: Array
  actions: Array
  expert_actions: Array
  observations: Array
  intervened: Array
  mask: Array
  done: Array
  rewards: Array
  best_actions: Array
  expert_log_probs: Any = None
  latents: Any = None


def expert_prob_for(mode: str, mixed_prob: float = 0.5) -> float:
  """The per-step probability that the expert acts, for a teaching mode."""
  if mode == "counterfactual":
    return 0.0
  if mode == "demonstration":
    return 1.0
  if mode == "mixed":
    return mixed_prob
  raise ValueError(f"unknown teaching mode {mode!r}; allowed: {', '.join(TEACHING_MODES)}")


def episode(task: Task, policy: Policy, key: Array, theta: Array,
            expert_prob: float | Array = 0.0, scan_unroll: int = 1,
            expert_policy: bool = False, with_logits: bool = False):
  """One braided episode with latent θ (no batch axis). See `braid`."""
  if _fixed(expert_prob) and expert_prob == 1 and not with_logits:
    # The policy's actions would all be thrown away, so it does not act at all: a memoryless
    # stand-in takes its place. Its noise is still drawn: the trajectory is the same. (XLA
    # does not always find that dead code itself: it kept the LSTM's recurrence.)
    policy = uniform_policy(task)

  # Every draw of the episode at once, outside the loop: Gumbel noise for each categorical
  # draw (argmax(logits + Gumbel) is a draw from softmax(logits), as jax.random.categorical).
  k_agent, k_expert, k_author, k_obs = jax.random.split(key, 4)
  T, A, O = task.horizon, task.num_actions, task.num_observations
  noise = (jax.random.gumbel(k_agent, (T, A)), jax.random.gumbel(k_expert, (T, A)),
           jax.random.uniform(k_author, (T,)), jax.random.gumbel(k_obs, (T, O)))
  if task.changes_latent:
    # A stream of its own (fold_in), so that the four above are a static task's draws.
    noise += (jax.random.gumbel(jax.random.fold_in(key, _LATENT_STREAM),
                                (T, task.num_latents)),)
    log_transition = task.log_latent_transition()

  def step(carry, noise_t, last=False):
    policy_carry, state, theta_t = carry
    g_agent, g_expert, u_author, g_obs = noise_t[:4]
    action_logits = policy.action_logits(policy_carry)
    agent_action = jnp.argmax(jax.lax.stop_gradient(action_logits) + g_agent).astype(jnp.int32)
    expert_logits = task.expert_logits(theta_t, state)
    expert_action = jnp.argmax(expert_logits + g_expert).astype(jnp.int32)
    if _fixed(expert_prob):
      by_expert = jnp.asarray(expert_prob == 1)  # a fixed author needs no coin
    else:
      by_expert = u_author < expert_prob
    action = jnp.where(by_expert, expert_action, agent_action)
    obs = jnp.argmax(task.observation_logits(theta_t, state, action) + g_obs).astype(jnp.int32)
    active = jnp.logical_not(task.done(state))
    logits = ((action_logits, policy.observation_logits(policy_carry, action,
                                                        jnp.logical_not(by_expert)))
              if with_logits else None)
    if not last:
      policy_carry = policy.observe(policy_carry, action, jnp.logical_not(by_expert), obs)
    next_state = jnp.where(active, task.next_state(state, action, obs), state)
    out = Trajectory(
        theta=None, actions=action, expert_actions=expert_action, observations=obs,
        intervened=jnp.logical_not(by_expert), mask=active, done=task.done(next_state),
        rewards=jnp.where(active, task.reward(obs), 0.0).astype(jnp.float32),
        best_actions=task.best_action(theta_t, state).astype(jnp.int32),
        expert_log_probs=jax.nn.log_softmax(expert_logits) if expert_policy else None,
        latents=theta_t if task.changes_latent else None)
    if task.changes_latent and not last:  # Θ_{t+1} ~ P(· | θ_t), after the world answered
      theta_t = jnp.argmax(log_transition[theta_t] + noise_t[4]).astype(jnp.int32)
    return (policy_carry, next_state, theta_t), (out, logits)

  init = (policy.initial_carry(), task.initial_state(), jnp.asarray(theta, jnp.int32))
  # Steps 1 … T-1 in the loop, step T after it without `observe`: nothing reads the memory
  # after the last action, so a neural policy runs T cell steps per episode, not T + 1.
  carry, out = jax.lax.scan(step, init, jax.tree.map(lambda x: x[:-1], noise),
                            unroll=scan_unroll)
  _, last = step(carry, jax.tree.map(lambda x: x[-1], noise), last=True)
  traj, logits = jax.tree.map(lambda x, y: jnp.concatenate([x, y[None]]), out, last)
  traj = traj._replace(theta=theta)
  return (traj, logits) if with_logits else traj


# fold_in data of the latent chain's noise (any constant other streams do not use).
_LATENT_STREAM = 4


def _fixed(expert_prob) -> bool:
  """True if `expert_prob` is a Python 0 or 1: the author of every step is known at trace time."""
  return isinstance(expert_prob, (int, float)) and expert_prob in (0, 1)


def episode_keys(task: Task, key: Array, batch_size: int,
                 theta: Array | None = None) -> tuple[Array, Array]:
  """What `braid` draws before acting: (one key per episode [B, 2], θ int32 [B]) (θ from the
  prior unless given)."""
  k_theta, k_run = jax.random.split(key)
  if theta is None:
    theta = jax.vmap(task.sample_latent)(jax.random.split(k_theta, batch_size))
  chex.assert_shape(theta, (batch_size,))
  return jax.random.split(k_run, batch_size), theta


def braid(task: Task, policy: Policy, key: Array, batch_size: int,
          expert_prob: float | Array = 0.0, theta: Array | None = None,
          scan_unroll: int = 1, expert_policy: bool = False, with_logits: bool = False):
  """B braided episodes, θ drawn from the prior (or given: int [B]).

  Jittable with `task`, `policy` (closures) and `batch_size` static. Returns a Trajectory with
  [B, T] fields. `scan_unroll`: time steps per iteration of the compiled loop (same numbers;
  fewer loop iterations can pay on an accelerator, where each costs a launch or a sync).
  `expert_policy`: also keep the expert's log-policy at each step (`expert_log_probs`).
  `with_logits`: return (trajectory, (action logits [B, T, A], observation logits [B, T, O])),
  the policy's predictions while it acted (observation logits given the action taken, with
  its author). They are differentiable in whatever the policy closes over: a loss on them
  differentiated through the rollout is the teacher-forced pass's loss and gradient, with
  the sampled actions, the expert's and the observations plain data ([O] Fig. 4c).
  """
  keys, theta = episode_keys(task, key, batch_size, theta)
  return run_episodes(task, policy, keys, theta, expert_prob, scan_unroll, expert_policy,
                      with_logits)


def run_episodes(task: Task, policy: Policy, keys: Array, theta: Array,
                 expert_prob: float | Array = 0.0, scan_unroll: int = 1,
                 expert_policy: bool = False, with_logits: bool = False):
  """`braid` from its draws (`episode_keys`): keys [B, 2], θ int [B]."""
  run = lambda k, th: episode(task, policy, k, th, expert_prob, scan_unroll, expert_policy,
                              with_logits)
  out = jax.vmap(run)(keys, theta)
  chex.assert_shape((out[0] if with_logits else out).actions, (theta.shape[0], task.horizon))
  return out


def uniform_policy(task: Task) -> Policy:
  """Acts uniformly at random: a reference and a test fixture."""
  return Policy(initial_carry=lambda: jnp.zeros(()),
                action_logits=lambda c: jnp.zeros((task.num_actions,)),
                observe=lambda c, a, i, o: c,
                observation_logits=lambda c, a, i: jnp.zeros((task.num_observations,)))


def mean_over_mask(x: Array, mask: Array) -> Array:
  """Σ x·mask / Σ mask (0 when the mask is empty)."""
  mask = mask.astype(jnp.float32)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def mean_by_step(x: Array, mask: Array) -> Array:
  """Mean over the episodes still running at each step: [B, T] -> [T] (0 where none is)."""
  mask = mask.astype(jnp.float32)
  return jnp.sum(x * mask, 0) / jnp.maximum(jnp.sum(mask, 0), 1.0)


def policy_stats(traj: Trajectory, last_steps: int = 5) -> dict[str, Array]:
  """Reward and best-action statistics of a batch of rollouts.

  mean_reward: the mean over episodes of the summed reward, divided by the horizon (reward
    per step; for a bandit the win rate).
  best_action_rate: fraction of the last `last_steps` steps (unmasked ones) whose action is the
    best action.
  best_action_by_step: [T] the same fraction at each step.
  success_rate: fraction of episodes that reached done (e.g. the padlock opened).
  """
  horizon = traj.actions.shape[1]
  hit = (traj.actions == traj.best_actions).astype(jnp.float32)
  mask = traj.mask.astype(jnp.float32)
  tail = jnp.arange(horizon) >= horizon - last_steps
  return dict(
      mean_reward=jnp.mean(jnp.sum(traj.rewards, 1)) / horizon,
      best_action_rate=mean_over_mask(hit, mask * tail),
      best_action_by_step=mean_by_step(hit, mask),
      success_rate=jnp.mean(jnp.any(traj.done, 1).astype(jnp.float32)),
  )
