"""The benchmark harness runs and reports; the update compiles once (no silent recompiles).
Speed itself is never asserted here (see BENCHMARKS.md)."""

import importlib.util
import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import benchmark
from causal_meta import config as config_lib
from causal_meta import evaluate, rollout, train


def test_update_is_traced_once_over_many_chunks():
  config = config_lib.default()
  config.batch_size, config.updates_per_call = 16, 2
  config.agent.hidden = 8
  task, agent = config_lib.validate(config)
  optimizer = train.make_optimizer(config)
  update = chex.assert_max_traces(train.make_update(task, agent, optimizer, config), n=1)
  chunk = train.make_train_chunk(update, config.updates_per_call)
  state = train.init_state(agent, optimizer, 0)
  for _ in range(3):
    state, metrics = chunk(state)
  assert int(state.step) == 6
  assert metrics["loss"].shape == (2,)
  chex.clear_trace_counter()


def test_benchmark_row(tmp_path):
  base = config_lib.default()
  base.agent.hidden = 8
  base.updates_per_call = 2
  row = benchmark.measure(benchmark.setting(base, 32, 5), repeats=2,
                          profile_dir=str(tmp_path))
  assert row["top_ops"] and row["top_ops"][0]["ms"] > 0  # the traced update's costliest op
  assert row["batch_size"] == 32 and row["horizon"] == 5
  assert row["env_steps_per_second"] > 0 and row["rollout_env_steps_per_second"] > 0
  assert row["compile_seconds"] > 0
  assert row["gflop_per_update"] is None or row["gflop_per_update"] > 0
  assert benchmark.format_row(row).startswith("| ")
  assert row["packed_fraction"] is None


def test_benchmark_counts_the_packed_pass_it_ran():
  """With packing, the update's one `cond` chooses between the packed learning pass and the
  plain one: the FLOP count lies between the two and says how often the packed one ran."""
  base = config_lib.default()
  base.task.name = "padlock"
  base.task.padlock.update(num_switches=4, num_secret=2, epsilon=0.3)
  base.agent.update(kind="transformer", width=16, num_layers=1, num_heads=2, packing=2)
  base.teaching, base.updates_per_call = "demonstration", 2
  config = benchmark.setting(base, 16, 4)
  row = benchmark.measure(config, repeats=1)
  task, agent = config_lib.validate(config)
  optimizer = train.make_optimizer(config)
  state = train.init_state(agent, optimizer, 0)
  update = train.make_update(task, agent, optimizer, config)
  gflop = [benchmark.matmul_flops(lambda s: update(s)[1], state, branch=b) / 1e9
           for b in (min, max)]
  assert gflop[0] < gflop[1]  # packing halves the learning pass's rows
  assert 0 <= row["packed_fraction"] <= 1
  assert gflop[0] <= row["gflop_per_update"] <= gflop[1]
  want = row["packed_fraction"] * gflop[0] + (1 - row["packed_fraction"]) * gflop[1]
  np.testing.assert_allclose(row["gflop_per_update"], want, rtol=1e-6)


# XLA's out-of-memory errors: the GPU client's form (RESOURCE_EXHAUSTED), and what this 24 GB
# CPU raised for the transformer at B = 4,096, T = 100.
GPU_OUT_OF_MEMORY = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9 GiB."
CPU_OUT_OF_MEMORY = ("INTERNAL: Error dispatching computation: Out of memory allocating "
                     "28311689976 bytes.")

# `python -m launch.benchmark` with the first setting running out of device memory (faked:
# no CPU runs out at a test's size); the real harness measures the second.
OUT_OF_MEMORY_AT_B8 = """
import os
import sys
from absl import app
from causal_meta import benchmark
from launch import benchmark as launcher
measure = benchmark.measure
def fake(config, *args):
  if config.batch_size == 8:
    raise RuntimeError(os.environ["FAKE_ERROR"])
  return measure(config, *args)
benchmark.measure = fake
sys.argv[0] = "launch.benchmark"
app.run(launcher.main)
"""


