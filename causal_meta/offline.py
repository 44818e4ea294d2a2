"""A tabular task fitted to logged demonstrations alone ([O] §4.2).

Only a log of an expert's demonstrations exists; θ was never recorded. [O] §4.2 shows that
counterfactual teaching then needs an assumption about the confounder. The assumption made
here: the latent is discrete with K̂ values, and the expert and the world are fixed tables of
(θ, public task state). Under it the demonstrations determine a latent-variable model

    P(τ) = Σ_θ̂ Q̂(θ̂) Π_t Q̂(a_t | θ̂, s_t) Q̂(o_t | θ̂, s_t, a_t)     (steps that happened),

fitted here by EM on that exact marginal likelihood (θ̂ is enumerable, so the E-step is
exact). The public state s_t and its transition f(s, a, o) are known: they come from the true
task (`initial_state`, `next_state`, `done`); what is fitted is the prior, the expert and the
observation model. The result is a `TabularTask`, so the braided engine (`rollout.braid`), the
exact oracle and the metrics apply to it unchanged: it can play both the expert and the world.

What the log cannot tell: a table row (θ̂, s, a) that demonstrations under θ̂ never reach (a
deterministic expert never pulls arm a under θ̂, a state the expert never visits) has no data;
it is set by the Dirichlet pseudo-count alone (uniform). The fitted model's interventional
oracle on histories that leave the demonstrations' support is then a guess, not an estimate.
On the bandit every arm is pulled under every θ, so every row is identified.

Estimator (per restart, vmapped; the restart with the best final log-likelihood is kept):
  E-step  r(θ̂ | τ) ∝ Q̂(θ̂) Π_t Q̂(a_t | θ̂, s_t) Q̂(o_t | θ̂, s_t, a_t);
  M-step  Q̂(θ̂) ∝ Σ_τ w_τ r(θ̂|τ) + α,   Q̂(a | θ̂, s) ∝ N(θ̂, s, a) + α,
          Q̂(o | θ̂, s, a) ∝ N(θ̂, s, a, o) + α,
with N the expected counts Σ_τ w_τ r(θ̂|τ) #{t: (s_t, a_t, o_t) = (s, a, o)} and α the
pseudo-count: the MAP estimate under a Dirichlet(1 + α) prior on every row, which EM increases
monotonically (`info["objective"]`). With α = 0 it is maximum likelihood, and EM increases the
log-likelihood itself; a row without counts is then set uniform (any value maximises).

Episodes enter as counts of (s, a, o) per episode, deduplicated with weights, so a log of
10^5 bandit episodes is a [≤10^5, S·A·O] matrix. `exact_episodes` gives the infinite-log
limit of a short-horizon task: every episode, weighted by its true probability.

A task written in JAX (padlock) is fitted through its tables over its reachable public states
(`tasks.enumerated.as_tabular`); `offline_neural.fit_neural` is the second model class, a
θ-conditioned network for states a table does not suit (`fit(..., model_class=)` picks one).
`heldout_log_likelihood` chooses K̂ from the log alone; `save_log` / `load_log` keep logs as
.npz (`python -m launch.teach_from_log` reads one).

Teaching from the log (`teach_from_log`): counterfactual teaching in braided rollouts of the
fitted model, which plays both the expert and the world, then deployment and scoring in the
true task; `behaviour_cloning` is the baseline, the same agent fitted to the logged
trajectories themselves (its limit is the conditional oracle). docs/offline.md has the
numbers (`python -m launch.reproduce offline --size=...`).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import config as config_lib
from causal_meta import evaluate, oracle, parallel, rollout, train
from causal_meta.evaluate import kl
from causal_meta.tasks.base import Task
from causal_meta.tasks.enumerated import as_tabular
from causal_meta.tasks.tabular import TabularTask, make_tabular

Array = jax.Array

# Probabilities are clamped here before the log: a zero-count cell (α = 0) would otherwise
# make 0 · log 0 = nan in the count-weighted sums.
_TINY = 1e-30
# `exact_episodes` enumerates (A·O)^T episodes; past this it would not fit in memory.
MAX_ENUMERATED = 2_000_000


class Episodes(NamedTuple):
  """Demonstrations as plain arrays: N episodes of T steps, each with a weight.

  actions: int32 [N, T]; observations: int32 [N, T]; mask: bool [N, T] (the step happened);
  weights: float32 [N], how many times each episode was logged (for `exact_episodes`, its
  expected number; they need not be integers).
  """
  actions: Any
  observations: Any
  mask: Any
  weights: Any


class Tables(NamedTuple):
  """Fitted probabilities: prior [K], expert [K, S, A], observation [K, S, A, O] (a leading
  restart axis [R] where vmapped)."""
  prior: Array
  expert: Array
  observation: Array


# ------------------------------------------------------------------------------------------------
# Data: episodes -> deduplicated (s, a, o) counts.

def _fail(field: str, what: str) -> ValueError:
  return ValueError(f"offline.fit_tabular: {field} {what}")


def from_log(task: Task, log: rollout.Trajectory) -> Episodes:
  """The demonstrations of a `Trajectory` (each episode weight 1). ValueError if any action
  was the agent's (`log.intervened`): the log must hold the expert's actions only."""
  if not isinstance(log, rollout.Trajectory):
    raise _fail("log", f"must be a rollout.Trajectory or offline.Episodes, "
                       f"got {type(log).__name__}")
  if np.any(np.asarray(log.intervened)):
    raise _fail("log.intervened", "must be all False (demonstrations: every action the "
                                  "expert's); the log holds agent-authored actions")
  actions = np.asarray(log.actions)
  return Episodes(actions, np.asarray(log.observations), np.asarray(log.mask),
                  np.ones(actions.shape[:1], np.float32))


def _check_episodes(task: Task, episodes: Episodes) -> Episodes:
  actions = np.asarray(episodes.actions)
  observations = np.asarray(episodes.observations)
  mask = np.asarray(episodes.mask)
  weights = np.asarray(episodes.weights)
  T = task.horizon
  if actions.ndim != 2 or actions.shape[1] != T or actions.shape[0] < 1:
    raise _fail("log.actions", f"must have shape [B >= 1, T={T}] (the task's horizon), "
                               f"got {actions.shape}")
  for name, arr in (("log.observations", observations), ("log.mask", mask)):
    if arr.shape != actions.shape:
      raise _fail(name, f"must have the actions' shape {actions.shape}, got {arr.shape}")
  if weights.shape != actions.shape[:1] or not np.all(np.isfinite(weights)) or np.any(
      weights < 0) or not weights.sum() > 0:
    raise _fail("log.weights", f"must be {actions.shape[0]} finite numbers >= 0, not all 0")
  for name, arr, size in (("log.actions", actions, task.num_actions),
                          ("log.observations", observations, task.num_observations)):
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= size:
      raise _fail(name, f"must hold integers in [0, {size - 1}] (the task's sizes)")
  return Episodes(actions.astype(np.int32), observations.astype(np.int32), mask.astype(bool),
                  weights.astype(np.float32))


@functools.partial(jax.jit, static_argnums=0)
def _states(task: Task, actions: Array, observations: Array):
  """The public state before each step and whether the task was running: ([N, T], [N, T])."""
  def one(a, o):
    def step(s, ao):
      active = jnp.logical_not(task.done(s))
      return jnp.where(active, task.next_state(s, *ao), s), (s, active)
    _, out = jax.lax.scan(step, task.initial_state(), (a, o))
    return out
  return jax.vmap(one)(actions, observations)


def check_log(task: Task, log: rollout.Trajectory | Episodes) -> Episodes:
  """The demonstrations of `log` (a `Trajectory` of expert-authored actions, or `Episodes`),
  validated against the task's sizes and horizon. ValueError, one line naming the field."""
  return _check_episodes(task, log if isinstance(log, Episodes) else from_log(task, log))


