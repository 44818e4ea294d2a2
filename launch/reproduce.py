"""Reproduces one result: `python -m launch.reproduce NAME --workdir=DIR [--quick]`.

Writes DIR/results.json and DIR/figures/*.png and prints a short table. NAME is a key of
RESULTS, each a callable (workdir, quick) -> results dict. Bad input: one `error:` line, exit
status 2.
"""

from absl import app, flags

from launch import define_check_flag, fail, quiet_logging

from causal_meta import results
from causal_meta.tabular import reproduce as tabular_reproduce
from experiments import padlock_retrain, tictactoe

flags.DEFINE_string("workdir", None, "Where results.json and figures/ go.")
flags.DEFINE_bool("quick", False, "A smaller, faster run (for tests).")
define_check_flag()
FLAGS = flags.FLAGS

RESULTS = {
    "prize_or_frog": results.prize_or_frog,
    "bandit": results.bandit,
    "mountain_race": tabular_reproduce.mountain_race,
    "card_game": tabular_reproduce.card_game,
    "stock_trader": tabular_reproduce.stock_trader,
    "planning": tabular_reproduce.planning,
    "padlock": padlock_retrain.reproduce,
    "tictactoe": tictactoe.reproduce,
}


def main(argv):
  quiet_logging()
  names = ", ".join(sorted(RESULTS))
  if len(argv) != 2 or argv[1] not in RESULTS:
    got = " ".join(argv[1:]) or "nothing"
    fail(f"reproduce: expected one NAME out of {{{names}}}, got {got}")
  if not FLAGS.workdir:
    fail("reproduce: --workdir=DIR is required")
  name = argv[1]
  if FLAGS.check:
    print(f"check: reproduce {name}{' (quick)' if FLAGS.quick else ''} -> {FLAGS.workdir}")
    return
  out = RESULTS[name](FLAGS.workdir, FLAGS.quick)
  if RESULTS[name].__module__ == tabular_reproduce.__name__:  # the others print their own
    print(tabular_reproduce.format_results(name, out))
  print(f"wrote {FLAGS.workdir}/results.json and {FLAGS.workdir}/figures/")


if __name__ == "__main__":
  app.run(main)
