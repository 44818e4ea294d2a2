"""Train one agent: `python -m launch.train --config=experiments/bandit.py --workdir=DIR`.

Any config field can be overridden: `--config.agent.kind=transformer`,
`--config.teaching=demonstration`, `--config.task.name=padlock`. Rerunning the same command
resumes from DIR's latest checkpoint; SIGTERM checkpoints and exits with status 143.
`--check` validates the config and says what would run, writing nothing.

Exit status: 0 done; 2 bad input (one `error:` line on stderr naming the field, nothing
written; also a workdir in use by another run, or whose checkpoint was written with a config
that differs in more than `checkpoints.RESUMABLE_CHANGES` without --allow_config_change);
1 a non-finite loss (the last good checkpoint is kept); 143 preempted by SIGTERM.
"""

from absl import app, flags
from ml_collections import config_flags

from launch import (config_flag, define_check_flag, describe, fail, parse_flags,
                    quiet_logging, run_training)

config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints/, config.json, metrics.jsonl, "
                    "tensorboard/, summary.json and figures/ go; reused to resume.")
flags.DEFINE_bool("progress", True, "A progress bar when stdout is a terminal "
                  "(--noprogress: plain log lines).")
flags.DEFINE_bool("allow_config_change", False, "Resume even though the config differs from "
                  "the checkpoint's in fields other than num_updates, logging and the like "
                  "(the changes are recorded in WORKDIR/resumes.jsonl).")
define_check_flag()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  from causal_meta import config as config_lib
  from causal_meta import train
  from causal_meta import workdir as workdir_lib
  config = config_flag()
  if config is None:
    fail("--config is required (e.g. --config=experiments/bandit.py)")
  if not FLAGS.workdir:
    fail("--workdir is required")
  try:
    config_lib.validate(config)
    workdir_lib.check(FLAGS.workdir)
  except (ValueError, TypeError, KeyError) as e:
    fail(str(e).splitlines()[0])
  if FLAGS.check:
    print(f"check: {describe(config)} -> {FLAGS.workdir}")
    return
  summary = run_training(lambda: train.train_and_evaluate(
      config, FLAGS.workdir, verbose=True, progress=None if FLAGS.progress else False,
      allow_config_change=FLAGS.allow_config_change))
  print(f"done: {summary['updates']} updates; KL(int) {summary['kl_action_interventional']:.4g}"
        f", KL(cond) {summary['kl_action_conditional']:.4g}; wrote {FLAGS.workdir}", flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
