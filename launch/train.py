"""Train one agent: `python -m launch.train --config=experiments/bandit.py --workdir=DIR`.

Any config field can be overridden: `--config.agent.kind=transformer`,
`--config.teaching=demonstration`, `--config.task.name=padlock`.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where config.json, metrics.jsonl, summary.json and "
                    "figures/ go.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from causal_meta import config as config_lib
  from causal_meta import train
  config = FLAGS.config
  if config is None:
    print("error: --config is required (e.g. --config=experiments/bandit.py)", file=sys.stderr)
    sys.exit(2)
  try:
    config_lib.validate(config)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  train.train_and_evaluate(config, FLAGS.workdir)


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
