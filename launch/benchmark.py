"""Throughput of the full braided update: `python -m launch.benchmark [--json=FILE]`.

For each (batch size, horizon): compile time, then the median over `--repeats` timed chunks
(after block_until_ready) of updates/s and env-steps/s for the full update (rollout + learning
pass + optimizer), the rollout and (transformer) the learning pass timed alone, peak memory
(where the backend reports it) and achieved matrix-product FLOP/s (counted on the jaxpr), as a
fraction of the device's peak where known. An env step is one (action, observation) of one
task instance. `--target_kl` instead times training from scratch to that KL. `--aot=h100`
instead compiles each setting for an H100 on this machine (no GPU needed, JAX's CUDA plugin
is) and prints the memory, kernels and estimated bytes per update of the compiled program
(`causal_meta.experimental.aot`). `--peer` also times the PyTorch eager peer
(launch/peer_torch.py) in turn with each setting's timed chunks, `--peer_rounds` times, and
prints the median of the rounds' ratios and each round's. `--check` only validates
the settings and lists them.

  python -m launch.benchmark --agent=lstm --batch_sizes=256,4096,65536 --horizons=20
  python -m launch.benchmark --peer --batch_sizes=256,1024 --horizons=20  # beside PyTorch
  JAX_NUM_CPU_DEVICES=2 python -m launch.benchmark --peer  # the batch split over two CPU cores
  python -m launch.benchmark --agent=transformer --batch_sizes=4096 --horizons=20,200
  python -m launch.benchmark --target_kl=0.01 --batch_sizes=256   # time to KL_int <= 0.01
  python -m launch.benchmark --batch_sizes=4096 --profile_dir=runs/prof  # + costliest kernels
  python -m launch.benchmark --aot=h100 --batch_sizes=65536  # compiled for an H100, here
"""

import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys

from absl import app, flags

from launch import define_check_flag, describe, quiet_logging

flags.DEFINE_string("task", "bandit", "Task name (its horizon is set by --horizons).")
flags.DEFINE_string("agent", "lstm", "lstm | gru | transformer.")
# Unset agent, loss and learning settings keep config.default()'s values (causal_meta/config.py).
flags.DEFINE_integer("hidden", None, "Recurrent width (config.agent.hidden).")
flags.DEFINE_integer("width", None, "Transformer width (config.agent.width).")
flags.DEFINE_integer("num_layers", None, "Transformer layers (config.agent.num_layers).")
flags.DEFINE_integer("num_heads", None, "Transformer heads (config.agent.num_heads).")
flags.DEFINE_integer("attention_chunk", None, "Transformer: the learning pass attends this "
                     "many queries at a time (config.agent.attention_chunk; 0: all at once).")
flags.DEFINE_float("packing", None, "Transformer: episodes per row of the learning pass "
                   "(config.agent.packing; 1 = unpacked, fractions allowed).")
flags.DEFINE_integer("microbatches", None, "The learning pass in this many slices of the "
                     "batch (gradient accumulation; config.microbatches).")
flags.DEFINE_bool("donate", True, "The train chunk reuses the state's buffers (--nodonate: "
                  "it allocates a new state each call).")
flags.DEFINE_integer("scan_unroll", None, "Time steps per compiled-loop iteration.")
flags.DEFINE_string("teaching", None, "counterfactual | demonstration | mixed.")
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Episodes per update.")
flags.DEFINE_list("horizons", ["20"], "Episode lengths T.")
flags.DEFINE_integer("updates_per_call", 10, "Updates per compiled chunk (lax.scan).")
flags.DEFINE_integer("repeats", 5, "Timed chunks per setting (the median is reported).")
flags.DEFINE_float("target_kl", None, "Instead of throughput: time training from scratch "
                   "(of --task at each horizon) until kl_action_interventional <= this.")
flags.DEFINE_integer("eval_every", 20, "--target_kl: updates between evaluations.")
flags.DEFINE_integer("eval_episodes", 2048, "--target_kl: deployment episodes per evaluation.")
flags.DEFINE_integer("max_updates", 5000, "--target_kl: give up after this many updates.")
flags.DEFINE_float("learning_rate", None, "Adam learning rate (default: the config's).")
flags.DEFINE_integer("seed", 0, "The run's seed (parameters, rollouts): --target_kl varies "
                     "with it.")