def check_static(task: Task) -> None:
  """ValueError for a task whose latent changes during the episode: the fits assume one θ
  per episode (and for anything that is not a Task)."""
  if not isinstance(task, Task):
    raise _fail("task_like", f"must be a causal_meta Task, got {type(task).__name__}")
  if task.changes_latent:
    raise _fail("task_like", f"{task.name!r} has a latent that changes during the episode; "
                             f"the offline fits assume one θ per episode")


def logged_states(task: Task, episodes: Episodes) -> tuple[np.ndarray, np.ndarray]:
  """The public state before each step and whether the task was running: (int32
  [N, T, *state_shape], bool [N, T]). ValueError if `episodes.mask` is not the task's own
  (`not done(s_t)`): a log of another task."""
  states, active = map(np.asarray, _states(task, jnp.asarray(episodes.actions),
                                           jnp.asarray(episodes.observations)))
  if not np.array_equal(active, np.asarray(episodes.mask, bool)):
    raise _fail("log.mask", "does not match the task's done() along the logged states "
                            "(a log of another task?)")
  return states, active


def episode_counts(task: TabularTask, episodes: Episodes) -> tuple[np.ndarray, np.ndarray]:
  """Per distinct episode, #{t: (s_t, a_t, o_t) = (s, a, o)} over the steps that happened,
  flattened: (counts float32 [M, S·A·O], weights float32 [M]), M ≤ N distinct rows.

  ValueError if `episodes.mask` is not the task's own (`not done(s_t)`): a log of another task.
  """
  episodes = _check_episodes(task, episodes)
  states, _ = logged_states(task, episodes)
  S, A, O = task.num_states, task.num_actions, task.num_observations
  flat = (states * A + episodes.actions) * O + episodes.observations  # [N, T]
  n = flat.shape[0]
  table = np.zeros((n, S * A * O), np.int32)
  np.add.at(table, (np.repeat(np.arange(n), flat.shape[1]), flat.reshape(-1)),
            episodes.mask.reshape(-1).astype(np.int32))
  # The likelihood depends on an episode only through its counts: one row per distinct one.
  rows, inverse = np.unique(table, axis=0, return_inverse=True)
  weights = np.bincount(inverse.reshape(-1), weights=episodes.weights, minlength=len(rows))
  return rows.astype(np.float32), weights.astype(np.float32)


