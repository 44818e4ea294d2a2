"""Training end to end, in small fast versions of the README's targets."""

import json
import os

import jax
import numpy as np
import pytest

from causal_meta import config as config_lib
from causal_meta import train

SUMMARY_KEYS = (
    "task", "agent", "teaching", "kl_action_interventional", "kl_action_conditional",
    "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
    "best_action_rate", "oracle_interventional_reward", "oracle_conditional_reward",
    "oracle_interventional_best_action_rate", "oracle_conditional_best_action_rate", "updates",
    "env_steps", "wall_seconds", "env_steps_per_second")


def small_config(task="prize_or_frog", teaching="counterfactual", kind="lstm", updates=150,
                 **task_params):
  c = config_lib.default()
  c.task.name = task
  c.task[task].update(task_params)
  c.teaching = teaching
  c.agent.kind = kind
  c.agent.hidden = c.agent.width = 32
  c.batch_size = 128
  c.num_updates = updates
  c.updates_per_call = c.log_every = 50
  c.eval_episodes = 1024
  c.optim.learning_rate = 1e-2
  return c


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_prize_or_frog_counterfactual_vs_demonstration(kind, tmp_path):
  """[O] §2 learned: counterfactual teaching predicts P(prize | do(a)) = 1/2; demonstrations
  predict P(prize | a) = 1. KL(cond ‖ cf agent) and KL(int ‖ demo agent) are then log 2-ish."""
  cf = train.train_and_evaluate(small_config(kind=kind), str(tmp_path / "cf"), verbose=False)
  demo = train.train_and_evaluate(small_config(kind=kind, teaching="demonstration"),
                                  str(tmp_path / "demo"), verbose=False)
  assert cf["kl_observation_interventional"] < 0.01
  assert cf["kl_observation_conditional"] > 0.3
  assert demo["kl_observation_conditional"] < 0.05
  assert demo["kl_observation_interventional"] > 0.3
  # Both predict the first action (a prior predictive: uniform) the same way.
  assert cf["kl_action_interventional"] < 0.01 and demo["kl_action_conditional"] < 0.01
  # The summary on disk has every documented key.
  summary = json.load(open(tmp_path / "cf" / "summary.json"))
  assert set(SUMMARY_KEYS) <= set(summary)
  assert summary["env_steps"] == 150 * 128 * 1
  assert os.path.exists(tmp_path / "cf" / "metrics.jsonl")
  assert os.path.exists(tmp_path / "cf" / "figures" / "kl.png")


def test_bandit_non_default_parameters():
  """Not just the defaults: a 3-armed bandit with other numbers, short horizon."""
  params = dict(num_arms=3, best_arm_prob=0.7, reward_prob_best=0.9, reward_prob_other=0.3,
                horizon=6)
  cf = train.train_and_evaluate(small_config("bandit", updates=400, **params), verbose=False)
  demo = train.train_and_evaluate(small_config("bandit", "demonstration", updates=400,
                                               **params), verbose=False)
  assert cf["kl_action_interventional"] < 0.02 < cf["kl_action_conditional"]
  assert demo["kl_action_conditional"] < 0.02 < demo["kl_action_interventional"]
  assert cf["kl_action_conditional"] > 2 * cf["kl_action_interventional"]
  assert demo["kl_action_interventional"] > 2 * demo["kl_action_conditional"]
  assert abs(cf["best_action_rate"] - cf["oracle_interventional_best_action_rate"]) < 0.05


def test_training_is_deterministic_given_the_seed():
  a = train.train_and_evaluate(small_config(updates=50), verbose=False)
  b = train.train_and_evaluate(small_config(updates=50), verbose=False)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_array_equal(x, y)


BAD_CONFIGS = [
    (lambda c: setattr(c.task, "name", "chess"), "config.task.name: unknown task 'chess'"),
    (lambda c: setattr(c.agent, "kind", "rnn"), "unknown agent kind 'rnn'"),
    (lambda c: setattr(c, "teaching", "imitation"), "config.teaching"),
    (lambda c: setattr(c, "batch_size", 0), "config.batch_size"),
    (lambda c: setattr(c, "num_updates", 150), "multiple of config.updates_per_call"),
    (lambda c: setattr(c, "mixed_prob", 1.5), "config.mixed_prob"),
    (lambda c: setattr(c.optim, "learning_rate", -1.0), "config.optim.learning_rate"),
    (lambda c: c.task.bandit.update(best_arm_prob=2.0), "best_arm_prob"),
]


@pytest.mark.parametrize("mutate,match", BAD_CONFIGS)
def test_bad_config_raises_before_anything_is_written(mutate, match, tmp_path):
  c = config_lib.default()
  mutate(c)
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
