"""EM fit of a tabular task to logged demonstrations (causal_meta/offline.py, [O] §4.2)."""

import itertools

import jax
import numpy as np
import pytest

from causal_meta import config as config_lib
from causal_meta import offline, oracle, rollout, tasks, train


def demonstrations(task, episodes, seed=0):
  """A log of `episodes` expert-only episodes (expert_prob=1)."""
  return rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(seed), episodes,
                       expert_prob=1.0)


def tables(task):
  return (np.asarray(task.prior), np.asarray(task.expert), np.asarray(task.observation))


def aligned_error(fitted, truth, states=None):
  """Max |fitted - truth| over prior, expert and observation tables, for the permutation of
  the fitted latents that fits best (`states`: the state indices compared)."""
  fit, true = tables(fitted), tables(truth)
  if states is not None:
    fit = (fit[0], fit[1][:, states], fit[2][:, states])
    true = (true[0], true[1][:, states], true[2][:, states])
  return min(max(float(np.abs(f[list(perm)] - t).max()) for f, t in zip(fit, true))
             for perm in itertools.permutations(range(len(true[0]))))


def random_stateful_task(seed=0):
  """3 latents, 3 states (state 2 terminal), 3 actions, 2 observations, horizon 8; rows drawn
  peaked (well-separated latents) but bounded away from 0, so that every (θ, s, a) the expert
  visits is identified."""
  rng = np.random.default_rng(seed)
  L, S, A, O = 3, 3, 3, 2
  expert = 0.1 / A + 0.9 * rng.dirichlet(np.full(A, 0.5), (L, S))
  observation = 0.1 + 0.8 * rng.dirichlet(np.full(O, 0.5), (L, S, A))
  s, a, o = np.meshgrid(np.arange(S), np.arange(A), np.arange(O), indexing="ij")
  transitions = (s + a + o) % 2  # both live states visited under every θ
  transitions[1, 0, 1] = 2  # some episodes end early: exercises the mask
  return tasks.make_tabular([0.5, 0.3, 0.2], expert, observation, horizon=8,
                            transitions=transitions, terminal=np.array([False, False, True]))


# --- recovery -------------------------------------------------------------------------------------

def test_em_recovers_a_random_stateful_task_up_to_permutation():
  truth = random_stateful_task()
  log = demonstrations(truth, 20_000)
  assert not np.all(np.asarray(log.mask))  # some episodes ended early
  fitted, info = offline.fit_tabular(truth, log, 3, jax.random.PRNGKey(1), restarts=4,
                                     iterations=150)
  assert isinstance(fitted, tasks.TabularTask) and fitted.num_latents == 3
  assert fitted.transitions == truth.transitions and fitted.terminal == truth.terminal
  # The terminal state is never acted in: its rows have no data and are not compared.
  assert aligned_error(fitted, truth, states=[0, 1]) < 0.03
  assert info["log_likelihood"].shape == (151,)
  assert info["log_likelihood_all"].shape == (4, 151)
  # The fitted model plays expert and world in the braided engine.
  traj = rollout.braid(fitted, rollout.uniform_policy(fitted), jax.random.PRNGKey(2), 8)
  assert traj.actions.shape == (8, 8)


def test_log_likelihood_and_objective_never_decrease():
  truth = random_stateful_task(seed=1)
  log = demonstrations(truth, 2_000)
  _, info = offline.fit_tabular(truth, log, 3, jax.random.PRNGKey(0), restarts=4,
                                iterations=100)
  # With α > 0 EM increases the MAP objective; with α = 0 the log-likelihood itself.
  assert np.diff(info["objective_all"], axis=1).min() > -1e-5
  assert info["log_likelihood"][-1] > info["log_likelihood"][0] + 0.5
  _, info = offline.fit_tabular(truth, log, 3, jax.random.PRNGKey(0), restarts=4,
                                iterations=100, pseudo_count=0.0)
  assert np.diff(info["log_likelihood_all"], axis=1).min() > -1e-5
  # The best restart is the one with the highest final log-likelihood.
  assert info["log_likelihood"][-1] == info["log_likelihood_all"][:, -1].max()


