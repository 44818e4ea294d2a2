"""The padlock retraining result ([D] §4.1, Table 1): the experiment runs and writes its rows.
The mathematics (relabelling, delusion, the loop) is tested in tests/test_retrain.py."""

import json
import math
import pathlib

import pytest

from causal_meta import reproduce, tasks
from causal_meta.reproduce import padlock_retrain
from causal_meta.tabular import padlock_exact

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIZES = dict(width=16, num_layers=1, num_heads=2)


def tiny(size="quick", updates=20, **task):
  """The `size` config shrunk to a 4-switch padlock (task: its other parameters), one round."""
  c = reproduce.load_config(str(ROOT / "experiments" / "padlock_retrain.py"), size)
  c.task = dict(num_switches=4, num_secret=2, **task)
  c.model = SIZES
  c.num_demos = c.rollouts_per_round = c.num_random = 64
  c.pretrain_updates = c.retrain_updates = c.scratch_updates = updates
  # Counterfactual teaching is the training engine's (tests/test_train.py); skipped for time.
  c.counterfactual_updates, c.rounds, c.eval_episodes, c.seeds = 0, 1, 64, (0,)
  return c


def test_padlock_experiment_writes_rows(tmp_path):
  c = tiny()
  padlock_retrain.run(c, str(tmp_path), log=lambda *_: None)
  results = json.load(open(tmp_path / "results.json"))
  assert [r["round"] for r in results["rows"]] == [0, 1]
  for r in results["rows"]:
    assert r["delusion"] >= 0 and 0 <= r["accuracy"] <= 1
  # The fine-tuned model also against its own data (the pretrained one has no previous model).
  assert "delusion_like_with_like" not in results["rows"][0]
  assert results["rows"][1]["delusion_like_with_like"] >= 0
  assert 0 <= results["rows"][1]["reference_p_open"] <= 1
  assert "like with like" in padlock_retrain.format_table(results)
  assert (tmp_path / "figures" / "padlock_retrain.png").exists()


def test_the_paper_protocol_runs_with_a_random_start(tmp_path):
  """[D]'s game (the start read first) through the same loop, with App. C's measure."""
  c = reproduce.load_config(str(ROOT / "experiments" / "padlock_retrain.py"), "cpu_paper")
  assert c.task["random_start"] and c.task["horizon"] == 31 and c.eval_episodes == 10_240
  assert c.seeds == (0, 1, 2)
  c = tiny("cpu_paper", random_start=True, horizon=5 + 4)
  results = padlock_retrain.run(c, None, log=lambda *_: None)
  for r in results["rows"]:
    assert r["delusion_app_c"] >= 0 and r["delusion_app_c_reverse"] >= 0
  assert "App. C" in padlock_retrain.format_table(results)


def test_check_names_what_is_wrong():
  c = reproduce.load_config(str(ROOT / "experiments" / "padlock_retrain.py"), "gpu")
  padlock_retrain.check(c)  # the paper's size builds
  long = reproduce.load_config(str(ROOT / "experiments" / "padlock_retrain.py"), "cpu_paper_47")
  padlock_retrain.check(long)  # [D]'s game with n + 2^m flips
  assert long.task["horizon"] == 16 + 15 + 2 ** 5
  c.task = dict(c.task, num_secret=20)
  with pytest.raises(ValueError, match="num_secret"):
    padlock_retrain.check(c)
  c = tiny()
  c.like_with_like_samples = 0
  with pytest.raises(ValueError, match="like_with_like_samples"):
    padlock_retrain.check(c)


def test_several_seeds_give_mean_and_std(tmp_path):
  c = tiny(updates=10)
  c.seeds = (0, 1)
  results = padlock_retrain.reproduce(str(tmp_path), config=c)
  singles = [json.load(open(tmp_path / f"seed_{s}" / "results.json")) for s in (0, 1)]
  for key in ("delusion", "accuracy"):
    values = [r["rows"][1][key] for r in singles]
    mean, std = results["rows"][1][key]
    assert abs(mean - sum(values) / 2) < 1e-9 and abs(std - abs(values[0] - values[1]) / 2) < 1e-9
  assert results["seeds"] == [0, 1] and results["counterfactual"]["delusion"] is None
  assert " ± " in padlock_retrain.format_table(results)
  assert (tmp_path / "figures" / "padlock_retrain.png").exists()
  assert json.load(open(tmp_path / "results.json"))["rows"][1]["delusion"] == list(
      results["rows"][1]["delusion"])


def test_papers_game_gets_the_exact_column():
  """Only [D]'s game (15 switches from a random start, 32 codes) gets the exact column. In it
  the model fine-tuned to perfection is less deluded (App. C) than the perfect pretrained one,
  neither opens more locks than the best search, and random play opens about what [D]'s
  from-scratch row did (5 of 10,240 episodes, within two standard errors)."""
  assert padlock_retrain.exact_reference(tasks.make("padlock")) is None
  ref = padlock_retrain.exact_reference(tasks.make("padlock", num_switches=15, num_secret=5,
                                                   random_start=True, horizon=16 + 15))
  assert ref["flips"] == 15
  assert ref["fine_tuned"]["delusion_app_c"] < ref["pretrained"]["delusion_app_c"]
  best = padlock_exact.best_accuracy(15, 5, 15)
  assert 0 < ref["pretrained"]["accuracy"] <= best and 0 < ref["fine_tuned"]["accuracy"] <= best
  paper = padlock_retrain.PAPER["from_scratch"]["accuracy"]
  se = math.sqrt(paper * (1 - paper) / 10_240)
  assert abs(ref["from_scratch"]["accuracy"] - paper) < 2 * se
  learned = dict(delusion_app_c=(0.5, 0.1), accuracy=(0.2, 0.01))
  results = dict(exact=ref, paper_table=padlock_retrain.PAPER, rows=[learned, learned],
                 from_scratch=dict(accuracy=(0.0005, 0.0001)))
  table = padlock_retrain.format_cells(results)
  assert f"| {ref['pretrained']['delusion_app_c']:.4f} | 0.5000 ± 0.1000 |" in table
  assert padlock_retrain.format_cells(dict(results, exact=None)) is None
  # At n + 2^m = 47 flips the fine-tuned model is not enumerated (hours); the rest is.
  long = padlock_retrain.exact_reference(tasks.make("padlock", num_switches=15, num_secret=5,
                                                    random_start=True, horizon=16 + 47))
  assert long["fine_tuned"]["accuracy"] is None
  assert long["pretrained"]["accuracy"] > ref["pretrained"]["accuracy"]
  assert "| – | 0.5000 ± 0.1000 |" in padlock_retrain.format_cells(dict(results, exact=long))
