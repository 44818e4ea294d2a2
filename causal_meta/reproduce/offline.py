"""Teaching from logged demonstrations alone ([O] §4.2) on the [O] Remark 11 bandit.

`python -m launch.reproduce offline --workdir=DIR [--quick]`. θ is never logged. Per log size N
and seed, N expert demonstrations are drawn, and four numbers are set side by side, each the
KL(true interventional oracle ‖ ·) in nats/step:

  offline counterfactual   an LSTM taught counterfactually in braided rollouts of the tabular
                           model fitted to the log by EM (`offline.teach_from_log`, K̂ = 5),
                           deployed in the true bandit, on its own rollouts;
  behaviour cloning        an LSTM fitted to the logged trajectories themselves, early-stopped
                           on a held-out fifth (`offline.behaviour_cloning`): its limit is the
                           conditional oracle, the delusion;
  online counterfactual    the ceiling: counterfactual teaching in the true bandit (one per
                           seed, no log);
  fitted model's oracle    the fitted model's exact interventional oracle against the true
                           one (`offline.oracle_kl`): what the offline agent is taught towards.

Writes results.json, figures/offline_kl.png (KL vs log size, log-log, mean ± std over seeds)
and prints a markdown table. Full: N = 10^2, 10^3, 10^4, 3 seeds, 1000 updates per agent;
`quick`: N = 10^2, 10^3, one seed, 400 updates of 128 episodes.
"""

from __future__ import annotations

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import offline, plots, rollout, tasks, train
from causal_meta.reproduce import figure_path, write_results

METHODS = ("offline counterfactual", "behaviour cloning", "online counterfactual",
           "fitted model's oracle")
NUM_LATENTS = 5  # K̂: the bandit's θ is the best of its 5 arms


def settings(quick: bool):
  """(config, log sizes, seeds) of the full or the quick run."""
  c = config_lib.default()
  if quick:
    c.num_updates, c.batch_size, c.eval_episodes = 400, 128, 1024
    sizes, seeds = (100, 1000), (0,)
  else:
    sizes, seeds = (100, 1000, 10_000), (0, 1, 2)
  c.updates_per_call = 50  # behaviour cloning checks its held-out loss this often
  c.log_every = c.num_updates
  return c, sizes, seeds


def _mean_std(values) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  return dict(mean=float(values.mean()), std=float(values.std()))


def format_table(summary: dict, sizes) -> str:
  """Markdown: one row per method, one column per log size, KL(true int. oracle ‖ ·)."""
  lines = ["| method | " + " | ".join(f"N = {n}" for n in sizes) + " |",
           "|---|" + "---|" * len(sizes)]
  for method in METHODS:
    cells = [f"{summary[method][str(n)]['mean']:.4f} ± {summary[method][str(n)]['std']:.4f}"
             for n in sizes]
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _figure(path: str, summary: dict, sizes) -> str:
  from matplotlib.figure import Figure  # here: `import causal_meta` stays free of matplotlib

  fig = Figure(figsize=(6, 3.8))
  ax = fig.subplots()
  for method in METHODS:
    mean = [summary[method][str(n)]["mean"] for n in sizes]
    std = [summary[method][str(n)]["std"] for n in sizes]
    ax.errorbar(sizes, mean, yerr=std, label=method, marker="o", capsize=3,
                linestyle="--" if method == "online counterfactual" else "-")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("logged demonstrations N (episodes)")
  ax.set_ylabel("KL(true interventional oracle ‖ ·) (nats/step)")
  ax.set_title("[O] §4.2: teaching from a log alone, bandit", fontsize=10)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  return plots.save(fig, path)


def run(workdir: str, quick: bool = False, verbose: bool = True) -> dict:
  """The whole comparison (module docstring); returns and writes the results dict."""
  task = tasks.make("bandit")
  config, sizes, seeds = settings(quick)
  # per_seed[method][N] = [one record per seed]
  per_seed = {m: {str(n): [] for n in sizes} for m in METHODS}
  for seed in seeds:
    c = config.copy_and_resolve_references()
    c.seed = seed
    online = train.train_and_evaluate(c, None, verbose=False, progress=False)
    online_row = {k: float(online[k]) for k in offline.AGENT_METRICS}
    if verbose:
      print(f"seed {seed}: online counterfactual KL(int) "
            f"{online_row['kl_action_interventional']:.4f}", flush=True)
    for n in sizes:
      k_log, k_teach, k_clone = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed),
                                                                    n), 3)
      log = rollout.braid(task, rollout.uniform_policy(task), k_log, n, expert_prob=1.0)
      taught = offline.teach_from_log(c, task, log, NUM_LATENTS, k_teach)
      cloned = offline.behaviour_cloning(c, task, log, k_clone)
      per_seed["offline counterfactual"][str(n)].append(taught["agent"])
      per_seed["behaviour cloning"][str(n)].append(
          dict(cloned["agent"], best_update=cloned["best_update"]))
      per_seed["online counterfactual"][str(n)].append(online_row)
      per_seed["fitted model's oracle"][str(n)].append(
          dict(kl_action_interventional=taught["oracle_kl"]["kl_action"],
               kl_observation_interventional=taught["oracle_kl"]["kl_observation"]))
      if verbose:
        print(f"seed {seed}, N = {n}: KL(int) offline counterfactual "
              f"{taught['agent']['kl_action_interventional']:.4f}, behaviour cloning "
              f"{cloned['agent']['kl_action_interventional']:.4f} (KL(cond) "
              f"{cloned['agent']['kl_action_conditional']:.4f}), fitted model's oracle "
              f"{taught['oracle_kl']['kl_action']:.4f}", flush=True)

  summary = {m: {str(n): {k: _mean_std([r[k] for r in rows])
                          for k in rows[0]}
                 for n, rows in by_size.items()}
             for m, by_size in per_seed.items()}
  kl_int = {m: {n: v["kl_action_interventional"] for n, v in by_n.items()}
            for m, by_n in summary.items()}
  print(f"\n[O] §4.2, bandit ({task.num_actions} arms, horizon {task.horizon}), "
        f"{len(seeds)} seed(s), {config.num_updates} updates of {config.batch_size} episodes "
        f"per agent. KL(true interventional oracle ‖ ·), next action, nats/step, on each "
        f"agent's own rollouts in the true bandit (the fitted model's oracle: on the true "
        f"oracle's); mean ± std over seeds.")
  table = format_table(kl_int, sizes)
  print(table)
  fig = _figure(figure_path(workdir, "offline_kl.png"), kl_int, sizes)
  print("figures:", fig)
  return write_results(workdir, dict(
      task=task.summary(), num_latents=NUM_LATENTS, log_sizes=list(sizes), seeds=list(seeds),
      quick=quick, config=config.to_dict(), summary=summary, per_seed=per_seed, table=table))


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """[O] §4.2 on the bandit; `quick`: two log sizes, one seed, fewer updates."""
  del config  # no experiments/ file: `quick` sets the size
  return run(workdir, quick)
