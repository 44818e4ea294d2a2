"""The tabular results of [K], [D] and [H], exact in NumPy float64.

  python -m launch.reproduce mountain_race|card_game|stock_trader|planning --workdir=DIR [--quick]

Each runner writes `workdir/results.json` and PNG figures under `workdir/figures/`, prints
`format_results` (a short text table) and returns the results dict. The mathematics is in
`causal_meta.tabular` (docs/tabular.md).
"""

from __future__ import annotations

import math

import numpy as np

from causal_meta.reproduce import figure_path, write_results
from causal_meta.tabular import examples, operators
from causal_meta.tabular import planning as planning_lib
from causal_meta.tabular.mdp import TabularMDP, uniform_policy

ITERATIONS = 10  # k = 0…10 in every sequence


# --------------------------------------------------------------------------- helpers


def _report(workdir: str, results: dict) -> dict:
  """Writes workdir/results.json, prints the table and returns `results`."""
  write_results(workdir, results)
  print(format_results(results["name"], results))
  return results


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _rows(mdp: TabularMDP, seq: np.ndarray, alphas: list[float] | None = None) -> list[dict]:
  """One object per policy of a [K + 1, T, S, A] sequence: the start-state policy, J and κ."""
  start = int(np.argmax(mdp.initial))
  rows = []
  for k, pi in enumerate(seq):
    row = {"iteration": k,
           "policy_at_start": [float(x) for x in pi[0, start]],
           "return": operators.policy_return(mdp, pi),
           "incoherence": operators.incoherence(mdp, pi)}
    if alphas is not None:
      row["alpha"] = alphas[k]
    rows.append(row)
  return rows


def _sequences(mdp: TabularMDP, prior: np.ndarray) -> dict[str, list[dict]]:
  """The four sequences of [K] §5 for k = 0…10, each starting from the prior."""
  k = ITERATIONS
  temperature = np.stack([operators.temperature_policy(mdp, prior, a) for a in range(k + 1)])
  return {
      "iterations": _rows(mdp, operators.retrain(mdp, prior, k), list(range(k + 1))),
      "temperature": _rows(mdp, temperature, list(range(k + 1))),
      "folded": _rows(mdp, operators.folded_sequence(mdp, prior, k), list(range(k + 1))),
      # π^H_k = π_{α=2^{k-1}} for deterministic dynamics (π^H_0 = prior).
      "folded_cumulative": _rows(mdp, operators.folded_cumulative_sequence(mdp, prior, k),
                                 [0] + [2.0 ** (i - 1) for i in range(1, k + 1)]),
  }


def _plot_sequences(workdir: str, results: dict, title: str) -> None:
  plt = _pyplot()
  first = results["actions"][0]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  styles = {"iterations": ("retraining π^G_k", "o-"), "temperature": ("temperature π_{α=k}", "x--"),
            "folded": ("folded π^F_k", "s:"), "folded_cumulative": ("cumulative π^H_k", "^-.")}
  for key, (label, style) in styles.items():
    ks = [r["iteration"] for r in results[key]]
    axes[0].plot(ks, [r["policy_at_start"][0] for r in results[key]], style, label=label)
    axes[1].plot(ks, [r["return"] for r in results[key]], style, label=label)
    axes[2].plot(ks, [r["incoherence"] for r in results[key]], style, label=label)
  axes[0].axhline(0.5, color="gray", lw=0.5)
  axes[0].set_ylabel(f"π({first} | start)")
  axes[1].axhline(results["optimal_return"], color="gray", lw=0.5, ls="--")
  axes[1].set_ylabel("return J = p(R=1)")
  axes[2].set_ylabel("incoherence κ ([D] Def 3.5)")
  axes[2].set_yscale("log")
  for ax in axes:
    ax.set_xlabel("k")
  axes[0].legend(fontsize=7)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(figure_path(workdir, "sequences.png"), dpi=110)
  plt.close(fig)


