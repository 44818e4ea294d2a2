"""Where a trained agent's distance to the conditional oracle comes from, step by step:

  python -m launch.diagnose --workdir=runs/padlock_demo [--episodes=N]

prints, per step, the agent's KL(conditional oracle ‖ agent) on its own deployment rollouts
and on the expert's rollouts (see causal_meta/diagnose.py).
"""

from absl import app, flags

from launch import fail, quiet_logging

from causal_meta import diagnose

flags.DEFINE_string("workdir", None, "A run's directory (config.json and checkpoints/).")
flags.DEFINE_integer("episodes", None, "Expert episodes (default: the run's eval_episodes).")
FLAGS = flags.FLAGS


def main(argv):
  quiet_logging()
  if len(argv) > 1:
    fail(f"diagnose: unexpected arguments {' '.join(argv[1:])}")
  if not FLAGS.workdir:
    fail("diagnose: --workdir=DIR is required")
  if FLAGS.episodes is not None and FLAGS.episodes < 1:
    fail(f"diagnose: --episodes must be a positive integer, got {FLAGS.episodes}")
  try:
    out = diagnose.diagnose(FLAGS.workdir, FLAGS.episodes)
  except (FileNotFoundError, ValueError) as e:
    fail(f"diagnose: {e}")
  print(diagnose.format_table(out))


if __name__ == "__main__":
  app.run(main)
