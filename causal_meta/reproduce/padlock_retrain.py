"""Padlock delusion and self-retraining ([D] §4.1, Table 1, App. C) vs counterfactual teaching.

  python -m launch.reproduce padlock --workdir=runs/padlock_retrain [--quick]

The config is `get_config('cpu' | 'quick' | 'gpu')` of experiments/padlock_retrain.py (the
launcher loads it). A goal-conditioned transformer is pretrained on expert demonstrations, then
retrained for `rounds` rounds on its own success-conditioned rollouts relabelled with their
outcome (`causal_meta.retrain`); beside it the same model trained from scratch on random play,
counterfactual teaching ([O] §4.1) with the training engine, and the exact oracle policies.
Prints delusion and accuracy per row beside [D] Table 1, and whether the targets hold; on [D]'s
game (`cpu_paper`, `gpu`) also Table 1 cell by cell: [D], the exact perfect models
(`exact_reference`, as `reproduce.padlock_exact` computes them) and ours.
"""

from __future__ import annotations

import json
import time

import jax
import ml_collections
import numpy as np
import optax

from causal_meta import agents, config as config_lib, oracle, plots, retrain, tasks
from causal_meta import train as train_lib
from causal_meta.reproduce import cell, figure_path, mean_std, seed_runs, write_results
from causal_meta.tabular import padlock_exact as exact

PAPER = dict(pretrained=dict(delusion=1.3863, accuracy=0.162793),
             fine_tuned=dict(delusion=0.1773, accuracy=0.170508),
             from_scratch=dict(delusion=None, accuracy=0.0004883))


def _agent(task, c, **kw):
  return agents.make("transformer", task, width=c.model.width, num_layers=c.model.num_layers,
                     num_heads=c.model.num_heads, **kw)


def _counterfactual_config(c):
  """The training engine's run: transformer, teaching='counterfactual', same task and sizes."""
  t = config_lib.default()
  t.seed = c.seed
  t.task.name = "padlock"
  for field, value in c.task.items():
    t.task.padlock[field] = value
  t.agent.kind = "transformer"
  t.agent.width, t.agent.num_layers, t.agent.num_heads = (c.model.width, c.model.num_layers,
                                                          c.model.num_heads)
  t.teaching = "counterfactual"
  t.optim.learning_rate = c.learning_rate
  t.batch_size = c.batch_size
  t.num_updates = c.counterfactual_updates
  t.updates_per_call = c.counterfactual_updates // 4 if c.counterfactual_updates % 4 == 0 else \
      c.counterfactual_updates
  t.log_every = c.counterfactual_updates
  t.eval_episodes = c.eval_episodes
  return t


def exact_reference(task) -> dict | None:
  """[D] Table 1's exact column for `task` if it is [D]'s game (15 switches from a random
  start, 32 codes, noiseless experts; `reproduce.padlock_exact`), else None: App. C's delusion
  and the accuracy of the perfect pretrained model and of the model fine-tuned to perfection
  once, and random play's accuracy (the from-scratch row), at the task's horizon in flips.
  Seconds on one CPU core; past 15 flips the fine-tuned model's entries are None (its
  enumeration, a success probability per history and remaining budget, grows to hours)."""
  if not (task.random_start and task.epsilon == 0 and (task.num_switches, task.num_secret) ==
          (15, 5)):
    return None
  flips = task.horizon - task.num_switches - 1  # after the reading steps and the test step
  pretrained = exact.Pretrained(task.num_secret)
  fine_tuned = exact.GoalConditioned(pretrained)  # [D]'s fine-tuned row: one round
  rows = {}
  for name, model in (("pretrained", pretrained), ("fine_tuned", fine_tuned)):
    if not model.budget_free and flips > 15:
      rows[name] = dict(delusion_app_c=None, accuracy=None)
      continue
    m = exact.evaluate(model, task.num_switches, task.num_secret, flips)
    rows[name] = dict(delusion_app_c=float(m["delusion_app_c"]), accuracy=float(m["accuracy"]))
  rows["from_scratch"] = dict(accuracy=exact.random_play_accuracy(task.num_switches, flips))
  return dict(flips=flips, **rows)


