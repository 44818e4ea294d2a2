"""Latents that move during the episode ([O] §3, Remark 10): the engine's θ paths, the forward
filter against brute-force enumeration of latent paths, and the piecewise-stationary bandit."""

import itertools
import subprocess
import sys
import pathlib

import jax
import numpy as np
import pytest

from causal_meta import config as config_lib
from causal_meta import oracle, rollout, tasks

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- the forward filter against enumeration of θ_{1:t} ------------------------------------------

def random_tables(rng, L, S, A, O):
  """Strictly positive tables (every history possible), a state machine whose state S-1 is
  terminal when S > 2, and a random latent chain."""
  tables = dict(prior=rng.dirichlet(np.ones(L)),
                expert=rng.dirichlet(np.ones(A), size=(L, S)),
                observation=rng.dirichlet(np.ones(O), size=(L, S, A)),
                latent_transition=rng.dirichlet(np.ones(L), size=L))
  if S > 1:
    tables["transitions"] = rng.integers(0, S, size=(S, A, O))
  if S > 2:
    tables["terminal"] = np.arange(S) == S - 1
  return tables


def brute_force(tables, actions, observations, intervened):
  """Predictives at each step t of one history by summing over every latent path θ_{1:t}:
  (P(a_t | h_<t) [T, A], P(o_t | h_<t, a_t) [T, O], P(θ_t | h_<t) [T, L]), float64. After done
  the latent and the state stay put, as the oracle leaves its belief."""
  prior, expert, obs = tables["prior"], tables["expert"], tables["observation"]
  chain = tables["latent_transition"]
  trans, terminal = tables.get("transitions"), tables.get("terminal")
  L, T = len(prior), len(actions)
  out_a, out_o, out_post = [], [], []
  for t in range(T):
    w_a, w_o, post = 0.0, 0.0, np.zeros(L)
    for path in itertools.product(range(L), repeat=t + 1):
      w, s = prior[path[0]], 0
      for tau in range(t):
        if terminal is not None and terminal[s]:
          w *= path[tau + 1] == path[tau]
          continue
        a, o, th = actions[tau], observations[tau], path[tau]
        w *= obs[th, s, a, o] * (1.0 if intervened[tau] else expert[th, s, a])
        w *= chain[th, path[tau + 1]]
        s = s if trans is None else trans[s, a, o]
      th, a = path[t], actions[t]
      post[th] += w
      w_a = w_a + w * expert[th, s]
      w_o = w_o + w * (1.0 if intervened[t] else expert[th, s, a]) * obs[th, s, a]
    out_a.append(w_a / np.sum(w_a))
    out_o.append(w_o / np.sum(w_o))
    out_post.append(post / post.sum())
  return np.array(out_a), np.array(out_o), np.array(out_post)


@pytest.mark.parametrize("seed,sizes", [(0, (2, 1, 2, 2)), (1, (3, 2, 2, 3)),
                                        (2, (2, 3, 3, 2)), (3, (3, 3, 2, 2))])
def test_filter_equals_enumeration_over_latent_paths(seed, sizes):
  rng = np.random.default_rng(seed)
  L, S, A, O = sizes
  T, B = 3, 6
  tables = random_tables(rng, L, S, A, O)
  task = tasks.make_tabular(horizon=T, **tables)
  assert task.changes_latent
  actions = rng.integers(0, A, (3, B, T))
  observations = rng.integers(0, O, (3, B, T))
  authors = np.stack([np.ones((B, T), bool),             # every action the agent's
                      np.zeros((B, T), bool),            # every action the expert's
                      rng.random((B, T)) < 0.5])         # mixed
  pred = jax.jit(jax.vmap(lambda a, o, i: oracle.predictives(task, a, o, i)))(
      actions, observations, authors)
  for m, b in itertools.product(range(3), range(B)):
    want = brute_force(tables, actions[m, b], observations[m, b], authors[m, b])
    got = (pred.action_probs[m, b], pred.observation_probs[m, b], pred.posterior[m, b])
    for w, g in zip(want, got):
      np.testing.assert_allclose(g, w, atol=2e-6)
  # The public helpers are the same filter: P(θ_T | h_<T) and the next action after h_<T.
  a, o, i = actions[2, 0], observations[2, 0], authors[2, 0]
  np.testing.assert_allclose(oracle.posterior(task, a[:-1], o[:-1], i[:-1]),
                             pred.posterior[2, 0, -1], atol=1e-6)
  np.testing.assert_allclose(oracle.next_observation_probs(task, a, o[:-1], i),
                             pred.observation_probs[2, 0, -1], atol=1e-6)


