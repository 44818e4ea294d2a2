"""[O] §3 with a latent that moves: counterfactual teaching against demonstrations on the
piecewise-stationary bandit.

`python -m launch.reproduce changing_latent --workdir=DIR [--quick]`. The task is [O] Remark
11's bandit whose best arm is re-drawn from the prior with hazard h after each step
(`tasks.piecewise_bandit`; Θ_1, A_1, O_1, Θ_2, ...), at h ∈ {0, 0.05, 0.2}. For each h an LSTM
is trained with counterfactual teaching and one with demonstrations (naive conditioning), the
default config otherwise, for each seed; each is deployed and scored as `train.
train_and_evaluate` reports it (`evaluate.agent_metrics`, on the agent's own rollouts): KL from
the interventional and the conditional oracle (both now forward filters over θ's chain) to its
next-action prediction, reward per step, best-action rate (the current best arm, last 5 steps).
The two oracles, deployed as policies, are scored the same way on their own rollouts.
Results in `workdir/results.json` (mean and std over seeds, and every seed), the figure
`figures/kl_interventional_vs_hazard.png`, and a printed markdown table.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import config as config_lib
from causal_meta import evaluate, oracle, plots, rollout, tasks, train
from causal_meta.reproduce import figure_path, write_results

HAZARDS = (0.0, 0.05, 0.2)
TEACHINGS = (("counterfactual", "LSTM, counterfactual"),
             ("demonstration", "LSTM, demonstrations"))
METRICS = ("kl_action_interventional", "kl_action_conditional", "mean_reward",
           "best_action_rate")


def agent_config(hazard: float, teaching: str, seed: int, num_updates: int | None = None):
  """The default config on `piecewise_bandit` with hazard h (`num_updates`: a shorter run)."""
  config = config_lib.default()
  config.seed, config.teaching = seed, teaching
  config.task.name = "piecewise_bandit"
  config.task.piecewise_bandit.hazard = hazard
  if num_updates:
    config.num_updates = config.log_every = num_updates
    config.updates_per_call = min(config.updates_per_call, num_updates)
  return config


@functools.partial(jax.jit, static_argnums=(0, 2))
def oracle_scores(task: tasks.Task, key: jax.Array, episodes: int) -> dict[str, dict]:
  """Each oracle deployed as a policy (`oracle.run_policy`), scored on its own rollouts like an
  agent: KL from both oracles to its next-action predictive (its own is 0), reward per step
  and best-action rate. {'interventional oracle': {METRICS}, 'conditional oracle': ...}."""
  out = {}
  for name, causal in (("interventional oracle", True), ("conditional oracle", False)):
    traj, stats = oracle.run_policy(task, key, episodes, causal)
    probs = {ref_causal: oracle.predictives(task, traj.actions, traj.observations,
                                            jnp.logical_and(traj.intervened, ref_causal)
                                            ).action_probs for ref_causal in (True, False)}
    log_own = jnp.log(probs[causal])
    row = {k: stats[k] for k in ("mean_reward", "best_action_rate")}
    for ref, ref_causal in (("interventional", True), ("conditional", False)):
      row[f"kl_action_{ref}"] = rollout.mean_over_mask(evaluate.kl(probs[ref_causal], log_own),
                                                       traj.mask)
    out[name] = row
  return out


def _mean_std(rows: list[dict]) -> dict:
  return {k: {"mean": float(np.mean([r[k] for r in rows])),
              "std": float(np.std([r[k] for r in rows]))} for k in METRICS}


def format_table(table: dict[str, dict[str, dict]], seeds: int) -> str:
  """Markdown: a row per (h, policy); an agent's mean ± std over seeds when there are several
  (an oracle's one run has no std)."""
  def cell(m):
    return f"{m['mean']:.4f}" + (f" ± {m['std']:.4f}" if seeds > 1 and "std" in m else "")
  lines = ["| h | policy | KL_a(int ‖ ·) | KL_a(cond ‖ ·) | reward | best-action |",
           "|---|---|---|---|---|---|"]
  for hazard, rows in table.items():
    for name, row in rows.items():
      lines.append(f"| {hazard} | {name} | " + " | ".join(cell(row[k]) for k in METRICS) + " |")
  return "\n".join(lines)


def run(workdir: str, seeds=(0, 1, 2), hazards=HAZARDS, num_updates: int | None = None,
        oracle_episodes: int = 20_000, verbose: bool = True) -> dict:
  """Trains every hazard × teaching × seed, scores agents and oracles, prints the table and
  writes results.json and the figure."""
  table, per_seed = {}, {}
  for hazard in hazards:
    rows = {}
    for teaching, label in TEACHINGS:
      runs = []
      for seed in seeds:
        config = agent_config(hazard, teaching, seed, num_updates)
        config_lib.validate(config)
        if verbose:
          print(f"== training: h = {hazard}, {label}, seed {seed}", flush=True)
        result = train.train_and_evaluate(config, None, verbose=False, progress=False)
        runs.append({k: float(result[k]) for k in METRICS})
      per_seed[f"{hazard}/{label}"] = runs
      rows[label] = _mean_std(runs)
    task = config_lib.make_task(agent_config(hazard, "counterfactual", 0))
    scores = oracle_scores(task, jax.random.PRNGKey(seeds[0]), oracle_episodes)
    for name in ("interventional oracle", "conditional oracle"):
      rows[name] = {k: {"mean": float(scores[name][k])} for k in METRICS}  # one run: no std
    table[str(hazard)] = rows

  print(f"\nPiecewise-stationary bandit ([O] Remark 11's, best arm re-drawn with hazard h per "
        f"step): {len(seeds)} seed(s), {config.num_updates} updates of {config.batch_size} "
        f"episodes; agents scored on {config.eval_episodes} of their own deployment episodes, "
        f"oracles on {oracle_episodes} of theirs. KL in nats/step; best-action rate over the "
        "last 5 steps.")
  print(format_table(table, len(seeds)))
  fig = plots.curves(
      figure_path(workdir, "kl_interventional_vs_hazard.png"),
      {label: [table[str(h)][label]["kl_action_interventional"]["mean"] for h in hazards]
       for _, label in TEACHINGS},
      "hazard h", "KL_a(int ‖ agent) (nats/step)",
      "KL to the interventional oracle vs hazard", logy=True, x=hazards)
  results = write_results(workdir, dict(
      hazards=list(hazards), seeds=list(seeds), num_updates=config.num_updates,
      batch_size=config.batch_size, eval_episodes=config.eval_episodes,
      oracle_episodes=oracle_episodes, table=table, per_seed=per_seed))
  print("figure:", fig)
  return results


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """Full: 3 seeds, 1,000 updates of 256 episodes (the default config), oracles on 20,000
  episodes; `quick`: one seed, 200 updates, oracles on 2,048 episodes."""
  del config  # no experiments/ file: `quick` sets the size
  if quick:
    return run(workdir, seeds=(0,), num_updates=200, oracle_episodes=2048, verbose=False)
  return run(workdir)