def check(c: ml_collections.ConfigDict) -> None:
  """Builds the task, the goal-conditioned model and the counterfactual run's config of `c`
  (ValueError naming what is wrong); nothing is compiled or trained."""
  task = tasks.make("padlock", **c.task)
  _agent(task, c, author_tokens=False, num_outcomes=agents.tokens.NUM_OUTCOMES)
  for name in ("like_with_like_episodes", "like_with_like_samples"):
    if not isinstance(c[name], int) or c[name] < 0:
      raise ValueError(f"padlock: {name} must be a non-negative integer, got {c[name]!r}")
  if c.like_with_like_episodes and not c.like_with_like_samples:
    raise ValueError("padlock: like_with_like_samples must be positive when "
                     "like_with_like_episodes is")
  if c.counterfactual_updates:
    config_lib.validate(_counterfactual_config(c))


def run(c: ml_collections.ConfigDict, workdir: str | None = None, log=print) -> dict:
  """The whole padlock experiment for config `c` (experiments/padlock_retrain.py); writes
  workdir/results.json and figures/ unless workdir is None. Returns the results dict."""
  check(c)
  start = time.time()
  task = tasks.make("padlock", **c.task)
  key = jax.random.PRNGKey(c.seed)
  optimizer = optax.adam(c.learning_rate)
  gc_agent = _agent(task, c, author_tokens=False, num_outcomes=agents.tokens.NUM_OUTCOMES)
  eval_key = jax.random.fold_in(key, 0x5EED)

  # 1. Pretrain on expert demonstrations (every one opens the lock: labelled success).
  demos = retrain.demonstrations(task, jax.random.fold_in(key, 1), c.num_demos)
  params = gc_agent.init(jax.random.fold_in(key, 2))
  fit_pre = retrain.make_fit(gc_agent, optimizer, c.batch_size, c.pretrain_updates)
  params, _, m = fit_pre(params, optimizer.init(params), jax.random.fold_in(key, 3), demos, demos)
  log(f"pretrained on {c.num_demos} demonstrations: final loss {float(m['loss'][-1]):.4f}")

  # 2. Rounds of self-retraining.
  fit = retrain.make_fit(gc_agent, optimizer, c.batch_size, c.retrain_updates, c.mix)
  rows, _ = retrain.retrain_rounds(
      task, gc_agent, params, optimizer, jax.random.fold_in(key, 4), rounds=c.rounds,
      rollouts_per_round=c.rollouts_per_round, fit=fit, original=demos,
      eval_episodes=c.eval_episodes, accumulate=c.accumulate,
      like_with_like_episodes=c.like_with_like_episodes,
      like_with_like_samples=c.like_with_like_samples, log=log)

  # 3. From scratch: the same goal-conditioned model trained on random play, relabelled.
  randoms = retrain.random_play(task, jax.random.fold_in(key, 5), c.num_random)
  fit_scratch = retrain.make_fit(gc_agent, optimizer, c.batch_size, c.scratch_updates)
  p0 = gc_agent.init(jax.random.fold_in(key, 6))
  p_scratch, _, _ = fit_scratch(p0, optimizer.init(p0), jax.random.fold_in(key, 7), randoms,
                                randoms)
  scratch = retrain._floats(retrain.evaluate_delusion(task, gc_agent, p_scratch, eval_key,
                                                      c.eval_episodes))
  scratch["random_play_success_rate"] = float(np.mean(np.asarray(randoms.outcome)))
  log(f"from scratch: delusion {scratch['delusion']:.4f}  accuracy {scratch['accuracy']:.4f}")

  # 4. Counterfactual teaching with the training engine (expert online, author-aware agent).
  counterfactual = dict(delusion=None, accuracy=None)
  if c.counterfactual_updates:
    cf_config = _counterfactual_config(c)
    cf = train_lib.train_and_evaluate(cf_config, None, verbose=False)
    cf_agent = config_lib.make_agent(cf_config, task)
    counterfactual = retrain._floats(retrain.evaluate_delusion(task, cf_agent, cf["params"],
                                                               eval_key, c.eval_episodes, None))
    log(f"counterfactual teaching: delusion {counterfactual['delusion']:.4f}  "
        f"accuracy {counterfactual['accuracy']:.4f}")

  # 5. The exact oracle policies (Thompson sampling = interventional; the deluded imitator).
  oracles = {}
  for name, causal in (("interventional", True), ("conditional", False)):
    _, stats = oracle.run_policy(task, eval_key, c.eval_episodes, causal)
    oracles[name] = dict(accuracy=float(stats["success_rate"]), delusion=0.0 if causal else None)
  log(f"oracle policies: interventional accuracy {oracles['interventional']['accuracy']:.4f}, "
      f"conditional {oracles['conditional']['accuracy']:.4f}")

  exact_ref = exact_reference(task)  # [D]'s game only

  results = dict(
      experiment="padlock", paper="[D] Table 1", config=c.to_dict(), task=task.summary(),
      rows=rows, from_scratch=scratch, counterfactual=counterfactual,
      oracle_interventional=oracles["interventional"], oracle_conditional=oracles["conditional"],
      paper_table=PAPER, exact=exact_ref, targets=targets(rows, counterfactual, oracles),
      wall_seconds=time.time() - start, device=jax.devices()[0].device_kind)
  if workdir:
    write(workdir, results)
  return results


