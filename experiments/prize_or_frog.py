"""Prize or frog ([O] §2): one step; the counterfactual agent learns P(o=+1 | do(a)) = 1/2.

  python -m launch.train --config=experiments/prize_or_frog.py --workdir=runs/prize_or_frog
"""

from causal_meta import config as config_lib


def get_config():
  c = config_lib.default()
  c.task.name = "prize_or_frog"
  c.num_updates = 300
  c.updates_per_call = 100
  c.log_every = 100
  return c
