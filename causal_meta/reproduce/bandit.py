"""The main job: [O] Remark 11 on the paper's bandit, learned agents beside the exact oracles.

`python -m launch.demo --workdir=DIR` (`run`) or `python -m launch.reproduce bandit --workdir=DIR
[--quick]` (`reproduce`). Trains an LSTM with counterfactual teaching and one with
demonstrations (naive conditioning), deploys both, and prints their KL to the two oracles,
reward and best-arm rate beside the interventional oracle (Thompson sampling) and the
conditional oracle (the deluded imitator). Draws the Remark-11 raster (three 20-step episodes
per agent, arm 1 best) and the best-arm rate over t. Results in `workdir/results.json`, one
run directory per agent.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import oracle, plots, tasks, train
from causal_meta.reproduce import figure_path, write_results


def _oracle_rows(task, key, episodes: int) -> dict[str, dict]:
  rows = {}
  for name, causal in (("interventional oracle", True), ("conditional oracle", False)):
    _, stats = oracle.run_policy(task, key, episodes, causal)
    rows[name] = {k: np.asarray(v).tolist() for k, v in stats.items()}
  return rows


def format_table(rows: dict[str, dict]) -> str:
  """Markdown table; KL columns are blank for the oracles themselves."""
  def f(r, k):
    return f"{r[k]:.4f}" if k in r else "—"
  lines = ["| policy | KL(int ‖ agent) | KL(cond ‖ agent) | mean reward | best-arm rate |",
           "|---|---|---|---|---|"]
  for name, r in rows.items():
    lines.append(f"| {name} | {f(r, 'kl_action_interventional')} | "
                 f"{f(r, 'kl_action_conditional')} | {r['mean_reward']:.4f} | "
                 f"{r['best_action_rate']:.4f} |")
  return "\n".join(lines)


def run(workdir: str, episodes: int = 100_000, seed: int = 0, num_updates: int | None = None,
        verbose: bool = True) -> dict:
  """Trains and deploys both agents, runs both oracles for `episodes` episodes, prints the
  table and writes results and figures. `num_updates` overrides the training length."""
  task = tasks.make("bandit")
  key = jax.random.PRNGKey(seed)
  rows, raster, agent_runs = {}, {}, {}
  for teaching, label in (("counterfactual", "LSTM, counterfactual teaching"),
                          ("demonstration", "LSTM, demonstrations (naive)")):
    config = config_lib.default()
    config.seed, config.teaching = seed, teaching
    if num_updates:
      config.num_updates = config.log_every = num_updates
      config.updates_per_call = min(config.updates_per_call, num_updates)
    if verbose:
      print(f"== training: {label}", flush=True)
    result = train.train_and_evaluate(config, os.path.join(workdir, teaching), verbose)
    rows[label] = {k: result[k] for k in ("kl_action_interventional", "kl_action_conditional",
                                          "mean_reward", "best_action_rate")}
    agent_runs[label] = {k: v for k, v in result.items() if k not in ("params", "history")}
    # Three episodes with the best arm labelled 1 (θ = 0), as in the paper's table.
    _, agent = config_lib.validate(config)
    raster[label] = train.deployments(task, agent, result["params"], jax.random.fold_in(key, 1))
  oracle_rows = _oracle_rows(task, key, episodes)
  rows.update({k: {m: v[m] for m in ("mean_reward", "best_action_rate")}
               for k, v in oracle_rows.items()})

  print(f"\n[O] Remark 11 bandit ({task.num_actions} arms, horizon {task.horizon}). Agents: "
        f"{config.eval_episodes} deployment episodes; oracles: {episodes} episodes. "
        "KL in nats/step on the agent's own rollouts; best-arm rate over the last 5 steps.")
  print(format_table(rows))

  figs = [
      plots.action_raster(figure_path(workdir, "remark11_raster.png"), raster,
                          task.num_actions, "Remark 11: three deployments each, arm 1 best"),
      plots.curves(figure_path(workdir, "best_arm_rate.png"),
                   {**{n: r["curves"]["best_action_rate_by_step"]
                       for n, r in agent_runs.items()},
                    **{n: r["best_action_by_step"] for n, r in oracle_rows.items()}},
                   "step t", "P(best arm)", "Best-arm rate over t"),
  ]
  results = write_results(
      workdir, dict(task=task.summary(), oracle_episodes=episodes, table=rows, agents=agent_runs,
                    raster={n: {"actions": a.tolist(), "rewards": r.tolist()}
                            for n, (a, r) in raster.items()}))
  print("figures:", ", ".join(figs))
  return results


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """[O] Remark 11 (the main job); `quick`: 200 updates per agent, 5,000 oracle episodes."""
  del config  # no experiments/ file: `quick` sets the size
  if quick:
    return run(workdir, episodes=5_000, num_updates=200, verbose=False)
  return run(workdir)
