"""Padlock delusion and self-retraining ([D] §4.1, Table 1, App. C) vs counterfactual teaching.

  python -m launch.reproduce padlock --workdir=runs/padlock_retrain          # get_config('cpu')
  python -m launch.reproduce padlock --workdir=runs/padlock_quick --quick    # get_config('quick')

The runner is `causal_meta.reproduce.padlock_retrain`. With 'cpu' (n=6, m=3; 238 s on the 2-core
CPU) it prints (docs/retraining.md; here without the like-with-like column, KL(data ‖ model)
0.0342, 0.0203, 0.0210 for rounds 1-3):

  | model | delusion (ours) | App. C KL(model ‖ ideal) | accuracy (ours) | delusion [D] | accuracy [D] |
  |---|---|---|---|---|---|
  | pretrained on demonstrations | 3.4947 | 0.5528 | 71.39% | 1.3863 | 16.28% |
  | retrained, round 1 | 0.1463 | 0.1031 | 88.82% | 0.1773 | 17.05% |
  | retrained, round 2 | 0.0782 | 0.0273 | 92.29% | – | – |
  | retrained, round 3 | 0.0654 | 0.0262 | 94.38% | – | – |
  | from scratch (random play) | 0.2722 | 0.1911 | 24.22% | – | 0.05% |
  | counterfactual teaching | 0.0190 | 0.0072 | 89.21% | – | – |
  | interventional oracle policy | 0 | 0 | 92.38% | – | – |
  | conditional oracle policy | – | – | 48.93% | – | – |

and a `targets:` line, all true. `get_config('quick' | 'cpu' | 'cpu_paper' | 'cpu_paper_47' |
'gpu')`: quick is the CPU smoke run used by the tests (n=6, m=3, a minute or two), cpu the n=6,
m=3 run above.

[D]'s own protocol (`task.random_start`: the switches start at random and the model reads them
first; n = 15, m = 5; a horizon of 15 flips, the experts' maximum, after the 16 reading and
test steps; evaluation on 10,240 episodes as [D]'s accuracies imply): `gpu` at [D]'s size
(3 layers, 8 heads, 384 wide, feed-forward 1,536, batch 1,024, 2,000 iterations per stage,
4,000 from scratch), `cpu_paper` the same game with the CPU model, `cpu_paper_47` that with
n + 2^m = 47 flips; all over seeds 0, 1, 2 (mean ± std). Exact references for it:
`launch.reproduce padlock_exact`.

  python -m launch.reproduce padlock --workdir=runs/padlock_paper --size=gpu
"""

import ml_collections


def get_config(size: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.size = size
  c.seed = 0
  c.seeds = (0,)                # several: one run each, and the table of mean ± std
  c.task = dict(num_switches=6, num_secret=3)
  c.model = dict(width=64, num_layers=2, num_heads=4)
  c.learning_rate = 1e-3
  c.batch_size = 128
  c.num_demos = 4096          # expert demonstrations (all succeed: labelled success)
  c.pretrain_updates = 1000
  c.rounds = 3
  c.rollouts_per_round = 4096  # own success-conditioned rollouts per round
  c.retrain_updates = 1000
  c.mix = 0.0                  # per-row probability of an original demonstration when fine-tuning
  c.accumulate = False         # fine-tune on all rounds' rollouts so far, not only the last
  c.num_random = 4096          # random-play episodes for training from scratch
  c.scratch_updates = 1000
  c.counterfactual_updates = 2000  # train.train_and_evaluate, teaching='counterfactual'
  c.eval_episodes = 2048
  # After each fine-tuning round, the delusion against what its data say (the previous model's
  # success-conditioned predictive, `retrain.like_with_like`): on this many of its own rollouts,
  # each step's reference from this many Monte Carlo continuations (0 episodes: not measured).
  c.like_with_like_episodes, c.like_with_like_samples = 256, 32
  if size == "quick":
    c.model = dict(width=32, num_layers=2, num_heads=2)
    c.learning_rate = 3e-3
    c.batch_size = 64
    c.num_demos = c.rollouts_per_round = c.num_random = 1024
    c.pretrain_updates = c.retrain_updates = c.scratch_updates = 200
    c.counterfactual_updates = 300
    c.rounds = 2
    c.eval_episodes = 512
    c.like_with_like_episodes, c.like_with_like_samples = 32, 8
  elif size in ("gpu", "cpu_paper", "cpu_paper_47"):
    # 15 switches read, the test step, then at most 15 flips (cpu_paper_47: n + 2^m = 47).
    flips = 47 if size == "cpu_paper_47" else 15
    c.task = dict(num_switches=15, num_secret=5, random_start=True, horizon=16 + flips)
    c.rounds = 2
    c.eval_episodes = 10_240
    c.seeds = (0, 1, 2)
    if size == "cpu_paper_47":  # twice the steps: fewer evaluation and like-with-like episodes
      c.eval_episodes, c.like_with_like_episodes = 2048, 64
    if size == "gpu":
      c.model = dict(width=384, num_layers=3, num_heads=8)
      c.learning_rate = 3e-4
      c.batch_size = 1024
      c.num_demos = c.rollouts_per_round = c.num_random = 65536
      c.pretrain_updates = c.retrain_updates = 2000
      c.scratch_updates = 4000
      c.counterfactual_updates = 4000
  elif size != "cpu":
    raise ValueError(f"padlock_retrain: size must be quick, cpu, cpu_paper, cpu_paper_47 or "
                     f"gpu, got {size!r}")
  return c
