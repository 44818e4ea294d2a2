"""Teaching from logged demonstrations alone ([O] §4.2): the settings of `launch.reproduce offline`.

  python -m launch.reproduce offline --workdir=runs/offline                       # 'bandit'
  python -m launch.reproduce offline --workdir=runs/offline_padlock --size=padlock
  python -m launch.reproduce offline --workdir=runs/offline_quick --quick         # 'quick'

The runner is `causal_meta.reproduce.offline`; docs/offline.md has every setting's table.
`get_config(setting)`:

  bandit                 the [O] Remark 11 bandit, logs of 10^2..10^5 episodes, K̂ = 5, with
                         the neural model class's oracle beside the tabular one
  bandit_skewed          a non-default bandit: 3 arms, a skewed prior, a more decisive expert
                         and closer reward rates
  bandit_latents         a wrong K̂ (1, 3, 8 against the true 5) and the held-out
                         log-likelihood by K̂ that tells it
  padlock                padlock (6 switches, 8 codes) with a noisy expert (ε = 0.2)
  padlock_deterministic  the same with ε = 0: the expert never shows what a wrong flip does
  quick                  the CI smoke run: the bandit, logs of 10^2 and 10^3, one seed
"""

import ml_collections


def get_config(setting: str = "bandit") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.size = c.setting = setting  # `size`: the get_config argument, as in every experiments/ file
  c.task_name = "bandit"
  c.task = {}                     # tasks.make(task_name, **task)
  c.log_sizes = (100, 1000, 10_000, 100_000)
  c.seeds = (0, 1, 2)
  c.num_latents = 5               # K̂ of the main rows
  c.teach_latents = (5,)          # an agent taught in the model fitted with each K̂
  c.oracle_latents = (5,)         # the fitted (tabular) model's oracle gap for each K̂
  c.neural_oracle = False         # also the neural model class's oracle gap (K̂ = num_latents)
  c.behaviour_cloning = True
  c.online = True                 # the ceiling: counterfactual teaching in the true task
  c.heldout_latents = ()          # K̂ candidates of the held-out log-likelihood table
  c.agent = dict(num_updates=1000, batch_size=256, eval_episodes=2048)
  if setting == "bandit":
    c.neural_oracle = True
  elif setting == "bandit_skewed":
    c.task = dict(num_arms=3, best_arm_prob=0.8, reward_prob_best=0.6, reward_prob_other=0.4,
                  prior=(0.5, 0.3, 0.2))
    c.num_latents, c.teach_latents, c.oracle_latents = 3, (3,), (3,)
  elif setting == "bandit_latents":
    c.log_sizes = (10_000,)
    c.teach_latents = (1, 3, 5, 8)
    c.oracle_latents = (1, 3, 5, 8)
    c.behaviour_cloning = False
    c.heldout_latents = (1, 2, 3, 4, 5, 6, 8)
  elif setting in ("padlock", "padlock_deterministic"):
    c.task_name = "padlock"
    c.task = dict(epsilon=0.2 if setting == "padlock" else 0.0)
    c.num_latents, c.teach_latents, c.oracle_latents = 8, (8,), (8,)
    c.log_sizes = (100, 1000, 10_000, 100_000) if setting == "padlock" else (1000, 10_000)
    c.behaviour_cloning = setting == "padlock"
  elif setting == "quick":
    c.log_sizes, c.seeds = (100, 1000), (0,)
    c.agent = dict(num_updates=400, batch_size=128, eval_episodes=1024)
  else:
    raise ValueError(f"experiments/offline.py: unknown setting {setting!r}; allowed: bandit, "
                     f"bandit_skewed, bandit_latents, padlock, padlock_deterministic, quick")
  return c
