"""Padlock (SPEC §2; n=6, m=3), LSTM, counterfactual teaching.

  python -m launch.train --config=experiments/padlock.py --workdir=runs/padlock
"""

from causal_meta import config as config_lib


def get_config():
  c = config_lib.default()
  c.task.name = "padlock"
  c.num_updates = 2000
  # Full support: a deluded agent leaves the expert's support, where a deterministic expert
  # would leave the conditional oracle undefined.
  c.task.padlock.epsilon = 0.3
  return c
