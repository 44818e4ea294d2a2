"""Padlock (SPEC §2; n=6, m=3), LSTM, counterfactual teaching.

  python -m launch.train --config=experiments/padlock.py --workdir=runs/padlock
"""

from causal_meta import config as config_lib


def get_config():
  c = config_lib.default()
  c.task.name = "padlock"
  # The transformer needs about 6,000 updates to reach 0.02 nats/step (0.099 at 1,000, 0.052
  # at 2,000; README). Minutes for the LSTM on 2 CPU cores; the transformer wants an accelerator.
  c.num_updates = 6000
  # Full support: a deluded agent leaves the expert's support, where a deterministic expert
  # would leave the conditional oracle undefined.
  c.task.padlock.epsilon = 0.3
  return c