flags.DEFINE_string("profile_dir", None, "Also trace two chunks of each setting into "
                    "DIR/<agent>_B<B>_T<T> and print the costliest ops.")
flags.DEFINE_enum("aot", None, ["h100"], "Instead of timing: compile each setting here for "
                  "this GPU, without one (needs jax[cuda12]), and print what the compiled "
                  "program says: memory, kernels and estimated bytes moved per update.")
flags.DEFINE_bool("peer", False, "With each setting, time the PyTorch eager peer "
                  "(launch/peer_torch.py, an LSTM on the bandit; needs torch) at the same B, T "
                  "and hidden size, and print its env-steps/s and the ratio.")
flags.DEFINE_integer("peer_rounds", 3, "--peer: alternate the peer and this setting's timed "
                     "chunks this many times; the ratio is the median of the rounds' ratios.")
flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")
define_check_flag()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  if FLAGS.aot:  # it compiles for a GPU it never uses: no local GPU backend is needed
    import jax
    jax.config.update("jax_platforms", "cpu")
  from causal_meta import benchmark
  from causal_meta import config as config_lib
  try:
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    horizons = [int(t) for t in FLAGS.horizons]
  except ValueError:
    print("error: --batch_sizes and --horizons must be comma-separated integers",
          file=sys.stderr)
    sys.exit(2)
  base = config_lib.default()
  base.task.name = FLAGS.task
  base.agent.kind = FLAGS.agent
  for name in ("hidden", "width", "num_layers", "num_heads", "attention_chunk",
               "packing"):
    if FLAGS[name].value is not None:
      base.agent[name] = FLAGS[name].value
  for name in ("scan_unroll", "microbatches", "teaching"):
    if FLAGS[name].value is not None:
      base[name] = FLAGS[name].value
  base.updates_per_call = FLAGS.updates_per_call
  base.seed = FLAGS.seed
  base.eval_episodes = FLAGS.eval_episodes
  if FLAGS.learning_rate is not None:
    base.optim.learning_rate = FLAGS.learning_rate
  try:
    settings = [benchmark.setting(base, b, t) for b in batch_sizes for t in horizons]
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for name in ("eval_every", "eval_episodes", "max_updates", "peer_rounds"):
    if FLAGS[name].value < 1:
      print(f"error: --{name} must be a positive integer, got {FLAGS[name].value}",
            file=sys.stderr)
      sys.exit(2)
  if FLAGS.target_kl is not None and FLAGS.target_kl <= 0:
    print(f"error: --target_kl must be positive, got {FLAGS.target_kl}", file=sys.stderr)
    sys.exit(2)
  if FLAGS.peer and (FLAGS.aot or FLAGS.target_kl is not None or FLAGS.task != "bandit"):
    print("error: --peer times the bandit's update: not with --aot, --target_kl or another "
          "--task", file=sys.stderr)
    sys.exit(2)
  if FLAGS.aot and (FLAGS.target_kl is not None or FLAGS.profile_dir):
    print("error: --aot only compiles: it cannot be combined with --target_kl or "
          "--profile_dir", file=sys.stderr)
    sys.exit(2)
  if FLAGS.check:
    what = ("compiled for " + FLAGS.aot if FLAGS.aot else
            "time to target" if FLAGS.target_kl is not None else "throughput")
    for c in settings:
      size = f"B={c.batch_size}, T={c.task[c.task.name].horizon}"
      print(f"check: {what}: {describe(c, size)}" + (f" -> {FLAGS.json}" if FLAGS.json else ""))
    return
  if FLAGS.peer and importlib.util.find_spec("torch") is None:
    print("error: --peer needs torch (pip install torch)", file=sys.stderr)
    sys.exit(2)
  rows = []
  if FLAGS.aot:
    from causal_meta.experimental import aot
    try:
      aot.target_mesh(FLAGS.aot)
    except RuntimeError as e:
      print(f"error: --aot={FLAGS.aot}: {e}", file=sys.stderr)
      sys.exit(2)
    header, fmt = aot.HEADER, aot.format_row
    measure = lambda config: aot.analyse(config, FLAGS.aot)
  elif FLAGS.target_kl is None:
    header, fmt = benchmark.HEADER, benchmark.format_row
    def measure(config):
      profile_dir = FLAGS.profile_dir and os.path.join(
          FLAGS.profile_dir, f"{config.agent.kind}_B{config.batch_size}_T"
          f"{config.task[config.task.name].horizon}")
      if not FLAGS.peer:
        return benchmark.measure(config, FLAGS.repeats, profile_dir, FLAGS.donate)
      # The peer runs before each round of timed chunks: both see the same drift in speed.
      run_peer = lambda: peer(config.batch_size, config.task.bandit.horizon,
                              config.agent.hidden, FLAGS.repeats * FLAGS.updates_per_call)
      return with_peer(benchmark.measure(config, FLAGS.repeats, profile_dir, FLAGS.donate,
                                         FLAGS.peer_rounds, run_peer))
  else:
    header, fmt = benchmark.TARGET_HEADER, benchmark.format_target_row
    measure = lambda config: benchmark.time_to_target(
        config, FLAGS.target_kl, FLAGS.eval_every, FLAGS.max_updates)
  print(header)
  for config in settings:
    try:
      row = measure(config)
    except Exception as e:  # one setting out of device memory must not cost the others
      detail = benchmark.out_of_memory(e)
      if detail is None:
        raise
      B, T = config.batch_size, config.task[config.task.name].horizon
      error = "did not compile" if FLAGS.aot else "out of device memory"
      row = dict(batch_size=B, horizon=T, error=error, detail=detail)
      print(f"| B={B}, T={T}: {error} ({detail}) |", flush=True)
    else:
      print(fmt(row), flush=True)
      if row.get("top_ops"):
        print(benchmark.format_top_ops(row["top_ops"]), flush=True)
      if row.get("top_kernels"):  # --aot
        print(aot.format_top(row["top_kernels"]), flush=True)
      if FLAGS.peer:
        rounds = ", ".join(f"{r['ratio']:.2f}" for r in row["peer_rounds"])
        print(f"| peer: PyTorch eager LSTM {config.agent.hidden} | {config.batch_size} | "
              f"{config.task.bandit.horizon} | {row['peer_env_steps_per_second']:.3g} "
              f"env-steps/s | ratio {row['ratio_to_peer']:.2f} (rounds: {rounds}) |",
              flush=True)
    rows.append(row)
    if FLAGS.json:  # after every row: a run cut short by its time limit keeps what it measured
      with open(FLAGS.json, "w") as f:
        json.dump(rows, f, indent=1)