@pytest.mark.parametrize("message", [GPU_OUT_OF_MEMORY, CPU_OUT_OF_MEMORY])
def test_benchmark_goes_on_past_a_setting_out_of_memory(tmp_path, message):
  """A setting that runs out of device memory is reported as such, the next one is measured,
  and the JSON holds both rows."""
  out = tmp_path / "rows.json"
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
      [sys.executable, "-c", OUT_OF_MEMORY_AT_B8, "--batch_sizes=8,4", "--horizons=3",
       "--hidden=8", "--updates_per_call=2", "--repeats=1", f"--json={out}"],
      cwd=root, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, FAKE_ERROR=message))
  assert proc.returncode == 0, proc.stderr[-2000:]
  detail = message.split(": ")[-1]  # "Out of memory ... 9 GiB.", "... 28311689976 bytes."
  assert f"B=8, T=3: out of device memory ({detail})" in proc.stdout
  rows = json.loads(out.read_text())
  assert rows[0] == dict(batch_size=8, horizon=3, error="out of device memory", detail=detail)
  assert rows[1]["batch_size"] == 4 and rows[1]["env_steps_per_second"] > 0


def test_only_running_out_of_memory_counts_as_such():
  assert benchmark.out_of_memory(RuntimeError(GPU_OUT_OF_MEMORY))
  assert benchmark.out_of_memory(RuntimeError(CPU_OUT_OF_MEMORY))
  assert not benchmark.out_of_memory(RuntimeError("INTERNAL: Error dispatching computation"))
  assert not benchmark.out_of_memory(ValueError("config.batch_size must be positive"))


def test_matmul_flops_multiplies_scan_trip_counts():
  """Brute force: a [4, 8] x [8, 8] product is 2·4·8·8 FLOPs; a scan of 7 runs it 7 times, a
  scan of 3 around that 21 times; a cond counts its costlier branch (or, asked, its cheaper
  one); jit is looked through."""
  one = 2 * 4 * 8 * 8

  def inner(x, w):
    return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=7)[0]

  def outer(x, w):
    return jax.lax.scan(lambda c, _: (jax.jit(inner)(c, w), None), x, None, length=3)[0]

  def branchy(x, w):
    return jax.lax.cond(x[0, 0] > 0, lambda: (x @ w) @ w, lambda: x @ w)

  x, w = jnp.ones((4, 8)), jnp.ones((8, 8))
  assert benchmark.matmul_flops(inner, x, w) == 7 * one
  assert benchmark.matmul_flops(outer, x, w) == 21 * one
  assert benchmark.matmul_flops(branchy, x, w) == 2 * one
  assert benchmark.matmul_flops(branchy, x, w, branch=min) == one
  # Reverse mode: each forward product becomes two (one per operand) in the backward scan.
  assert benchmark.matmul_flops(jax.grad(lambda x, w: inner(x, w).sum(), (0, 1)), x, w) \
      == 3 * 7 * one


def test_matmul_flops_of_the_lstm_learning_pass():
  """The recurrent teacher-forced pass, counted by hand, for B episodes of T tokens (one per
  interaction): per token the recurrent product (H x 4H) and the head (H x (A + 2A·O)); the
  input projection (H x 4H) once per vocabulary entry (V of them)."""
  config = config_lib.default()
  config.agent.hidden = H = 8
  config.task.bandit.horizon = T = 5
  B = 3
  task, agent = config_lib.validate(config)
  params = agent.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), B)
  A, O, V = task.num_actions, task.num_observations, agent.module.vocab_size
  want = B * T * (2 * H * 4 * H + 2 * H * (A + 2 * A * O)) + 2 * V * H * 4 * H
  assert benchmark.matmul_flops(lambda p: agent.teacher_force(p, traj), params) == want


def test_top_ops_summarises_a_trace(tmp_path):
  """A profiler trace of a jitted function is summarised into its costliest XLA ops."""
  x = jnp.ones((64, 64))
  f = jax.jit(lambda x: jnp.tanh(x @ x).sum())
  f(x).block_until_ready()
  benchmark.profile(lambda: f(x), str(tmp_path), calls=3)
  rows = benchmark.top_ops(str(tmp_path), n=5)
  assert 0 < len(rows) <= 5
  assert all(r["calls"] >= 1 and r["ms"] >= 0 for r in rows)
  assert [r["ms"] for r in rows] == sorted((r["ms"] for r in rows), reverse=True)
  assert 0 < sum(r["fraction"] for r in rows) <= 1 + 1e-9
  assert benchmark.format_top_ops(rows).startswith("| op |")


