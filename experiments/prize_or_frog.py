"""Prize or frog ([O] §2): one step; the counterfactual agent learns P(o=+1 | do(a)) = 1/2.

  python -m launch.train --config=experiments/prize_or_frog.py --workdir=runs/prize_or_frog

prints, on the 2-core CPU:

  done: 300 updates; KL(int) 2.414e-06, KL(cond) 2.414e-06; wrote runs/prize_or_frog

(One step, no history before it: the conditional and interventional oracles agree on the action,
so the two KLs are equal.)
`python -m launch.reproduce prize_or_frog` trains this agent and a demonstration one and prints
their P(o = prize | do(a)) beside the exact values (`causal_meta.reproduce.prize_or_frog`).
"""

from causal_meta import config as config_lib


def get_config():
  c = config_lib.default()
  c.task.name = "prize_or_frog"
  c.num_updates = 300
  c.updates_per_call = 100
  c.log_every = 100
  return c