def with_peer(row: dict) -> dict:
  """A row measured with `peer` between its rounds, plus: each round's env-steps/s of both and
  their ratio (`peer_rounds`), the peer's median env-steps/s and the median ratio."""
  steps = row["batch_size"] * row["horizon"]
  rounds = [dict(env_steps_per_second=steps / (ms / 1e3),
                 peer_env_steps_per_second=p["peer_env_steps_per_second"])
            for ms, p in zip(row["round_ms_per_update"], row["between"])]
  for r in rounds:
    r["ratio"] = r["env_steps_per_second"] / r["peer_env_steps_per_second"]
  median = lambda key: statistics.median(r[key] for r in rounds)
  return dict(row, peer_rounds=rounds, peer_output=row["between"][-1]["peer_output"],
              peer_env_steps_per_second=median("peer_env_steps_per_second"),
              ratio_to_peer=median("ratio"))


def peer(batch_size: int, horizon: int, hidden: int, updates: int) -> dict:
  """Runs launch/peer_torch.py for one setting in a fresh process: its env-steps/s and the
  line it printed."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_torch.py")
  out = subprocess.run([sys.executable, script, str(batch_size), f"--horizon={horizon}",
                        f"--hidden={hidden}", f"--updates={updates}"], check=True,
                       capture_output=True, text=True).stdout
  rate = float(re.search(r"; (\S+) env-steps/s", out).group(1))
  return dict(peer_env_steps_per_second=rate, peer_output=out.strip().splitlines()[-1])


if __name__ == "__main__":
  app.run(main)
