"""The tabular results of [K], [D] and [H], exact in NumPy float64.

  python -m launch.reproduce mountain_race|card_game|stock_trader|planning|dice|boltzmann \
      --workdir=DIR [--quick]

Each runner writes `workdir/results.json` and PNG figures under `workdir/figures/`, prints
`format_results` (a short text table) and returns the results dict. The mathematics is in
`causal_meta.tabular` (docs/tabular.md).
"""

from __future__ import annotations

import fractions
import math

import numpy as np

from causal_meta import plots
from causal_meta.reproduce import figure_path, write_results
from causal_meta.tabular import boltzmann as boltzmann_lib
from causal_meta.tabular import examples, operators
from causal_meta.tabular import planning as planning_lib
from causal_meta.tabular import world_models
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
  plots.save(fig, figure_path(workdir, "sequences.png"), dpi=110)
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
  plots.save(fig, figure_path(workdir, "stock_trader.png"), dpi=110)
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
  plots.save(fig, figure_path(workdir, "planning.png"), dpi=110)
  plt.close(fig)
  return _report(workdir, results)


# --------------------------------------------------------------------------- [H] dice, [K] §4


def _fraction(x: float) -> str:
  """A probability as its nearest fraction with a small denominator (for the printed table)."""
  return str(fractions.Fraction(x).limit_denominator(1000))


def _num(x: float) -> float | str:
  """x for results.json, with ±∞ as the string "inf" (strict JSON has no infinity)."""
  return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def dice(workdir: str, quick: bool = False, config=None) -> dict:
  """[H] Graphical world models: the dice game world f (P(S = 12), E(S)) and the counterfactual
  world c whose red die shows 6 on all sides (P(S_c > S_f) = 5/6), by exact enumeration."""
  del quick, config  # exact and instant either way
  f, c = world_models.dice_world(), world_models.dice_counterfactual()
  both = world_models.twin(f, c)
  indep = world_models.twin(f, c, share=False)
  p12 = f.probability(lambda v: v["S"] == 12)
  greater = both.probability(lambda v: v["S_c"] > v["S_f"])
  greater_indep = indep.probability(lambda v: v["S_c"] > v["S_f"])
  results = {
      "name": "dice",
      "paper": "[H] Graphical world models; counterfactuals",
      "p_s_12": p12,
      "p_s_12_fraction": _fraction(p12),
      "expected_s": f.expectation("S"),
      "distribution_s": {str(k): v for k, v in f.distribution("S").items()},
      "shared_nodes": [n.name for n in both.nodes if n.name in f.names],
      "p_sc_greater_sf": greater,
      "p_sc_greater_sf_fraction": _fraction(greater),
      "p_sc_equal_sf": both.probability(lambda v: v["S_c"] == v["S_f"]),
      "expected_sc": both.expectation("S_c"),
      "independent_worlds_p_sc_greater_sf": greater_indep,
      "independent_worlds_fraction": _fraction(greater_indep),
      "paper_claims": {"p_sc_greater_sf": "5/6"},
  }
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3.4))
  sf, sc = f.distribution("S"), c.distribution("S")
  ax.bar([k - 0.2 for k in sf], list(sf.values()), 0.4, label="factual S_f = X + Y")
  ax.bar([k + 0.2 for k in sc], list(sc.values()), 0.4, label="counterfactual S_c = X + 6")
  ax.set_xlabel("score")
  ax.set_ylabel("probability")
  ax.legend(fontsize=7)
  ax.set_title(f"Dice world: P(S_c > S_f) = {results['p_sc_greater_sf_fraction']}")
  fig.tight_layout()
  plots.save(fig, figure_path(workdir, "dice.png"), dpi=110)
  plt.close(fig)
  return _report(workdir, results)


