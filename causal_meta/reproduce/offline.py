"""Teaching from logged demonstrations alone ([O] §4.2): `launch.reproduce offline`.

`python -m launch.reproduce offline --workdir=DIR [--size=SETTING | --quick]`; the settings are
`experiments/offline.py`'s. θ is never logged. Per log size N and seed, N expert
demonstrations are drawn, and these rows are set side by side, each KL(true interventional
oracle ‖ ·) in nats/step:

  offline counterfactual   an LSTM taught counterfactually in braided rollouts of the tabular
                           model fitted to the log by EM (`offline.teach_from_log`), deployed
                           in the true task, on its own rollouts ("(K̂ = k)": a K̂ other than
                           the setting's);
  behaviour cloning        an LSTM fitted to the logged trajectories themselves, early-stopped
                           on a held-out fifth (`offline.behaviour_cloning`): its limit is the
                           conditional oracle, the delusion;
  online counterfactual    the ceiling: counterfactual teaching in the true task (one per
                           seed, no log);
  fitted model's oracle    the fitted model's exact interventional oracle against the true
                           one (`offline.oracle_kl`): what the offline agent is taught towards;
  neural model's oracle    the same for the neural model class (`offline_neural.fit_neural`).

With `heldout_latents`, also the held-out log-likelihood of the log by K̂
(`offline.heldout_log_likelihood`): how a user tells K̂ from the log alone. Writes
results.json, figures/offline_kl.png (KL vs log size, log-log, mean ± std over seeds) and
prints markdown tables.
"""

from __future__ import annotations

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import offline, offline_neural, plots, rollout, train
from causal_meta.reproduce import figure_path, write_results

AGENT_ROWS = ("offline counterfactual", "behaviour cloning", "online counterfactual")


def _suffix(k: int, config) -> str:
  return "" if k == config.num_latents else f" (K̂ = {k})"


def row_names(config) -> list[str]:
  """The table's rows for a setting, in order."""
  rows = [f"offline counterfactual{_suffix(k, config)}" for k in config.teach_latents]
  rows += ["behaviour cloning"] * bool(config.behaviour_cloning)
  rows += ["online counterfactual"] * bool(config.online)
  rows += [f"fitted model's oracle{_suffix(k, config)}" for k in config.oracle_latents]
  rows += ["neural model's oracle"] * bool(config.neural_oracle)
  return rows


def agent_config(config):
  """The `config.default()` LSTM of every agent row, sized by `config.agent`."""
  c = config_lib.default()
  c.task.name = config.task_name
  for k, v in config.task.items():
    c.task[config.task_name][k] = tuple(v) if isinstance(v, (list, tuple)) else v
  c.num_updates = config.agent.num_updates
  c.batch_size = config.agent.batch_size
  c.eval_episodes = config.agent.eval_episodes
  c.updates_per_call = 50  # behaviour cloning checks its held-out loss this often
  c.log_every = c.num_updates
  return c


def _mean_std(values) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  return dict(mean=float(values.mean()), std=float(values.std()))


