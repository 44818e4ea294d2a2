"""Exact [D] Table 2 references for the perfect model of the tic-tac-toe data (§4.2, App. B).

  python -m launch.reproduce tictactoe_exact --workdir=runs/tictactoe_exact

No training: `causal_meta.tabular.tictactoe_exact` enumerates the data set of
`tictactoe_retrain` (all 255,168 games and their symbol-swapped copies), its entropy floor per
token, and [D]'s two rounds of fine-tuning to perfection on the victory-conditioned player's
own games; scores and KL(π_cond ‖ π) are exact expectations against the random opponent. Also
the runner's variant, where the unconditioned rows come from a copy fine-tuned on the
unconditioned player's games. Seconds on one CPU core. Prints the tables beside [D] Table 2.
"""

from __future__ import annotations

import time

from causal_meta import plots
from causal_meta.reproduce import figure_path, write_results
from causal_meta.reproduce.tictactoe_retrain import PAPER
from causal_meta.tabular import tictactoe_exact as exact

NAMES = ["pretrained", "1st fine-tune", "2nd fine-tune"]


def format_table(rows: list) -> str:
  """Markdown: per player and round, exact P1/P2 scores, KL(π_cond ‖ π) per decision, per game
  and summed over x's states ([D] Def 3.5), beside [D] Table 2's scores and KL."""
  lines = ["| player | iteration | P1 score | P2 score | P1 KL/decision | P2 KL/decision "
           "| P1 KL/game | P2 KL/game | κ P1 states | κ P2 states | [D] P1 | [D] P2 "
           "| [D] P1 KL | [D] P2 KL |", "|---" * 14 + "|"]
  for r in sorted(rows, key=lambda r: (not r["conditioned"], r["round"])):
    paper = " | ".join(f"{v:.4f}" for v in PAPER[r["conditioned"]][r["round"]])
    lines.append(
        f"| {'victory-conditioned' if r['conditioned'] else 'unconditioned'} | "
        f"{NAMES[r['round']]} | {r['p1_score']:.4f} | {r['p2_score']:.4f} | {r['p1_kl']:.4f} | "
        f"{r['p2_kl']:.4f} | {r['p1_kl_game']:.4f} | {r['p2_kl_game']:.4f} | "
        f"{r['kappa_p1']:.1f} | {r['kappa_p2']:.1f} | {paper} |")
  return "\n".join(lines)


def reproduce(workdir: str | None, quick: bool = False, config=None) -> dict:
  """Writes workdir/results.json (entropy floors; rows of both fine-tuning readings) and
  figures/tictactoe_exact_scores.png; prints the tables. Exact, so `quick` changes nothing."""
  del quick, config  # exact enumeration: nothing to size
  start = time.time()
  floor = {"both_sides": exact.entropy_floor(firsts=(1, 2)),
           "x_first_only": exact.entropy_floor(firsts=(1,))}
  paper_rows = exact.protocol(rounds=2, games_of="conditioned")
  runner_rows = exact.protocol(rounds=2, games_of="unconditioned")
  results = dict(experiment="tictactoe_exact", paper="[D] Table 2", entropy_floor=floor,
                 rows=paper_rows, rows_unconditioned_games=runner_rows,
                 wall_seconds=time.time() - start)
  print(f"entropy floor: {floor['both_sides']['nats_per_token']:.5f} nats/token over "
        f"{floor['both_sides']['games']} sequences ({floor['x_first_only']['nats_per_token']:.5f}"
        " with x-first games only)")
  print("fine-tuned on the victory-conditioned player's games ([D] §4.2.2):")
  print(format_table(paper_rows))
  print("unconditioned rows fine-tuned on the unconditioned player's own games (the runner's):")
  print(format_table([r for r in runner_rows if not r["conditioned"]]))
  if workdir:
    write_results(workdir, results)
    series = {}
    for cond in (True, False):
      rows = [r for r in paper_rows if r["conditioned"] == cond]
      name = "conditioned" if cond else "unconditioned"
      series[f"{name} P1"] = [r["p1_score"] for r in rows]
      series[f"{name} P2"] = [r["p2_score"] for r in rows]
    plots.curves(figure_path(workdir, "tictactoe_exact_scores.png"), series,
                 "fine-tuning round", "exact score (win 1, draw ½)",
                 "Tic-tac-toe, perfect model: scores per round", x=[0, 1, 2])
  return results