def test_exact_expected_counts_em_recovers_the_bandit_tables_up_to_permutation():
  """The infinite-log limit: every episode of a horizon-3 bandit weighted by its true
  probability (exact expected counts), maximum likelihood (α = 0)."""
  truth = tasks.make("bandit", horizon=3)
  episodes = offline.exact_episodes(truth)
  np.testing.assert_allclose(episodes.weights.sum(), 1.0, rtol=1e-5)
  fitted, info = offline.fit_tabular(truth, episodes, 5, jax.random.PRNGKey(1), restarts=4,
                                     iterations=1000, pseudo_count=0.0)
  assert aligned_error(fitted, truth) < 1e-4
  # Exact counts of a mixture: the likelihood depends on an episode through its counts only.
  assert info["num_distinct"] == 220  # multisets of 3 (arm, reward) pairs out of 10


def test_exact_episodes_respect_done():
  truth = random_stateful_task()
  truth = tasks.make_tabular(truth.prior, truth.expert, truth.observation, horizon=3,
                             transitions=np.asarray(truth.transitions),
                             terminal=np.asarray(truth.terminal))
  episodes = offline.exact_episodes(truth)
  assert episodes.actions.shape == ((3 * 2) ** 3, 3)
  np.testing.assert_allclose(episodes.weights.sum(), 1.0, rtol=1e-5)
  # The probability that the task ends after step 2: state 1 reached, then (a=0, o=1).
  ends = episodes.mask[:, 1] & ~episodes.mask[:, 2]
  to_one = np.asarray(truth.transitions)[0] == 1  # [A, O]
  expected = sum(p * (e[0][:, None] * o[0] * to_one).sum() * e[1, 0] * o[1, 0, 1]
                 for p, e, o in zip(*tables(truth)))
  np.testing.assert_allclose(episodes.weights[ends].sum(), expected, rtol=1e-4)
  # Each masked step's (A·O) values share the probability equally.
  np.testing.assert_allclose(np.unique(episodes.weights[ends]).size * 6, ends.sum(), rtol=0)


def test_the_log_cannot_tell_the_interventional_answer_on_prize_or_frog():
  """[O] §2 and §4.2: the demonstrations (the expert opens box θ and finds the prize) are
  explained as well without a confounder. In any fit, a box opened under θ̂ holds the prize
  and a box never opened under θ̂ is uniform (the pseudo-count alone), so the fitted
  P(prize | do(a)) is at least 0.75; the truth is 0.5."""
  truth = tasks.make("prize_or_frog")
  fitted, _ = offline.fit_tabular(truth, demonstrations(truth, 1_000), 2,
                                  jax.random.PRNGKey(0))
  for a in (0, 1):
    # Conditioning is learnt: the box the expert opens holds the prize.
    np.testing.assert_allclose(oracle.next_observation_probs(fitted, [a], [], False), [0, 1],
                               atol=1e-3)
    np.testing.assert_allclose(oracle.next_observation_probs(truth, [a], [], True), [.5, .5],
                               atol=1e-6)
    assert oracle.next_observation_probs(fitted, [a], [], True)[1] > 0.74


def test_fitted_bandit_interventional_oracle_within_0005_nats_per_step_at_1000_episodes():
  truth = tasks.make("bandit")
  k_fit, k_eval = jax.random.split(jax.random.PRNGKey(0))
  fitted, _ = offline.fit_tabular(truth, demonstrations(truth, 1_000), 5, k_fit)
  gap = offline.oracle_kl(truth, fitted, k_eval, 500)
  assert float(gap["kl_action"]) < 0.005
  assert float(gap["kl_observation"]) < 0.005
  # A model fitted with the wrong latent count is measurably worse: the metric can fail.
  worse, _ = offline.fit_tabular(truth, demonstrations(truth, 1_000), 1, k_fit)
  assert float(offline.oracle_kl(truth, worse, k_eval, 500)["kl_action"]) > 0.02