def format_table(summary: dict, rows, sizes, metric="kl_action_interventional",
                 digits=4) -> str:
  """Markdown: one row per method, one column per log size, mean ± std of `metric`."""
  lines = ["| method | " + " | ".join(f"N = {n}" for n in sizes) + " |",
           "|---|" + "---|" * len(sizes)]
  for row in rows:
    cells = [f"{summary[row][str(n)][metric]['mean']:.{digits}f} ± "
             f"{summary[row][str(n)][metric]['std']:.{digits}f}" for n in sizes]
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def format_agents(summary: dict, rows, sizes) -> str:
  """Markdown: per agent row and log size, KL(true conditional oracle ‖ agent), mean reward
  per step, best-action rate over the last 5 steps (means over seeds)."""
  lines = ["| method | " + " | ".join(f"N = {n}" for n in sizes) + " |",
           "|---|" + "---|" * len(sizes)]
  for row in rows:
    if not row.startswith(AGENT_ROWS):
      continue
    cells = [", ".join(f"{summary[row][str(n)][k]['mean']:.3f}" for k in
                       ("kl_action_conditional", "mean_reward", "best_action_rate"))
             for n in sizes]
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _figure(path: str, summary: dict, rows, sizes, title: str) -> str:
  from matplotlib.figure import Figure  # here: `import causal_meta` stays free of matplotlib

  fig = Figure(figsize=(6, 3.8))
  ax = fig.subplots()
  for row in rows:
    mean = [max(summary[row][str(n)]["kl_action_interventional"]["mean"], 1e-6) for n in sizes]
    std = [summary[row][str(n)]["kl_action_interventional"]["std"] for n in sizes]
    ax.errorbar(sizes, mean, yerr=std, label=row, marker="o", capsize=3,
                linestyle="--" if row == "online counterfactual" else "-")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("logged demonstrations N (episodes)")
  ax.set_ylabel("KL(true interventional oracle ‖ ·) (nats/step)")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  fig.tight_layout()
  return plots.save(fig, path)


def _oracle_row(gap) -> dict:
  return dict(kl_action_interventional=float(gap["kl_action"]),
              kl_observation_interventional=float(gap["kl_observation"]))


def check(config) -> None:
  """ValueError naming what is wrong in `config` (experiments/offline.py): the agents' run
  config and its task; nothing is trained."""
  config_lib.validate(agent_config(config))
  for name in ("log_sizes", "seeds", "teach_latents"):
    if not config[name]:
      raise ValueError(f"offline: {name} must not be empty")
  for k in (config.num_latents, *config.teach_latents, *config.oracle_latents,
            *config.heldout_latents):
    if not isinstance(k, int) or k < 1:
      raise ValueError(f"offline: latent counts K̂ must be positive integers, got {k!r}")


