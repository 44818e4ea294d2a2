"""Tic-tac-toe Decision-Transformer incoherence and self-retraining ([D] §4.2, Table 2, App. B).

  python -m launch.reproduce tictactoe --workdir=runs/tictactoe [--quick]

Pretrain on all 255,168 games (x first; by default also each game with the symbols swapped, so
x also appears as the second mover), then, separately for the victory-conditioned and the
unconditioned player: play `games_per_round` games as first mover against the random opponent,
relabel them with their outcome, fine-tune, repeat. Scores are over `eval_games` games with the
model first (P1) and second (P2). `get_config('quick' | 'cpu' | 'gpu')`; gpu is minGPT's gpt-mini
size.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import optax

from causal_meta import plots
from causal_meta import tictactoe as lib

PAPER = {  # [D] Table 2: (P1 score, P2 score, P1 KL, P2 KL) per iteration.
    False: [(0.5725, 0.3325, 0.0425, 0.055), (0.725, 0.3275, 0.1025, 0.03),
            (0.7675, 0.3175, 0.115, 0.03)],
    True: [(0.7125, 0.615, 4.48, 6.0625), (0.8225, 0.6775, 4.0475, 5.195),
           (0.8325, 0.6825, 4.625, 5.6775)],
}


def get_config(size: str = "quick") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.size = size
  c.seed = 0
  c.both_sides = True
  if size == "quick":
    c.model = dict(width=32, num_layers=2, num_heads=2)
    c.learning_rate, c.batch_size = 3e-3, 256
    c.pretrain_updates, c.finetune_updates = 400, 100
    c.games_per_round = c.eval_games = 200  # equal: the compiled play is shared
  elif size == "cpu":  # a longer CPU run (tens of minutes on 2 cores)
    c.model = dict(width=96, num_layers=3, num_heads=3)
    c.learning_rate, c.batch_size = 2e-3, 256
    c.pretrain_updates, c.finetune_updates = 3000, 400
    c.games_per_round, c.eval_games = 2000, 600
  elif size == "gpu":
    c.model = dict(width=192, num_layers=6, num_heads=6)  # minGPT gpt-mini, 2.7M parameters
    c.learning_rate, c.batch_size = 5e-4, 512
    c.pretrain_updates, c.finetune_updates = 8000, 1000
    c.games_per_round, c.eval_games = 10000, 1000
  else:
    raise ValueError(f"tictactoe: size must be quick, cpu or gpu, got {size!r}")
  c.rounds = 2
  c.mix = 0.0  # per-window probability of an original game when fine-tuning
  return c


def _evaluate(model, params, key, c, conditioned):
  out = {}
  for name, first in (("p1", True), ("p2", False)):
    _, s = lib.play(model, params, jax.random.fold_in(key, int(first)), c.eval_games,
                    conditioned, first)
    out.update({f"{name}_{k}": float(v) for k, v in s.items()})
  out["kl"] = (out["p1_kl"] + out["p2_kl"]) / 2
  out["p1_score"], out["p2_score"] = out.pop("p1_score"), out.pop("p2_score")
  return out


def run(c: ml_collections.ConfigDict, workdir: str | None = None, log=print) -> dict:
  start = time.time()
  key = jax.random.PRNGKey(c.seed)
  model = lib.DecisionTransformer(**c.model)
  optimizer = optax.adam(c.learning_rate)
  games = lib.all_games_dataset(c.both_sides)
  params = model.init(jax.random.fold_in(key, 1), jnp.zeros((lib.ttt.CONTEXT,), jnp.int32))
  params = params["params"]
  fit = lib.make_fit(model, optimizer, c.batch_size, c.pretrain_updates)
  params, _, metrics = fit(params, optimizer.init(params), jax.random.fold_in(key, 2), games,
                           games)
  log(f"pretrained on {int(games.outcome.shape[0])} game sequences: final loss "
      f"{float(metrics['loss'][-1]):.4f} nats/token ({time.time() - start:.0f} s)")
  fine = lib.make_fit(model, optimizer, c.batch_size, c.finetune_updates, c.mix)
  eval_key = jax.random.fold_in(key, 0x5EED)
  rows = []
  for conditioned in (True, False):
    p = params
    for r in range(c.rounds + 1):
      row = dict(round=r, conditioned=conditioned, **_evaluate(model, p, eval_key, c, conditioned))
      rows.append(row)
      log(f"{'conditioned' if conditioned else 'unconditioned':13s} round {r}: P1 "
          f"{row['p1_score']:.4f}  P2 {row['p2_score']:.4f}  KL(π_cond‖π) P1 {row['p1_kl']:.4f}"
          f" P2 {row['p2_kl']:.4f} ({time.time() - start:.0f} s)")
      if r == c.rounds:
        break
      k = jax.random.fold_in(key, 100 * r + 10 + conditioned)
      own, s = lib.play(model, p, k, c.games_per_round, conditioned, True)  # model first
      p, _, _ = fine(p, optimizer.init(p), jax.random.fold_in(k, 1), own, games)
  results = dict(experiment="tictactoe", paper="[D] Table 2", config=c.to_dict(), rows=rows,
                 paper_table={("conditioned" if k else "unconditioned"): v
                              for k, v in PAPER.items()},
                 wall_seconds=time.time() - start, device=jax.devices()[0].device_kind)
  if workdir:
    write(workdir, results)
  return results


def format_table(results: dict) -> str:
  lines = ["| player | iteration | P1 score | P2 score | P1 KL | P2 KL | [D] P1 | [D] P2 "
           "| [D] P1 KL | [D] P2 KL |", "|---|---|---|---|---|---|---|---|---|---|"]
  names = ["pretrained", "1st fine-tune", "2nd fine-tune"]
  for r in results["rows"]:
    paper = PAPER[r["conditioned"]][r["round"]] if r["round"] < 3 else (None,) * 4
    ref = " | ".join("–" if v is None else f"{v:.4f}" for v in paper)
    name = names[r["round"]] if r["round"] < 3 else f"fine-tune {r['round']}"
    lines.append(f"| {'victory-conditioned' if r['conditioned'] else 'unconditioned'} | {name} | "
                 f"{r['p1_score']:.4f} | {r['p2_score']:.4f} | {r['p1_kl']:.4f} | "
                 f"{r['p2_kl']:.4f} | {ref} |")
  return "\n".join(lines)


def write(workdir: str, results: dict) -> None:
  os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  series = {}
  for cond in (True, False):
    rows = [r for r in results["rows"] if r["conditioned"] == cond]
    name = "conditioned" if cond else "unconditioned"
    series[f"{name} P1"] = [r["p1_score"] for r in rows]
    series[f"{name} P2"] = [r["p2_score"] for r in rows]
  plots.curves(os.path.join(workdir, "figures", "tictactoe_scores.png"), series,
               "fine-tuning round", "score (win 1, draw ½)", "Tic-tac-toe: scores per round",
               x=list(range(len(series["conditioned P1"]))))


def reproduce(workdir: str, quick: bool = False) -> dict:
  """`python -m launch.reproduce tictactoe`: the gpu config (minGPT size), or quick (CPU)."""
  results = run(get_config("quick" if quick else "gpu"), workdir)
  print(format_table(results))
  return results