# --- bad input: one line naming the field -------------------------------------------------------

@pytest.fixture(scope="module")
def bandit_log():
  task = tasks.make("bandit", horizon=4)
  return task, demonstrations(task, 16)


def test_rejects_agent_authored_actions(bandit_log):
  task, log = bandit_log
  mixed = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(0), 16,
                        expert_prob=0.5)
  with pytest.raises(ValueError, match=r"log\.intervened"):
    offline.fit_tabular(task, mixed, 5, jax.random.PRNGKey(0))


@pytest.mark.parametrize("field,kwargs", [
    ("num_latents", dict(num_latents=0)), ("num_latents", dict(num_latents=2.0)),
    ("restarts", dict(restarts=0)), ("iterations", dict(iterations=-1)),
    ("pseudo_count", dict(pseudo_count=-0.1)), ("pseudo_count", dict(pseudo_count="a"))])
def test_rejects_bad_settings(bandit_log, field, kwargs):
  task, log = bandit_log
  args = dict(num_latents=5, key=jax.random.PRNGKey(0)) | kwargs
  with pytest.raises(ValueError, match=field):
    offline.fit_tabular(task, log, **args)


def test_rejects_a_log_that_does_not_match_the_task(bandit_log):
  task, log = bandit_log
  with pytest.raises(ValueError, match=r"log\.actions.*T=5"):  # another horizon
    offline.fit_tabular(tasks.make("bandit", horizon=5), log, 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"log\.actions.*\[0, 2\]"):  # more arms than the task
    offline.fit_tabular(tasks.make("bandit", num_arms=3, horizon=4), log, 5,
                        jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"log\.mask"):  # steps after done, or a wrong mask
    offline.fit_tabular(task, log._replace(mask=log.mask.at[0, 1].set(False)), 5,
                        jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"log\.observations"):
    offline.fit_tabular(task, log._replace(observations=log.observations[:, :2]), 5,
                        jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"log\.actions.*T=14"):  # a bandit log for padlock
    offline.fit_tabular(tasks.make("padlock"), log, 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="task_like"):
    offline.fit_tabular("bandit", log, 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"log\.weights"):
    offline.fit_tabular(task, offline.Episodes(log.actions, log.observations, log.mask,
                                               np.zeros(16)), 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="shorter horizon"):  # 10^20 episodes to enumerate
    offline.exact_episodes(tasks.make("bandit"))
  with pytest.raises(ValueError, match="log must be"):
    offline.fit_tabular(task, {"actions": log.actions}, 5, jax.random.PRNGKey(0))


# --- teaching from the log ------------------------------------------------------------------------

def small_config(task_name="bandit", updates=20):
  c = config_lib.default()
  c.task.name = task_name
  c.num_updates = c.log_every = updates
  c.updates_per_call, c.batch_size, c.eval_episodes, c.agent.hidden = 10, 32, 64, 16
  return c


def test_teaching_in_the_true_task_is_online_counterfactual_teaching_exactly():
  """With the true task as the model, `teach_from_log` is `train_and_evaluate` on the true
  task: same seed, same evaluation key, the same numbers."""
  c = small_config()
  c.task.bandit.horizon = 5
  truth = tasks.make("bandit", horizon=5)
  out = offline.teach_from_log(c, truth, None, None, jax.random.PRNGKey(0), model=truth,
                               oracle_episodes=64)
  online = train.train_and_evaluate(c, None, verbose=False, progress=False)
  assert out["agent"] == {k: float(online[k]) for k in offline.AGENT_METRICS}
  assert out["fit"] is None and out["oracle_kl"]["kl_action"] < 1e-6
  np.testing.assert_array_equal(jax.tree.leaves(out["params"])[0],
                                jax.tree.leaves(online["params"])[0])