def targets(rows, counterfactual, oracles) -> dict:
  """The targets for n=6, m=3 (docs/retraining.md), evaluated on this run: pretrained delusion
  at least 0.5 nats/step, retraining cuts it to at most a third, counterfactual teaching at most
  0.05 with accuracy within 5 points of the interventional oracle policy's."""
  pre, last = rows[0]["delusion"], min(r["delusion"] for r in rows[1:]) if len(rows) > 1 else None
  cf = counterfactual if counterfactual["delusion"] is not None else None
  return dict(
      pretrained_delusion_at_least_0_5=pre >= 0.5,
      retrained_delusion_at_most_a_third=last is not None and last <= pre / 3,
      counterfactual_delusion_at_most_0_05=cf is not None and cf["delusion"] <= 0.05,
      counterfactual_accuracy_within_5_points_of_oracle=cf is not None and abs(
          cf["accuracy"] - oracles["interventional"]["accuracy"]) <= 0.05)


def over_seeds(per_seed: list[dict]) -> dict:
  """The table's entries of several runs (one per seed) as (mean, std) pairs."""
  def block(get):
    first = get(per_seed[0])
    return {k: mean_std([get(r)[k] for r in per_seed]) for k in first}
  rows = [dict(block(lambda r, i=i: r["rows"][i]), round=i)
          for i in range(len(per_seed[0]["rows"]))]
  return dict(seeds=[r["config"]["seed"] for r in per_seed], rows=rows,
              **{name: block(lambda r, name=name: r[name])
                 for name in ("from_scratch", "counterfactual", "oracle_interventional",
                              "oracle_conditional")},
              paper_table=per_seed[0]["paper_table"], exact=per_seed[0].get("exact"))


def format_cells(results: dict) -> str | None:
  """Markdown: [D] Table 1 cell by cell, [D] | exact (perfect models, `exact_reference`) |
  ours (learned; one run or mean ± std over seeds). None unless the game is [D]'s."""
  ex = results.get("exact")
  if ex is None:
    return None
  p, rows, scratch = results["paper_table"], results["rows"], results["from_scratch"]
  lines = [f"| cell ({ex['flips']} flips) | [D] | exact (perfect models) | ours, learned |",
           "|---|---|---|---|"]
  for name, key, r in (("pretrained", "pretrained", rows[0]),
                       ("fine-tuned", "fine_tuned", rows[1] if len(rows) > 1 else None)):
    learned = r or {}
    lines.append(f"| {name}: delusion, App. C KL(model ‖ ideal) | {cell(p[key]['delusion'])} | "
                 f"{cell(ex[key]['delusion_app_c'])} | {cell(learned.get('delusion_app_c'))} |")
    lines.append(f"| {name}: accuracy | {cell(p[key]['accuracy'], True)} | "
                 f"{cell(ex[key]['accuracy'], True)} | {cell(learned.get('accuracy'), True)} |")
  if len(rows) > 1 and "delusion_like_with_like" in rows[1]:
    lines.append(f"| fine-tuned: delusion, like with like KL(data ‖ model) | – | 0 | "
                 f"{cell(rows[1]['delusion_like_with_like'])} |")
  lines.append(f"| from scratch: accuracy | {100 * p['from_scratch']['accuracy']:.4f}% | "
               f"random play {100 * ex['from_scratch']['accuracy']:.4f}% | "
               f"{cell(scratch['accuracy'], True)} |")
  return "\n".join(lines)


