"""Exact [D] Table 1 references at the paper's size: 15 switches from a random start, 32 codes.

  python -m launch.reproduce padlock_exact --workdir=runs/padlock_exact

No training: `causal_meta.tabular.padlock_exact` enumerates the perfect model of the experts'
data (the conditional oracle, ε → 0 at histories no expert makes), the goal-conditioned model
fine-tuned to perfection on its own relabelled rollouts (one and two rounds, [D] §4.1, App. C),
and the ideal (the interventional oracle's P(S); an agent that tests a new configuration with
every flip). Accuracy at the chosen horizon (15 flips: the experts' maximum) and at n + 2^m =
47, [D] App. C's delusion measure in both directions and causal_meta's per-flip measure, beside
[D] Table 1; random play's exact accuracy over horizons (its from-scratch row). Seconds to a
minute on one CPU core; `quick` stops at horizon 12.
"""

from __future__ import annotations

import math
import time

from causal_meta import plots
from causal_meta.reproduce import figure_path, write_results
from causal_meta.reproduce.padlock_retrain import PAPER
from causal_meta.tabular import padlock_exact as exact

NUM_SWITCHES, NUM_SECRET = 15, 5
HORIZON = 15  # [D]: its experts need at most 15 flips; the paper does not state a horizon
LONG = NUM_SWITCHES + 2 ** NUM_SECRET  # causal_meta's padlock horizon n + 2^m


def _models():
  pretrained = exact.Pretrained(NUM_SECRET)
  round1 = exact.GoalConditioned(pretrained)
  return {"perfect pretrained model (conditional oracle)": (pretrained, PAPER["pretrained"]),
          "fine-tuned to perfection, round 1": (round1, PAPER["fine_tuned"]),
          "fine-tuned to perfection, round 2": (exact.GoalConditioned(round1), None)}


def _cell(x: float, fmt: str = "{:.4f}") -> str:
  return "∞" if math.isinf(x) else fmt.format(x)


def format_table(rows: dict, horizons: tuple) -> str:
  """Markdown: one row per model; accuracy at each horizon and the delusion measures at the
  first, beside [D] Table 1."""
  h = horizons[0]
  lines = ["| model | " + " | ".join(f"accuracy, T = {t}" for t in horizons)
           + f" | App. C KL(model ‖ ideal), T = {h} | App. C KL(ideal ‖ model) | per-flip "
           "KL(ideal ‖ model) | sure of S, ideal not | [D] delusion | [D] accuracy |",
           "|---" * (len(horizons) + 7) + "|"]
  for name, row in rows.items():
    m = row["by_horizon"][str(h)]
    paper = row["paper"]
    lines.append(
        f"| {name} | " + " | ".join(
            _cell(100 * row["accuracy"][str(t)], "{:.2f}%") if str(t) in row["accuracy"]
            else "–" for t in horizons)
        + f" | {_cell(m['delusion_app_c'])} | {_cell(m['delusion_app_c_reverse'])} | "
        f"{_cell(m['delusion_steps'])} | {100 * m['certain_fraction']:.1f}% | "
        + (f"{paper['delusion']:.4f} | {100 * paper['accuracy']:.2f}% |" if paper
           else "– | – |"))
  return "\n".join(lines)


def reproduce(workdir: str | None, quick: bool = False, config=None) -> dict:
  """Writes workdir/results.json and figures/padlock_exact_accuracy.png; prints the table."""
  del config  # exact enumeration: `quick` only shortens the horizons
  start = time.time()
  horizons = (12,) if quick else (HORIZON, LONG)
  curve = list(range(NUM_SWITCHES - NUM_SECRET, (20 if quick else LONG) + 1))
  rows = {}
  for name, (model, paper) in _models().items():
    # The goal-conditioned models at n + 2^m are left out: their enumeration (a success
    # probability per history and remaining budget) grows past hours there.
    by_horizon = {str(t): exact.evaluate(model, NUM_SWITCHES, NUM_SECRET, t)
                  for t in horizons if model.budget_free or t != LONG}
    rows[name] = dict(by_horizon=by_horizon, paper=paper,
                      accuracy={t: m["accuracy"] for t, m in by_horizon.items()})
  ideal = {str(t): exact.best_accuracy(NUM_SWITCHES, NUM_SECRET, t) for t in horizons}
  rows["ideal: P(S) of the interventional oracle, a new configuration every flip"] = dict(
      by_horizon={str(t): dict(delusion_app_c=0.0, delusion_app_c_reverse=0.0,
                               delusion_steps=0.0, certain_fraction=0.0) for t in horizons},
      paper=None, accuracy=ideal)
  random_play = {t: exact.random_play_accuracy(NUM_SWITCHES, t) for t in curve}
  results = dict(
      experiment="padlock_exact", paper="[D] Table 1", num_switches=NUM_SWITCHES,
      num_secret=NUM_SECRET, horizons=list(horizons), rows=rows,
      accuracy_by_horizon=dict(
          horizon=curve,
          pretrained=exact.accuracies(exact.Pretrained(NUM_SECRET), NUM_SWITCHES, NUM_SECRET,
                                      curve),
          best=[exact.best_accuracy(NUM_SWITCHES, NUM_SECRET, t) for t in curve],
          random_play=[random_play[t] for t in curve]),
      paper_from_scratch=PAPER["from_scratch"], wall_seconds=None)
  print(f"[D] Table 1 exactly: n = {NUM_SWITCHES} switches from a uniform start, "
        f"{2 ** NUM_SECRET} codes; delusion measures at T = {horizons[0]} flips (nats)")
  print(format_table(rows, horizons))
  acc = results["accuracy_by_horizon"]
  print("accuracy by horizon T: random play (the from-scratch row; [D]: 5 of 10,240 "
        f"episodes, {100 * PAPER['from_scratch']['accuracy']:.4f}%), the perfect pretrained "
        "model, the best possible")
  for t, r, p, b in zip(curve, acc["random_play"], acc["pretrained"], acc["best"]):
    if t in (10, 12, 15, 16, 20, 24, 25, 30, 40, LONG):
      print(f"  T = {t}: {100 * r:.4f}%  {100 * p:.4f}%  {100 * b:.4f}%")
  fig = plots.curves(figure_path(workdir, "padlock_exact_accuracy.png"),
                     {"perfect pretrained model": acc["pretrained"],
                      "best possible (a new configuration every flip)": acc["best"]},
                     "horizon T (flips)", "P(the lock opens)",
                     "padlock, n = 15, m = 5, random start", x=curve)
  results["wall_seconds"] = time.time() - start
  write_results(workdir, results)
  print(f"figure: {fig}")
  return results