def test_teaching_in_a_model_fitted_to_prize_or_frog_inherits_its_guess():
  """The failure case of [O] §4.2: on prize_or_frog the log leaves P(o | θ̂, do(a)) of the
  unopened box unidentified. Taught in the fitted model, the agent learns the model's
  P(prize | do(a)) >= 0.75 (small KL in the model); deployed in the true task (1/2) its
  observation KL to the true interventional oracle is large."""
  truth = tasks.make("prize_or_frog")
  c = small_config("prize_or_frog", updates=100)
  out = offline.teach_from_log(c, truth, demonstrations(truth, 500), 2, jax.random.PRNGKey(0),
                               oracle_episodes=64)
  assert out["oracle_kl"]["kl_observation"] > 0.05
  assert out["in_model"]["kl_observation_interventional"] < 0.03
  assert out["agent"]["kl_observation_interventional"] > 0.08


def test_behaviour_cloning_on_prize_or_frog_learns_the_conditional_answer():
  truth = tasks.make("prize_or_frog")
  out = offline.behaviour_cloning(small_config("prize_or_frog", updates=100), truth,
                                  demonstrations(truth, 200), jax.random.PRNGKey(0))
  # P(prize | a) = 1 from the log; the truth under do(a) is 1/2: KL ≈ log 2 per step.
  assert out["agent"]["kl_observation_conditional"] < 0.05
  assert out["agent"]["kl_observation_interventional"] > 0.3
  assert 0 < out["best_update"] <= 100


def test_teaching_rejects_bad_input(bandit_log):
  task, log = bandit_log
  c = small_config()
  c.task.bandit.horizon = 4
  with pytest.raises(ValueError, match="log and num_latents"):
    offline.teach_from_log(c, task, None, 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="model has"):
    offline.teach_from_log(c, task, None, None, jax.random.PRNGKey(0),
                           model=tasks.make("bandit", horizon=5))
  with pytest.raises(ValueError, match="true_task"):
    offline.teach_from_log(c, "bandit", log, 5, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="model_class"):
    offline.teach_from_log(c, task, log, 5, jax.random.PRNGKey(0), model_class="linear")
  with pytest.raises(ValueError, match="holdout"):
    offline.behaviour_cloning(c, task, log, jax.random.PRNGKey(0), holdout=1.0)
  with pytest.raises(ValueError, match=r"log\.intervened"):
    offline.behaviour_cloning(c, task, log._replace(intervened=~log.intervened),
                              jax.random.PRNGKey(0))


# --- tasks written in JAX, K̂ from held-out likelihood, logs on disk, the neural class -----------

def test_as_tabular_padlock_has_the_same_oracle_and_the_em_fit_reads_it():
  """`as_tabular` is the same task: both oracles agree on every prefix of random histories,
  both authorships; and EM on the exact expected counts of a tiny noisy padlock recovers it."""
  from causal_meta.tasks.enumerated import as_tabular
  lock = tasks.make("padlock", num_switches=3, num_secret=1, epsilon=0.3, horizon=4)
  table = as_tabular(lock)
  assert table.num_states == 2 ** 3 + 2 ** 3  # every switch setting, shut or (terminal) open
  traj = rollout.braid(lock, rollout.uniform_policy(lock), jax.random.PRNGKey(0), 64,
                       expert_prob=0.5)
  for authors in (True, False, traj.intervened):
    a = oracle.predictives(lock, traj.actions, traj.observations, authors)
    b = oracle.predictives(table, traj.actions, traj.observations, authors)
    for x, y in zip(a, b):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
  fitted, _ = offline.fit_tabular(lock, offline.exact_episodes(table, 1e6), 2,
                                  jax.random.PRNGKey(1), restarts=4, iterations=300,
                                  pseudo_count=0.0)
  gap = offline.oracle_kl(lock, fitted, jax.random.PRNGKey(2), 500)
  assert float(gap["kl_action"]) < 1e-3 and float(gap["kl_observation"]) < 1e-3


