"""Grid sweeps: `python -m launch.sweep --config=experiments/bandit.py --workdir=DIR
--grid=teaching=counterfactual,demonstration,mixed --grid=agent.kind=lstm,transformer`.

Writes DIR/<run>/ for every combination and DIR/results.csv, DIR/results.md.

`--seeds=8` instead trains 8 seeds of one config in one compiled program (vmap over the train
state) and writes DIR/seeds.json and DIR/seeds.md (per seed and mean ± std). It checkpoints
the stacked state in DIR/checkpoints; rerunning the same command resumes from the latest.
`--check` validates every combination and lists the runs, writing nothing.
"""

import os
import sys

from absl import app, flags

from launch import define_check_flag, describe, parse_flags, quiet_logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Base experiment config file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory.")
flags.DEFINE_multi_string("grid", [], "FIELD=V1,V2,... (repeatable): the grid's axes.")
flags.DEFINE_bool("progress", True, "A progress bar per run when stdout is a terminal "
                  "(--noprogress: plain log lines).")
flags.DEFINE_integer("seeds", 0, "Train this many seeds (config.seed, config.seed+1, ...) in "
                     "one compiled program instead of a grid.")
define_check_flag()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  from causal_meta import sweep
  if FLAGS.config is None or FLAGS.workdir is None:
    print("error: --config and --workdir are required", file=sys.stderr)
    sys.exit(2)
  if FLAGS.seeds:
    from causal_meta import config as config_lib
    if FLAGS.grid:
      print("error: --seeds and --grid are exclusive", file=sys.stderr)
      sys.exit(2)
    try:
      if FLAGS.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {FLAGS.seeds}")
      config_lib.validate(FLAGS.config)
    except ValueError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    if FLAGS.check:
      print(f"check: {FLAGS.seeds} seeds of {describe(FLAGS.config)} -> {FLAGS.workdir}")
      return
    result = sweep.train_seeds(FLAGS.config, FLAGS.seeds, FLAGS.workdir)
    print(sweep.seeds_markdown(result))
    return
  try:
    axes = [sweep.parse_axis(spec, FLAGS.config) for spec in FLAGS.grid]
    runs = sweep.configs(FLAGS.config, axes)  # validate every combination before running any
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if FLAGS.check:
    for name, config in runs:
      print(f"check: {describe(config)} -> {os.path.join(FLAGS.workdir, name)}")
    return
  rows = sweep.run_grid(FLAGS.config, axes, FLAGS.workdir,
                        progress=None if FLAGS.progress else False)
  print(sweep.markdown(rows))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
