"""`python -m launch.train` on bad input: one `error:` line naming the field on stderr, exit
status 2, no traceback, an existing workdir left untouched. Also: a non-finite loss (status 1),
a checkpoint of another model shape (status 2), `--check` dry runs, `launch.reproduce`'s
bad input, and `launch.sweep`'s bad flags (shards, seeds, collect).

Each invocation is a real subprocess (~3 s of imports each), one per test so that pytest-xdist
spreads them over the cores.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from causal_meta import checkpoints
from causal_meta import config as config_lib
from causal_meta import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG_FILE = """
from causal_meta import config as config_lib
def get_config():
  c = config_lib.default()
  c.task.name = "bandit"
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = 16
  c.batch_size = 32
  c.num_updates = 40
  c.updates_per_call = c.log_every = 10
  c.eval_episodes = 64
  return c
"""

# (flags after --config=FILE --workdir=DIR, text the one error line must contain)
BAD_INPUTS = {
    "unknown_task": (["--config.task.name=chess"], "config.task.name"),
    "unknown_agent": (["--config.agent.kind=rnn"], "config.agent.kind"),
    "unknown_teaching": (["--config.teaching=imitation"], "config.teaching"),
    "zero_batch": (["--config.batch_size=0"], "config.batch_size"),
    "negative_updates": (["--config.num_updates=-5"], "config.num_updates"),
    "zero_hidden": (["--config.agent.hidden=0"], "config.agent.hidden"),
    "zero_scan_unroll": (["--config.scan_unroll=0"], "config.scan_unroll"),
    "probability_above_one": (["--config.mixed_prob=1.5"], "config.mixed_prob"),
    "negative_learning_rate": (["--config.optim.learning_rate=-1"], "config.optim.learning_rate"),
    "b2_out_of_range": (["--config.optim.b2=1.5"], "config.optim.b2"),
    "negative_loss_weight": (["--config.loss.factual_weight=-1"], "config.loss.factual_weight"),
    "task_probability": (["--config.task.bandit.best_arm_prob=2.0"], "best_arm_prob"),
    "zero_eval_episodes": (["--config.eval_episodes=0"], "config.eval_episodes"),
    "updates_not_multiple": (["--config.updates_per_call=7"], "updates_per_call"),
    "checkpoint_not_multiple": (["--config.checkpoint_every=15"], "config.checkpoint_every"),
    "zero_keep": (["--config.keep_checkpoints=0"], "config.keep_checkpoints"),
    "heads_do_not_divide": (["--config.agent.kind=transformer", "--config.agent.num_heads=3"],
                            "num_heads"),
    "non_numeric": (["--config.batch_size=abc"], "config.batch_size"),
    "non_numeric_float": (["--config.mixed_prob=half"], "config.mixed_prob"),
    "non_boolean": (["--config.tensorboard=maybe"], "config.tensorboard"),
    "unknown_field": (["--config.nofield=1"], "nofield"),
    "misspelled_field": (["--config.agent.hiden=3"],
                         "error: --config.agent.hiden: no such field; did you mean agent.hidden?"),
    "field_of_a_number": (["--config.agent.hidden.x=3"], "--config.agent.hidden.x: no such field"),
    "missing_config_file": (["--config=/nonexistent/experiment.py"], "/nonexistent/experiment.py"),
    "stray_argument": (["extra"], "unexpected arguments: extra"),
    "coordinator_address": (["--config.distributed.enabled=True",
                             "--config.distributed.coordinator_address=localhost",
                             "--config.distributed.num_processes=2",
                             "--config.distributed.process_id=0"],
                            "config.distributed.coordinator_address: must be HOST:PORT"),
    "process_id_out_of_range": (["--config.distributed.enabled=True",
                                 "--config.distributed.coordinator_address=localhost:1234",
                                 "--config.distributed.num_processes=2",
                                 "--config.distributed.process_id=2"],
                                "config.distributed.process_id: must be in [0, num_processes"),
    "process_fields_partly_set": (["--config.distributed.enabled=True",
                                   "--config.distributed.num_processes=2"],
                                  "set together or not at all"),
    "unknown_config_size": ([f"--config={os.path.join(ROOT, 'experiments', 'padlock.py')}:tpu"],
                            "unknown size 'tpu'; allowed: cpu, gpu"),
}


def _run(args, timeout=300, module="launch.train"):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)
  return proc.returncode, proc.stdout, proc.stderr


def _listing(path):
  return sorted((os.path.relpath(os.path.join(r, f), path), os.path.getmtime(os.path.join(r, f)))
                for r, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A config file, an existing workdir that must stay as it is, and a checkpoint of a
  16-unit model (cheap: no subprocess; one per xdist worker)."""
  tmp = tmp_path_factory.mktemp("cli")
  config_path = tmp / "tiny.py"
  config_path.write_text(CONFIG_FILE)
  workdir = tmp / "existing"
  workdir.mkdir()
  (workdir / "metrics.jsonl").write_text('{"step": 10}\n')
  c = config_lib.default()
  c.task.name = "bandit"
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = 16
  task, agent = config_lib.validate(c)
  mngr = checkpoints.manager(str(tmp / "other_model"), keep=2)
  checkpoints.save(mngr, train.init_state(agent, train.make_optimizer(c), 0),
                   json.loads(c.to_json_best_effort()))
  mngr.wait_until_finished()
  mngr.close()
  return tmp, config_path, workdir


