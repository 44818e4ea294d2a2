"""The main job: [O] Remark 11 on the paper's bandit.

Deploys the interventional oracle (Thompson sampling) and the conditional oracle (the deluded
imitator), prints their reward and best-arm rate, and draws the Remark-11 raster (three 20-step
episodes each, arm 1 best) and the best-arm rate over t. Results in `workdir/results.json`.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from causal_meta import oracle, plots, tasks


def oracle_rows(task, key, episodes: int) -> dict[str, dict]:
  """Reward and best-action statistics of both oracle policies on `episodes` episodes."""
  rows = {}
  for name, causal in (("interventional oracle", True), ("conditional oracle", False)):
    _, stats = oracle.run_policy(task, key, episodes, causal)
    rows[name] = {k: np.asarray(v).tolist() for k, v in stats.items()}
  return rows


def format_table(rows: dict[str, dict]) -> str:
  lines = [f"| {'policy':<28} | mean reward | best-arm rate (last 5) |",
           f"|{'-' * 30}|-------------|------------------------|"]
  for name, r in rows.items():
    lines.append(f"| {name:<28} | {r['mean_reward']:11.4f} | {r['best_action_rate']:22.4f} |")
  return "\n".join(lines)


def run(workdir: str, episodes: int = 100_000, seed: int = 0) -> dict:
  task = tasks.make("bandit")
  key = jax.random.PRNGKey(seed)
  rows = oracle_rows(task, key, episodes)
  print(f"[O] Remark 11 bandit ({task.num_actions} arms, horizon {task.horizon}), "
        f"{episodes} episodes each, θ ~ uniform:")
  print(format_table(rows))

  # Three episodes each with the best arm labelled 1 (θ = 0), as in the paper's table.
  raster = {}
  theta = np.zeros(3, np.int32)
  for name, causal in (("conditioning (deluded)", False), ("intervening", True)):
    traj, _ = oracle.run_policy(task, jax.random.fold_in(key, 1), 3, causal, theta)
    raster[name] = (np.asarray(traj.actions), np.asarray(traj.rewards))
  os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
  figs = [
      plots.action_raster(os.path.join(workdir, "figures", "remark11_raster.png"), raster,
                          task.num_actions, "Oracle policies on the Remark-11 bandit"),
      plots.curves(os.path.join(workdir, "figures", "best_arm_rate.png"),
                   {n: r["best_action_by_step"] for n, r in rows.items()}, "step t",
                   "P(best arm)", "Best-arm rate over t"),
  ]
  results = dict(task=task.summary(), episodes=episodes, policies=rows,
                 raster={n: {"actions": a.tolist(), "rewards": r.tolist()}
                         for n, (a, r) in raster.items()})
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  print("figures:", ", ".join(figs))
  return results
