"""Checkpoints: round trip, resume = uninterrupted (bitwise, on CPU), corrupt and incompatible
checkpoints, non-finite losses, and a real `kill -9` / SIGTERM of `python -m launch.train`."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import checkpoints, metrics
from causal_meta import config as config_lib
from causal_meta import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = ("env_steps_per_second", "updates_per_second")


def tiny_config(updates=60, hidden=16):
  c = config_lib.default()
  c.task.name = "bandit"
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = hidden
  c.batch_size = 32
  c.num_updates = updates
  c.updates_per_call = c.log_every = c.checkpoint_every = 10
  c.eval_episodes = 64
  return c


def _state(config):
  task, agent = config_lib.validate(config)
  return train.init_state(agent, train.make_optimizer(config), config.seed)


def _config_dict(config):
  return json.loads(config.to_json_best_effort())


def _without_timing(rows):
  return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _save_steps(workdir, config, steps):
  state = _state(config)
  mngr = checkpoints.manager(workdir, keep=5)
  for s in steps:  # distinct contents per step: params shifted by s
    st = state._replace(params=jax.tree.map(lambda p: p + s, state.params),
                        step=jnp.asarray(s, jnp.int32))
    checkpoints.save(mngr, st, _config_dict(config))
  mngr.wait_until_finished()
  mngr.close()
  return state


def test_round_trip_restores_every_part_of_the_state(tmp_path):
  c = tiny_config()
  template = _save_steps(str(tmp_path), c, [10, 20])
  mngr = checkpoints.manager(str(tmp_path), keep=5)
  restored = checkpoints.restore_latest(mngr, template, _config_dict(c))
  assert isinstance(restored, train.TrainState) and int(restored.step) == 20
  _assert_trees_equal(restored.params, jax.tree.map(lambda p: p + 20, template.params))
  _assert_trees_equal((restored.opt_state, restored.key), (template.opt_state, template.key))
  # Other hyperparameters stop the resume (one line naming them) unless allowed, when a
  # warning names them; resumable changes pass silently. Every change is reported.
  other = tiny_config()
  other.optim.learning_rate, other.num_updates = 0.1, 40
  with pytest.raises(checkpoints.ConfigChanged,
                     match=r"^workdir's checkpoint .*: optim.learning_rate: 0.003 there, 0.1 "
                           r"here; rerun with that config.*--allow_config_change$"):
    checkpoints.restore_latest(mngr, template, _config_dict(other))
  warnings, changes = [], []
  checkpoints.restore_latest(mngr, template, _config_dict(other), warn=warnings.append,
                             allow_changes=True, changes=changes)
  assert len(warnings) == 1 and "optim.learning_rate: 0.003 there, 0.1 here" in warnings[0]
  assert "num_updates" not in warnings[0] and len(changes) == 2
  other.optim.learning_rate = c.optim.learning_rate
  warnings, changes = [], []
  checkpoints.restore_latest(mngr, template, _config_dict(other), warn=warnings.append,
                             changes=changes)
  assert not warnings and changes == [f"num_updates: {c.num_updates} there, 40 here"]
  # A field added since the checkpoint was written is named only if set off its default.
  older = _config_dict(c)
  del older["optim"]["weight_decay"]
  mngr_old = checkpoints.manager(str(tmp_path / "old"), keep=5)
  checkpoints.save(mngr_old, template, older)
  mngr_old.wait_until_finished()
  defaults = _config_dict(config_lib.default())
  for weight_decay, want in ((0.0, []), (0.1, ["optim.weight_decay: None there, 0.1 here"])):
    newer, warnings = tiny_config(), []
    newer.optim.weight_decay = weight_decay
    checkpoints.restore_latest(mngr_old, template, _config_dict(newer), warn=warnings.append,
                               defaults=defaults, allow_changes=True)
    assert [w.split("config: ")[-1] for w in warnings] == want
  host, meta = checkpoints.load_state_dict(str(tmp_path))
  assert meta["step"] == 20 and meta["config"]["agent"]["hidden"] == 16
  # No pickle anywhere on disk: orbax arrays + JSON.
  for root, _, files in os.walk(tmp_path):
    for f in files:
      assert not f.endswith((".pkl", ".pickle"))


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path):
  c = tiny_config()
  template = _save_steps(str(tmp_path), c, [10, 20])
  latest = os.path.join(checkpoints.directory(str(tmp_path)), "20")
  for root, _, files in os.walk(os.path.join(latest, "state")):
    for f in files:  # truncate every array file to half its size
      path = os.path.join(root, f)
      with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
  warnings = []
  mngr = checkpoints.manager(str(tmp_path), keep=5)
  restored = checkpoints.restore_latest(mngr, template, _config_dict(c), warn=warnings.append)
  assert int(restored.step) == 10
  _assert_trees_equal(restored.params, jax.tree.map(lambda p: p + 10, template.params))
  assert len(warnings) == 1 and latest in warnings[0] and "corrupt" in warnings[0]
  assert mngr.all_steps() == [10]  # moved aside, so the next save at 20 can happen


def test_flipped_bytes_are_caught_by_the_digest(tmp_path):
  c = tiny_config()
  template = _save_steps(str(tmp_path), c, [10, 20])
  meta_dir = os.path.join(checkpoints.directory(str(tmp_path)), "20", "meta")
  meta_file = [os.path.join(meta_dir, f) for f in os.listdir(meta_dir) if f != "commit_success.txt"]
  for path in meta_file:  # a valid JSON whose digest no longer matches the arrays
    text = open(path).read()
    if "state_sha256" in text:
      open(path, "w").write(text.replace('"state_sha256": "', '"state_sha256": "0'))
  warnings = []
  restored = checkpoints.restore_latest(checkpoints.manager(str(tmp_path), 5), template,
                                        _config_dict(c), warn=warnings.append)
  assert int(restored.step) == 10 and "digest" in warnings[0]


def test_restoring_another_model_shape_is_a_one_line_error(tmp_path):
  _save_steps(str(tmp_path), tiny_config(hidden=16), [10])
  other = tiny_config(hidden=32)
  with pytest.raises(checkpoints.IncompatibleCheckpoint) as e:
    checkpoints.restore_latest(checkpoints.manager(str(tmp_path), 5), _state(other),
                               _config_dict(other))
  message = str(e.value)
  assert "\n" not in message and "agent.hidden: 16 there, 32 here" in message


def test_resume_in_process_equals_uninterrupted_run(tmp_path):
  full = train.train_and_evaluate(tiny_config(40), str(tmp_path / "full"), verbose=False)
  train.train_and_evaluate(tiny_config(20), str(tmp_path / "split"), verbose=False)
  resumed = train.train_and_evaluate(tiny_config(40), str(tmp_path / "split"), verbose=False)
  assert resumed["resumed_from"] == 20
  _assert_trees_equal(full["params"], resumed["params"])
  rows = [metrics.read_jsonl(str(tmp_path / d / "metrics.jsonl")) for d in ("full", "split")]
  assert [r["step"] for r in rows[1]] == [10, 20, 30, 40]
  assert _without_timing(rows[0]) == _without_timing(rows[1])
  assert resumed["history"] and len(resumed["history"]) == 4
  # keep_checkpoints=3 keeps the last three.
  assert sorted(os.listdir(tmp_path / "split" / "checkpoints")) == ["20", "30", "40"]


def test_resume_with_updates_per_call_not_dividing_the_updates_left_is_a_one_line_error(
    tmp_path):
  train.train_and_evaluate(tiny_config(20), str(tmp_path), verbose=False)
  c = tiny_config(60)  # 40 updates left, not whole chunks of 30
  c.updates_per_call = c.log_every = c.checkpoint_every = 30
  with pytest.raises(checkpoints.IncompatibleCheckpoint) as e:
    train.train_and_evaluate(c, str(tmp_path), verbose=False, warn=lambda _: None)
  message = str(e.value)
  assert "\n" not in message
  assert "updates_per_call (30)" in message and "checkpoint at update 20" in message
  # Nothing the run had is lost: its checkpoints and metrics are as they were.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
  assert [r["step"] for r in metrics.read_jsonl(str(tmp_path / "metrics.jsonl"))] == [10, 20]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  make_update = train.make_update

  def poisoned(task, agent, optimizer, config, mesh=None):
    update = make_update(task, agent, optimizer, config, mesh)

    def bad_update(state):  # update 25 writes NaN params: update 26's loss is NaN
      new, m = update(state)
      poison = jax.tree.map(lambda p: jnp.where(state.step >= 24, jnp.nan, p), new.params)
      return new._replace(params=poison), m
    return bad_update

  monkeypatch.setattr(train, "make_update", poisoned)
  with pytest.raises(train.NonFiniteLoss, match="non-finite loss at update step 26"):
    train.train_and_evaluate(tiny_config(60), str(tmp_path), verbose=False)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
  assert [r["step"] for r in metrics.read_jsonl(str(tmp_path / "metrics.jsonl"))] == [10, 20]
  host, _ = checkpoints.load_state_dict(str(tmp_path))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(host))


# ------------------------------------------------------------------------ real subprocesses
CONFIG_FILE = """
from causal_meta import config as config_lib
def get_config():
  c = config_lib.default()
  c.task.name = "bandit"
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = 16
  c.batch_size = 32
  c.num_updates = 200
  c.updates_per_call = c.log_every = c.checkpoint_every = 10
  c.eval_episodes = 64
  return c