def test_time_to_target_stops_when_reached_and_gives_up_otherwise():
  config = config_lib.default()
  config.agent.hidden, config.batch_size, config.eval_episodes = 8, 16, 32
  config.task.bandit.horizon = 5
  easy = benchmark.time_to_target(config, target=100.0, eval_every=3, max_updates=30)
  assert easy["reached"] and easy["updates"] == 3 and easy["kl_action_interventional"] <= 100
  hard = benchmark.time_to_target(config, target=1e-12, eval_every=2, max_updates=4)
  assert not hard["reached"] and hard["updates"] == 4 and hard["env_steps"] == 4 * 16 * 5
  assert hard["total_seconds"] >= hard["seconds_after_compile"] > 0
  assert "(not reached)" in benchmark.format_target_row(hard)


def _benchmark(*flags):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run([sys.executable, "-m", "launch.benchmark", *flags], cwd=root,
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_peer_is_refused_where_it_cannot_run():
  """--peer times the bandit's PyTorch update: another task is refused in one line, before
  anything is compiled."""
  proc = _benchmark("--peer", "--task=padlock", "--batch_sizes=4", "--horizons=3")
  assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
      "error: --peer times the bandit's update: not with --aot, --target_kl or another --task"]


def test_peer_runs_beside_each_setting(tmp_path):
  """With torch installed, each row gets the peer's env-steps/s at the same B, T and hidden
  size in each of --peer_rounds rounds, each round's ratio, and their median (without torch:
  the one-line error)."""
  out = tmp_path / "rows.json"
  proc = _benchmark("--peer", "--peer_rounds=3", "--batch_sizes=4", "--horizons=3",
                    "--hidden=8", "--repeats=1", "--updates_per_call=2", f"--json={out}")
  if importlib.util.find_spec("torch") is None:
    assert proc.returncode == 2 and "--peer needs torch" in proc.stderr
    return
  assert proc.returncode == 0, proc.stderr[-2000:]
  (row,) = json.loads(out.read_text())
  assert row["peer_output"].startswith("torch B=4 T=3: ")
  rounds = row["peer_rounds"]
  assert len(rounds) == len(row["round_ms_per_update"]) == 3
  for r, ms in zip(rounds, row["round_ms_per_update"]):
    np.testing.assert_allclose(r["env_steps_per_second"], 4 * 3 / (ms / 1e3), rtol=1e-12)
    assert r["ratio"] == r["env_steps_per_second"] / r["peer_env_steps_per_second"]
  assert row["ratio_to_peer"] == sorted(r["ratio"] for r in rounds)[1]
  assert row["peer_env_steps_per_second"] == sorted(
      r["peer_env_steps_per_second"] for r in rounds)[1]
  assert row["ms_per_update"] == sorted(row["round_ms_per_update"])[1]
  assert "| peer: PyTorch eager LSTM 8 | 4 | 3 |" in proc.stdout
  assert "(rounds: " in proc.stdout


def test_peer_rounds_must_be_positive():
  proc = _benchmark("--peer", "--peer_rounds=0")
  assert proc.returncode == 2 and "--peer_rounds must be a positive integer" in proc.stderr


def test_the_time_to_target_measures_the_runs_kl():
  """The lean evaluation the time to a target KL uses gives `agent_metrics`' own
  kl_action_interventional, on a padlock agent whose episodes end early."""
  config = config_lib.default()
  config.task.name, config.agent.hidden = "padlock", 8
  task, agent = config_lib.validate(config)
  params = agent.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(3)
  want = evaluate.agent_metrics(task, agent, params, key, 64)["kl_action_interventional"]
  assert float(want) > 0
  np.testing.assert_allclose(evaluate.action_kl(task, agent, params, key, 64), want, rtol=1e-6)