def _tree_example(workdir: str, mdp: TabularMDP, name: str, paper: str, title: str) -> dict:
  prior = uniform_policy(mdp)
  q, _ = operators.optimal_values(mdp)
  conditioned = operators.goal_condition(mdp, prior)[0, 0]
  results = {
      "name": name,
      "paper": paper,
      "actions": list(mdp.action_names),
      "prior": "uniform",
      "optimal_return": operators.optimal_return(mdp),
      "optimal_action_at_start": mdp.action_names[int(np.argmax(q[0, 0]))],
      "optimal_q_at_start": [float(x) for x in np.exp(q[0, 0])],
      "conditioned_policy_at_start": [float(x) for x in conditioned],
      **_sequences(mdp, prior),
  }
  _plot_sequences(workdir, results, title)
  return _report(workdir, results)


# --------------------------------------------------------------------------- experiments


def mountain_race(workdir: str, quick: bool = False, config=None) -> dict:
  """[K] Example 1: conditioning prefers ↘ (0.6) although ↗ is optimal; retraining fixes it."""
  del quick, config  # exact and instant either way
  return _tree_example(workdir, examples.mountain_race(), "mountain_race", "[K] Example 1",
                       "Mountain race: G^k, temperature and folded sequences")


def card_game(workdir: str, quick: bool = False, config=None) -> dict:
  """[D] Example 2: under random play P(♦ first | R) = 1/3; retraining moves to ♦♦♦."""
  del quick, config  # exact and instant either way
  return _tree_example(workdir, examples.card_game(), "card_game", "[D] Example 2",
                       "Three cards game: G^k, temperature and folded sequences")


def stock_trader(workdir: str, quick: bool = False, config=None) -> dict:
  """[D] Example 1 and App. D: the model deludes itself that any trade profits; retraining on its
  own rollouts (relabelled with the true outcome) learns Q(o | do(a)), exactly and from samples
  (1,000 samples with `quick`, else 100,000)."""
  del config  # no experiments/ file: `quick` sets the size
  task = examples.stock_trader()
  q_a, q_o = task.observational()
  truth = task.interventional()
  expert_return = float(np.einsum("t,ta,ta->", task.latent_prior, task.expert,
                                  task.outcome[:, :, 0]))
  simulated_return = float(q_a @ truth[:, 0])
  kl_before = float(q_a @ operators.kl_divergence(q_o, truth))
  # Retrained on its own rollouts, the model's Q(o|a) is Q(o|do(a)) ([D] App. D).
  kl_after = float(q_a @ operators.kl_divergence(truth, truth))
  conditioned_before = q_a * q_o[:, 0] / (q_a @ q_o[:, 0])  # p(a | profit), deluded model
  conditioned_after = q_a * truth[:, 0] / (q_a @ truth[:, 0])

  # The same from samples: N expert records, then M of the model's own rollouts.
  rng = np.random.default_rng(0)
  n = 1_000 if quick else 100_000
  theta = rng.choice(2, size=n, p=task.latent_prior)
  a_expert = (rng.uniform(size=n) < task.expert[theta, 1]).astype(np.int64)
  profit_expert = task.outcome[theta, a_expert, 0] > 0.5
  fit_a = np.bincount(a_expert, minlength=2) / n
  fit_profit = np.array([profit_expert[a_expert == a].mean() for a in range(2)])
  theta2 = rng.choice(2, size=n, p=task.latent_prior)
  a_model = rng.choice(2, size=n, p=fit_a)
  profit_model = rng.uniform(size=n) < task.outcome[theta2, a_model, 0]
  refit_profit = np.array([profit_model[a_model == a].mean() for a in range(2)])

  results = {
      "name": "stock_trader",
      "paper": "[D] Example 1, Def 3.8, App. D",
      "actions": list(task.action_names),
      "expert_return": expert_return,
      "simulated_return": simulated_return,
      "delusion": operators.delusion(task.expert, q_a, task.latent_prior),
      "model_policy": [float(x) for x in q_a],
      "predicted_profit_before": [float(x) for x in q_o[:, 0]],
      "true_profit": [float(x) for x in truth[:, 0]],
      "predicted_profit_after": [float(x) for x in truth[:, 0]],
      "prediction_kl_before": kl_before,
      "prediction_kl_after": kl_after,
      "conditioned_policy_before": [float(x) for x in conditioned_before],
      "conditioned_policy_after": [float(x) for x in conditioned_after],
      "sampled": {
          "expert_records": n,
          "own_rollouts": n,
          "predicted_profit_before": [float(x) for x in fit_profit],
          "predicted_profit_after": [float(x) for x in refit_profit],
          "simulated_return": float(profit_model.mean()),
      },
  }
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.6))
  x = np.arange(2)
  ax.bar(x - 0.27, results["predicted_profit_before"], 0.25, label="model, trained on expert")
  ax.bar(x, results["sampled"]["predicted_profit_after"], 0.25,
         label="model, retrained on own rollouts (sampled)")
  ax.bar(x + 0.27, results["true_profit"], 0.25, label="truth p(profit | do(a))")
  ax.set_xticks(x, results["actions"])
  ax.set_ylabel("p(profit | a)")
  ax.set_ylim(0, 1.15)
  ax.legend(fontsize=7)
  ax.set_title(f"Stock trader: delusion λ = {results['delusion']:.4f}")
  fig.tight_layout()
  fig.savefig(figure_path(workdir, "stock_trader.png"), dpi=110)
  plt.close(fig)
  return _report(workdir, results)


