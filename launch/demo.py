"""The README's main job, [O] Remark 11: `python -m launch.demo --workdir=runs/demo`.

Runs `causal_meta.reproduce.bandit.run` (also `python -m launch.reproduce bandit`).
"""

from absl import app, flags

from launch import quiet_logging

flags.DEFINE_string("workdir", "runs/demo", "Where results.json and figures/ go.")
flags.DEFINE_integer("episodes", 100_000, "Episodes per oracle policy.")
flags.DEFINE_integer("seed", 0, "PRNG seed.")
flags.DEFINE_integer("num_updates", None, "Override the training length (default: config's).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  from causal_meta.reproduce import bandit
  bandit.run(FLAGS.workdir, FLAGS.episodes, FLAGS.seed, FLAGS.num_updates)


if __name__ == "__main__":
  app.run(main)