def exact_episodes(task: Task, num_episodes: float = 1.0) -> Episodes:
  """The infinite-log limit: every episode of the task's demonstrations, weighted by
  `num_episodes` × its probability Σ_θ Q(θ) Π_t Q(a_t|θ,s_t) Q(o_t|θ,s_t,a_t).

  Steps after done carry no probability: each of their (A·O) values gets an equal share, so
  the weights sum to `num_episodes` and the expected counts are exact. Enumerates (A·O)^T
  episodes: ValueError past `MAX_ENUMERATED` (shorten the horizon).
  """
  A, O, T = task.num_actions, task.num_observations, task.horizon
  total = (A * O) ** T
  if total > MAX_ENUMERATED:
    raise ValueError(f"offline.exact_episodes: (A·O)^T = ({A}·{O})^{T} = {total} episodes "
                     f"exceed {MAX_ENUMERATED}; use a task with a shorter horizon")
  pairs = np.stack(np.unravel_index(np.arange(total), (A * O,) * T), -1).astype(np.int32)
  actions, observations = pairs // O, pairs % O
  states, active = _states(task, jnp.asarray(actions), jnp.asarray(observations))
  thetas, log_prior = task.latents()

  def log_p(theta, s, a, o):  # one step, one θ
    return (jax.nn.log_softmax(task.expert_logits(theta, s))[a]
            + jax.nn.log_softmax(task.observation_logits(theta, s, a))[o])

  per_step = jax.vmap(jax.vmap(jax.vmap(log_p, (None, 0, 0, 0)), (None, 0, 0, 0)),
                      (0, None, None, None))(thetas, states, jnp.asarray(actions),
                                             jnp.asarray(observations))  # [L, N, T]
  per_step = jnp.where(active, per_step, -math.log(A * O))
  log_w = jax.nn.logsumexp(log_prior[:, None] + per_step.sum(-1), axis=0)
  weights = num_episodes * np.asarray(jnp.exp(log_w), np.float64)
  return Episodes(actions, observations, np.asarray(active), weights.astype(np.float32))


# ------------------------------------------------------------------------------------------------
# EM.

def _log(p):
  return jnp.log(jnp.maximum(p, _TINY))


def _normalise(x):
  """Rows of x (last axis) as distributions; an all-zero row becomes uniform."""
  total = x.sum(-1, keepdims=True)
  return jnp.where(total > 0, x / jnp.where(total > 0, total, 1.0), 1.0 / x.shape[-1])


def _e_step(tables: Tables, counts: Array, weights: Array, pseudo_count: Array):
  """(expected counts [K, F], expected latent counts [K], log-likelihood, objective), the last
  two per episode (weighted means, nats/episode)."""
  K = tables.prior.shape[0]
  log_joint = (_log(tables.expert)[..., None] + _log(tables.observation)).reshape(K, -1)
  log_post = _log(tables.prior) + jnp.dot(counts, log_joint.T,
                                          precision=jax.lax.Precision.HIGHEST)  # [M, K]
  log_lik = jax.nn.logsumexp(log_post, axis=-1)  # [M]
  resp = weights[:, None] * jnp.exp(log_post - log_lik[:, None])  # [M, K]
  total = weights.sum()
  log_lik = jnp.dot(weights, log_lik, precision=jax.lax.Precision.HIGHEST) / total
  penalty = pseudo_count * (_log(tables.prior).sum() + _log(tables.expert).sum()
                            + _log(tables.observation).sum())
  stats = jnp.dot(resp.T, counts, precision=jax.lax.Precision.HIGHEST)
  return stats, resp.sum(0), log_lik, log_lik + penalty / total


