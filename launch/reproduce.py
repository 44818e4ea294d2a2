"""Reproduces one result: `python -m launch.reproduce NAME --workdir=DIR [--quick | --size=S |
--config=FILE:S --config.FIELD=VALUE ...] [--check]`.

Writes DIR/results.json and DIR/figures/*.png and prints a short table. NAME is a key of
`causal_meta.reproduce.RESULTS`; the results of `causal_meta.reproduce.CONFIGS` take their
config from a file of experiments/ (`get_config(S)`; default: the full run's, 'quick' with
--quick), loaded here by path and passed to the runner. `--config` names the file and its
argument instead, and lets any field be overridden, as `launch.train` does:

  python -m launch.reproduce tictactoe --workdir=runs/ttt \
    --config=experiments/tictactoe_retrain.py:cpu --config.pretrain_updates=8000

The runner checks the config first (`causal_meta.reproduce.CHECKS`: tasks and models built,
nothing compiled); `--check` stops there and writes nothing. Bad input: one `error:` line,
exit status 2, nothing written.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from launch import config_flag, define_check_flag, fail, parse_flags, quiet_logging

from causal_meta import reproduce

flags.DEFINE_string("workdir", None, "Where results.json and figures/ go.")
flags.DEFINE_bool("quick", False, "A smaller, faster run (for tests).")
flags.DEFINE_string("size", None, "For a NAME with a file in experiments/: the get_config "
                    "argument (that file's docstring lists them).")
config_flags.DEFINE_config_file("config", None, "Instead of --size or --quick: the config "
                                "file of a NAME with one and its get_config argument "
                                "(FILE:ARG); --config.FIELD=VALUE overrides a field.")
define_check_flag()
FLAGS = flags.FLAGS

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "experiments")


def main(argv):
  quiet_logging()
  names = ", ".join(sorted(reproduce.RESULTS))
  if len(argv) != 2 or argv[1] not in reproduce.RESULTS:
    got = " ".join(argv[1:]) or "nothing"
    fail(f"reproduce: expected one NAME out of {{{names}}}, got {got}")
  if not FLAGS.workdir:
    fail("reproduce: --workdir=DIR is required")
  name = argv[1]
  config = None
  if FLAGS.size is not None and FLAGS.quick:
    fail("reproduce: --size and --quick exclude each other (--quick is --size=quick)")
  if FLAGS.size is not None and name not in reproduce.CONFIGS:
    fail(f"reproduce: --size is for {', '.join(sorted(reproduce.CONFIGS))}, not {name}")
  what = " (quick)" if FLAGS.quick else f" ({FLAGS.size})" if FLAGS.size else ""
  if FLAGS["config"].present:
    if name not in reproduce.CONFIGS:
      fail(f"reproduce: --config is for {', '.join(sorted(reproduce.CONFIGS))}, not {name}")
    if FLAGS.size is not None or FLAGS.quick:
      fail("reproduce: --config replaces --size and --quick; pass one of them")
    config = config_flag()
    what = f" ({FLAGS['config'].config_filename})"
  elif name in reproduce.CONFIGS:
    file, size = reproduce.CONFIGS[name]
    try:
      config = reproduce.load_config(os.path.join(EXPERIMENTS, file),
                                     "quick" if FLAGS.quick else FLAGS.size or size)
    except ValueError as e:
      fail(str(e).splitlines()[0])
  # Runners that can validate their config without training do (tasks and agents built).
  check = reproduce.CHECKS.get(name)
  if check is not None:
    try:
      check(config)
    except ValueError as e:
      fail(str(e).splitlines()[0])
    except (TypeError, KeyError, AttributeError) as e:  # e.g. another experiment's config
      fail(f"reproduce {name}: the config does not fit this runner ({type(e).__name__}: "
           f"{str(e).splitlines()[0] if str(e) else ''})")
  if FLAGS.check:
    print(f"check: reproduce {name}{what} -> {FLAGS.workdir}")
    return
  reproduce.RESULTS[name](FLAGS.workdir, FLAGS.quick, config)
  print(f"wrote {FLAGS.workdir}/results.json and {FLAGS.workdir}/figures/")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