"""


def _launch(config_path, workdir):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.Popen([sys.executable, "-m", "launch.train", f"--config={config_path}",
                           f"--workdir={workdir}", "--noprogress"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc, workdir, after=0, timeout=240):
  """Polls until a committed checkpoint with step > `after` exists; returns its step."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = [int(d) for d in (os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else [])
             if d.isdigit()]
    if steps and max(steps) > after:
      return max(steps)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.02)
  raise TimeoutError("no checkpoint appeared")


def test_kill_9_then_sigterm_then_resume_is_bitwise_identical(tmp_path):
  """SIGKILL right after the first checkpoint, resume, SIGTERM (saves, exits 143), resume to
  the end: params and metrics equal an uninterrupted run's."""
  config_path = tmp_path / "tiny.py"
  config_path.write_text(CONFIG_FILE)
  ref_dir, run_dir = str(tmp_path / "ref"), str(tmp_path / "run")
  ref = _launch(config_path, ref_dir)  # in parallel with the interrupted run
  proc = _launch(config_path, run_dir)
  _wait_for_checkpoint(proc, run_dir)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  assert not os.path.exists(os.path.join(run_dir, "summary.json"))

  proc = _launch(config_path, run_dir)
  first = max(int(d) for d in os.listdir(os.path.join(run_dir, "checkpoints")) if d.isdigit())
  _wait_for_checkpoint(proc, run_dir, after=first)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 143, err
  assert "preempted" in err and "rerun the same command" in err
  preempted_at = int(err.split("preempted (SIGTERM) at update ")[1].split(";")[0])
  assert preempted_at < 200 and os.path.isdir(
      os.path.join(run_dir, "checkpoints", str(preempted_at)))

  proc = _launch(config_path, run_dir)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  assert "resuming from the checkpoint" in out
  out, err = ref.communicate(timeout=300)
  assert ref.returncode == 0, err

  a, _ = checkpoints.load_state_dict(ref_dir)
  b, _ = checkpoints.load_state_dict(run_dir)
  assert int(a["step"]) == int(b["step"]) == 200
  _assert_trees_equal(a, b)
  rows = [metrics.read_jsonl(os.path.join(d, "metrics.jsonl")) for d in (ref_dir, run_dir)]
  assert [r["step"] for r in rows[1]] == list(range(10, 201, 10))
  assert _without_timing(rows[0]) == _without_timing(rows[1])
  summary = json.load(open(os.path.join(run_dir, "summary.json")))
  assert summary["updates"] == 200 and summary["resumed_from"] == preempted_at
