"""Measuring the braided update (used by `launch/benchmark.py`). Speed is reported, never
asserted: see BENCHMARKS.md for recorded numbers and the commands that printed them."""

from __future__ import annotations

import collections
import copy
import glob
import gzip
import json
import math
import os
import statistics
import sys
import time

import jax
import jax.extend
import numpy as np

from causal_meta import config as config_lib
from causal_meta import evaluate, train

# Dense peak FLOP/s by device kind, float32 (non-tensor-core) and bf16 tensor-core, for the
# "fraction of peak" column. Unknown devices report no fraction.
PEAK_FLOPS = {
    "NVIDIA H100 80GB HBM3": {"float32": 67e12, "bfloat16": 989e12},
    "NVIDIA H200": {"float32": 67e12, "bfloat16": 989e12},
}

HEADER = ("| device | agent | B | T | compile s | updates/s | env-steps/s | rollout env-steps/s "
          "| ms: update / rollout / learning | GFLOP/update | achieved TFLOP/s | % fp32 peak "
          "| peak mem MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def matmul_flops(fn, *args, branch=max) -> float:
  """FLOPs of the matrix products `fn(*args)` performs: 2·(output size)·(contracted size) per
  `dot_general`, multiplied by enclosing `scan` lengths and Pallas grids; a `cond` counts the
  `branch` (max: its costliest, min: its cheapest) of its branches' counts, a `while` body
  once (its trip count is unknown), a `shard_map` body once per device. Elementwise work is
  not counted: this is the work a matrix unit can do, the numerator of a utilisation figure."""
  return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr, branch)


def _sub_jaxprs(value):
  if isinstance(value, jax.extend.core.ClosedJaxpr):
    return [value.jaxpr]
  if isinstance(value, jax.extend.core.Jaxpr):
    return [value]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def _jaxpr_flops(jaxpr, branch=max) -> float:
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs_shape = eqn.invars[0].aval.shape
      contracted = math.prod(lhs_shape[d] for d in lhs_contract)
      total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * contracted
      continue
    subs = [_jaxpr_flops(j, branch) for v in eqn.params.values() for j in _sub_jaxprs(v)]
    if not subs:
      continue
    if name == "cond":
      total += branch(subs)
    elif name == "scan":
      total += eqn.params["length"] * sum(subs)
    elif name == "pallas_call":  # the kernel runs once per program of its grid
      total += math.prod(eqn.params["grid_mapping"].grid) * sum(subs)
    elif name == "shard_map":  # its body runs once per device, on that device's share
      total += eqn.params["mesh"].size * sum(subs)
    else:
      total += sum(subs)
  return total


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


def profile(fn, logdir: str, calls: int = 2) -> None:
  """Captures a JAX profiler trace of `calls` calls of `fn` into `logdir` (view it in
  Perfetto or TensorBoard; `top_ops` summarises it)."""
  with jax.profiler.trace(logdir, create_perfetto_trace=True):
    for _ in range(calls):
      jax.block_until_ready(fn())


def top_ops(logdir: str, n: int = 15) -> list[dict]:
  """The `n` costliest operations of the latest trace under `logdir`, summed by name: device
  kernels where the trace has a device (GPU), else XLA's ops on the host (CPU; loops left
  out, their bodies are counted).
  Returns [{name, hlo_op, calls, ms, fraction}], fraction of all such time, costliest first."""
  paths = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "perfetto_trace.json.gz"))
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {logdir}/plugins/profile")
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  processes = {e["pid"]: e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "process_name"}
  on_device = any("/device:" in name for name in processes.values())

  def counted(e):
    if e.get("ph") != "X":
      return False
    if on_device:
      return "/device:" in processes.get(e["pid"], "")
    # Host (CPU): XLA's ops carry an `hlo_op`; loops and calls would count their bodies twice.
    op = (e.get("args") or {}).get("hlo_op", "")
    return bool(op) and not op.startswith(("while", "call", "conditional"))

  time_us, calls, hlo = collections.Counter(), collections.Counter(), {}
  for e in filter(counted, events):
    time_us[e["name"]] += e.get("dur", 0)
    calls[e["name"]] += 1
    hlo.setdefault(e["name"], (e.get("args") or {}).get("hlo_op", ""))
  total = sum(time_us.values()) or 1.0
  return [dict(name=name, hlo_op=hlo[name], calls=calls[name], ms=us / 1e3,
               fraction=us / total) for name, us in time_us.most_common(n)]