def _m_step(stats: Array, latent_counts: Array, shape: tuple[int, ...],
            pseudo_count: Array) -> Tables:
  joint = stats.reshape(shape)  # [K, S, A, O]
  return Tables(_normalise(latent_counts + pseudo_count),
                _normalise(joint.sum(-1) + pseudo_count),
                _normalise(joint + pseudo_count))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def random_tables(key: Array, restarts: int, num_latents: int, num_states: int,
                  num_actions: int, num_observations: int) -> Tables:
  """Initial parameters of `restarts` EM runs (a leading axis [R]): every row drawn from a
  flat Dirichlet, as normalised exponentials (one draw per table: fast to compile)."""
  R, K, S, A, O = restarts, num_latents, num_states, num_actions, num_observations
  draws = jax.random.exponential(key, (R, K * (1 + S * A * (1 + O))))
  prior, expert, observation = jnp.split(draws, [K, K + K * S * A], axis=1)
  return Tables(_normalise(prior), _normalise(expert.reshape(R, K, S, A)),
                _normalise(observation.reshape(R, K, S, A, O)))


@functools.partial(jax.jit, static_argnames=("iterations",))
def em(init: Tables, counts: Array, weights: Array, pseudo_count: float | Array,
       iterations: int):
  """`iterations` EM steps from each restart's initial tables.

  Args:
    init: Tables with a leading restart axis: prior [R, K], expert [R, K, S, A],
      observation [R, K, S, A, O].
    counts: float [M, S·A·O] per-episode (s, a, o) counts (`episode_counts`); weights: float [M].
    pseudo_count: α >= 0.
  Returns:
    (final Tables [R, ...], log_likelihood [R, iterations + 1], objective [R, iterations + 1]):
    the traces in nats/episode, entry i at the tables after i steps.
  """
  pseudo_count = jnp.asarray(pseudo_count, jnp.float32)

  def one(tables):
    shape = tables.observation.shape

    def body(tables, _):
      stats, latent, log_lik, objective = _e_step(tables, counts, weights, pseudo_count)
      return _m_step(stats, latent, shape, pseudo_count), (log_lik, objective)

    final, (log_lik, objective) = jax.lax.scan(body, tables, None, length=iterations)
    _, _, last_lik, last_obj = _e_step(final, counts, weights, pseudo_count)
    return (final, jnp.append(log_lik, last_lik), jnp.append(objective, last_obj))

  return jax.vmap(one)(init)


