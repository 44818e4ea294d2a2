"""The paper results, one module each: `python -m launch.reproduce NAME --workdir=DIR [--quick]`.

  NAME            module              result
  prize_or_frog   `prize_or_frog`     [O] §2: P(o | a) against P(o | do(a)), learned and exact
  bandit          `bandit`            [O] Remark 11, the main job (also `python -m launch.demo`)
  mountain_race   `tabular`           [K] Example 1: goal-conditioning, retraining, temperature
  card_game       `tabular`           [D] Example 2: the same sequences on the three-card game
  stock_trader    `tabular`           [D] Example 1, App. D: delusion and its cure by retraining
  planning        `tabular`           [H]: the FP, FPX and STH planning agents
  dice            `tabular`           [H]: the dice world model and its counterfactual world
  boltzmann       `tabular`           [K] §4.1: Boltzmann coherence on the mountain race
  padlock         `padlock_retrain`   [D] §4.1, Table 1: padlock delusion and self-retraining
  tictactoe       `tictactoe_retrain` [D] §4.2, Table 2: Decision-Transformer incoherence
  tictactoe_exact `tictactoe_exact`   [D] Table 2 for the perfect model of the data, exactly
  padlock_exact   `padlock_exact`     [D] Table 1 at the paper's size for perfect models, exactly
  offline         `offline`           [O] §4.2: teaching from logged demonstrations alone
  mixed_authors   `mixed_authors`     [O] Remarks 14-15: scored on pasts of mixed authorship
  changing_latent `changing_latent`   [O] §3: the best arm moves (hazard h); both teachings

Every runner in `RESULTS` is a callable (workdir, quick=False, config=None) -> results dict: it
writes workdir/results.json and workdir/figures/*.png and prints a short table; `quick` asks
for a smaller, faster run (for tests). The runners of `CONFIGS` are set by a file of
`experiments/` instead and require `config`: that file's `get_config('quick' if quick else
SIZE)`; the others ignore it.
`experiments/` sits beside the package and is not installed with it, so nothing in
`causal_meta` imports it: `load_config` reads the file by path (`launch/reproduce.py`, tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any, Callable

import ml_collections
import numpy as np
from etils import epath


def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` (`get_config()` if arg is None) of the config file at `path` (e.g.
  experiments/padlock_retrain.py), loaded by path as `--config=PATH:ARG` loads it."""
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f"config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config() if arg is None else module.get_config(arg)


def write_results(workdir: str, results: dict[str, Any]) -> dict[str, Any]:
  """Writes workdir/results.json (creating workdir; local or gs://) and returns `results`."""
  root = epath.Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  (root / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False),
                                     encoding="utf-8")
  return results


def figure_path(workdir: str, name: str) -> str:
  """workdir/figures/NAME (the plots create the folder)."""
  return str(epath.Path(workdir) / "figures" / name)


def seed_runs(config: ml_collections.ConfigDict, workdir: str,
              run: Callable[[ml_collections.ConfigDict, str], dict]) -> list[dict]:
  """`run(config with seed S, workdir/seed_S)` for each S of `config.seeds`, in turn: the
  per-seed results."""
  per_seed = []
  for seed in config.seeds:
    c = ml_collections.ConfigDict(config.to_dict())
    c.seed = seed
    print(f"== seed {seed}", flush=True)
    per_seed.append(run(c, str(epath.Path(workdir) / f"seed_{seed}")))
  return per_seed


def mean_std(values: list) -> tuple[float, float] | None:
  """(mean, std) of numbers over seeds; None if the first is None (not measured)."""
  if values[0] is None:
    return None
  return float(np.mean(values)), float(np.std(values))


def cell(x, pct: bool = False) -> str:
  """A table entry: a number, a (mean, std) pair over seeds, or None as '–'."""
  if x is None:
    return "–"
  if isinstance(x, (tuple, list)):
    return f"{100 * x[0]:.2f}% ± {100 * x[1]:.2f}" if pct else f"{x[0]:.4f} ± {x[1]:.4f}"
  return f"{100 * x:.2f}%" if pct else f"{x:.4f}"


# The runners import the helpers above, so they are imported after them.
# pylint: disable=wrong-import-position
from causal_meta.reproduce import bandit, padlock_retrain, prize_or_frog, tabular  # noqa: E402
from causal_meta.reproduce import tictactoe_exact, tictactoe_retrain  # noqa: E402
from causal_meta.reproduce import padlock_exact  # noqa: E402
from causal_meta.reproduce import offline  # noqa: E402
from causal_meta.reproduce import mixed_authors  # noqa: E402
from causal_meta.reproduce import changing_latent  # noqa: E402

RESULTS: dict[str, Callable[..., dict]] = {
    "prize_or_frog": prize_or_frog.reproduce,
    "bandit": bandit.reproduce,
    "mountain_race": tabular.mountain_race,
    "card_game": tabular.card_game,
    "stock_trader": tabular.stock_trader,
    "planning": tabular.planning,
    "dice": tabular.dice,
    "boltzmann": tabular.boltzmann,
    "padlock": padlock_retrain.reproduce,
    "tictactoe": tictactoe_retrain.reproduce,
    "tictactoe_exact": tictactoe_exact.reproduce,
    "padlock_exact": padlock_exact.reproduce,
    "offline": offline.reproduce,
    "mixed_authors": mixed_authors.reproduce,
    "changing_latent": changing_latent.reproduce,
}

# NAME -> check(config): raises ValueError naming what is wrong, builds nothing that trains.
CHECKS: dict[str, Callable[[ml_collections.ConfigDict], None]] = {
    "padlock": padlock_retrain.check,
    "tictactoe": tictactoe_retrain.check,
    "offline": offline.check,
    "mixed_authors": mixed_authors.check,
}

# NAME -> (its file in experiments/, the get_config argument of the full run; --quick: 'quick').
CONFIGS: dict[str, tuple[str, str]] = {
    "padlock": ("padlock_retrain.py", "cpu"),
    "tictactoe": ("tictactoe_retrain.py", "gpu"),
    "offline": ("offline.py", "bandit"),
    "mixed_authors": ("mixed_authors.py", "bandit"),
}
