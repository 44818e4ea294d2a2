"""Thin absl mains (`python -m launch.NAME`); the work happens in `causal_meta`."""

from absl import flags, logging


def quiet_logging() -> None:
  """WARNING and above unless the user passed --verbosity: orbax logs every save at INFO."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