def _agent_summary(world, out: dict, tail: int) -> dict:
  error = planning_lib.model_error(world, planning_lib.learn(out["counts"]))
  return {
      "mean_return": float(out["returns"].mean()),
      "mean_return_last": float(out["returns"][-tail:].mean()),
      "episodes_with_planned_investment": int(np.sum(out["planned_investments"] > 0)),
      "planned_investments": int(out["planned_investments"].sum()),
      "final_model_error_max": float(error.max()),
      "final_model_error_base_invest": float(error[world.initial_state, planning_lib.INVEST]),
      "record_base_invest": int(out["counts"][world.initial_state, planning_lib.INVEST].sum()),
  }


def planning(workdir: str, quick: bool = False, config=None) -> dict:
  """[H]: STH never starts the investment that FP takes; FPX's exploration makes L converge where
  FP's greedy record leaves it wrong (150 episodes per agent with `quick`, else 600)."""
  del config  # no experiments/ file: `quick` sets the size
  world = planning_lib.investment_world()
  k = world.transitions.shape[0] - 2  # build steps
  episodes = 150 if quick else 600
  tail = episodes // 5
  _, true_actions = planning_lib.plan(world.transitions, world.reward, world.episode_length)
  invest_from = [h for h in range(1, world.episode_length + 1)
                 if true_actions[h, world.initial_state] == planning_lib.INVEST]
  lookahead = k + 1

  record = planning_lib.exhaustive_record(world, samples=20, seed=1)
  myopia = {}
  for agent in (planning_lib.fp(), planning_lib.sth(lookahead)):
    out = planning_lib.run(world, agent, episodes, seed=2, initial_record=record)
    myopia[agent.name] = {**_agent_summary(world, out, tail),
                          "returns": [float(x) for x in out["returns"]]}

  learning = {}
  for agent in (planning_lib.fp(), planning_lib.fpx(0.1), planning_lib.sth(lookahead, explore=0.1)):
    out = planning_lib.run(world, agent, episodes, seed=3)
    learning[agent.name] = {**_agent_summary(world, out, tail),
                            "returns": [float(x) for x in out["returns"]],
                            "model_error": [float(x) for x in out["model_error"]]}

  results = {
      "name": "planning",
      "paper": "[H] FP, FPX, STH",
      "world": {"build_steps": k, "success": 0.8, "harvest": 0.1, "payoff": 1.0,
                "episode_length": world.episode_length, "states": list(world.state_names)},
      "episodes": episodes,
      "sth_lookahead": lookahead,
      "shortest_horizon_that_invests": min(invest_from) if invest_from else None,
      "optimal_return": float(planning_lib.plan(world.transitions, world.reward,
                                            world.episode_length)[0][-1, 0]),
      "myopia": myopia,
      "learning": learning,
  }

  plt = _pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
  window = max(1, episodes // 30)
  smooth = lambda x: np.convolve(x, np.ones(window) / window, mode="valid")
  for name, r in myopia.items():
    axes[0].plot(smooth(r["returns"]), label=f"{name} (O_0: simulator record)")
  axes[0].set_title("myopia: known dynamics")
  for name, r in learning.items():
    axes[1].plot(smooth(r["returns"]), label=name)
    axes[2].plot(r["model_error"], label=name)
  axes[1].set_title("learning from an empty record")
  axes[2].set_title("learner error max_{s,a} TV(L, S)")
  for ax in axes[:2]:
    ax.set_xlabel("episode")
    ax.set_ylabel("episode return")
    ax.legend(fontsize=7)
  axes[2].set_xlabel("episode")
  axes[2].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(figure_path(workdir, "planning.png"), dpi=110)
  plt.close(fig)
  return _report(workdir, results)


# --------------------------------------------------------------------------- text tables


def _fmt(x) -> str:
  if isinstance(x, float):
    return f"{x:.4f}" if math.isfinite(x) else str(x)
  if isinstance(x, list):
    return "[" + ", ".join(_fmt(v) for v in x) + "]"
  return str(x)


def format_results(name: str, results: dict) -> str:
  """A short human-readable table of a reproduce result."""
  lines = [f"== {name} ({results.get('paper', '')}) =="]
  if "iterations" in results:
    lines.append(f"actions {results['actions']}; optimal return "
                 f"{_fmt(results['optimal_return'])} via {results['optimal_action_at_start']} "
                 f"first; conditioned prior at start "
                 f"{_fmt(results['conditioned_policy_at_start'])}")
    lines.append(f"{'k':>3} | {'π^G_k(start)':>18} {'J':>7} {'κ':>7} | "
                 f"{'π_α=k(start)':>18} | {'π^F_k(start)':>18} | {'π^H_k(start)':>18}")
    for g, t, f, h in zip(results["iterations"], results["temperature"], results["folded"],
                          results["folded_cumulative"]):
      lines.append(f"{g['iteration']:>3} | {_fmt(g['policy_at_start']):>18} "
                   f"{g['return']:7.4f} {g['incoherence']:7.4f} | "
                   f"{_fmt(t['policy_at_start']):>18} | {_fmt(f['policy_at_start']):>18} | "
                   f"{_fmt(h['policy_at_start']):>18}")
    return "\n".join(lines)
  if name == "planning":
    lines.append(f"world {results['world']}; STH lookahead {results['sth_lookahead']}; "
                 f"shortest planning horizon that invests: "
                 f"{results['shortest_horizon_that_invests']}; optimal episode return "
                 f"{_fmt(results['optimal_return'])}; {results['episodes']} episodes")
    head = (f"{'':9}{'agent':6} {'mean R':>7} {'last R':>7} {'invest eps':>10} "
            f"{'L err max':>9} {'L err(base,inv)':>15}")
    lines.append(head)
    for part in ("myopia", "learning"):
      for agent, r in results[part].items():
        lines.append(f"{part:9}{agent:6} {r['mean_return']:7.3f} {r['mean_return_last']:7.3f} "
                     f"{r['episodes_with_planned_investment']:>10} "
                     f"{r['final_model_error_max']:9.4f} "
                     f"{r['final_model_error_base_invest']:15.4f}")
    return "\n".join(lines)
  for key, value in results.items():
    if key in ("name", "paper"):
      continue
    if isinstance(value, dict):
      value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    lines.append(f"{key:28} {_fmt(value)}")
  return "\n".join(lines)
