"""Measuring the braided update (used by `launch/benchmark.py`). Speed is reported, never
asserted: see BENCHMARKS.md for recorded numbers and the commands that printed them."""

from __future__ import annotations

import copy
import statistics
import time

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import rollout, train

# Dense peak FLOP/s by device kind, float32 (non-tensor-core) and bf16 tensor-core, for the
# "fraction of peak" column. Unknown devices report no fraction.
PEAK_FLOPS = {
    "NVIDIA H100 80GB HBM3": {"float32": 67e12, "bfloat16": 989e12},
    "NVIDIA H200": {"float32": 67e12, "bfloat16": 989e12},
}

HEADER = ("| device | agent | B | T | compile s | updates/s | env-steps/s | rollout env-steps/s "
          "| GFLOP/update | achieved TFLOP/s | % fp32 peak | peak mem MiB |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def setting(base, batch_size: int, horizon: int):
  """A validated config for one benchmark point."""
  config = copy.deepcopy(base)
  config.batch_size = batch_size
  with config.unlocked():
    config.task[config.task.name]["horizon"] = horizon  # validate() names a task without one
  config.num_updates = config.log_every = config.updates_per_call
  config_lib.validate(config)
  return config


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def measure(config, repeats: int = 5) -> dict:
  task, agent = config_lib.validate(config)
  optimizer = train.make_optimizer(config)
  update = train.make_update(task, agent, optimizer, config)
  chunk = train.make_train_chunk(update, config.updates_per_call)
  state = train.init_state(agent, optimizer, config.seed)
  t0 = time.perf_counter()
  compiled = chunk.lower(state).compile()
  compile_seconds = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0

  holder = [state]

  def run_chunk():
    holder[0], metrics = compiled(holder[0])
    return metrics
  run_chunk()  # warm-up
  seconds = _median_seconds(run_chunk, repeats)

  expert_prob = rollout.expert_prob_for(config.teaching, config.mixed_prob)
  roll = jax.jit(lambda params, key: rollout.braid(task, agent.policy(params), key,
                                                   config.batch_size, expert_prob).actions)
  key = jax.random.PRNGKey(1)
  jax.block_until_ready(roll(holder[0].params, key))
  roll_seconds = _median_seconds(lambda: roll(holder[0].params, key), repeats)

  K, B, T = config.updates_per_call, config.batch_size, task.horizon
  device = jax.devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  peak = PEAK_FLOPS.get(device.device_kind, {}).get("float32")
  achieved = flops / seconds if flops else None
  return dict(
      device=device.device_kind, platform=device.platform, jax_version=jax.__version__,
      task=task.name, agent=config.agent.kind, teaching=config.teaching, batch_size=B,
      horizon=T, updates_per_call=K, compile_seconds=compile_seconds,
      updates_per_second=K / seconds, env_steps_per_second=K * B * T / seconds,
      rollout_env_steps_per_second=B * T / roll_seconds,
      gflop_per_update=flops / K / 1e9 if flops else None,
      achieved_tflops=achieved / 1e12 if achieved else None,
      fraction_of_fp32_peak=achieved / peak if (achieved and peak) else None,
      peak_memory_mib=(stats or {}).get("peak_bytes_in_use", 0) / 2**20 if stats else None,
  )


def format_row(r: dict) -> str:
  f = lambda v, fmt: "—" if v is None else format(v, fmt)
  return (f"| {r['device']} | {r['agent']} | {r['batch_size']} | {r['horizon']} | "
          f"{r['compile_seconds']:.1f} | {r['updates_per_second']:.3g} | "
          f"{r['env_steps_per_second']:.3g} | {r['rollout_env_steps_per_second']:.3g} | "
          f"{f(r['gflop_per_update'], '.3g')} | {f(r['achieved_tflops'], '.3g')} | "
          f"{f(r['fraction_of_fp32_peak'] and 100 * r['fraction_of_fp32_peak'], '.2f')} | "
          f"{f(r['peak_memory_mib'], '.0f')} |")