def test_the_chain_forgets_the_first_latent():
  """Once the chain has mixed, the filter's next-action predictive under do(a) moves toward the
  stationary prior predictive whatever the rewards were: the belief is predicted each step."""
  task = tasks.make("piecewise_bandit", num_arms=3, hazard=1.0, horizon=4)
  # hazard 1: θ_{t+1} is a fresh draw, so past rewards say nothing about the next arm.
  probs = oracle.next_action_probs(task, [0, 0, 0], [1, 1, 1], intervened=True)
  np.testing.assert_allclose(probs, np.full(3, 1 / 3), atol=1e-6)
  static = oracle.next_action_probs(tasks.make("bandit", num_arms=3, horizon=4), [0, 0, 0],
                                    [1, 1, 1], intervened=True)
  assert static[0] > 0.5


# --- the engine ---------------------------------------------------------------------------------

def test_static_tasks_have_no_latent_path():
  traj = rollout.braid(tasks.make("bandit"), rollout.uniform_policy(tasks.make("bandit")),
                       jax.random.PRNGKey(0), 4)
  assert traj.latents is None


def test_hazard_zero_is_the_bandit_exactly():
  """The same key gives the same draws, trajectories and oracle numbers: the chain's noise is a
  stream of its own, and the identity chain predicts nothing away."""
  bandit, still = tasks.make("bandit"), tasks.make("piecewise_bandit", hazard=0.0)
  assert still.changes_latent and not bandit.changes_latent
  key = jax.random.PRNGKey(3)
  # Mixed authors: both actions and the author's coin are drawn.
  want = rollout.braid(bandit, rollout.uniform_policy(bandit), key, 64, 0.5)
  got = rollout.braid(still, rollout.uniform_policy(still), key, 64, 0.5)
  np.testing.assert_array_equal(got.latents, np.repeat(got.theta[:, None], 20, 1))
  jax.tree.map(np.testing.assert_array_equal, got._replace(latents=None), want)
  for causal in (True, False):
    (want, want_stats), (got, got_stats) = (oracle.run_policy(t, key, 256, causal)
                                            for t in (bandit, still))
    jax.tree.map(np.testing.assert_array_equal, got._replace(latents=None), want)
    jax.tree.map(np.testing.assert_array_equal, got_stats, want_stats)
    pred = [oracle.predictives(t, want.actions, want.observations, causal)
            for t in (bandit, still)]
    jax.tree.map(np.testing.assert_array_equal, *pred)


