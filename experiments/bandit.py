"""[O] Remark 11 bandit, LSTM, counterfactual teaching (the config `config.default()`).

  python -m launch.train --config=experiments/bandit.py --workdir=runs/bandit
  python -m launch.train --config=experiments/bandit.py --workdir=runs/bandit_demo \
      --config.teaching=demonstration

print, on the 2-core CPU (KL in nats/step to the interventional and the conditional oracle, on
the agent's own rollouts):

  done: 1000 updates; KL(int) 0.002592, KL(cond) 0.1113; wrote runs/bandit
  done: 1000 updates; KL(int) 0.2289, KL(cond) 0.003168; wrote runs/bandit_demo

These are the two agents of the main job, `python -m launch.demo` (`causal_meta.reproduce.bandit`).
"""

from causal_meta import config as config_lib


def get_config():
  return config_lib.default()
