"""Grids over config fields (one run per combination, one CSV and one markdown table), and
seed sweeps trained in one compiled program (`train_seeds`: `python -m launch.sweep
--config=experiments/bandit.py --workdir=runs/seeds --seeds=8`).

  python -m launch.sweep --config=experiments/bandit.py --workdir=runs/grid \
      --grid=teaching=counterfactual,demonstration,mixed --grid=agent.kind=lstm,transformer

A grid splits over the tasks of a job array: `--shard=i/N` trains run j of the ordered
combinations iff j % N == i (round-robin, i is 0-based) and writes its own table
WORKDIR/shards/i-of-N.csv; `--collect` then reads every run's summary.json and writes
WORKDIR/results.csv and results.md in grid order.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import itertools
import json
import re
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from causal_meta import checkpoints
from causal_meta import config as config_lib
from causal_meta import evaluate, parallel, train

COLUMNS = ("task", "agent", "teaching", "kl_action_interventional", "kl_action_conditional",
           "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
           "best_action_rate", "success_rate", "oracle_interventional_reward",
           "oracle_interventional_best_action_rate", "oracle_conditional_reward",
           "oracle_conditional_best_action_rate", "updates", "wall_seconds")


class MissingRuns(ValueError):
  """`collect` found runs of the grid without a summary.json (not trained, or not finished)."""


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


def parse_shard(spec: str) -> tuple[int, int]:
  """'1/4' -> (1, 4): the share of the grid one task of a job array trains."""
  match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
  if not match or not int(match[1]) < int(match[2]):
    raise ValueError(f"--shard: expected i/N with 0 <= i < N, got {spec!r}")
  return int(match[1]), int(match[2])


def shard(runs: Sequence, index: int, count: int) -> list:
  """Round-robin: run j of the ordered grid belongs to shard j % count."""
  return list(runs[index::count])


def shard_name(index: int, count: int) -> str:
  return f"{index}-of-{count}"


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
  """Every combination, validated before any run starts: [(name, config)] in grid order (the
  last axis varies fastest). A run is named by the full field paths of its values
  (`agent.kind=lstm_teaching=counterfactual`), so axes with the same leaf do not collide."""
  paths = [p for p, _ in axes]
  for path in paths:
    if paths.count(path) > 1:
      raise ValueError(f"--grid: {path} is given twice; give each field one axis")
  out = []
  for values in itertools.product(*(v for _, v in axes)):
    config = copy.deepcopy(base)
    with config.unlocked():
      for (path, _), value in zip(axes, values):
        _set(config, path, value)
    config_lib.validate(config)
    name = "_".join(f"{p}={v}" for (p, _), v in zip(axes, values)) or "run"
    out.append((name, config))
  return out


def _row(name: str, summary: dict) -> dict:
  return {"run": name, **{k: summary.get(k) for k in COLUMNS}}


def run_grid(base, axes, workdir: str, verbose: bool = True, progress: bool | None = None,
             shard_spec: tuple[int, int] | None = None) -> list[dict]:
  """Trains every combination into WORKDIR/<run>/ (see train_and_evaluate; `progress` too)
  and writes WORKDIR/results.csv and results.md after each run.

  `shard_spec=(i, N)`: only the runs of shard i (`shard`), and the tables go to
  WORKDIR/shards/i-of-N.csv and .md instead, so that no two shards write the same file
  (`collect` assembles results.csv once all have finished).
  """
  runs = configs(base, axes)
  name = "results"
  if shard_spec is not None:
    runs = shard(runs, *shard_spec)
    name = f"shards/{shard_name(*shard_spec)}"
  rows = []
  for run, config in runs:
    if verbose:
      print(f"== {run}", flush=True)
    summary = train.train_and_evaluate(config, str(epath.Path(workdir) / run), verbose,
                                       progress)
    rows.append(_row(run, summary))
    if parallel.is_primary():  # after every run: an interrupted sweep keeps what it did
      write_tables(rows, workdir, name)
  return rows


def collect(base, axes, workdir: str) -> list[dict]:
  """Reads WORKDIR/<run>/summary.json of every combination and writes WORKDIR/results.csv
  and results.md in grid order: the tables of a sweep whose shards ran as separate jobs.
  Raises `MissingRuns` naming the runs without a summary, before writing anything."""
  root = epath.Path(workdir)
  runs = configs(base, axes)
  missing = [run for run, _ in runs if not (root / run / "summary.json").exists()]
  if missing:
    raise MissingRuns(f"--collect: {len(missing)} of {len(runs)} runs have no summary.json "
                      f"in {workdir}: {', '.join(missing)}")
  rows = [_row(run, json.loads((root / run / "summary.json").read_text())) for run, _ in runs]
  write_tables(rows, workdir)
  return rows


def write_tables(rows: list[dict], workdir: str, name: str = "results") -> str:
  """WORKDIR/NAME.csv (every column) and WORKDIR/NAME.md (`markdown`); returns the latter."""
  path = epath.Path(workdir) / name
  path.parent.mkdir(parents=True, exist_ok=True)
  buffer = io.StringIO(newline="")
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  path.with_suffix(".csv").write_text(buffer.getvalue())
  table = markdown(rows)
  path.with_suffix(".md").write_text(table + "\n")
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


# ------------------------------------------------------------------ seeds in one program
SEED_COLUMNS = ("kl_action_interventional", "kl_action_conditional",
                "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
                "best_action_rate", "success_rate", "loss")


def stack_states(states):
  """[TrainState] -> one TrainState whose every leaf has a leading seed axis [S, ...]."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def train_seeds(config, num_seeds: int, workdir: str | None = None,
                verbose: bool = True) -> dict:
  """Trains seeds config.seed, …, config.seed + num_seeds - 1 in one compiled program.

  The train chunk is `vmap(update)` scanned K times (PureJaxRL's trick): every leaf of the
  TrainState gets a leading seed axis [S, ...], so S seeds share each kernel launch. Seed i
  follows the same PRNG stream as `train.train_and_evaluate` with seed config.seed + i.
  Writes WORKDIR/seeds.json (per-seed and mean ± std) and seeds.md. With a workdir the
  stacked state is checkpointed as a single run's is (every `checkpoint_every` updates and at
  the end, in WORKDIR/checkpoints), and rerunning the same command resumes from the latest.
  Returns that dict plus the stacked `params` and `resumed_from`.
  """
  task, agent = config_lib.validate(config)
  if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
    raise ValueError(f"--seeds must be a positive integer, got {num_seeds!r}")
  seeds = [config.seed + i for i in range(num_seeds)]
  optimizer = train.make_optimizer(config)
  update = jax.vmap(train.make_update(task, agent, optimizer, config))
  chunk = train.make_train_chunk(update, config.updates_per_call)
  state = stack_states([train.init_state(agent, optimizer, s) for s in seeds])
  eval_keys = jnp.stack([train.evaluation_key(s) for s in seeds])
  eval_fn = jax.jit(jax.vmap(functools.partial(evaluate.agent_metrics, task, agent,
                                               episodes=config.eval_episodes)))
  # The seed count is part of what a checkpoint holds (the stacked arrays' leading axis).
  config_dict = dict(json.loads(config.to_json_best_effort()), num_seeds=num_seeds)
  mngr = None
  if workdir:
    mngr = checkpoints.manager(workdir, config.keep_checkpoints)
    restored = train.restore(mngr, state, config, config_dict)
    if restored is not None:
      state = restored
  resumed_from = int(state.step[0])
  if verbose and resumed_from:
    print(f"resuming from the checkpoint at update {resumed_from}", flush=True)
  t0 = time.time()
  compiled = chunk.lower(state).compile()
  compile_seconds = time.time() - t0
  last = {}

  def report(state, m, _):
    last.update({k: np.mean(v, axis=1) for k, v in m.items() if k != "finite"})  # [S]
    if verbose:
      print(f"step {int(state.step[0]):6d}  loss {np.mean(last['loss']):.4f} "
            f"(mean of {num_seeds} seeds)", flush=True)

  try:
    state, train_seconds = train.run_chunks(compiled, state, config, mngr=mngr,
                                            config_dict=config_dict, workdir=workdir,
                                            on_chunk=report, seeds=seeds)
  finally:
    if mngr:
      mngr.wait_until_finished()
      mngr.close()
  ev = jax.device_get(eval_fn(state.params, eval_keys))
  per_seed = []
  for i, s in enumerate(seeds):
    row = {k: float(v[i]) for k, v in ev.items() if not k.endswith("_by_step")}
    # The training chunk's own means (loss, ...), except where the deployment measured the
    # same name: a demonstration agent's training reward is the expert's, not its own.
    row.update({k: float(v[i]) for k, v in last.items() if k not in row})
    per_seed.append(dict(seed=s, **row))
  keys = [k for k in per_seed[0] if k != "seed"]
  result = dict(
      task=task.name, agent=config.agent.kind, teaching=config.teaching, num_seeds=num_seeds,
      updates=int(state.step[0]), resumed_from=resumed_from,
      compile_seconds=compile_seconds, train_seconds=train_seconds,
      per_seed=per_seed,
      mean={k: float(np.mean([r[k] for r in per_seed])) for k in keys},
      std={k: float(np.std([r[k] for r in per_seed])) for k in keys})
  if workdir and parallel.is_primary():
    root = epath.Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(config.to_json_best_effort(indent=1))
    (root / "seeds.json").write_text(json.dumps(result, indent=1))
    (root / "seeds.md").write_text(seeds_markdown(result) + "\n")
  return dict(result, params=state.params)


def seeds_markdown(result: dict) -> str:
  """Per-seed rows, then mean ± std."""
  cols = [c for c in SEED_COLUMNS if c in result["mean"]]
  lines = ["| seed | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
  for r in result["per_seed"]:
    lines.append(f"| {r['seed']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + " |")
  lines.append("| mean ± std | " + " | ".join(
      f"{result['mean'][c]:.4f} ± {result['std'][c]:.4f}" for c in cols) + " |")
  return "\n".join(lines)