def test_latent_paths_follow_the_chain():
  """θ_{t+1} ~ P(· | θ_t): the piecewise bandit's best arm changes with probability h(1 - 1/A)
  per step, and a random chain's empirical transition rows match its table."""
  h, A, B, T = 0.2, 5, 4096, 20
  task = tasks.make("piecewise_bandit", num_arms=A, hazard=h, horizon=T)
  traj = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(1), B)
  latents = np.asarray(traj.latents)
  np.testing.assert_array_equal(latents[:, 0], traj.theta)
  changed = latents[:, 1:] != latents[:, :-1]
  p = h * (1 - 1 / A)
  assert abs(changed.mean() - p) < 4 * np.sqrt(p * (1 - p) / changed.size)
  # The chain's stationary law is the prior (uniform): θ_T is as often each arm.
  counts = np.bincount(latents[:, -1], minlength=A)
  assert np.all(np.abs(counts / B - 1 / A) < 4 * np.sqrt((1 / A) * (1 - 1 / A) / B))

  rng = np.random.default_rng(0)
  tables = random_tables(rng, 3, 1, 2, 2)
  chain = tables["latent_transition"]
  task = tasks.make_tabular(horizon=10, **tables)
  latents = np.asarray(rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(2),
                                     4096).latents)
  pairs = np.zeros((3, 3))
  np.add.at(pairs, (latents[:, :-1], latents[:, 1:]), 1)
  n = pairs.sum(1, keepdims=True)
  assert np.all(np.abs(pairs / n - chain) < 4 * np.sqrt(chain * (1 - chain) / n) + 1e-9)


def test_expert_world_and_best_action_read_the_current_latent():
  """A deterministic expert on a deterministic bandit: the expert pulls θ_t, the best action is
  θ_t, and the arm pays iff it is θ_t, at every step, while θ moves."""
  task = tasks.make("piecewise_bandit", num_arms=4, best_arm_prob=1.0, reward_prob_best=1.0,
                    reward_prob_other=0.0, hazard=0.3, horizon=12)
  for expert_prob in (0.0, 1.0):
    traj = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(4), 512,
                         expert_prob)
    latents = np.asarray(traj.latents)
    assert (latents[:, 1:] != latents[:, :-1]).mean() > 0.15  # θ does move
    np.testing.assert_array_equal(traj.expert_actions, latents)
    np.testing.assert_array_equal(traj.best_actions, latents)
    np.testing.assert_array_equal(traj.observations, np.asarray(traj.actions) == latents)


# --- parameters and config ----------------------------------------------------------------------

@pytest.mark.parametrize("overrides,message", [
    (dict(hazard=1.5), "piecewise_bandit: parameter 'hazard' must be a probability in [0, 1]"),
    (dict(hazard="x"), "piecewise_bandit: parameter 'hazard' must be a probability"),
    (dict(num_arms=1), "piecewise_bandit: parameter 'num_arms' must be an integer >= 2"),
])
def test_piecewise_bandit_names_bad_parameters(overrides, message):
  with pytest.raises(ValueError) as e:
    tasks.make("piecewise_bandit", **overrides)
  assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("chain,message", [
    (np.eye(3), "must have shape (2, 2), got (3, 3)"),
    ([[0.5, 0.4], [0, 1]], "must have rows summing to 1; row (0,) sums to 0.9"),
    ([[1.5, -0.5], [0, 1]], "must hold probabilities in [0, 1]"),
])
def test_make_tabular_validates_the_latent_transition(chain, message):
  with pytest.raises(ValueError) as e:
    tasks.make_tabular([0.5, 0.5], np.eye(2), np.full((2, 2, 2), 0.5), latent_transition=chain)
  assert str(e.value) == f"tabular: parameter 'latent_transition' {message}"


def test_config_builds_the_task_and_the_launcher_refuses_a_bad_hazard(tmp_path):
  config = config_lib.default()
  config.task.name = "piecewise_bandit"
  config.task.piecewise_bandit.hazard = 0.2
  task, _ = config_lib.validate(config, 1)
  np.testing.assert_allclose(np.exp(task.log_latent_transition())[0], [0.84] + [0.04] * 4,
                             rtol=1e-6)
  proc = subprocess.run(
      [sys.executable, "-m", "launch.train", "--config=experiments/bandit.py",
       f"--workdir={tmp_path / 'run'}", "--config.task.name=piecewise_bandit",
       "--config.task.piecewise_bandit.hazard=1.5"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: config.task.piecewise_bandit: piecewise_bandit: parameter 'hazard' must be a "
      "probability in [0, 1], got 1.5"]
  assert not (tmp_path / "run").exists()
