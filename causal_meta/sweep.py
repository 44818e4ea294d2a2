"""Grids over config fields: one run per combination, one CSV and one markdown table.

  python -m launch.sweep --config=experiments/bandit.py --workdir=runs/grid \
      --grid=teaching=counterfactual,demonstration,mixed --grid=agent.kind=lstm,transformer
"""

from __future__ import annotations

import copy
import csv
import itertools
import os
from typing import Any, Sequence

from causal_meta import config as config_lib
from causal_meta import train

COLUMNS = ("task", "agent", "teaching", "kl_action_interventional", "kl_action_conditional",
           "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
           "best_action_rate", "success_rate", "oracle_interventional_reward",
           "oracle_interventional_best_action_rate", "oracle_conditional_reward",
           "oracle_conditional_best_action_rate", "updates", "wall_seconds")


def parse_axis(spec: str, config) -> tuple[str, list[Any]]:
  """'agent.kind=lstm,transformer' -> ('agent.kind', ['lstm', 'transformer']), values cast to
  the type of the field they replace."""
  if "=" not in spec:
    raise ValueError(f"--grid: expected FIELD=V1,V2,..., got {spec!r}")
  path, values = spec.split("=", 1)
  current = _get(config, path)
  kind = type(current)
  try:
    cast = [v if kind is str else (v.lower() == "true" if kind is bool else kind(v))
            for v in values.split(",")]
  except ValueError:
    raise ValueError(f"--grid: values for {path} must be {kind.__name__}, got {values!r}") \
        from None
  return path, cast


def _get(config, path):
  node = config
  for part in path.split("."):
    if part not in node:
      raise ValueError(f"--grid: config has no field {path!r}")
    node = node[part]
  return node


def _set(config, path, value):
  *parents, leaf = path.split(".")
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


def configs(base, axes: Sequence[tuple[str, list[Any]]]):
  """Every combination, validated before any run starts: [(name, config)]."""
  out = []
  for values in itertools.product(*(v for _, v in axes)):
    config = copy.deepcopy(base)
    with config.unlocked():
      for (path, _), value in zip(axes, values):
        _set(config, path, value)
    config_lib.validate(config)
    name = "_".join(f"{p.split('.')[-1]}={v}" for (p, _), v in zip(axes, values)) or "run"
    out.append((name, config))
  return out


def run_grid(base, axes, workdir: str, verbose: bool = True) -> list[dict]:
  rows = []
  for name, config in configs(base, axes):
    if verbose:
      print(f"== {name}", flush=True)
    summary = train.train_and_evaluate(config, os.path.join(workdir, name), verbose)
    rows.append({"run": name, **{k: summary.get(k) for k in COLUMNS}})
  write_tables(rows, workdir)
  return rows


def write_tables(rows: list[dict], workdir: str) -> str:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  table = markdown(rows)
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(table + "\n")
  return table


def markdown(rows: list[dict]) -> str:
  cols = ["task", "agent", "teaching", "kl_action_interventional", "kl_action_conditional",
          "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
          "best_action_rate", "success_rate"]
  head = ["task", "agent", "teaching", "KL_a(int)", "KL_a(cond)", "KL_o(int)", "KL_o(cond)",
          "reward", "best-action", "success"]
  fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    lines.append("| " + " | ".join(fmt(r[c]) for c in cols) + " |")
  seen = set()
  for r in rows:  # the oracle policies, once per task
    if r["task"] in seen:
      continue
    seen.add(r["task"])
    for name in ("interventional", "conditional"):
      lines.append(f"| {r['task']} | {name} oracle | — | 0 (by definition) | — | — | — | "
                   f"{fmt(r[f'oracle_{name}_reward'])} | "
                   f"{fmt(r[f'oracle_{name}_best_action_rate'])} | — |")
  return "\n".join(lines)
