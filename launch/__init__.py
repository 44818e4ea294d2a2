"""Thin absl mains (`python -m launch.NAME`); the work happens in `causal_meta`."""

import difflib
import re
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


def config_flag():
  """The value of a `config_flags` --config (None if not given); a config file that cannot be
  read is one error line (the file is loaded lazily, on first access)."""
  try:
    config = flags.FLAGS.config
    if config is not None:
      config.get("seed")
    return config
  except OSError as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    fail(f"--config: {lines[-1] if lines else e}")


def run_training(start):
  """`start()` (a `train.train_and_evaluate` call) with `launch.train`'s exit statuses: 2 for a
  workdir in use or a checkpoint that does not fit, 1 for a non-finite loss, 143 when
  preempted. Returns what `start` returns."""
  from causal_meta import checkpoints, train, workdir
  try:
    return start()
  except (checkpoints.IncompatibleCheckpoint, workdir.WorkdirError) as e:
    fail(str(e))
  except train.NonFiniteLoss as e:
    fail(str(e), status=1)
  except train.Preempted as e:
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(143)


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
  except (AttributeError, KeyError) as e:  # an override of a field the config lacks
    fail(_unknown_field(argv, e))
  except SyntaxError as e:  # raised while executing the config file
    fail(f"--config: {e.msg} ({e.filename}:{e.lineno})")
  except Exception as e:  # pylint: disable=broad-except  (the config file's own code failed)
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    fail(f"--config: {type(e).__name__}: {lines[-1] if lines else ''}")


def _unknown_field(argv, error: Exception) -> str:
  """`--config.agent.hiden: no such field; did you mean agent.hidden?` for the first override
  in argv that names no field of its config. ml_collections' own message names only the
  missing leaf, so the config file is loaded again to find the override and the closest of
  its dotted paths; failing that, the leaf and suggestion are read from the message. When
  every override resolves, the error came from the config file's own code and says so."""
  try:
    for arg in argv[1:]:
      match = re.match(r"^--?(\w+)\.([\w.]+)", arg)
      if not match:
        continue
      name = match[1] if match[1] in flags.FLAGS else match[1][2:]  # --noconfig.FIELD
      value = _flag_argument(argv, name)
      if name not in flags.FLAGS or value is None:
        continue
      config = flags.FLAGS[name].parser.parse(value)
      path = match[2]
      if _resolves(config, path):
        continue
      close = difflib.get_close_matches(path, _paths(config), n=1)
      hint = f"; did you mean {close[0]}?" if close else ""
      return f"--{name}.{path}: no such field{hint}"
  except Exception:  # pylint: disable=broad-except  (fall back to the library's message)
    pass
  text = str(error).replace("\\n", "\n")
  hint = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', text)
  if hint:
    return f"--config has no field {hint[2]!r}; did you mean {hint[1]}?"
  # Every override resolves: the config file's own code raised.
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  return f"--config: {type(error).__name__}: {lines[-1] if lines else ''}"


def _flag_argument(argv, name: str) -> str | None:
  """The value given to --NAME (`--NAME=V` or `--NAME V`) in argv, None if absent."""
  for i, arg in enumerate(argv):
    match = re.match(rf"^--?{re.escape(name)}(=(.*))?$", arg)
    if match:
      return match[2] if match[1] else (argv[i + 1] if i + 1 < len(argv) else None)
  return None


def _resolves(config, path: str) -> bool:
  node = config
  for part in path.split("."):
    try:
      if part not in node:
        return False
    except TypeError:  # a leaf value (int, str, ...) has no fields
      return False
    node = node[part]
  return True


def _paths(node, prefix: str = "") -> list[str]:
  """Every dotted field path of a (nested) ConfigDict, fields and subtrees alike."""
  out = []
  for key in node.keys():
    out.append(prefix + key)
    if hasattr(node[key], "keys"):
      out.extend(_paths(node[key], f"{prefix}{key}."))
  return out