def _one_error_line(stderr):
  lines = [l for l in stderr.splitlines() if l.strip()]
  assert len(lines) == 1, stderr
  assert lines[0].startswith("error: ") and "Traceback" not in stderr
  return lines[0]


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(setup, name):
  """One subprocess per case, so pytest-xdist spreads them over the cores."""
  _, config_path, workdir = setup
  flags, expected = BAD_INPUTS[name]
  config_flag = [] if any(f.startswith("--config=") for f in flags) else [
      f"--config={config_path}"]
  before = _listing(workdir)
  status, _, stderr = _run(config_flag + [f"--workdir={workdir}", *flags])
  line = _one_error_line(stderr)
  assert status == 2, stderr
  assert expected in line
  assert _listing(workdir) == before  # the existing workdir is untouched
  if name == "unknown_agent":  # the allowed values are named
    assert "allowed: lstm, gru, transformer" in line
  if name == "unknown_teaching":
    assert "allowed: counterfactual, demonstration, mixed" in line


def test_missing_workdir(setup):
  _, config_path, _ = setup
  status, _, stderr = _run([f"--config={config_path}"])
  assert status == 2 and "--workdir" in _one_error_line(stderr)


def test_non_finite_loss_names_the_step_and_exits_1(setup):
  tmp, config_path, _ = setup
  status, _, stderr = _run([f"--config={config_path}", f"--workdir={tmp / 'nan'}",
                            "--config.optim.learning_rate=1e38", "--noprogress"])
  line = _one_error_line(stderr)
  assert status == 1 and "non-finite loss at update step" in line


def test_checkpoint_of_another_model_is_one_line(setup):
  tmp, config_path, _ = setup
  status, _, stderr = _run([f"--config={config_path}", f"--workdir={tmp / 'other_model'}",
                            "--config.agent.hidden=32", "--noprogress"])
  line = _one_error_line(stderr)
  assert status == 2 and "different model" in line and "agent.hidden: 16 there, 32 here" in line


def test_check_validates_and_writes_nothing(setup):
  """`--check`: a dry run. It says what would run and exits 0 without creating the workdir;
  a bad field still fails it, as it would fail the run."""
  tmp, config_path, _ = setup
  workdir = tmp / "checked"
  status, stdout, stderr = _run([f"--config={config_path}", f"--workdir={workdir}", "--check"])
  assert status == 0, stderr
  assert stdout.strip() == (f"check: bandit, lstm, counterfactual teaching, batch 32, 40 updates"
                            f" -> {workdir}")
  assert not workdir.exists()
  status, _, stderr = _run([f"--config={config_path}", f"--workdir={workdir}", "--check",
                            "--config.batch_size=0"])
  assert status == 2 and "config.batch_size" in _one_error_line(stderr)


def test_reproduce_bad_name_is_one_line_and_check_writes_nothing(tmp_path):
  status, _, stderr = _run(["chess", f"--workdir={tmp_path}"], module="launch.reproduce")
  assert status == 2 and "expected one NAME" in _one_error_line(stderr)
  assert "got chess" in stderr and "prize_or_frog" in stderr
  workdir = tmp_path / "bandit"
  status, stdout, stderr = _run(["bandit", f"--workdir={workdir}", "--check"],
                                module="launch.reproduce")
  assert status == 0, stderr
  assert stdout.strip() == f"check: reproduce bandit -> {workdir}" and not workdir.exists()


