"""Thin absl mains (`python -m launch.NAME`); the work happens in `causal_meta`."""

import sys

from absl import flags, logging


def quiet_logging() -> None:
  """WARNING and above unless the user passed --verbosity: orbax logs every save at INFO."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


def define_check_flag() -> None:
  """`--check`: a dry run for batch jobs and sweeps. The launcher validates its flags and
  config(s), prints a `check:` line per run it would start, and exits 0; nothing is compiled
  or written."""
  flags.DEFINE_bool("check", False, "Validate the flags and config(s), print what would run, "
                    "and exit: nothing is compiled or written.")


def describe(config, size: str | None = None) -> str:
  """One run in a few words, for `--check`; `size` replaces "batch B, N updates"."""
  size = size or f"batch {config.batch_size}, {config.num_updates} updates"
  return f"{config.task.name}, {config.agent.kind}, {config.teaching} teaching, {size}"


def fail(message: str, status: int = 2):
  """One line on stderr, no traceback."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(status)


def parse_flags(argv):
  """absl's parser (`app.run(main, flags_parser=parse_flags)`), with every failure (unknown or
  mistyped field, missing config file, a config file that raised, missing flag) reduced to one
  line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    # A config file's get_config() that raised: config_flags appends its traceback, whose
    # last line is the reason.
    reason = f" {lines[-1]}" if len(lines) > 1 and "Error whilst parsing" in lines[0] else ""
    fail(lines[0] + reason)
  except AttributeError as e:  # an override of a field the config lacks
    fail(f"--config has no field {str(e).strip(chr(34) + chr(39))!r}")
  except SyntaxError as e:  # raised while executing the config file
    fail(f"--config: {e.msg} ({e.filename}:{e.lineno})")
  except Exception as e:  # pylint: disable=broad-except  (the config file's own code failed)
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    fail(f"--config: {type(e).__name__}: {lines[-1] if lines else ''}")