def format_top_ops(rows: list[dict]) -> str:
  lines = ["| op | hlo op | calls | ms | % |", "|---|---|---|---|---|"]
  lines += [f"| {r['name'][:60]} | {r['hlo_op'][:40]} | {r['calls']} | {r['ms']:.3g} | "
            f"{100 * r['fraction']:.1f} |" for r in rows]
  return "\n".join(lines)


def measure(config, repeats: int = 5, profile_dir: str | None = None,
            donate: bool = True, rounds: int = 1, between=None) -> dict:
  """Times one setting (see the module docstring of launch/benchmark.py). `profile_dir`:
  also trace two chunks of the full update there and add their costliest ops (`top_ops`).
  donate: the train chunk reuses the state's buffers (as training does).

  rounds: time the full update this many times (`repeats` chunks each; the row reports the
  median round), calling `between()` before each round: a peer timed in turn with it sees
  the same drift in the machine's speed. The rounds' ms per update, and what `between`
  returned, are the row's `round_ms_per_update` and `between`."""
  task, agent = config_lib.validate(config)
  optimizer = train.make_optimizer(config)
  update = train.make_update(task, agent, optimizer, config)
  chunk = train.make_train_chunk(update, config.updates_per_call, donate)
  state = train.init_state(agent, optimizer, config.seed)
  t0 = time.perf_counter()
  compiled = chunk.lower(state).compile()
  compile_seconds = time.perf_counter() - t0
  flops = matmul_flops(lambda s: update(s)[1], state)

  holder = [state, None]  # the state, the last chunk's metrics

  def run_chunk():
    holder[0], holder[1] = compiled(holder[0])
    return holder[1]
  jax.block_until_ready(run_chunk())  # warm-up, finished before a peer runs beside it
  round_seconds, beside = [], []
  for _ in range(rounds):
    if between is not None:
      beside.append(between())
    round_seconds.append(_median_seconds(run_chunk, repeats))
  seconds = statistics.median(round_seconds)
  packed = None
  if "packed" in holder[1]:
    # The update's only `cond` picks the packed learning pass (the cheaper branch) where the
    # episodes fit its rows: weight the two by how often the last timed chunk took it.
    packed = float(np.mean(holder[1]["packed"]))
    flops = packed * matmul_flops(lambda s: update(s)[1], state, branch=min) + \
        (1 - packed) * flops
  flops *= config.updates_per_call

  # The rollout alone (acting, no gradient) and, for an agent that learns in a second pass
  # (the transformer), that pass (gradient) on a fixed batch.
  act = jax.jit(train.make_act(task, agent, config))
  key = jax.random.PRNGKey(1)
  traj = jax.block_until_ready(act(holder[0].params, key))
  roll_seconds = _median_seconds(lambda: act(holder[0].params, key), repeats)
  learn_seconds = None
  if not agent.learns_in_rollout:
    # traj is an argument, not a closed-over constant that XLA would try to fold.
    grad = jax.jit(jax.grad(lambda p, tr: train.make_loss(agent, config)(p, tr)[0]))
    jax.block_until_ready(grad(holder[0].params, traj))
    learn_seconds = _median_seconds(lambda: grad(holder[0].params, traj), repeats)

  ops = None
  if profile_dir:
    try:
      profile(run_chunk, profile_dir)
      ops = top_ops(profile_dir)
    except Exception as e:  # a profiler that cannot start must not cost the timings
      print(f"warning: profiling failed ({type(e).__name__}: {e})", file=sys.stderr)

  K, B, T = config.updates_per_call, config.batch_size, task.horizon
  device = jax.devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  peak = PEAK_FLOPS.get(device.device_kind, {}).get("float32")
  peak = peak and peak * jax.device_count()
  achieved = flops / seconds if flops else None
  return dict(
      device=device_name(), devices=jax.device_count(), platform=device.platform,
      jax_version=jax.__version__,
      task=task.name, agent=config.agent.kind, teaching=config.teaching, batch_size=B,
      horizon=T, updates_per_call=K, compile_seconds=compile_seconds,
      updates_per_second=K / seconds, env_steps_per_second=K * B * T / seconds,
      rollout_env_steps_per_second=B * T / roll_seconds,
      ms_per_update=1e3 * seconds / K, rollout_ms=1e3 * roll_seconds,
      round_ms_per_update=[1e3 * t / K for t in round_seconds],
      between=beside if between is not None else None,
      learning_ms=learn_seconds and 1e3 * learn_seconds, scan_unroll=config.scan_unroll,
      microbatches=config.microbatches, donate=donate,
      attention_chunk=config.agent.attention_chunk,
      packing=config.agent.packing, packed_fraction=packed, top_ops=ops,
      gflop_per_update=flops / K / 1e9 if flops else None,
      achieved_tflops=achieved / 1e12 if achieved else None,
      fraction_of_fp32_peak=achieved / peak if (achieved and peak) else None,
      peak_memory_mib=(stats or {}).get("peak_bytes_in_use", 0) / 2**20 if stats else None,
  )


