"""[O] Remarks 14-15: one model for pasts of any authorship, on the bandit and padlock.

`python -m launch.reproduce mixed_authors --workdir=DIR [--size=bandit|padlock | --quick]`
(settings: experiments/mixed_authors.py). Trains an LSTM and a transformer with counterfactual
teaching, demonstrations and mixed teaching (the expert acts with probability 0.5 at each
step), then scores each on rollouts in which the expert acts with probability
q ∈ {0, 0.25, 0.5, 0.75, 1} and the agent otherwise: KL(oracle ‖ agent) for the
next action and the next observation, in nats/step, against the exact oracle that respects
each action's author (`evaluate.mixed_author_metrics`). q = 0 is deployment (the agent's own
rollouts), q = 1 the expert's data. Results in `workdir/results.json` (mean and std over
seeds, and every seed), figures `kl_action_vs_q.png` and `kl_observation_vs_q.png`.
"""

from __future__ import annotations

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import evaluate, plots, train
from causal_meta.reproduce import figure_path, write_results

QS = (0.0, 0.25, 0.5, 0.75, 1.0)
AGENTS = (("lstm", "LSTM"), ("transformer", "transformer"))
TEACHINGS = ("counterfactual", "demonstration", "mixed")


def _scores(task, agent, params, key, episodes: int) -> dict[str, list[float]]:
  """KL_a and KL_o at every q of QS, on the same key (common random numbers across q)."""
  # One compile per agent: q is traced.
  score = jax.jit(lambda p, k, q: evaluate.mixed_author_metrics(task, agent, p, k, episodes, q))
  out = {"kl_action": [], "kl_observation": []}
  for q in QS:
    m = score(params, key, q)
    for name in out:
      out[name].append(float(m[name]))
  return out


def format_table(table: dict[str, dict], what: str) -> str:
  """Markdown table of `what` (kl_action | kl_observation): a row per agent, a column per q;
  mean ± std over seeds when there are several."""
  lines = ["| agent, teaching | " + " | ".join(f"q = {q:g}" for q in QS) + " |",
           "|---|" + "---|" * len(QS)]
  for name, row in table.items():
    mean, std = row[what]["mean"], row[what]["std"]
    cells = [f"{m:.4f}" + (f" ± {s:.4f}" if len(row["seeds"]) > 1 else "")
             for m, s in zip(mean, std)]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def train_config(config, kind: str, teaching: str, seed: int):
  """The run config of one agent of the experiment `config` (experiments/mixed_authors.py)."""
  c = config_lib.default()
  c.seed, c.teaching, c.agent.kind = seed, teaching, kind
  c.task.name = config.task_name
  for field, value in config.task.items():
    c.task[config.task_name][field] = value
  c.optim.schedule = config.schedule
  c.num_updates = config.num_updates
  c.log_every = min(c.log_every, config.num_updates)
  c.updates_per_call = min(c.updates_per_call, config.num_updates)
  return c


def check(config) -> None:
  """Validates every run config of the experiment `config` (ValueError naming what is
  wrong); nothing is trained."""
  for kind in config.kinds:
    if kind not in dict(AGENTS):
      raise ValueError(f"mixed_authors: kinds must be among {', '.join(dict(AGENTS))}, "
                       f"got {kind!r}")
    for teaching in TEACHINGS:
      config_lib.validate(train_config(config, kind, teaching, config.seeds[0]))


def run(workdir: str, config, verbose: bool = True) -> dict:
  """Trains every agent × teaching × seed of `config` (experiments/mixed_authors.py), scores
  each at every q, prints the tables and writes results and figures."""
  check(config)  # every run config, before the first one trains
  seeds = tuple(config.seeds)
  table = {}
  for kind, kind_label in AGENTS:
    if kind not in config.kinds:
      continue
    for teaching in TEACHINGS:
      label = f"{kind_label}, {teaching}"
      per_seed = []
      for seed in seeds:
        c = train_config(config, kind, teaching, seed)
        if verbose:
          print(f"== training on {config.task_name}: {label}, seed {seed}", flush=True)
        task, agent = config_lib.validate(c)
        result = train.train_and_evaluate(c, None, verbose=False, progress=False)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 15)
        per_seed.append(_scores(task, agent, result["params"], key, c.eval_episodes))
      row = {"seeds": list(seeds), "per_seed": per_seed}
      for what in ("kl_action", "kl_observation"):
        values = np.array([s[what] for s in per_seed])  # [seeds, q]
        row[what] = {"mean": values.mean(0).tolist(), "std": values.std(0).tolist()}
      table[label] = row

  print(f"\n[O] Remarks 14-15 on {config.task_name}: KL(oracle respecting authors ‖ agent), "
        f"nats/step, on rollouts where the expert acts with probability q; {len(seeds)} "
        f"seed(s), {c.num_updates} updates of {c.batch_size} episodes, "
        f"{c.eval_episodes} episodes per q.")
  print("\nKL_a (next action)\n" + format_table(table, "kl_action"))
  print("\nKL_o (next observation)\n" + format_table(table, "kl_observation"))
  figs = [plots.curves(figure_path(workdir, f"{what}_vs_q.png"),
                       {n: r[what]["mean"] for n, r in table.items()},
                       "q = P(the expert acts)", f"{symbol} (nats/step)",
                       f"{config.task_name}: {symbol} to the author-respecting oracle",
                       logy=True, x=QS)
          for what, symbol in (("kl_action", "KL_a"), ("kl_observation", "KL_o"))]
  results = write_results(workdir, dict(
      setting=config.setting, task=config.task_name, qs=list(QS), num_updates=c.num_updates,
      batch_size=c.batch_size, eval_episodes=c.eval_episodes, table=table))
  print("figures:", ", ".join(figs))
  return results


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """[O] Remarks 14-15 with `config` (experiments/mixed_authors.py's get_config; `quick`: its
  'quick')."""
  del quick  # the config is already the quick one
  return run(workdir, config, verbose=config.setting != "quick")
