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


def success_conditioned_reference(task: Task, policy: rollout.Policy, traj: rollout.Trajectory,
                                  key: Array, samples: int, q: Array | None = None) -> Array:
  """The like-with-like reference of a goal-conditioned model fine-tuned on `policy`'s
  rollouts (the previous model asked for success) relabelled with their outcome: the data's own
  P(the lock opens at step t | the steps before t, a_t, the episode succeeds), at every step of
  the padlock trajectories `traj` [B, T] -> float32 [B, T].

  The previous model's actions depend on the history only, so θ's posterior is the
  interventional oracle's and P(open at t | …) is its q_t. Opening is success, so by Bayes the
  reference is q_t / (q_t + (1 − q_t) s_t), s_t the probability that `policy` opens the lock
  in steps t+1 … T after a closed answer at t: estimated from `samples` continuations, each
  with θ drawn from its posterior given that answer, `policy` fed the recorded steps through t
  and then acting, the task answering. Steps before the flips (the random start's reading
  steps) get q_t = 0 and are not continued. `q` [B, T]: the oracle's q_t if already computed."""
  thetas, log_prior = task.latents()
  T, A, O = task.horizon, task.num_actions, task.num_observations
  first = task.num_switches if task.random_start else 0  # the test step: the lock may open
  if q is None:
    q = oracle.predictives(task, traj.actions, traj.observations,
                           jnp.ones_like(traj.intervened)).observation_probs[..., 1]

  def closed_posteriors(actions, observations):
    """[T, Θ] log-weights of θ given the steps before t, a_t and a closed answer at t."""
    def body(carry, step):
      (state, log_w), (a, o) = carry, step
      log_o = jax.vmap(lambda th: jax.nn.log_softmax(task.observation_logits(th, state, a)))(
          thetas)  # [Θ, O]
      return (task.next_state(state, a, o), log_w + log_o[:, o]), log_w + log_o[:, 0]
    return jax.lax.scan(body, (task.initial_state(), log_prior), (actions, observations))[1]

  def opens_later(actions, observations, intervened, t, log_w, key):
    """1.0 if `policy` opens the lock after step t in one continuation (θ ∝ exp(log_w) [Θ]),
    else 0.0."""
    k_theta, k_act, k_obs = jax.random.split(key, 3)
    theta = thetas[jax.random.categorical(k_theta, log_w)]
    g_act, g_obs = jax.random.gumbel(k_act, (T, A)), jax.random.gumbel(k_obs, (T, O))

    def step(carry, s):
      policy_carry, state = carry
      replay = s <= t
      own = jnp.argmax(policy.action_logits(policy_carry) + g_act[s]).astype(jnp.int32)
      a = jnp.where(replay, actions[s], own)
      answer = jnp.argmax(task.observation_logits(theta, state, a) + g_obs[s]).astype(jnp.int32)
      o = jnp.where(s < t, observations[s], jnp.where(s == t, 0, answer))
      policy_carry = policy.observe(policy_carry, a, jnp.where(replay, intervened[s], True), o)
      state = jnp.where(task.done(state), state, task.next_state(state, a, o))
      return (policy_carry, state), None

    (_, state), _ = jax.lax.scan(step, (policy.initial_carry(), task.initial_state()),
                                 jnp.arange(T))
    return task.done(state).astype(jnp.float32)

  def one_episode(args):
    actions, observations, intervened, key = args
    positions = jnp.arange(first, T)
    log_w = closed_posteriors(actions, observations)[first:]
    keys = jax.random.split(key, (T - first, samples))
    later = jax.vmap(lambda t, w, ks: jax.vmap(
        lambda k: opens_later(actions, observations, intervened, t, w, k))(ks))(positions, log_w,
                                                                                 keys)
    return jnp.zeros((T,)).at[first:].set(jnp.mean(later, -1))

  keys = jax.random.split(key, traj.actions.shape[0])
  s = jax.lax.map(one_episode, (traj.actions, traj.observations, traj.intervened, keys))
  return jnp.where(q > 0, q / jnp.maximum(q + (1.0 - q) * s, 1e-30), 0.0)


