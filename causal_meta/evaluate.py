"""Evaluation against the exact oracle, on the agent's own deployment rollouts ([O] §4.1).

The agent acts alone (every action its own, an intervention). On those histories we compare
its action and observation predictions with the interventional oracle (respects authors: the
right answer) and the conditional oracle (what naive conditioning converges to):
KL(oracle ‖ agent) per step, averaged over the steps that happened, in nats/step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from causal_meta import oracle, parallel, rollout
from causal_meta.agents import Agent
from causal_meta.tasks.base import Task


def kl(p: jax.Array, log_q: jax.Array) -> jax.Array:
  """KL(p ‖ q) over the last axis, with 0 log 0 = 0: [..., K] -> [...]."""
  safe = jnp.where(p > 0, p, 1.0)
  return jnp.sum(jnp.where(p > 0, p * (jnp.log(safe) - log_q), 0.0), -1)


def agent_metrics(task: Task, agent: Agent, params, key: jax.Array,
                  episodes: int, mesh=None) -> dict[str, jax.Array]:
  """Deploys the agent on `episodes` episodes and scores it. Jittable (task, agent, episodes
  static). Scalars, plus per-step curves [T] with the suffix `_by_step`. `mesh`: split the
  episodes over its `data` axis (see causal_meta.parallel); the numbers are the same."""
  out = rollout.braid(task, agent.policy(params), key, episodes, expert_prob=0.0,
                      with_logits=True)  # the predictions the agent acted on
  if mesh is not None:
    out = parallel.shard_batch(out, mesh)
  traj, (action_logits, obs_logits) = out
  log_pa, log_po = jax.nn.log_softmax(action_logits), jax.nn.log_softmax(obs_logits)
  mask = traj.mask.astype(jnp.float32)
  out = {}
  for name, causal in (("interventional", True), ("conditional", False)):
    pred = oracle.predictives(task, traj.actions, traj.observations,
                              jnp.logical_and(traj.intervened, causal))
    for what, p, log_q in (("action", pred.action_probs, log_pa),
                           ("observation", pred.observation_probs, log_po)):
      per_step = kl(p, log_q)  # [B, T]
      out[f"kl_{what}_{name}"] = rollout.mean_over_mask(per_step, mask)
      out[f"kl_{what}_{name}_by_step"] = rollout.mean_by_step(per_step, mask)
    # The agent's and the oracle's probability of the best action, for figures.
    p_best = jnp.take_along_axis(pred.action_probs, traj.best_actions[..., None], -1)[..., 0]
    out[f"p_best_oracle_{name}_by_step"] = rollout.mean_by_step(p_best, mask)
  p_best_agent = jnp.exp(jnp.take_along_axis(log_pa, traj.best_actions[..., None], -1)[..., 0])
  out["p_best_agent_by_step"] = rollout.mean_by_step(p_best_agent, mask)
  out["running_by_step"] = jnp.mean(mask, 0)  # fraction of episodes not yet done
  for k, v in rollout.policy_stats(traj).items():
    out[k] = v
  out["best_action_rate_by_step"] = out.pop("best_action_by_step")
  return out


def action_kl(task: Task, agent: Agent, params, key: jax.Array, episodes: int) -> jax.Array:
  """`agent_metrics`' `kl_action_interventional` alone (the same number): what the time to a
  target KL is measured on; it compiles in less time than all of `agent_metrics`."""
  traj, (action_logits, _) = rollout.braid(task, agent.policy(params), key, episodes,
                                           expert_prob=0.0, with_logits=True)
  pred = oracle.predictives(task, traj.actions, traj.observations, traj.intervened)
  return rollout.mean_over_mask(kl(pred.action_probs, jax.nn.log_softmax(action_logits)),
                                traj.mask)


def expert_data_metrics(task: Task, agent: Agent, params, key: jax.Array,
                        episodes: int) -> dict[str, jax.Array]:
  """KL(conditional oracle ‖ agent) for the next action on the *expert's* rollouts: the data a
  demonstration agent learns from, where the conditional oracle is the right answer. Set
  beside `agent_metrics` (the agent's own rollouts), it tells apart an agent that does not fit
  its data (high on both) from one whose fit does not carry over to the histories its own
  actions lead to (low here, high there). Meaningful for agents that read expert actions
  (demonstration, mixed); a counterfactual agent never saw an expert-authored action.

  Returns `kl_action_conditional` (nats/step), its curve `kl_action_conditional_by_step` [T]
  and `running_by_step` [T], the fraction of episodes not yet done at each step."""
  traj, (action_logits, _) = rollout.braid(task, agent.policy(params), key, episodes,
                                           expert_prob=1.0, with_logits=True)
  pred = oracle.predictives(task, traj.actions, traj.observations, traj.intervened)
  per_step = kl(pred.action_probs, jax.nn.log_softmax(action_logits))
  mask = traj.mask.astype(jnp.float32)
  return {"kl_action_conditional": rollout.mean_over_mask(per_step, mask),
          "kl_action_conditional_by_step": rollout.mean_by_step(per_step, mask),
          "running_by_step": jnp.mean(mask, 0)}


def mixed_author_metrics(task: Task, agent: Agent, params, key: jax.Array, episodes: int,
                         expert_prob: float | jax.Array) -> dict[str, jax.Array]:
  """KL(oracle ‖ agent) on pasts of mixed authorship ([O] Remarks 14-15): at each step the
  expert acts with probability `expert_prob` (q), else the agent; the agent predicts every
  action and observation all the same, and is scored against the exact oracle that respects
  those authors (an expert's action is evidence about θ, the agent's own is not). q = 0 is
  `agent_metrics`' `kl_*_interventional` (same key, same rollouts); q = 1 scores the agent
  on the expert's data. Jittable (task, agent, episodes static; q may be traced).

  Returns `kl_action` and `kl_observation` (nats/step over the steps that happened) and their
  curves `kl_action_by_step`, `kl_observation_by_step` [T]."""
  traj, (action_logits, obs_logits) = rollout.braid(
      task, agent.policy(params), key, episodes, expert_prob=expert_prob, with_logits=True)
  pred = oracle.predictives(task, traj.actions, traj.observations, traj.intervened)
  mask = traj.mask.astype(jnp.float32)
  out = {}
  for what, p, logits in (("action", pred.action_probs, action_logits),
                          ("observation", pred.observation_probs, obs_logits)):
    per_step = kl(p, jax.nn.log_softmax(logits))  # [B, T]
    out[f"kl_{what}"] = rollout.mean_over_mask(per_step, mask)
    out[f"kl_{what}_by_step"] = rollout.mean_by_step(per_step, mask)
  return out


def oracle_metrics(task: Task, key: jax.Array, episodes: int,
                   mesh=None) -> dict[str, jax.Array]:
  """Reward, best-action and success rates of the two oracle policies. `mesh`: split the
  episodes over its `data` axis, as `agent_metrics` does; the numbers are the same."""
  out = {}
  for name, causal in (("interventional", True), ("conditional", False)):
    _, stats = oracle.run_policy(task, key, episodes, causal, mesh=mesh)
    out[f"oracle_{name}_reward"] = stats["mean_reward"]
    out[f"oracle_{name}_best_action_rate"] = stats["best_action_rate"]
    out[f"oracle_{name}_success_rate"] = stats["success_rate"]
    out[f"oracle_{name}_best_action_rate_by_step"] = stats["best_action_by_step"]
  return out
