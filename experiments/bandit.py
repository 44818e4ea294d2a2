"""[O] Remark 11 bandit, LSTM, counterfactual teaching.

  python -m launch.train --config=experiments/bandit.py --workdir=runs/bandit
  python -m launch.train --config=experiments/bandit.py --workdir=runs/bandit_demo \
      --config.teaching=demonstration
"""

from causal_meta import config as config_lib


def get_config():
  return config_lib.default()
