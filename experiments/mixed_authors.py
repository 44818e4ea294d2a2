"""Pasts of mixed authorship ([O] Remarks 14-15): the settings of `launch.reproduce mixed_authors`.

  python -m launch.reproduce mixed_authors --workdir=runs/mixed_authors                  # bandit
  python -m launch.reproduce mixed_authors --workdir=runs/mixed_padlock --size=padlock
  python -m launch.reproduce mixed_authors --workdir=runs/mixed_quick --quick            # quick

The runner is `causal_meta.reproduce.mixed_authors`; docs/mixed_authors.md has the tables.
`get_config(setting)`:

  bandit    the [O] Remark 11 bandit with the default config (batch 256, 1,000 updates)
  padlock   padlock (6 switches, 8 codes) with a noisy expert (ε = 0.42, docs/padlock.md),
            4,000 updates of 256 episodes on a cosine schedule
  quick     the CI smoke run: the bandit, the LSTM, one seed, 300 updates

Each trains the agents of `kinds` with counterfactual teaching, demonstrations and mixed
teaching (p = 0.5) for every seed, and scores each at q ∈ {0, 0.25, 0.5, 0.75, 1}.
"""

import ml_collections

SETTINGS = ("bandit", "padlock", "quick")


def get_config(setting: str = "bandit") -> ml_collections.ConfigDict:
  if setting not in SETTINGS:
    raise ValueError(f"experiments/mixed_authors.py: unknown setting {setting!r}; allowed: "
                     f"{', '.join(SETTINGS)}")
  c = ml_collections.ConfigDict()
  c.size = c.setting = setting  # `size`: the get_config argument, as in every experiments/ file
  c.task_name = "bandit"
  c.task = {}                     # overrides of the run config's task.<task_name>
  c.kinds = ("lstm", "transformer")
  c.seeds = (0, 1, 2)
  c.num_updates = 1000
  c.schedule = "constant"
  if setting == "padlock":
    c.task_name = "padlock"
    # Full support: the conditional oracle is defined on every history an agent reaches.
    c.task = dict(epsilon=0.42)
    c.num_updates = 4000
    c.schedule = "cosine"
  elif setting == "quick":
    c.kinds, c.seeds, c.num_updates = ("lstm",), (0,), 300
  return c
