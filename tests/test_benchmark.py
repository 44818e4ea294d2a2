"""The benchmark harness runs and reports; the update compiles once (no silent recompiles).
Speed itself is never asserted here (see BENCHMARKS.md)."""

import chex
import jax

from causal_meta import benchmark
from causal_meta import config as config_lib
from causal_meta import train


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


def test_benchmark_row():
  base = config_lib.default()
  base.agent.hidden = 8
  base.updates_per_call = 2
  row = benchmark.measure(benchmark.setting(base, 32, 5), repeats=2)
  assert row["batch_size"] == 32 and row["horizon"] == 5
  assert row["env_steps_per_second"] > 0 and row["rollout_env_steps_per_second"] > 0
  assert row["compile_seconds"] > 0
  assert row["gflop_per_update"] is None or row["gflop_per_update"] > 0
  assert benchmark.format_row(row).startswith("| ")
