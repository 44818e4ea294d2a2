"""Grids (run names, sharding over a job array, collecting the shards' runs) and seed sweeps
in one compiled program (vmap over the train state)."""

import csv
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


def test_run_names_use_the_full_field_path_and_reject_a_repeated_axis():
  base = tiny_config()
  axes = [sweep.parse_axis("agent.kind=lstm,gru", base),
          sweep.parse_axis("teaching=counterfactual,demonstration,mixed", base)]
  names = [name for name, _ in sweep.configs(base, axes)]
  assert names[:2] == ["agent.kind=lstm_teaching=counterfactual",
                       "agent.kind=lstm_teaching=demonstration"]
  assert len(set(names)) == 6
  # Round-robin over the ordered runs: run j goes to shard j % N.
  runs = sweep.configs(base, axes)
  assert [n for n, _ in sweep.shard(runs, 1, 4)] == [names[1], names[5]]
  assert sorted(n for i in range(4) for n, _ in sweep.shard(runs, i, 4)) == sorted(names)
  with pytest.raises(ValueError, match="agent.kind is given twice"):
    sweep.configs(base, axes + [sweep.parse_axis("agent.kind=transformer", base)])


@pytest.mark.parametrize("spec", ["3/2", "x", "1/0", "-1/2", "2/2", "1/"])
def test_bad_shard_spec(spec):
  with pytest.raises(ValueError, match="--shard: expected i/N with 0 <= i < N"):
    sweep.parse_shard(spec)


def _rows(path):
  """results.csv without the one column that differs between two identical runs."""
  with open(path, newline="") as f:
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in csv.DictReader(f)]


def test_two_shards_and_collect_match_the_unsharded_sweep(tmp_path):
  """Each shard writes only its runs and its own table; `collect` refuses while a run is
  missing (writing nothing), then writes the unsharded sweep's results.csv rows."""
  base = tiny_config(10)
  base.tensorboard = False
  axes = [sweep.parse_axis("seed=3,4", base)]
  names = ["seed=3", "seed=4"]
  sweep.run_grid(base, axes, str(tmp_path / "whole"), verbose=False)
  sharded = tmp_path / "sharded"
  sweep.run_grid(base, axes, str(sharded), verbose=False, shard_spec=(0, 2))
  assert sorted(os.listdir(sharded)) == sorted([names[0], "shards"])
  assert [r["run"] for r in _rows(sharded / "shards" / "0-of-2.csv")] == [names[0]]
  with pytest.raises(sweep.MissingRuns, match=f"1 of 2 runs have no summary.json .*: {names[1]}$"):
    sweep.collect(base, axes, str(sharded))
  assert not (sharded / "results.csv").exists()
  sweep.run_grid(base, axes, str(sharded), verbose=False, shard_spec=(1, 2))
  sweep.collect(base, axes, str(sharded))
  whole = _rows(tmp_path / "whole" / "results.csv")
  assert [r["run"] for r in whole] == names
  assert whole[0]["kl_action_interventional"] != whole[1]["kl_action_interventional"]
  assert _rows(sharded / "results.csv") == whole
  assert (sharded / "results.md").read_text() == (tmp_path / "whole" / "results.md").read_text()
