"""Grid sweeps: `python -m launch.sweep --config=experiments/bandit.py --workdir=DIR
--grid=teaching=counterfactual,demonstration,mixed --grid=agent.kind=lstm,transformer`.

Writes DIR/<run>/ for every combination (run names from the full field paths:
`teaching=counterfactual_agent.kind=lstm`) and DIR/results.csv, DIR/results.md.

`--shard=i/N` trains only runs j with j % N == i of the ordered combinations (i is 0-based:
one task of a job array, `--shard=$SLURM_ARRAY_TASK_ID/N`) and writes its own table
DIR/shards/i-of-N.csv and .md. `--collect` with the same --config, --grid and overrides then
reads every run's DIR/<run>/summary.json and writes DIR/results.csv and results.md in grid
order; a run without a summary is an error naming it, and nothing is written.

`--seeds=8` instead trains 8 seeds of one config in one compiled program (vmap over the train
state) and writes DIR/seeds.json and DIR/seeds.md (per seed and mean ± std). It checkpoints
the stacked state in DIR/checkpoints; rerunning the same command resumes from the latest.
`--check` validates every combination and lists the runs, writing nothing.
"""

import os

from absl import app, flags

from launch import define_check_flag, describe, fail, parse_flags, quiet_logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Base experiment config file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory.")
flags.DEFINE_multi_string("grid", [], "FIELD=V1,V2,... (repeatable): the grid's axes.")
flags.DEFINE_bool("progress", True, "A progress bar per run when stdout is a terminal "
                  "(--noprogress: plain log lines).")
flags.DEFINE_integer("seeds", None, "Train this many seeds (config.seed, config.seed+1, ...) "
                     "in one compiled program instead of a grid.")
flags.DEFINE_string("shard", None, "i/N: train only runs j of the grid with j % N == i "
                    "(0 <= i < N; one task of a job array), table in DIR/shards/i-of-N.csv.")
flags.DEFINE_bool("collect", False, "Train nothing: read every run's summary.json and write "
                  "DIR/results.csv and results.md (after the shards of a job array).")
define_check_flag()
FLAGS = flags.FLAGS


def _validate_modes():
  """The combinations of --seeds, --shard, --collect and --grid that mean something."""
  if FLAGS.seeds is not None:
    if FLAGS.seeds < 1:
      fail(f"--seeds must be a positive integer, got {FLAGS.seeds}")
    for flag, given in (("--grid", FLAGS.grid), ("--shard", FLAGS.shard is not None),
                        ("--collect", FLAGS.collect)):
      if given:  # one program trains all seeds: nothing to split or to collect
        fail(f"--seeds and {flag} are exclusive (--seeds trains one config in one program)")
  if FLAGS.collect and FLAGS.shard is not None:
    fail("--collect and --shard are exclusive (--collect reads the runs of every shard)")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  from causal_meta import sweep
  if FLAGS.config is None or FLAGS.workdir is None:
    fail("--config and --workdir are required")
  _validate_modes()
  if FLAGS.seeds is not None:
    from causal_meta import config as config_lib
    try:
      config_lib.validate(FLAGS.config)
    except ValueError as e:
      fail(str(e))
    if FLAGS.check:
      print(f"check: {FLAGS.seeds} seeds of {describe(FLAGS.config)} -> {FLAGS.workdir}")
      return
    result = sweep.train_seeds(FLAGS.config, FLAGS.seeds, FLAGS.workdir)
    print(sweep.seeds_markdown(result))
    return
  try:
    shard = None if FLAGS.shard is None else sweep.parse_shard(FLAGS.shard)
    axes = [sweep.parse_axis(spec, FLAGS.config) for spec in FLAGS.grid]
    runs = sweep.configs(FLAGS.config, axes)  # validate every combination before running any
  except ValueError as e:
    fail(str(e))
  if FLAGS.collect:
    if FLAGS.check:
      print(f"check: collect {len(runs)} runs -> {os.path.join(FLAGS.workdir, 'results.csv')}")
      return
    try:
      rows = sweep.collect(FLAGS.config, axes, FLAGS.workdir)
    except sweep.MissingRuns as e:
      fail(str(e))
    print(sweep.markdown(rows))
    return
  mine = runs if shard is None else sweep.shard(runs, *shard)
  if not mine:  # a job array larger than the grid: this task has nothing to do
    print(f"shard {FLAGS.shard}: no runs (the grid has {len(runs)})")
    return
  if FLAGS.check:
    for name, config in mine:
      print(f"check: {describe(config)} -> {os.path.join(FLAGS.workdir, name)}")
    return
  rows = sweep.run_grid(FLAGS.config, axes, FLAGS.workdir,
                        progress=None if FLAGS.progress else False, shard_spec=shard)
  print(sweep.markdown(rows))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