def test_log_likelihood_is_the_exact_marginal_by_brute_force():
  """`log_likelihood` (the conditional oracle's predictives) equals log Σ_θ Q(θ) Π_t ... summed
  by hand over θ on a random stateful task."""
  truth = random_stateful_task(3)
  log = demonstrations(truth, 20)
  states, _ = offline.logged_states(truth, offline.check_log(truth, log))
  prior, expert, obs = tables(truth)
  a, o, m = map(np.asarray, (log.actions, log.observations, log.mask))
  brute = []
  for n in range(20):
    per_theta = [np.log(prior[th]) + sum(
        np.log(expert[th, states[n, t], a[n, t]] * obs[th, states[n, t], a[n, t], o[n, t]])
        for t in range(truth.horizon) if m[n, t]) for th in range(len(prior))]
    brute.append(np.logaddexp.reduce(per_theta))
  np.testing.assert_allclose(offline.log_likelihood(truth, log), brute, rtol=1e-5)


def test_heldout_log_likelihood_tells_the_number_of_latents():
  """On the bandit (5 latents), held-out likelihood rises up to K̂ = 5 and not beyond."""
  truth = tasks.make("bandit", horizon=10)
  ll = offline.heldout_log_likelihood(truth, demonstrations(truth, 2000), (1, 3, 5, 7),
                                      jax.random.PRNGKey(0), restarts=4, iterations=100)
  assert ll[1] < ll[3] < ll[5]
  assert ll[7] < ll[5] + 0.01


def test_save_and_load_log_round_trip_and_bad_files(tmp_path, bandit_log):
  task, log = bandit_log
  path = offline.save_log(str(tmp_path / "log.npz"), log)
  back = offline.load_log(path, task)
  np.testing.assert_array_equal(back.actions, log.actions)
  np.testing.assert_array_equal(back.mask, log.mask)
  np.savez(tmp_path / "nomask.npz", actions=np.asarray(log.actions),
           observations=np.asarray(log.observations))
  np.testing.assert_array_equal(offline.load_log(str(tmp_path / "nomask.npz"), task).mask,
                                log.mask)
  with pytest.raises(ValueError, match="no such file"):
    offline.load_log(str(tmp_path / "missing.npz"), task)
  (tmp_path / "junk.npz").write_text("not a zip")
  with pytest.raises(ValueError, match="not a readable"):
    offline.load_log(str(tmp_path / "junk.npz"), task)
  np.savez(tmp_path / "agent.npz", actions=np.asarray(log.actions),
           observations=np.asarray(log.observations), intervened=np.ones(log.actions.shape))
  with pytest.raises(ValueError, match=r"log\.intervened"):
    offline.load_log(str(tmp_path / "agent.npz"), task)
  with pytest.raises(ValueError, match=r"log\.actions"):
    offline.load_log(path, tasks.make("bandit", horizon=5))
  with pytest.raises(ValueError, match=r"log\.intervened"):
    offline.save_log(str(tmp_path / "x.npz"), log._replace(intervened=~log.intervened))


def test_neural_fit_approaches_the_truth_on_the_bandit():
  """The neural class on 1,000 bandit demonstrations: its likelihood on the log is at least
  the true model's less 0.1 nats/episode, and its interventional oracle is within 0.01
  nats/step of the true one (EM: 0.0011 on the same log)."""
  from causal_meta import offline_neural
  truth = tasks.make("bandit")
  log = demonstrations(truth, 1000)
  model, info = offline_neural.fit_neural(truth, log, 5, jax.random.PRNGKey(1), restarts=2,
                                          steps=600)
  assert info["log_likelihood"] > offline.log_likelihood(truth, log).mean() - 0.1
  np.testing.assert_allclose(offline.log_likelihood(model, log).mean(),
                             info["log_likelihood"], rtol=1e-4)
  gap = offline.oracle_kl(truth, model, jax.random.PRNGKey(2), 500)
  assert float(gap["kl_action"]) < 0.01
  with pytest.raises(ValueError, match="hidden"):
    offline_neural.fit_neural(truth, log, 5, jax.random.PRNGKey(1), hidden=0)