GRID = "--grid=teaching=counterfactual,demonstration,mixed"
# (launch.sweep flags after --config=FILE --workdir=DIR, text the one error line must contain)
SWEEP_BAD_INPUTS = {
    "shard_past_the_count": ([GRID, "--shard=3/2"],
                             "--shard: expected i/N with 0 <= i < N, got '3/2'"),
    "shard_of_zero": ([GRID, "--shard=1/0"], "--shard: expected i/N with 0 <= i < N"),
    "zero_seeds": (["--seeds=0"], "--seeds must be a positive integer, got 0"),
    "negative_seeds": (["--seeds=-2"], "--seeds must be a positive integer, got -2"),
    "shard_and_seeds": (["--seeds=2", "--shard=0/2"], "--seeds and --shard are exclusive"),
    "collect_and_seeds": (["--seeds=2", "--collect"], "--seeds and --collect are exclusive"),
    "collect_and_shard": ([GRID, "--collect", "--shard=0/2"],
                          "--collect and --shard are exclusive"),
    "repeated_axis": (["--grid=agent.kind=lstm", "--grid=agent.kind=gru"],
                      "--grid: agent.kind is given twice"),
    "collect_missing_runs": ([GRID, "--collect"], "--collect: 3 of 3 runs have no summary.json"),
}


@pytest.mark.parametrize("name", sorted(SWEEP_BAD_INPUTS))
def test_sweep_bad_flags_are_one_line_and_exit_2(setup, name):
  tmp, config_path, _ = setup
  flags, expected = SWEEP_BAD_INPUTS[name]
  workdir = tmp / f"sweep_{name}"
  status, _, stderr = _run([f"--config={config_path}", f"--workdir={workdir}", *flags],
                           module="launch.sweep")
  line = _one_error_line(stderr)
  assert status == 2, stderr
  assert expected in line
  assert not workdir.exists()
  if name == "collect_missing_runs":  # the missing runs are named, in grid order
    assert line.endswith(": teaching=counterfactual, teaching=demonstration, teaching=mixed")


def test_sweep_shard_check_lists_only_its_runs(setup):
  """Shard 0 of 2 of a 3-run grid: runs 0 and 2 (round-robin), named by full field path."""
  tmp, config_path, _ = setup
  workdir = tmp / "sweep_check"
  status, stdout, stderr = _run([f"--config={config_path}", f"--workdir={workdir}", GRID,
                                 "--shard=0/2", "--check"], module="launch.sweep")
  assert status == 0, stderr
  head = "check: bandit, lstm, {} teaching, batch 32, 40 updates -> {}"
  assert stdout.splitlines() == [
      head.format("counterfactual", workdir / "teaching=counterfactual"),
      head.format("mixed", workdir / "teaching=mixed")]
  assert not workdir.exists()


def test_workdir_that_is_a_file_is_one_line(setup):
  tmp, config_path, _ = setup
  path = tmp / "a_file"
  path.write_text("mine\n")
  status, _, stderr = _run([f"--config={config_path}", f"--workdir={path}"])
  assert status == 2 and "is an existing file" in _one_error_line(stderr)
  assert path.read_text() == "mine\n"


def test_workdir_lock_and_config_changes_on_resume(setup):
  """A workdir locked by a live process refuses a second run (one line naming the holder);
  a dead holder's lock is taken over with a warning. Resuming with a changed learning rate
  stops (one line listing it) unless --allow_config_change; a longer run resumes, and both
  resumes are recorded in resumes.jsonl."""
  tmp, config_path, _ = setup
  workdir = tmp / "locked"
  workdir.mkdir()
  args = [f"--config={config_path}", f"--workdir={workdir}", "--noprogress"]
  holder = f"{socket.gethostname()} pid {os.getpid()}"  # this test process: alive
  (workdir / "lock").write_text(holder)
  status, _, stderr = _run(args)
  assert status == 2 and f"in use by {holder}" in _one_error_line(stderr)
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  (workdir / "lock").write_text(f"{socket.gethostname()} pid {dead}")
  status, _, stderr = _run(args + ["--config.num_updates=20"])
  assert status == 0 and f"pid {dead}) is gone" in stderr, stderr
  assert not (workdir / "lock").exists()  # released at the end

  status, _, stderr = _run(args + ["--config.optim.learning_rate=0.01"])
  line = _one_error_line(stderr)
  assert status == 2 and "optim.learning_rate: 0.003 there, 0.01 here" in line, line
  assert "num_updates" not in line  # 20 -> 40 may change on resume
  status, _, stderr = _run(args + ["--config.optim.learning_rate=0.01",
                                   "--allow_config_change"])
  assert status == 0, stderr
  resumes = [json.loads(l) for l in (workdir / "resumes.jsonl").read_text().splitlines()]
  assert [r["step"] for r in resumes] == [20]
  assert sorted(resumes[0]["changes"]) == ["num_updates: 20 there, 40 here",
                                           "optim.learning_rate: 0.003 there, 0.01 here"]