def run(workdir: str, config, verbose: bool = True) -> dict:
  """Every row of `config` (experiments/offline.py) at every log size and seed."""
  c0 = agent_config(config)
  task = config_lib.make_task(c0)  # the task every agent row trains on
  sizes, seeds, rows = list(config.log_sizes), list(config.seeds), row_names(config)
  per_seed = {r: {str(n): [] for n in sizes} for r in rows}
  heldout = {str(k): {str(n): [] for n in sizes} for k in config.heldout_latents}
  say = print if verbose else (lambda *a, **k: None)
  for seed in seeds:
    c = c0.copy_and_resolve_references()
    c.seed = seed
    if config.online:
      online = train.train_and_evaluate(c, None, verbose=False, progress=False)
      online_row = {k: float(online[k]) for k in offline.AGENT_METRICS}
      say(f"seed {seed}: online counterfactual KL(int) "
          f"{online_row['kl_action_interventional']:.4f}", flush=True)
    for n in sizes:
      k_log, k_teach, k_clone, k_neural = jax.random.split(
          jax.random.fold_in(jax.random.PRNGKey(seed), n), 4)
      log = rollout.braid(task, rollout.uniform_policy(task), k_log, n, expert_prob=1.0)
      k_fit, k_oracle = jax.random.split(k_teach)
      for k in sorted(set(config.teach_latents) | set(config.oracle_latents)):
        model, _ = offline.fit_tabular(task, log, k, k_fit)
        if k in config.teach_latents:
          taught = offline.teach_from_log(c, task, None, None, k_teach, model=model)
          per_seed[f"offline counterfactual{_suffix(k, config)}"][str(n)].append(taught["agent"])
          gap = taught["oracle_kl"]  # `oracle_kl` with the key split from k_teach, as below
          say(f"seed {seed}, N = {n}, K̂ = {k}: offline counterfactual KL(int) "
              f"{taught['agent']['kl_action_interventional']:.4f}", flush=True)
        else:
          gap = offline.oracle_kl(task, model, k_oracle)
        if k in config.oracle_latents:
          per_seed[f"fitted model's oracle{_suffix(k, config)}"][str(n)].append(_oracle_row(gap))
          say(f"seed {seed}, N = {n}, K̂ = {k}: fitted model's oracle "
              f"{float(gap['kl_action']):.4f}", flush=True)
      if config.neural_oracle:
        model, _ = offline_neural.fit_neural(task, log, config.num_latents, k_neural)
        gap = offline.oracle_kl(task, model, k_oracle)
        per_seed["neural model's oracle"][str(n)].append(_oracle_row(gap))
        say(f"seed {seed}, N = {n}: neural model's oracle {float(gap['kl_action']):.4f}",
            flush=True)
      if config.behaviour_cloning:
        cloned = offline.behaviour_cloning(c, task, log, k_clone)
        per_seed["behaviour cloning"][str(n)].append(
            dict(cloned["agent"], best_update=cloned["best_update"]))
        say(f"seed {seed}, N = {n}: behaviour cloning KL(int) "
            f"{cloned['agent']['kl_action_interventional']:.4f} (KL(cond) "
            f"{cloned['agent']['kl_action_conditional']:.4f})", flush=True)
      if config.online:
        per_seed["online counterfactual"][str(n)].append(online_row)
      if config.heldout_latents:
        for k, ll in offline.heldout_log_likelihood(task, log, config.heldout_latents,
                                                    k_fit).items():
          heldout[str(k)][str(n)].append(ll)

  summary = {r: {n: {k: _mean_std([rec[k] for rec in recs]) for k in recs[0]}
                 for n, recs in by_size.items()}
             for r, by_size in per_seed.items()}
  say(f"\n[O] §4.2, {task.name} ({config.setting}: {dict(config.task)}), {len(seeds)} "
      f"seed(s), {c0.num_updates} updates of {c0.batch_size} episodes per agent. "
      f"KL(true interventional oracle ‖ ·), next action, nats/step, on each agent's own "
      f"rollouts in the true task (the models' oracles: on the true oracle's); mean ± std "
      f"over seeds.")
  table = format_table(summary, rows, sizes)
  say(table)
  agents_table = format_agents(summary, rows, sizes)
  say("\nKL(true conditional oracle ‖ agent), mean reward per step, best-action rate (last 5 "
      "steps); means over seeds.")
  say(agents_table)
  results = dict(task=task.summary(), setting=config.setting, num_latents=config.num_latents,
                 log_sizes=sizes, seeds=seeds, config=config.to_dict(),
                 agent_config=c0.to_dict(), summary=summary, per_seed=per_seed, table=table,
                 agents_table=agents_table)
  if config.heldout_latents:
    results["heldout_log_likelihood"] = {k: {n: _mean_std(v) for n, v in by_n.items()}
                                         for k, by_n in heldout.items()}
    results["heldout_per_seed"] = heldout
    lines = ["| K̂ | " + " | ".join(f"N = {n}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for k, by_n in results["heldout_log_likelihood"].items():
      lines.append(f"| {k} | " + " | ".join(f"{by_n[str(n)]['mean']:.4f} ± "
                                             f"{by_n[str(n)]['std']:.4f}" for n in sizes) + " |")
    results["heldout_table"] = "\n".join(lines)
    say("\nHeld-out log-likelihood of a fifth of the log, fitted on the rest, nats/episode:")
    say(results["heldout_table"])
  if len(sizes) > 1:
    fig = _figure(figure_path(workdir, "offline_kl.png"), summary, rows, sizes,
                  f"[O] §4.2: teaching from a log alone, {task.name} ({config.setting})")
    say("figures:", fig)
  return write_results(workdir, results)


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """[O] §4.2 with `config` (experiments/offline.py's get_config; `quick`: its 'quick')."""
  del quick  # the config is already the quick one
  return run(workdir, config)