def format_table(results: dict) -> str:
  """Markdown table: ours (one run, or mean ± std over seeds) beside [D] Table 1."""
  p = results["paper_table"]
  f = cell
  like = any("delusion_like_with_like" in r for r in results["rows"])
  lines = ["| model | delusion (ours) | App. C KL(model ‖ ideal) | "
           + ("like with like KL(data ‖ model) | " if like else "")
           + "accuracy (ours) | delusion [D] | accuracy [D] |",
           "|---" * (7 if like else 6) + "|"]

  def row(name, cells):  # cells[2] is the like-with-like column, shown if any round has it
    lines.append(f"| {name} | " + " | ".join(c for i, c in enumerate(cells) if like or i != 2)
                 + " |")
  for r in results["rows"]:
    ref = p["pretrained"] if r["round"] == 0 else (p["fine_tuned"] if r["round"] == 1 else {})
    name = "pretrained on demonstrations" if r["round"] == 0 else f"retrained, round {r['round']}"
    row(name, [f(r["delusion"]), f(r.get("delusion_app_c")), f(r.get("delusion_like_with_like")),
               f(r["accuracy"], True), f(ref.get("delusion")), f(ref.get("accuracy"), True)])
  s = results["from_scratch"]
  row("from scratch (random play)", [f(s["delusion"]), f(s.get("delusion_app_c")), "–",
                                     f(s["accuracy"], True), "–",
                                     f(p["from_scratch"]["accuracy"], True)])
  cf = results["counterfactual"]
  row("counterfactual teaching", [f(cf["delusion"]), f(cf.get("delusion_app_c")), "–",
                                  f(cf["accuracy"], True), "–", "–"])
  o = results["oracle_interventional"]
  row("interventional oracle policy", ["0", "0", "–", f(o["accuracy"], True), "–", "–"])
  o = results["oracle_conditional"]
  row("conditional oracle policy", ["–", "–", "–", f(o["accuracy"], True), "–", "–"])
  return "\n".join(lines)


def write(workdir: str, results: dict) -> None:
  """workdir/results.json and figures/padlock_retrain.png (delusion and accuracy per round;
  the means where the entries are (mean, std) over seeds)."""
  write_results(workdir, results)
  mean = lambda x: x[0] if isinstance(x, (tuple, list)) else x
  rounds = [r["round"] for r in results["rows"]]
  cf, oracle_acc = (mean(results["counterfactual"]["delusion"]),
                    mean(results["oracle_interventional"]["accuracy"]))
  plots.curves(figure_path(workdir, "padlock_retrain.png"),
               {"delusion (nats/step)": [mean(r["delusion"]) for r in results["rows"]],
                "accuracy": [mean(r["accuracy"]) for r in results["rows"]],
                "counterfactual delusion": [cf] * len(rounds),
                "oracle accuracy": [oracle_acc] * len(rounds)},
               "retraining round", "value", "Padlock: delusion and accuracy per round", x=rounds)


def reproduce(workdir: str, quick: bool = False,
              config: ml_collections.ConfigDict | None = None) -> dict:
  """`python -m launch.reproduce padlock`: `run` with `config`, experiments/padlock_retrain.py's
  get_config('cpu') (n=6, m=3), or get_config('quick') with --quick. Prints the table (and on
  [D]'s game the cell-by-cell one, `format_cells`). With
  several `config.seeds`, one run per seed in workdir/seed_S and the table of mean ± std in
  workdir/results.json."""
  del quick  # the config's size
  if config is None:
    raise ValueError("padlock: pass get_config(...) of experiments/padlock_retrain.py as config")
  seeds = tuple(config.get("seeds", (config.seed,)))
  if len(seeds) == 1:
    config.seed = seeds[0]
    results = run(config, workdir)
    _print_tables(results)
    print("targets:", json.dumps(results["targets"]))
    return results

  def run_seed(c, seed_dir):
    results = run(c, seed_dir)
    print("targets:", json.dumps(results["targets"]))
    return results

  per_seed = seed_runs(config, workdir, run_seed)
  results = dict(experiment="padlock", paper="[D] Table 1", config=config.to_dict(),
                 **over_seeds(per_seed))
  write(workdir, results)
  print(f"mean ± std over seeds {', '.join(map(str, seeds))}:")
  _print_tables(results)
  return results


def _print_tables(results: dict) -> None:
  print(format_table(results))
  cells = format_cells(results)
  if cells:
    print("[D] Table 1 cell by cell:")
    print(cells)
