"""Retraining a goal-conditioned model on its own relabelled rollouts ([D] §4.1, App. C).

A goal-conditioned agent reads an outcome token first (success or failure, `tokens.SUCCESS`)
and then the episode. The loop:

  pretrain on data (expert demonstrations, all labelled success) ─┐
  for round r = 1..R:                                              │
    roll out the model conditioned on success (the engine, `rollout.braid`)
    relabel every rollout with its actual outcome (opened within the horizon or not)
    fine-tune on the relabelled rollouts (optionally mixed with the original data)

Training here is behaviour cloning on whole recorded episodes: the action target is the action
taken and the observation target the task's answer, i.e. `losses.teaching_loss` on a trajectory
whose `expert_actions` are its `actions`. One compiled call runs K updates (`lax.scan`), each
sampling a minibatch from a fixed dataset with keys `fold_in(key, i)`.

Delusion ([D] §4.1, Def. 3.8): on the model's own success-conditioned rollouts, the KL from
the exact interventional oracle's P(o_t | do(a_≤t), o_<t) to the model's predicted
distribution of o_t ("the lock opens"), averaged over the steps that happened.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from causal_meta import evaluate, losses, oracle, rollout, train
from causal_meta.agents import Agent, tokens
from causal_meta.tasks.base import Task

Array = jax.Array
SUCCESS, FAILURE = tokens.SUCCESS, tokens.FAILURE


class Dataset(NamedTuple):
  """Recorded episodes with their outcome labels. N episodes, T steps.

  traj: Trajectory with [N, T] fields; `expert_actions` = `actions` (targets = what was done).
  outcome: int32 [N], `SUCCESS` if the episode reached done (the lock opened), else `FAILURE`.
  """
  traj: rollout.Trajectory
  outcome: Array


def relabel(traj: rollout.Trajectory) -> Dataset:
  """Turns rollouts into data: targets = the actions taken; label = the actual outcome.

  Every action is recorded as a plain (condition) token: a goal-conditioned model reads its
  own actions and the expert's alike, as in [D] (it is author-blind).
  """
  outcome = jnp.where(jnp.any(traj.done, axis=1), SUCCESS, FAILURE).astype(jnp.int32)
  traj = traj._replace(expert_actions=traj.actions,
                       intervened=jnp.zeros_like(traj.intervened))
  return Dataset(traj, outcome)


@functools.partial(jax.jit, static_argnums=(0, 2))
def demonstrations(task: Task, key: Array, num: int) -> Dataset:
  """`num` expert episodes (the expert acts at every step), labelled by outcome."""
  return relabel(rollout.braid(task, rollout.uniform_policy(task), key, num, expert_prob=1.0))


@functools.partial(jax.jit, static_argnums=(0, 2))
def random_play(task: Task, key: Array, num: int) -> Dataset:
  """`num` episodes of uniformly random actions, labelled by outcome (training from scratch)."""
  return relabel(rollout.braid(task, rollout.uniform_policy(task), key, num, expert_prob=0.0))


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def own_rollouts(task: Task, agent: Agent, params, key: Array, num: int,
                 outcome: int = SUCCESS) -> rollout.Trajectory:
  """`num` deployment episodes of the model conditioned on `outcome` (-1: unconditioned)."""
  return rollout.braid(task, agent.policy(params, outcome), key, num, expert_prob=0.0)


def dataset_loss(agent: Agent, params, data: Dataset) -> tuple[Array, dict]:
  """Behaviour-cloning + observation NLL of a batch of labelled episodes: (scalar, parts)."""
  action_logits, obs_logits = agent.teacher_force(params, data.traj, data.outcome)
  return losses.teaching_loss(action_logits, obs_logits, data.traj)


def _take(data: Dataset, idx: Array) -> Dataset:
  return jax.tree.map(lambda x: x[idx], data)


def sample_batch(key: Array, data: Dataset, batch_size: int, original: Dataset | None = None,
                 mix: float = 0.0) -> Dataset:
  """A minibatch [batch_size] drawn uniformly from `data`; each row comes from `original`
  instead with probability `mix` (no mixing when `original` is None)."""
  k_new, k_old, k_mix = jax.random.split(key, 3)
  batch = _take(data, jax.random.randint(k_new, (batch_size,), 0, data.outcome.shape[0]))
  if original is None or mix <= 0.0:
    return batch
  old = _take(original, jax.random.randint(k_old, (batch_size,), 0, original.outcome.shape[0]))
  use_old = jax.random.uniform(k_mix, (batch_size,)) < mix
  return jax.tree.map(lambda o, n: jnp.where(use_old.reshape((-1,) + (1,) * (n.ndim - 1)), o, n),
                      old, batch)


@functools.lru_cache(maxsize=32)
def make_fit(agent: Agent, optimizer: optax.GradientTransformation, batch_size: int,
             num_updates: int, mix: float = 0.0):
  """jit(K = num_updates minibatch updates via lax.scan) on a fixed dataset (memoised, so
  equal settings share one compiled function).

  Returns fit(params, opt_state, key, data, original) -> (params, opt_state, metrics [K]).
  `original` is mixed in with per-row probability `mix` (pass any Dataset when mix = 0).
  """
  sample = lambda k, data, original: sample_batch(k, data, batch_size, original, mix)
  return train.make_data_fit(functools.partial(dataset_loss, agent), sample, optimizer,
                             num_updates)


def prior_uncertain(task: Task, traj: rollout.Trajectory) -> Array:
  """bool [B, T]: whether the step's success observation (index 1: the padlock opens) is not
  determined by the prior alone (for the padlock: the public switches match, so the lock may
  open). Recomputes the task states."""
  thetas, log_prior = task.latents()

  def one(actions, observations):
    def body(carry, step):
      (state, log_q), (a, o) = carry, step
      log_o = jax.vmap(task.observation_logits, (0, None, None))(thetas, state, a)
      pred = jax.nn.logsumexp(log_q[:, None] + jax.nn.log_softmax(log_o, -1), axis=0)
      # The prior of the next step's θ (the same θ unless the task's latent moves).
      carry = task.next_state(state, a, o), oracle.predict_latent(task, log_q)
      return carry, (pred[1] < -1e-6) & (pred[1] > -1e30)
    init = (task.initial_state(), log_prior)
    return jax.lax.scan(body, init, (actions, observations))[1]

  return jax.vmap(one)(traj.actions, traj.observations)


def delusion_from_logits(task: Task, traj: rollout.Trajectory,
                         observation_logits: Array) -> dict[str, Array]:
  """Delusion of observation predictions [B, T, O] on deployment rollouts `traj` (all actions
  the agent's own, so the reference is the interventional oracle).

  delusion: mean over steps that happened of KL(P_int(o_t | do(a_≤t), o_<t) ‖ P_model(o_t | …)).
  delusion_uncertain: the same over the steps whose observation the prior leaves uncertain
    (for the padlock: the steps after which the lock could open; the rest are trivial).
  delusion_app_c, delusion_app_c_reverse: [D] App. C's measure, the KL between the model's
    P(success) (observation 1: the lock opens) and the oracle's, KL(model ‖ oracle) and
    KL(oracle ‖ model), over the steps whose success the oracle does not know (at a
    configuration already tried it gives 0, at the last untried code 1; there any learned
    model's KL(model ‖ oracle) is ∞).
  accuracy: the fraction of episodes that reached done (the lock opened) within the horizon.
  """
  pred = oracle.predictives(task, traj.actions, traj.observations,
                            jnp.ones_like(traj.intervened))
  log_model = jax.nn.log_softmax(observation_logits)
  per_step = evaluate.kl(pred.observation_probs, log_model)
  uncertain = jnp.logical_and(traj.mask, prior_uncertain(task, traj))
  # App. C: success against the rest, a Bernoulli on each side.
  p_ideal = pred.observation_probs[..., 1]
  p_model = jnp.exp(log_model[..., 1])
  ideal2 = jnp.stack([1.0 - p_ideal, p_ideal], -1)
  model2 = jnp.clip(jnp.stack([1.0 - p_model, p_model], -1), 1e-30, 1.0)
  possible = uncertain & (p_ideal > 0) & (p_ideal < 1)
  app_c = evaluate.kl(model2, jnp.log(jnp.clip(ideal2, 1e-30, 1.0)))
  app_c_reverse = evaluate.kl(ideal2, jnp.log(model2))
  opened = jnp.any(traj.done, 1)
  return dict(delusion=rollout.mean_over_mask(per_step, traj.mask),
              delusion_uncertain=rollout.mean_over_mask(per_step, uncertain),
              delusion_app_c=rollout.mean_over_mask(app_c, possible),
              delusion_app_c_reverse=rollout.mean_over_mask(app_c_reverse, possible),
              accuracy=jnp.mean(opened.astype(jnp.float32)),
              steps_to_open=rollout.mean_over_mask(jnp.sum(traj.mask, 1).astype(jnp.float32),
                                                   opened))


def delusion_of(task: Task, agent: Agent, params, traj: rollout.Trajectory,
                outcome: Any = SUCCESS) -> dict[str, Array]:
  """`delusion_from_logits` of the agent (started with `outcome`; None = BOS) on `traj`."""
  outcome = None if outcome is None else jnp.full((traj.actions.shape[0],), outcome, jnp.int32)
  _, obs_logits = agent.teacher_force(params, traj, outcome)
  return delusion_from_logits(task, traj, obs_logits)


@functools.partial(jax.jit, static_argnums=(0, 1, 4, 5))
def evaluate_delusion(task: Task, agent: Agent, params, key: Array, episodes: int,
                      outcome: Any = SUCCESS) -> dict[str, Array]:
  """Deploys the model (conditioned on `outcome`; None for a plain model) and scores it."""
  traj = rollout.braid(task, agent.policy(params, outcome), key, episodes, expert_prob=0.0)
  return delusion_of(task, agent, params, traj, outcome)


def retrain_rounds(task: Task, agent: Agent, params, optimizer, key: Array, *, rounds: int,
                   rollouts_per_round: int, fit, original: Dataset, eval_episodes: int,
                   accumulate: bool = False, fresh_optimizer: bool = True,
                   log=print) -> tuple[list[dict], Any]:
  """R rounds of: roll out (success-conditioned), relabel, fine-tune with `fit`; returns a list
  of per-round dicts (round 0 = the starting model) with delusion and accuracy, and the final
  params."""
  eval_key = jax.random.fold_in(key, 0x5EED)
  rows = [dict(round=0, **_floats(evaluate_delusion(task, agent, params, eval_key,
                                                    eval_episodes)))]
  log(_row_text(rows[-1]))
  opt_state, data = optimizer.init(params), None
  for r in range(1, rounds + 1):
    k_roll, k_fit = jax.random.split(jax.random.fold_in(key, r))
    new = relabel(own_rollouts(task, agent, params, k_roll, rollouts_per_round))
    data = new if (data is None or not accumulate) else jax.tree.map(
        lambda a, b: jnp.concatenate([a, b]), data, new)
    if fresh_optimizer:
      opt_state = optimizer.init(params)
    params, opt_state, metrics = fit(params, opt_state, k_fit, data, original)
    ev = _floats(evaluate_delusion(task, agent, params, eval_key, eval_episodes))
    rows.append(dict(round=r, data_success_rate=float(jnp.mean(new.outcome == SUCCESS)),
                     final_loss=float(metrics["loss"][-1]), **ev))
    log(_row_text(rows[-1]))
  return rows, params


def _floats(d):
  return {k: float(v) for k, v in d.items()}


def _row_text(row):
  return (f"round {row['round']}: delusion {row['delusion']:.4f} "
          f"(uncertain steps {row['delusion_uncertain']:.4f}; App. C "
          f"{row['delusion_app_c']:.4f})  accuracy {row['accuracy']:.4f}")
