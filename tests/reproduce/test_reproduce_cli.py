"""`python -m launch.reproduce NAME --workdir=DIR`: the names, bad input, and the configs that
the launcher loads from experiments/."""

import os
import pathlib
import subprocess
import sys

import pytest

from causal_meta import reproduce

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMES = ("prize_or_frog", "bandit", "mountain_race", "card_game", "stock_trader", "planning",
         "dice", "boltzmann", "padlock", "tictactoe", "tictactoe_exact", "padlock_exact",
         "offline",
         "mixed_authors", "changing_latent")


def run(args, timeout=120):
  return subprocess.run([sys.executable, "-m", "launch.reproduce", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


def test_unknown_result_name_is_one_line_exit_2(tmp_path):
  proc = run(["chess", f"--workdir={tmp_path / 'w'}"])
  assert proc.returncode == 2
  assert "bandit" in proc.stderr and "Traceback" not in proc.stderr
  assert not os.path.exists(tmp_path / "w")


def test_unknown_name_exits_2_without_traceback(tmp_path):
  workdir = tmp_path / "nope"
  proc = run(["no_such_result", f"--workdir={workdir}", "--quick"])
  assert proc.returncode == 2
  err = proc.stderr.strip().splitlines()
  assert len(err) == 1 and "Traceback" not in proc.stderr
  for name in ("mountain_race", "card_game", "stock_trader", "planning"):
    assert name in err[0]
  assert not os.path.exists(workdir)


def test_every_result_has_a_runner_and_its_config_loads():
  assert sorted(reproduce.RESULTS) == sorted(NAMES)
  assert set(reproduce.CONFIGS) <= set(reproduce.RESULTS)
  for name, (file, size) in reproduce.CONFIGS.items():
    path = ROOT / "experiments" / file
    for arg in ("quick", size):
      assert reproduce.load_config(str(path), arg).size == arg, (name, arg)


def test_check_loads_the_config_and_writes_nothing(tmp_path):
  for name in reproduce.CONFIGS:
    workdir = tmp_path / name
    proc = run([name, f"--workdir={workdir}", "--check", "--quick"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"check: reproduce {name} (quick) -> {workdir}"
    assert not workdir.exists()


def test_check_builds_every_config_and_names_what_is_wrong():
  assert set(reproduce.CHECKS) == set(reproduce.CONFIGS)
  for name, (file, size) in reproduce.CONFIGS.items():
    for arg in ("quick", size):
      reproduce.CHECKS[name](reproduce.load_config(str(ROOT / "experiments" / file), arg))
  bad = reproduce.load_config(str(ROOT / "experiments" / "tictactoe_retrain.py"), "gpu")
  bad.model = dict(bad.model, num_heads=5)
  with pytest.raises(ValueError, match="num_heads"):
    reproduce.CHECKS["tictactoe"](bad)
  bad = reproduce.load_config(str(ROOT / "experiments" / "offline.py"), "bandit")
  bad.teach_latents = (5, 0)
  with pytest.raises(ValueError, match="K̂"):
    reproduce.CHECKS["offline"](bad)
  bad = reproduce.load_config(str(ROOT / "experiments" / "mixed_authors.py"), "padlock")
  bad.task = dict(epsilon=2.0)
  with pytest.raises(ValueError, match="epsilon"):
    reproduce.CHECKS["mixed_authors"](bad)


def test_config_file_and_overrides_reach_the_runner(tmp_path):
  """--config=FILE:ARG with --config.FIELD=VALUE, as launch.train takes them: the runner gets
  the overridden config (its check rejects a bad value) and a misspelt field is one error
  line."""
  file = "--config=experiments/tictactoe_retrain.py:quick"
  proc = run(["tictactoe", f"--workdir={tmp_path / 't'}", file, "--config.rounds=1", "--check"])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == (f"check: reproduce tictactoe "
                                 f"(experiments/tictactoe_retrain.py:quick) -> {tmp_path / 't'}")
  for extra, message in ((["--config.model.num_heads=5"], "num_heads 5"),
                         (["--config.pretrain_update=3"], "did you mean pretrain_updates"),
                         (["--size=cpu"], "--config replaces --size")):
    proc = run(["tictactoe", f"--workdir={tmp_path / 't'}", file, *extra])
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1
  proc = run(["bandit", f"--workdir={tmp_path / 't'}", file])
  assert proc.returncode == 2 and "--config is for" in proc.stderr
  assert not (tmp_path / "t").exists()