def fit_tabular(task_like: Task, log: rollout.Trajectory | Episodes, num_latents: int,
                key: Array, restarts: int = 8, iterations: int = 200,
                pseudo_count: float = 0.01) -> tuple[TabularTask, dict[str, Any]]:
  """Fits prior, expert and observation tables with `num_latents` latents to demonstrations.

  Validation, the states along the log and the count rows run on the host; the EM itself is
  one jitted call (`em`), vmapped over the restarts. The result is a Python `TabularTask`
  (static tables), so this function is not itself traced.

  Args:
    task_like: the true task; only its public parts are read (states, transitions, done,
      rewards, horizon, sizes), never its prior, expert or observation tables. A task that is
      not a `TabularTask` is enumerated first (`tasks.enumerated.as_tabular`): the fitted
      model's states are then its reachable states, in that function's order.
    log: the demonstrations: a `Trajectory` [B, T] whose actions are all the expert's
      (`braid(..., expert_prob=1.0)`; `theta` and `expert_actions` are not read), or `Episodes`
      (e.g. `exact_episodes`, the infinite-log limit).
    num_latents: K̂ >= 1, the assumed number of latent values.
    key: draws each restart's initial tables.
    restarts: R >= 1 EM runs in parallel (vmapped); the best final log-likelihood is kept.
    iterations: EM steps per restart.
    pseudo_count: α >= 0 added to every expected count (module docstring): keeps the rows the
      log never reaches defined (uniform); 0 is maximum likelihood.
  Returns:
    (the fitted TabularTask named `<task>_fitted` with K̂ latents and the true task's states,
    transitions, terminal states, rewards and horizon; info) with info: log_likelihood
    [iterations + 1] (nats/episode, the best restart), objective [iterations + 1] (what EM
    increases: log-likelihood + α Σ log tables, per episode), log_likelihood_all and
    objective_all [R, iterations + 1], best_restart, num_episodes (Σ weights), num_distinct
    (distinct count rows).
  Raises:
    ValueError, one line naming the field: a task with too many states, a log with an agent's
    action, num_latents < 1, restarts < 1, iterations < 0, pseudo_count < 0, or a log whose
    shapes, values or mask do not match the task.
  """
  check_static(task_like)
  for name, value, low in (("num_latents", num_latents, 1), ("restarts", restarts, 1),
                           ("iterations", iterations, 0)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
      raise _fail(name, f"must be an integer >= {low}, got {value!r}")
  try:
    alpha = float(pseudo_count)
  except (TypeError, ValueError):
    alpha = float("nan")
  if not alpha >= 0 or not math.isfinite(alpha):
    raise _fail("pseudo_count", f"must be a finite number >= 0, got {pseudo_count!r}")
  episodes = check_log(task_like, log)
  # A task written in JAX is read through its tables over its reachable public states.
  task = task_like if isinstance(task_like, TabularTask) else as_tabular(task_like)
  rows, weights = episode_counts(task, episodes)
  init = random_tables(key, int(restarts), int(num_latents), task.num_states,
                       task.num_actions, task.num_observations)
  final, log_lik, objective = em(init, jnp.asarray(rows), jnp.asarray(weights), alpha,
                                 int(iterations))
  log_lik, objective = np.asarray(log_lik), np.asarray(objective)
  best = int(np.nanargmax(log_lik[:, -1]))
  tables = [np.asarray(t[best], np.float64) for t in final]
  tables = [t / t.sum(-1, keepdims=True) for t in tables]  # float32 rounding
  fitted = make_tabular(
      *tables, horizon=task.horizon,
      transitions=None if task.transitions is None else np.asarray(task.transitions),
      terminal=None if task.terminal is None else np.asarray(task.terminal, bool),
      rewards=task.rewards, initial=task.initial, name=f"{task_like.name}_fitted")
  info = dict(log_likelihood=log_lik[best], objective=objective[best],
              log_likelihood_all=log_lik, objective_all=objective, best_restart=best,
              num_episodes=float(weights.sum()), num_distinct=int(rows.shape[0]))
  return fitted, info


# ------------------------------------------------------------------------------------------------
# How well the fitted model teaches: its exact interventional oracle against the true one.

@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def oracle_kl(true_task: Task, fitted: Task, key: Array,
              episodes: int = 1000) -> dict[str, Array]:
  """KL(true interventional oracle ‖ fitted one) in nats/step, on the histories of the true
  interventional oracle deployed in the true task (Thompson sampling: every action the
  agent's, the histories a well-taught agent meets). Both oracles read every action as do(a).

  Returns kl_action (next action) and kl_observation (next observation given the action
  taken), means over the steps that happened. Both tasks are static: each fitted model
  compiles anew (seconds on a CPU).
  """
  traj, _ = oracle.run_policy(true_task, key, episodes)
  true = oracle.predictives(true_task, traj.actions, traj.observations, True)
  fit = oracle.predictives(fitted, traj.actions, traj.observations, True)
  return dict(
      kl_action=rollout.mean_over_mask(
          kl(true.action_probs, jnp.log(fit.action_probs)), traj.mask),
      kl_observation=rollout.mean_over_mask(
          kl(true.observation_probs, jnp.log(fit.observation_probs)), traj.mask))


def oracle_gap(task: Task, log_sizes=(100, 1000, 10000), seeds=(0, 1, 2),
               num_latents: int | None = None, eval_episodes: int = 1000, restarts: int = 8,
               iterations: int = 200, pseudo_count: float = 0.01,
               print_fn=print) -> dict[int, dict[str, np.ndarray]]:
  """The fitted model's interventional-oracle gap (`oracle_kl`) against the log size.

  Per log size N and seed: N demonstrations (`braid(..., expert_prob=1.0)`), `fit_tabular`
  with K̂ = `num_latents` (default: the true number), then `oracle_kl` on `eval_episodes`
  rollouts. Prints one line per N (mean ± std over seeds) with `print_fn` and returns
  {N: {"kl_action": [seeds], "kl_observation": [seeds]}}.
  """
  num_latents = task.num_latents if num_latents is None else num_latents
  out = {}
  for n in log_sizes:
    per_seed = {"kl_action": [], "kl_observation": []}
    for seed in seeds:
      k_log, k_fit, k_eval = jax.random.split(jax.random.PRNGKey(seed), 3)
      log = rollout.braid(task, rollout.uniform_policy(task), k_log, int(n), expert_prob=1.0)
      fitted, _ = fit_tabular(task, log, num_latents, k_fit, restarts, iterations,
                              pseudo_count)
      for name, value in oracle_kl(task, fitted, k_eval, eval_episodes).items():
        per_seed[name].append(float(value))
    out[int(n)] = {k: np.asarray(v) for k, v in per_seed.items()}
    if print_fn is not None:
      a, o = out[int(n)]["kl_action"], out[int(n)]["kl_observation"]
      print_fn(f"{task.name}: log of {n} episodes, {len(seeds)} seeds: KL(true ‖ fitted "
               f"interventional oracle) action {a.mean():.5f} ± {a.std():.5f}, observation "
               f"{o.mean():.5f} ± {o.std():.5f} nats/step")
  return out


# ------------------------------------------------------------------------------------------------
# Choosing K̂: the held-out likelihood of demonstrations.

@functools.partial(jax.jit, static_argnums=0)
def _log_likelihood(model: Task, actions: Array, observations: Array, mask: Array) -> Array:
  pred = oracle.predictives(model, actions, observations, False)  # every action the expert's
  take = lambda p, x: jnp.take_along_axis(p, x[..., None], -1)[..., 0]
  per_step = (jnp.log(take(pred.action_probs, actions))
              + jnp.log(take(pred.observation_probs, observations)))
  return jnp.sum(jnp.where(mask, per_step, 0.0), -1)


def log_likelihood(model: Task, log: rollout.Trajectory | Episodes) -> np.ndarray:
  """log P(τ) of each demonstration under `model` (any Task: the product of its conditional
  oracle's predictives, Σ over θ done exactly): float64 [N], nats/episode."""
  episodes = check_log(model, log)
  return np.asarray(_log_likelihood(model, jnp.asarray(episodes.actions),
                                    jnp.asarray(episodes.observations),
                                    jnp.asarray(episodes.mask)), np.float64)


def heldout_log_likelihood(task_like: Task, log: rollout.Trajectory, candidates, key: Array,
                           holdout: float = 0.2, model_class: str = "tabular",
                           **fit_options) -> dict[int, float]:
  """How to tell K̂ from the log alone: for each K̂ in `candidates`, fit on the first
  (1 − holdout) of the log and return the mean log-likelihood of the held-out rest,
  {K̂: nats/episode}. It rises until K̂ reaches what the data support, then stays flat (a
  larger K̂ can represent a smaller one) or falls a little (overfitting)."""
  episodes = check_log(task_like, log)
  n = episodes.actions.shape[0]
  if not isinstance(holdout, (float, int)) or not 0.0 < holdout < 1.0 or n < 2:
    raise ValueError(f"offline.heldout_log_likelihood: holdout must be in (0, 1) and the log "
                     f"hold >= 2 episodes; got holdout={holdout!r}, {n} episodes")
  n_fit = min(max(int(round(n * (1.0 - holdout))), 1), n - 1)
  part = lambda rows: Episodes(*(np.asarray(x)[rows] for x in episodes))
  train_part, test_part = part(slice(0, n_fit)), part(slice(n_fit, None))
  out = {}
  for k in candidates:
    model, _ = fit(task_like, train_part, int(k), key, model_class, **fit_options)
    ll = log_likelihood(model, test_part)
    out[int(k)] = float(np.dot(test_part.weights, ll) / np.sum(test_part.weights))
  return out


# ------------------------------------------------------------------------------------------------
# Logs on disk.

LOG_FIELDS = ("actions", "observations", "mask")


def save_log(path: str, log: rollout.Trajectory | Episodes) -> str:
  """Writes a log of demonstrations as .npz (actions, observations int32 [N, T]; mask bool
  [N, T]; weights float32 [N] if given as `Episodes`); returns the path (local or gs://)."""
  from etils import epath
  arrays = {k: np.asarray(getattr(log, k)) for k in LOG_FIELDS}
  if isinstance(log, rollout.Trajectory) and np.any(np.asarray(log.intervened)):
    raise _fail("log.intervened", "must be all False (demonstrations: every action the "
                                  "expert's); the log holds agent-authored actions")
  if isinstance(log, Episodes):
    arrays["weights"] = np.asarray(log.weights, np.float32)
  with epath.Path(path).open("wb") as f:
    np.savez(f, **arrays)
  return str(path)


def load_log(path: str, task: Task) -> Episodes:
  """A log written by `save_log` (or any .npz with `actions` and `observations` int [N, T],
  optional `mask` bool [N, T] (default: the task's own), `weights` [N] (default 1), and
  `intervened` bool [N, T] which must be all False), validated against `task`.
  ValueError, one line naming the file or the field."""
  from etils import epath
  p = epath.Path(path)
  if not p.exists():
    raise ValueError(f"log {path}: no such file")
  try:
    with p.open("rb") as f:
      data = dict(np.load(f, allow_pickle=False))
  except Exception as e:  # noqa: BLE001 - any unreadable file is the same one-line error
    raise ValueError(f"log {path}: not a readable .npz file ({type(e).__name__})") from None
  missing = [k for k in ("actions", "observations") if k not in data]
  if missing:
    raise ValueError(f"log {path}: missing array {missing[0]!r} (has: "
                     f"{', '.join(sorted(data)) or 'nothing'})")
  if "intervened" in data and np.any(data["intervened"]):
    raise _fail("log.intervened", "must be all False (demonstrations: every action the "
                                  "expert's); the log holds agent-authored actions")
  actions, observations = np.asarray(data["actions"]), np.asarray(data["observations"])
  weights = data.get("weights", np.ones(actions.shape[:1], np.float32))
  if "mask" not in data:  # the task's own: validate the rest first, then run it
    checked = check_log(task, Episodes(actions, observations, np.ones(actions.shape, bool),
                                       weights))
    data["mask"] = np.asarray(_states(task, jnp.asarray(checked.actions),
                                      jnp.asarray(checked.observations))[1])
  return check_log(task, Episodes(actions, observations, data["mask"], weights))


# ------------------------------------------------------------------------------------------------
# Teaching from the log: counterfactual teaching in the fitted model, behaviour cloning on the
# log itself, both scored on the true task.

# The scalars of `evaluate.agent_metrics` that the teaching functions report.
AGENT_METRICS = ("kl_action_interventional", "kl_action_conditional",
                 "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
                 "best_action_rate")


def evaluate_on_true_task(true_task, agent, params, seed: int, episodes: int,
                          mesh=None) -> dict[str, float]:
  """`evaluate.agent_metrics` of `params` deployed in `true_task`, with the evaluation key of
  a run of seed `seed` (`train.evaluation_key`) and `mesh` as `train.train_and_evaluate` uses
  them, so an online run's final numbers are reproduced exactly: the `AGENT_METRICS` floats."""
  mesh = parallel.data_mesh() if mesh is None else mesh
  out = _agent_metrics(true_task, agent, episodes, mesh)(params, train.evaluation_key(seed))
  return {k: float(out[k]) for k in AGENT_METRICS}


@functools.lru_cache(maxsize=None)
def _agent_metrics(true_task, agent, episodes: int, mesh):
  """One jitted `evaluate.agent_metrics` per (task, agent, episodes, mesh), all hashable: the
  methods and seeds of a sweep share its compilation instead of each compiling it again."""
  return jax.jit(functools.partial(evaluate.agent_metrics, true_task, agent, episodes=episodes,
                                   mesh=mesh))


def _check_model(true_task, model) -> None:
  if not isinstance(model, Task):
    raise ValueError(f"offline.teach_from_log: model must be a causal_meta Task, "
                     f"got {type(model).__name__}")
  have = (model.num_actions, model.num_observations, model.horizon)
  want = (true_task.num_actions, true_task.num_observations, true_task.horizon)
  if have != want:
    raise ValueError(f"offline.teach_from_log: model has (actions, observations, horizon) "
                     f"{have}; the true task has {want}")


MODEL_CLASSES = ("tabular", "neural")


def fit(task_like: Task, log, num_latents: int, key: Array, model_class: str = "tabular",
        **options) -> tuple[Task, dict[str, Any]]:
  """`fit_tabular` (EM) or `offline_neural.fit_neural` (a θ-conditioned network) by name,
  with that function's keyword `options`."""
  if model_class == "tabular":
    return fit_tabular(task_like, log, num_latents, key, **options)
  if model_class == "neural":
    from causal_meta import offline_neural  # it imports this module
    return offline_neural.fit_neural(task_like, log, num_latents, key, **options)
  raise ValueError(f"offline: model_class must be one of {', '.join(MODEL_CLASSES)}, "
                   f"got {model_class!r}")


def teach_from_log(config, true_task: Task, log: rollout.Trajectory | Episodes | None,
                   num_latents: int | None, key: Array, *, model: Task | None = None,
                   model_class: str = "tabular", oracle_episodes: int = 1000,
                   verbose: bool = False, **fit_options) -> dict[str, Any]:
  """An agent taught from demonstrations alone ([O] §4.2), scored on the true task.

  1. The model: `fit(true_task, log, num_latents, model_class=..., **fit_options)`, or
     `model` as given (then `log` and `num_latents` are not read; with `model=true_task` this
     is online teaching).
  2. `train.train_and_evaluate(config, task=model)`: the agent trained as `config` says
     (`config.teaching = "counterfactual"`: braided rollouts of the model, which plays both
     the expert and the world; the training seed is `config.seed`).
  3. The trained parameters deployed in `true_task` (`evaluate_on_true_task`, the evaluation
     key and `config.eval_episodes` of `train_and_evaluate`): with `model=true_task` the
     numbers are exactly those of `train_and_evaluate(config)` on the true task.

  Args:
    config: a `config.default()`-style ConfigDict (validated by `train_and_evaluate`).
    true_task: the task the agent is deployed in; its public parts define the fitted model.
    log: the demonstrations, or None with `model`.
    num_latents: K̂, or None with `model`.
    key: split into the fit's key and `oracle_kl`'s.
    model: a Task with the true task's sizes to teach in instead of fitting one.
    model_class: "tabular" (`fit_tabular`, EM) or "neural" (`offline_neural.fit_neural`).
    oracle_episodes: episodes of `oracle_kl` (the model's exact interventional-oracle gap).
    fit_options: keyword arguments of the fit (restarts, iterations, pseudo_count; steps, ...).
  Returns:
    dict: `agent` ({`AGENT_METRICS`: float}, on the true task), `oracle_kl` ({kl_action,
    kl_observation}: float nats/step), `in_model` (the same metrics in the model, from
    train_and_evaluate), `fit` (the fit's info, or None), `model`, `params`, `seconds`.
  """
  if not isinstance(true_task, Task):
    raise ValueError(f"offline.teach_from_log: true_task must be a causal_meta Task, "
                     f"got {type(true_task).__name__}")
  start = time.time()
  k_fit, k_oracle = jax.random.split(key)
  info = None
  if model is None:
    if log is None or num_latents is None:
      raise ValueError("offline.teach_from_log: log and num_latents are required unless a "
                       "model is given")
    model, info = fit(true_task, log, num_latents, k_fit, model_class, **fit_options)
  _check_model(true_task, model)
  gap = {k: float(v) for k, v in oracle_kl(true_task, model, k_oracle,
                                           int(oracle_episodes)).items()}
  result = train.train_and_evaluate(config, None, verbose=verbose, progress=False, task=model)
  _, agent = config_lib.validate(config, task=model)
  scores = evaluate_on_true_task(true_task, agent, result["params"], config.seed,
                                 config.eval_episodes)
  return dict(agent=scores, oracle_kl=gap,
              in_model={k: result[k] for k in AGENT_METRICS}, fit=info, model=model,
              params=result["params"], seconds=time.time() - start)


def behaviour_cloning(config, true_task: Task, log: rollout.Trajectory, key: Array,
                      holdout: float = 0.2) -> dict[str, Any]:
  """Behaviour cloning on the log itself, scored on the true task: the baseline of
  `teach_from_log`.

  The agent of `config` with `teaching = "demonstration"` (author-blind: deployed, it reads
  its own actions as the expert's, [O] Remark 14) fits the teacher-forced loss
  (`train.make_loss`: −log P(a_t) − log P(o_t), the logged action as the target) on minibatches
  of `config.batch_size` episodes drawn with replacement from the first (1 − holdout) of the
  log, with `train.make_optimizer(config)`, up to `config.num_updates` steps
  (`train.make_data_fit`, `config.updates_per_call` per compiled call). After each call the
  loss on the held-out episodes is measured; the parameters with the lowest one are kept
  (early stopping: a small log is otherwise memorised). Its limit is the conditional oracle.
  θ is never read.

  Args:
    config: as for `teach_from_log` (`teaching` is overridden; the seed initialises the agent).
    log: demonstrations, a `Trajectory` [N, T] with every action the expert's, N >= 2.
    key: draws the minibatches.
    holdout: the fraction of the log held out for early stopping, in (0, 1); at least one
      episode on each side.
  Returns:
    dict: `agent` ({`AGENT_METRICS`: float} on the true task, evaluated as
    `evaluate_on_true_task`), `best_update` (the updates of the kept parameters),
    `heldout_loss` (theirs, nats/step summed over action and observation), `params`,
    `seconds`.
  """
  start = time.time()
  episodes = _check_episodes(true_task, from_log(true_task, log))
  n = episodes.actions.shape[0]
  if not isinstance(holdout, (float, int)) or not 0.0 < holdout < 1.0 or n < 2:
    raise ValueError(f"offline.behaviour_cloning: holdout must be in (0, 1) and the log hold "
                     f">= 2 episodes; got holdout={holdout!r}, {n} episodes")
  n_fit = min(max(int(round(n * (1.0 - holdout))), 1), n - 1)
  config = config.copy_and_resolve_references()
  config.teaching, config.loss.expert_target = "demonstration", "action"
  _, agent = config_lib.validate(config, task=true_task)
  # Targets are the logged actions; θ was never recorded.
  data = log._replace(theta=jnp.zeros_like(log.theta), latents=None,
                      expert_actions=log.actions, intervened=jnp.zeros_like(log.intervened),
                      expert_log_probs=None)
  train_data = jax.tree.map(lambda x: x[:n_fit], data)
  heldout = jax.tree.map(lambda x: x[n_fit:], data)
  batch, per_call = config.batch_size, config.updates_per_call

  def sample(k, data, _):
    rows = jax.random.randint(k, (batch,), 0, n_fit)
    return jax.tree.map(lambda x: x[rows], data)

  loss_fn = train.make_loss(agent, config)
  optimizer = train.make_optimizer(config)
  state = train.init_state(agent, optimizer, config.seed)
  fit = train.make_data_fit(loss_fn, sample, optimizer, per_call)
  heldout_loss = jax.jit(lambda p: loss_fn(p, heldout)[0])
  params, opt_state = state.params, state.opt_state
  best = (float(heldout_loss(params)), 0, params)
  for done in range(per_call, config.num_updates + 1, per_call):
    params, opt_state, _ = fit(params, opt_state, jax.random.fold_in(key, done), train_data,
                               None)
    loss = float(heldout_loss(params))
    if loss < best[0]:
      best = (loss, done, params)
  scores = evaluate_on_true_task(true_task, agent, best[2], config.seed, config.eval_episodes)
  return dict(agent=scores, best_update=best[1], heldout_loss=best[0], params=best[2],
              seconds=time.time() - start)