def boltzmann(workdir: str, quick: bool = False, config=None) -> dict:
  """[K] §4.1 on the mountain race (Examples 2 and 4; Prop 4.13, Cors 4.14–4.15, 5.10, 5.11) and
  a one-step MDP (Prop 4.16), exactly."""
  del quick, config  # exact and instant either way
  m = examples.mountain_race()
  root, fork_up, fork_down = m.state("∅"), m.state("up"), m.state("down")
  u = uniform_policy(m)
  at = lambda pi, s=root: [float(x) for x in pi[0 if s == root else 1, s]]  # noqa: E731

  # Examples 2/4: iterated Boltzmann coherence, δ = 1, from the uniform prior.
  seq = boltzmann_lib.iterated_f_coherence(m, u, operators.softmax_f(1.0), iterations=4)
  reached = next(i for i in range(len(seq)) if np.allclose(seq[i], seq[-1], atol=1e-15))
  iterated = [{"iteration": i, "policy_at_start": at(pi),
               "boltzmann_incoherence": _num(operators.boltzmann_incoherence(m, pi, 1.0))}
              for i, pi in enumerate(seq)]
  by_delta = []
  for delta in (2.0, 1.0, 0.5, 0.1, 0.01):
    pi = boltzmann_lib.boltzmann_coherent(m, delta)
    by_delta.append({"delta": delta, "policy_at_start": at(pi),
                     "return": operators.policy_return(m, pi),
                     "closed_form_up": 1 / (1 + 0.75 ** (1 / delta))})

  # Prop 4.13 and Cors 4.14–4.15.
  q_uniform, _ = operators.soft_values(m, u)
  star_uniform = boltzmann_lib.boltzmann_limit_policy(m, u)
  optimal = boltzmann_lib.greedy_optimal_policy(m)
  star_optimal = boltzmann_lib.boltzmann_limit_policy(m, optimal)
  not_optimal = u.copy()
  not_optimal[root] = [0.0, 1.0]  # [K] after Cor 4.15: no weight on ↗ at ∅
  limits = {"optimal": boltzmann_lib.boltzmann_incoherence_limit(m, optimal),
            "uniform": boltzmann_lib.boltzmann_incoherence_limit(m, u),
            "down_first": boltzmann_lib.boltzmann_incoherence_limit(m, not_optimal)}

  # Prop 4.16: one state, T = 1.
  one = TabularMDP(np.ones((1, 3, 1)), np.log([[0.2, 0.5, 0.9]]), np.ones(1), 1)
  prior = np.array([[0.5, 0.3, 0.2]])
  kl_opt, kl_value = boltzmann_lib.kl_regularised_optimum(one, prior)
  coherent_one = boltzmann_lib.boltzmann_coherent(one, 1.0)

  # Cor 5.11: κ_δ(π^G_i) on the mountain race, i and δ separately.
  retrained = operators.retrain(m, u, 100)
  pi_inf = operators.limit_policy(m, u)
  deltas = [1.0, 0.1, 0.01]
  grid = [{"iteration": i, "kappa": [operators.boltzmann_incoherence(m, retrained[i], d)
                                     for d in deltas],
           "limit_delta_to_0": _num(boltzmann_lib.boltzmann_incoherence_limit(m, retrained[i]))}
          for i in (1, 10, 100)]
  # Cor 5.11's joint limit along δ_i = (¾)^i: κ → 2·log(4/3), not 0.
  path = [{"iteration": i, "delta": 0.75 ** i,
           "kappa": operators.boltzmann_incoherence(m, retrained[i], 0.75 ** i)}
          for i in (4, 8, 16, 24)]

  # Cor 5.10: the return E Σ r gained by retraining round k vs. the corollary's leading term.
  rate = []
  for k in (1, 2, 3, 5, 10, 20, 40):
    r = boltzmann_lib.return_improvement_rate(m, u, k)
    rate.append({"k": k, "return": r.derivatives.j, "improvement": _num(r.improvement),
                 "stated": r.stated, "proof_term": _num(r.proof_term),
                 "variance": r.derivatives.dj})

  results = {
      "name": "boltzmann",
      "paper": "[K] §4.1: Defs 4.9–4.12, Prop 4.13, Cors 4.14–4.15, Prop 4.16, Cors 5.10–5.11",
      "actions": list(m.action_names),
      "iterated_delta_1": iterated,
      "fixpoint_reached_at": reached,
      "fixpoint_forks": {"up": at(seq[-1], fork_up), "down": at(seq[-1], fork_down)},
      "fixpoint_return": operators.policy_return(m, seq[-1]),
      "coherent_by_delta": by_delta,
      "uniform_q_at_start": [float(x) for x in np.exp(q_uniform[0, root])],
      "uniform_boltzmann_at_start": {str(d): at(boltzmann_lib.boltzmann_policy(m, u, d))
                                     for d in deltas},
      "uniform_limit_at_start": at(star_uniform),
      "limit_return_optimal_prior": operators.policy_return(m, star_optimal),
      "limit_return_uniform_prior": operators.policy_return(m, star_uniform),
      "optimal_return": operators.optimal_return(m),
      "kappa_limit": {k: _num(v) for k, v in limits.items()},
      "down_first_return": operators.policy_return(m, not_optimal),
      "one_step": {
          "prior": [float(x) for x in prior[0]],
          "success": [0.2, 0.5, 0.9],
          "kl_optimum": [float(x) for x in kl_opt[0]],
          "kl_value": kl_value,
          "boltzmann_coherent": [float(x) for x in coherent_one[0, 0]],
          "kappa_1_of_kl_optimum": operators.boltzmann_incoherence(one, kl_opt, 1.0),
          "kappa_1_of_boltzmann_coherent": operators.boltzmann_incoherence(one, coherent_one,
                                                                            1.0),
      },
      "retraining_deltas": deltas,
      "retraining_kappa": grid,
      "retraining_limit_kappa": [operators.boltzmann_incoherence(m, pi_inf, d) for d in deltas],
      "retraining_path_kappa": path,
      "retraining_path_limit": 2 * math.log(4 / 3),
      "return_rate": rate,
  }

  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
  ds = np.geomspace(0.02, 5, 60)
  axes[0].plot(ds, [boltzmann_lib.boltzmann_coherent(m, d)[0, root, 0] for d in ds],
               label="Boltzmann-coherent π(↗|∅)")
  axes[0].plot(ds, [boltzmann_lib.boltzmann_policy(m, u, d)[0, root, 0] for d in ds], "--",
               label="π^δ(↗|∅) of the uniform prior")
  axes[0].set_xscale("log")
  axes[0].set_xlabel("δ")
  axes[0].legend(fontsize=7)
  axes[0].set_title("Mountain race, Boltzmann policies")
  for i in (1, 3, 10, 30, 100):
    axes[1].plot(ds, [operators.boltzmann_incoherence(m, retrained[i], d) for d in ds],
                 label=f"π^G_{i}")
  axes[1].plot(ds, [operators.boltzmann_incoherence(m, pi_inf, d) for d in ds], "k--",
               label="π^G_∞")
  axes[1].set_xscale("log")
  axes[1].set_yscale("log")
  axes[1].set_xlabel("δ")
  axes[1].set_ylabel("κ_δ")
  axes[1].legend(fontsize=7)
  axes[1].set_title("Cor 5.11: κ_δ of retrained policies")
  fig.tight_layout()
  plots.save(fig, figure_path(workdir, "boltzmann.png"), dpi=110)
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
  if name == "dice":
    lines.append(f"factual f: P(S = 12) = {_fmt(results['p_s_12'])} "
                 f"({results['p_s_12_fraction']}), E(S) = {_fmt(results['expected_s'])}")
    lines.append(f"counterfactual c (red die all 6s), shared with f: {results['shared_nodes']}: "
                 f"P(S_c > S_f) = {_fmt(results['p_sc_greater_sf'])} "
                 f"({results['p_sc_greater_sf_fraction']}; paper 5/6), "
                 f"P(S_c = S_f) = {_fmt(results['p_sc_equal_sf'])}, "
                 f"E(S_c) = {_fmt(results['expected_sc'])}")
    lines.append(f"independent worlds instead: P(S_c > S_f) = "
                 f"{_fmt(results['independent_worlds_p_sc_greater_sf'])} "
                 f"({results['independent_worlds_fraction']})")
    lines.append("P(S = s): " + ", ".join(f"{k}: {_fmt(v)}"
                                          for k, v in results["distribution_s"].items()))
    return "\n".join(lines)
  if name == "boltzmann":
    lines.append(f"mountain race, actions {results['actions']}; Def 4.9 with softmax(Q/1) from "
                 f"the uniform prior (Examples 2/4):")
    for r in results["iterated_delta_1"]:
      lines.append(f"  i={r['iteration']} π^B_i(·|∅) {_fmt(r['policy_at_start'])} "
                   f"κ_1 {_fmt(r['boltzmann_incoherence'])}")
    lines.append(f"  fixpoint from i = {results['fixpoint_reached_at']}; forks "
                 f"{results['fixpoint_forks']}; J = {_fmt(results['fixpoint_return'])}")
    lines.append("Boltzmann-coherent π(·|∅) by δ: " + "; ".join(
        f"δ={r['delta']:g}: {_fmt(r['policy_at_start'])} J={r['return']:.4f}"
        for r in results["coherent_by_delta"]))
    lines.append(f"Prop 4.13, uniform prior: p(success|∅, a) = "
                 f"{_fmt(results['uniform_q_at_start'])}; π^δ(·|∅) "
                 + ", ".join(f"δ={d}: {_fmt(v)}"
                             for d, v in results["uniform_boltzmann_at_start"].items())
                 + f"; limit π* {_fmt(results['uniform_limit_at_start'])}")
    lines.append(f"Cor 4.14: J(π*) optimal prior {_fmt(results['limit_return_optimal_prior'])}, "
                 f"uniform prior {_fmt(results['limit_return_uniform_prior'])} (optimum "
                 f"{_fmt(results['optimal_return'])})")
    lines.append(f"Cor 4.15: lim κ_δ {results['kappa_limit']}; the ↘-first policy has "
                 f"J = {_fmt(results['down_first_return'])}")
    one = results["one_step"]
    lines.append(f"Prop 4.16 (T = 1, prior {_fmt(one['prior'])}, success {_fmt(one['success'])}):"
                 f" p·e^r = {_fmt(one['kl_optimum'])}, value {_fmt(one['kl_value'])}, κ_1 = "
                 f"{_fmt(one['kappa_1_of_kl_optimum'])}; Boltzmann-coherent "
                 f"{_fmt(one['boltzmann_coherent'])}, κ_1 = "
                 f"{_fmt(one['kappa_1_of_boltzmann_coherent'])}")
    lines.append(f"Cor 5.11, κ_δ(π^G_i) for δ = {results['retraining_deltas']}:")
    for r in results["retraining_kappa"]:
      lines.append(f"  i={r['iteration']:<4} {_fmt(r['kappa'])}  δ→0: {r['limit_delta_to_0']}")
    lines.append(f"  i=∞    {_fmt(results['retraining_limit_kappa'])}")
    lines.append("  joint limit along δ_i = (¾)^i: " + ", ".join(
        f"i={r['iteration']}: {_fmt(r['kappa'])}" for r in results["retraining_path_kappa"])
        + f" → 2·log(4/3) = {_fmt(results['retraining_path_limit'])}")
    lines.append("Cor 5.10, J = E Σ r of π^G_k from the uniform prior: ΔJ = J(π^G_k) − "
                 "J(π^G_{k−1}); stated (1/k)·J'Ĥ'/(J''+Ĥ''/k) = k·Var; proof's step "
                 "1/(k(k−1)):")
    sci = lambda x: f"{x:.4e}" if isinstance(x, float) else str(x)  # noqa: E731 ("inf" as is)
    for r in results["return_rate"]:
      imp = r["improvement"]
      ratio = _fmt(r["stated"] / imp) if isinstance(imp, float) and imp > 0 else "-"
      lines.append(f"  k={r['k']:<3} J {r['return']:.6f}  ΔJ {sci(imp):>10}  stated "
                   f"{sci(r['stated'])}  proof {sci(r['proof_term']):>10}  stated/ΔJ {ratio}")
    return "\n".join(lines)
  for key, value in results.items():
    if key in ("name", "paper"):
      continue
    if isinstance(value, dict):
      value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    lines.append(f"{key:28} {_fmt(value)}")
  return "\n".join(lines)