def out_of_memory(error: Exception) -> str | None:
  """If `error` is a device running out of memory, XLA's message (its first line, without
  the status code: it says how much XLA asked for), else None. XLA's GPU client raises
  RESOURCE_EXHAUSTED, its CPU client INTERNAL "... Out of memory allocating N bytes"."""
  text = str(error).strip()
  if "RESOURCE_EXHAUSTED" not in text and "out of memory" not in text.lower():
    return None
  return text.splitlines()[0].split(": ")[-1]


def device_name() -> str:
  """The device kind, with the count when the batch is split over several: "cpu ×2"."""
  n = jax.device_count()
  return jax.devices()[0].device_kind + (f" ×{n}" if n > 1 else "")


def format_row(r: dict) -> str:
  f = lambda v, fmt: "—" if v is None else format(v, fmt)
  return (f"| {r['device']} | {r['agent']} | {r['batch_size']} | {r['horizon']} | "
          f"{r['compile_seconds']:.1f} | {r['updates_per_second']:.3g} | "
          f"{r['env_steps_per_second']:.3g} | {r['rollout_env_steps_per_second']:.3g} | "
          f"{r['ms_per_update']:.3g} / {r['rollout_ms']:.3g} / {f(r['learning_ms'], '.3g')} | "
          f"{f(r['gflop_per_update'], '.3g')} | {f(r['achieved_tflops'], '.3g')} | "
          f"{f(r['fraction_of_fp32_peak'] and 100 * r['fraction_of_fp32_peak'], '.2f')} | "
          f"{f(r['peak_memory_mib'], '.0f')} |")


def time_to_target(config, target: float = 0.01, eval_every: int = 20,
                   max_updates: int = 5000) -> dict:
  """Trains `config` from scratch until kl_action_interventional ≤ `target` (evaluated every
  `eval_every` updates on `config.eval_episodes` deployment episodes, as train_and_evaluate
  does) or `max_updates`. Reports compile seconds, seconds after compilation (training and
  evaluations) and total seconds from the call (setup and compilation included)."""
  start = time.perf_counter()
  task, agent = config_lib.validate(config)
  optimizer = train.make_optimizer(config)
  chunk = train.make_train_chunk(train.make_update(task, agent, optimizer, config), eval_every)
  state = train.init_state(agent, optimizer, config.seed)
  eval_key = train.evaluation_key(config.seed)
  kl_fn = train.jit_rarely_run(
      lambda p, k: evaluate.action_kl(task, agent, p, k, config.eval_episodes))
  t0 = time.perf_counter()
  compiled_chunk = chunk.lower(state).compile()
  compiled_kl = kl_fn.lower(state.params, eval_key).compile()
  compile_seconds = time.perf_counter() - t0
  t0 = time.perf_counter()
  kl, step = float("inf"), 0
  while step < max_updates:
    state, _ = compiled_chunk(state)
    step += eval_every
    kl = float(compiled_kl(state.params, eval_key))  # blocks
    if kl <= target:
      break
  after_compile = time.perf_counter() - t0
  return dict(device=device_name(), devices=jax.device_count(),
              platform=jax.devices()[0].platform, jax_version=jax.__version__,
              task=task.name, agent=config.agent.kind, batch_size=config.batch_size,
              seed=config.seed, learning_rate=config.optim.learning_rate,
              eval_episodes=config.eval_episodes, target=target, reached=kl <= target,
              kl_action_interventional=kl, updates=step,
              env_steps=step * config.batch_size * task.horizon,
              compile_seconds=compile_seconds, seconds_after_compile=after_compile,
              total_seconds=time.perf_counter() - start)


TARGET_HEADER = ("| device | agent | B | seed | lr | eval episodes | updates | KL_int | compile s "
                 "| s after compile | total s |\n|---|---|---|---|---|---|---|---|---|---|---|")


def format_target_row(r: dict) -> str:
  kl = f"{r['kl_action_interventional']:.4f}" + ("" if r["reached"] else " (not reached)")
  return (f"| {r['device']} | {r['agent']} | {r['batch_size']} | {r['seed']} | "
          f"{r['learning_rate']:g} | {r['eval_episodes']} | {r['updates']} | {kl} | "
          f"{r['compile_seconds']:.1f} | "
          f"{r['seconds_after_compile']:.2f} | {r['total_seconds']:.1f} |")