@functools.partial(jax.jit, static_argnums=(0, 1, 5, 6))
def like_with_like(task: Task, agent: Agent, params, previous, key: Array, episodes: int,
                   samples: int) -> dict[str, Array]:
  """The delusion of the goal-conditioned model `params`, fine-tuned on the success-
  conditioned rollouts of `previous`, against what that data say
  (`success_conditioned_reference`) instead of the interventional ideal: on `episodes` of its
  own success-conditioned rollouts, KL(reference ‖ model) of P(the lock opens), Bernoulli,
  averaged over the steps App. C's measure uses (`delusion_from_logits`). A model that fits
  its data perfectly scores 0 up to the Monte Carlo error of `samples` continuations.
  Returns delusion_like_with_like and the mean reference and model P(open) on those steps."""
  k_roll, k_ref = jax.random.split(key)
  traj = rollout.braid(task, agent.policy(params, SUCCESS), k_roll, episodes, expert_prob=0.0)
  _, obs_logits = agent.teacher_force(params, traj, jnp.full((episodes,), SUCCESS, jnp.int32))
  q = oracle.predictives(task, traj.actions, traj.observations,
                         jnp.ones_like(traj.intervened)).observation_probs[..., 1]
  ref = success_conditioned_reference(task, agent.policy(previous, SUCCESS), traj, k_ref,
                                      samples, q)
  p_model = jax.nn.softmax(obs_logits)[..., 1]
  possible = traj.mask & prior_uncertain(task, traj) & (q > 0) & (q < 1)
  bernoulli = lambda p: jnp.stack([1.0 - p, p], -1)
  kl = evaluate.kl(bernoulli(ref), jnp.log(jnp.clip(bernoulli(p_model), 1e-30, 1.0)))
  return dict(delusion_like_with_like=rollout.mean_over_mask(kl, possible),
              reference_p_open=rollout.mean_over_mask(ref, possible),
              model_p_open=rollout.mean_over_mask(p_model, possible))


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
                   like_with_like_episodes: int = 0, like_with_like_samples: int = 32,
                   log=print) -> tuple[list[dict], Any]:
  """R rounds of: roll out (success-conditioned), relabel, fine-tune with `fit`; returns a list
  of per-round dicts (round 0 = the starting model) with delusion and accuracy, and the final
  params. With `like_with_like_episodes` > 0, rounds ≥ 1 also report `like_with_like` against
  the previous round's model: the data each round is fine-tuned on when nothing else is mixed
  in (no `accumulate`, and `fit` without a mix of `original`)."""
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
    previous = params
    params, opt_state, metrics = fit(params, opt_state, k_fit, data, original)
    ev = _floats(evaluate_delusion(task, agent, params, eval_key, eval_episodes))
    if like_with_like_episodes:
      ev.update(_floats(like_with_like(task, agent, params, previous,
                                       jax.random.fold_in(eval_key, 1),
                                       like_with_like_episodes, like_with_like_samples)))
    rows.append(dict(round=r, data_success_rate=float(jnp.mean(new.outcome == SUCCESS)),
                     final_loss=float(metrics["loss"][-1]), **ev))
    log(_row_text(rows[-1]))
  return rows, params


def _floats(d):
  return {k: float(v) for k, v in d.items()}


def _row_text(row):
  like = ("" if "delusion_like_with_like" not in row else
          f"; like with like {row['delusion_like_with_like']:.4f}")
  return (f"round {row['round']}: delusion {row['delusion']:.4f} "
          f"(uncertain steps {row['delusion_uncertain']:.4f}; App. C "
          f"{row['delusion_app_c']:.4f}{like})  accuracy {row['accuracy']:.4f}")
