"""Throughput of the full braided update: `python -m launch.benchmark [--json=FILE]`.

For each (batch size, horizon): compile time, then the median over `--repeats` timed chunks
(after block_until_ready) of updates/s and env-steps/s for the full update (rollout + learning
pass + optimizer), rollout-only env-steps/s, peak device memory (where the backend reports
it) and achieved FLOP/s from XLA's cost analysis, as a fraction of the device's peak where
known. An env step is one (action, observation) of one task instance.

  python -m launch.benchmark --agent=lstm --batch_sizes=256,4096,65536 --horizons=20
  python -m launch.benchmark --agent=transformer --batch_sizes=4096 --horizons=20,200
"""

import json
import sys

from absl import app, flags

flags.DEFINE_string("task", "bandit", "Task name (its horizon is set by --horizons).")
flags.DEFINE_string("agent", "lstm", "lstm | gru | transformer.")
flags.DEFINE_integer("hidden", 64, "Recurrent width.")
flags.DEFINE_integer("width", 64, "Transformer width.")
flags.DEFINE_integer("num_layers", 2, "Transformer layers.")
flags.DEFINE_integer("num_heads", 4, "Transformer heads.")
flags.DEFINE_string("teaching", "counterfactual", "counterfactual | demonstration | mixed.")
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Episodes per update.")
flags.DEFINE_list("horizons", ["20"], "Episode lengths T.")
flags.DEFINE_integer("updates_per_call", 10, "Updates per compiled chunk (lax.scan).")
flags.DEFINE_integer("repeats", 5, "Timed chunks per setting (the median is reported).")
flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
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
  base.agent.update(kind=FLAGS.agent, hidden=FLAGS.hidden, width=FLAGS.width,
                    num_layers=FLAGS.num_layers, num_heads=FLAGS.num_heads)
  base.teaching = FLAGS.teaching
  base.updates_per_call = FLAGS.updates_per_call
  try:
    settings = [benchmark.setting(base, b, t) for b in batch_sizes for t in horizons]
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  rows = []
  print(benchmark.HEADER)
  for config in settings:
    row = benchmark.measure(config, FLAGS.repeats)
    rows.append(row)
    print(benchmark.format_row(row), flush=True)
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main)
