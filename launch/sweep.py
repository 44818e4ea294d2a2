"""Grid sweeps: `python -m launch.sweep --config=experiments/bandit.py --workdir=DIR
--grid=teaching=counterfactual,demonstration,mixed --grid=agent.kind=lstm,transformer`.

Writes DIR/<run>/ for every combination and DIR/results.csv, DIR/results.md.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Base experiment config file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory.")
flags.DEFINE_multi_string("grid", [], "FIELD=V1,V2,... (repeatable): the grid's axes.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from causal_meta import sweep
  if FLAGS.config is None or FLAGS.workdir is None:
    print("error: --config and --workdir are required", file=sys.stderr)
    sys.exit(2)
  try:
    axes = [sweep.parse_axis(spec, FLAGS.config) for spec in FLAGS.grid]
    sweep.configs(FLAGS.config, axes)  # validate every combination before running any
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  rows = sweep.run_grid(FLAGS.config, axes, FLAGS.workdir)
  print(sweep.markdown(rows))


if __name__ == "__main__":
  app.run(main)
