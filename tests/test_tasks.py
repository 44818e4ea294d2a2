"""Tasks: construction, validation, and the mechanics each task promises."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import tasks


@pytest.mark.parametrize("name", ["prize_or_frog", "bandit", "padlock"])
def test_builtin_tasks_are_hashable_and_normalised(name):
  task = tasks.make(name)
  assert hash(task) == hash(tasks.make(name))
  s = task.initial_state()
  np.testing.assert_allclose(np.exp(task.log_prior()).sum(), 1.0, rtol=1e-6)
  for theta in range(task.num_latents):
    np.testing.assert_allclose(jnp.exp(task.expert_logits(theta, s)).sum(), 1.0, rtol=1e-6)
    for a in range(task.num_actions):
      np.testing.assert_allclose(jnp.exp(task.observation_logits(theta, s, a)).sum(), 1.0,
                                 rtol=1e-6)


def test_bandit_matches_remark_11():
  task = tasks.make("bandit")
  s = task.initial_state()
  for theta in range(5):
    expert = np.exp(task.expert_logits(theta, s))
    np.testing.assert_allclose(expert, np.where(np.arange(5) == theta, 0.6, 0.1), rtol=1e-6)
    for a in range(5):
      p_win = np.exp(task.observation_logits(theta, s, a))[1]
      np.testing.assert_allclose(p_win, 0.75 if a == theta else 0.25, rtol=1e-6)


def test_bandit_every_number_is_a_parameter():
  task = tasks.make("bandit", num_arms=3, best_arm_prob=0.8, reward_prob_best=0.9,
                    reward_prob_other=0.2, horizon=7, prior=[0.5, 0.25, 0.25])
  s = task.initial_state()
  assert (task.num_actions, task.horizon) == (3, 7)
  np.testing.assert_allclose(np.exp(task.log_prior()), [0.5, 0.25, 0.25], rtol=1e-6)
  np.testing.assert_allclose(np.exp(task.expert_logits(1, s)), [0.1, 0.8, 0.1], rtol=1e-6)
  np.testing.assert_allclose(np.exp(task.observation_logits(2, s, 2)), [0.1, 0.9], rtol=1e-6)
  np.testing.assert_allclose(np.exp(task.observation_logits(2, s, 0)), [0.8, 0.2], rtol=1e-6)


def test_padlock_mechanics_by_brute_force():
  """Every code: the expert's flips open the lock in exactly Hamming(code, 0) steps."""
  task = tasks.make("padlock", num_switches=5, num_secret=2)
  for theta in range(task.num_latents):
    code = np.array([1, 0, 1] + [(theta >> j) & 1 for j in range(2)])
    s = task.initial_state()
    for step in range(int(code.sum())):
      assert not task.done(s)
      a = int(jnp.argmax(task.expert_logits(theta, s)))
      assert a == int(np.argmax(np.asarray(s[:-1]) != code))  # lowest differing switch
      o = int(jnp.argmax(task.observation_logits(theta, s, a)))
      s = task.next_state(s, a, o)
      assert o == int(step == code.sum() - 1)
    assert task.done(s)
    np.testing.assert_array_equal(s[:-1], code)


def test_padlock_epsilon_gives_full_support():
  task = tasks.make("padlock", epsilon=0.3)
  probs = np.exp(task.expert_logits(0, task.initial_state()))
  assert np.all(probs > 0)
  np.testing.assert_allclose(probs.max(), 0.7 + 0.3 / 6, rtol=1e-6)
  assert tasks.make("padlock").horizon == 6 + 8


def test_tabular_state_machine():
  # Two states: after observing 1 the task moves to state 1, where it is done.
  task = tasks.make_tabular(prior=[0.5, 0.5], expert=np.full((2, 2, 2), 0.5),
                            observation=np.full((2, 2, 2, 2), 0.5), horizon=3,
                            transitions=[[[0, 1], [0, 1]], [[1, 1], [1, 1]]],
                            terminal=[False, True], rewards=[0.0, 2.0])
  s = task.next_state(task.initial_state(), 0, 1)
  assert int(s) == 1 and bool(task.done(s)) and float(task.reward(1)) == 2.0


BAD = [
    ("nope", {}, "unknown task 'nope'"),
    ("bandit", {"arms": 3}, "no parameter 'arms'"),
    ("bandit", {"best_arm_prob": 1.5}, "best_arm_prob"),
    ("bandit", {"reward_prob_best": -0.1}, "reward_prob_best"),
    ("bandit", {"horizon": 0}, "horizon"),
    ("bandit", {"num_arms": 1}, "num_arms"),
    ("bandit", {"prior": [0.5, 0.6, 0, 0, 0]}, "prior"),
    ("bandit", {"prior": [0.5, 0.5]}, "prior"),
    ("padlock", {"num_secret": 9}, "num_secret"),
    ("padlock", {"epsilon": 2}, "epsilon"),
    ("padlock", {"public_pattern": [1, 2, 0]}, "public_pattern"),
    ("tabular", {"prior": [1.0], "expert": [[0.5, 0.6]], "observation": [[[1.0], [1.0]]]},
     "expert"),
    ("tabular", {"prior": [1.0], "expert": [[0.5, 0.5]], "observation": [[[1.0], [1.0]]],
                 "horizon": -2}, "horizon"),
    ("tabular", {"prior": [0.5, 0.5], "expert": [[1.0], [1.0]],
                 "observation": [[[0.5, 0.5]], [[0.7, 0.2]]]}, "observation"),
]


@pytest.mark.parametrize("name,overrides,message", BAD)
def test_invalid_parameters_raise_value_error_naming_them(name, overrides, message):
  with pytest.raises(ValueError, match=message):
    tasks.make(name, **overrides)


def test_unknown_task_lists_allowed_names():
  with pytest.raises(ValueError,
                     match="allowed: bandit, padlock, piecewise_bandit, prize_or_frog, tabular"):
    tasks.make("Bandit")


def test_sample_latent_follows_prior():
  task = tasks.make("bandit", prior=[0.1, 0.2, 0.3, 0.4, 0.0])
  keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
  counts = np.bincount(np.asarray(jax.vmap(task.sample_latent)(keys)), minlength=5) / 20_000
  np.testing.assert_allclose(counts, [0.1, 0.2, 0.3, 0.4, 0.0], atol=0.015)
