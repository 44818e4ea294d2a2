"""Seed sweeps in one compiled program: vmap over the train state."""

import json
import os

import jax
import numpy as np
import pytest

from causal_meta import checkpoints
from causal_meta import config as config_lib
from causal_meta import sweep, train


def tiny_config(updates=20):
  c = config_lib.default()
  c.task.name = "bandit"
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = 16
  c.batch_size = 32
  c.num_updates = updates
  c.updates_per_call = c.log_every = 10
  c.eval_episodes = 64
  c.seed = 3
  return c


def test_seeds_in_one_program_match_separate_runs(tmp_path):
  result = sweep.train_seeds(tiny_config(), 2, str(tmp_path), verbose=False)
  single = train.train_and_evaluate(tiny_config(), verbose=False)  # seed 3 = slice 0
  for stacked, alone in zip(jax.tree.leaves(result["params"]), jax.tree.leaves(single["params"])):
    np.testing.assert_allclose(stacked[0], alone, rtol=1e-4, atol=1e-5)
    assert not np.allclose(stacked[0], stacked[1])  # the seeds really differ
  assert [r["seed"] for r in result["per_seed"]] == [3, 4]
  for name in ("kl_action_interventional", "mean_reward"):  # the deployment's, both
    assert abs(result["per_seed"][0][name] - single[name]) < 1e-3, name
  on_disk = json.load(open(tmp_path / "seeds.json"))
  kl = [r["kl_action_conditional"] for r in on_disk["per_seed"]]
  assert on_disk["mean"]["kl_action_conditional"] == np.mean(kl)
  assert on_disk["std"]["kl_action_conditional"] == np.std(kl)
  assert "mean ± std" in (tmp_path / "seeds.md").read_text()


def test_seed_sweep_resumes_from_its_checkpoint(tmp_path):
  """A sweep stopped at update 10 and rerun to 20 ends with the parameters of one that ran 20
  straight; another seed count is a one-line error, not a silent mix."""
  full = sweep.train_seeds(tiny_config(20), 2, str(tmp_path / "full"), verbose=False)
  sweep.train_seeds(tiny_config(10), 2, str(tmp_path / "split"), verbose=False)
  resumed = sweep.train_seeds(tiny_config(20), 2, str(tmp_path / "split"), verbose=False)
  assert resumed["resumed_from"] == 10 and resumed["updates"] == 20
  for a, b in zip(jax.tree.leaves(full["params"]), jax.tree.leaves(resumed["params"])):
    np.testing.assert_array_equal(a, b)
  assert sorted(os.listdir(tmp_path / "split" / "checkpoints")) == ["10", "20"]
  with pytest.raises(checkpoints.IncompatibleCheckpoint, match="num_seeds: 2 there, 3 here"):
    sweep.train_seeds(tiny_config(20), 3, str(tmp_path / "split"), verbose=False)
