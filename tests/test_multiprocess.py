"""A real two-process run on localhost (`jax.distributed`, JAX's CPU collectives): the same
numbers as one process splitting the same global batch over two devices, one copy of each
file, a SIGTERM to one process checkpointing both, and a kill -9 of both resuming."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from causal_meta import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every update's batch of 8 episodes is split over the two processes' devices.
TINY = ["--config=experiments/bandit.py", "--config.batch_size=8", "--config.eval_episodes=16",
        "--config.updates_per_call=5", "--config.log_every=10", "--config.checkpoint_every=5",
        "--noprogress"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(devices: int = 1, process: int | None = None) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  cache = env.pop("JAX_COMPILATION_CACHE_DIR", None)  # this worker's (tests/conftest.py)
  if cache and process is not None:
    # A folder per process id: no two processes write one entry at once, and a restarted
    # process finds what it compiled before.
    env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(cache, f"process_{process}")
  return env


def _start(workdir, num_updates: int, port: int) -> list[subprocess.Popen]:
  """Both processes of a two-process job, as one would start them on two hosts."""
  return [subprocess.Popen(
      [sys.executable, "-m", "launch.train", *TINY, f"--workdir={workdir}",
       f"--config.num_updates={num_updates}", "--config.distributed.enabled=True",
       f"--config.distributed.coordinator_address=localhost:{port}",
       "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}"],
      cwd=ROOT, env=_env(process=i), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)
      for i in range(2)]


def _wait(procs, timeout: float = 240) -> list[tuple[int, str]]:
  return [(p.wait(timeout), p.stdout.read()) for p in procs]


def _latest(workdir) -> int:
  d = checkpoints.directory(str(workdir))
  steps = [int(n) for n in os.listdir(d) if n.isdigit()] if os.path.isdir(d) else []
  return max(steps, default=0)


def _wait_for_checkpoint_after(workdir, step: int, procs, timeout: float = 180) -> None:
  end = time.time() + timeout
  while _latest(workdir) <= step:
    assert time.time() < end and all(p.poll() is None for p in procs), _wait(procs, 5)
    time.sleep(0.02)


def _files(workdir) -> list[str]:
  out = []
  for root, _, names in os.walk(workdir):
    rel = os.path.relpath(root, workdir)
    if rel.split(os.sep)[0] in ("checkpoints", "tensorboard"):
      continue
    out += [os.path.normpath(os.path.join(rel, n)) for n in names]
  return sorted(out)


def _rows(workdir) -> dict[int, dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r for r in map(json.loads, f)}


def test_two_processes_equal_one_and_survive_sigterm_and_kill(tmp_path):
  multi, single = tmp_path / "two_processes", tmp_path / "one_process"
  long_run = 100_000  # stopped from outside long before it ends

  # SIGTERM to process 1 only: both agree at orbax's preemption point, save one checkpoint
  # and exit 143.
  procs = _start(multi, long_run, _free_port())
  _wait_for_checkpoint_after(multi, 0, procs)
  procs[1].send_signal(signal.SIGTERM)
  results = _wait(procs)
  assert [rc for rc, _ in results] == [143, 143], results
  preempted = _latest(multi)
  checkpoints.load_state_dict(str(multi), preempted)  # complete: its digest matches

  # Restarted, it resumes there; kill -9 of both processes mid-run.
  procs = _start(multi, long_run, _free_port())
  _wait_for_checkpoint_after(multi, preempted, procs)
  for p in procs:
    p.kill()
  _wait(procs)
  killed = _latest(multi)

  # Rerun to a few chunks past the last checkpoint: resumes (the dead process's lock taken
  # over), finishes, and equals one process that trained the same global batches throughout.
  total = killed + 10
  procs = _start(multi, total, _free_port())
  results = _wait(procs)
  assert [rc for rc, _ in results] == [0, 0], results
  assert f"resuming from the checkpoint at update {killed}" in results[0][1]
  out = subprocess.run([sys.executable, "-m", "launch.train", *TINY, f"--workdir={single}",
                        f"--config.num_updates={total}"], cwd=ROOT, env=_env(devices=2),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stdout + out.stderr

  two, one = _rows(multi), _rows(single)
  assert sorted(two) == sorted(one)
  for step in one:
    for k in ("loss", "counterfactual_loss", "kl_action_interventional", "kl_action_conditional"):
      np.testing.assert_allclose(two[step][k], one[step][k], rtol=1e-4, err_msg=f"{k}@{step}")
  a, _ = checkpoints.load_state_dict(str(multi))
  b, _ = checkpoints.load_state_dict(str(single))
  assert int(a["step"]) == int(b["step"]) == total
  for x, y in zip(jax_leaves(a["params"]), jax_leaves(b["params"])):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)

  # One copy of each file: process 1 wrote none of its own; one event file per start.
  assert _files(multi) == sorted(_files(single) + ["resumes.jsonl"])
  assert len(list((multi / "tensorboard").glob("events.out.tfevents.*"))) == 3
  summary = json.loads((multi / "summary.json").read_text())
  assert summary["mesh_size"] == 2 and summary["resumed_from"] == killed
  resumes = [json.loads(l) for l in (multi / "resumes.jsonl").read_text().splitlines()]
  assert [r["step"] for r in resumes] == [preempted, killed]
  assert not (multi / "lock").exists()


def jax_leaves(tree):
  import jax
  return jax.tree.leaves(tree)
