"""Padlock delusion and self-retraining ([D] §4.1, Table 1, App. C) vs counterfactual teaching.

  python -m launch.reproduce padlock --workdir=runs/padlock_retrain [--quick]

`get_config('quick' | 'cpu' | 'gpu')`: quick is the CPU smoke run used by the tests (n=6, m=3,
under a minute or two), cpu the n=6, m=3 run reported in docs/retraining.md, gpu the paper's
size (n=15, m=5; [D]: 3 layers, 8 heads, 384 wide, batch 1024, 2000 iterations).
"""

from __future__ import annotations

import json
import os
import time

import jax
import ml_collections
import numpy as np
import optax

from causal_meta import agents, config as config_lib, oracle, plots, retrain, tasks
from causal_meta import train as train_lib

PAPER = dict(pretrained=dict(delusion=1.3863, accuracy=0.162793),
             fine_tuned=dict(delusion=0.1773, accuracy=0.170508),
             from_scratch=dict(delusion=None, accuracy=0.0004883))


def get_config(size: str = "cpu") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.size = size
  c.seed = 0
  c.task = dict(num_switches=6, num_secret=3)
  c.model = dict(width=64, num_layers=2, num_heads=4)
  c.learning_rate = 1e-3
  c.batch_size = 128
  c.num_demos = 4096          # expert demonstrations (all succeed: labelled success)
  c.pretrain_updates = 1000
  c.rounds = 3
  c.rollouts_per_round = 4096  # own success-conditioned rollouts per round
  c.retrain_updates = 1000
  c.mix = 0.0                  # per-row probability of an original demonstration when fine-tuning
  c.accumulate = False         # fine-tune on all rounds' rollouts so far, not only the last
  c.num_random = 4096          # random-play episodes for training from scratch
  c.scratch_updates = 1000
  c.counterfactual_updates = 2000  # train.train_and_evaluate, teaching='counterfactual'
  c.eval_episodes = 2048
  if size == "quick":
    c.model = dict(width=32, num_layers=2, num_heads=2)
    c.learning_rate = 3e-3
    c.batch_size = 64
    c.num_demos = c.rollouts_per_round = c.num_random = 1024
    c.pretrain_updates = c.retrain_updates = c.scratch_updates = 200
    c.counterfactual_updates = 300
    c.rounds = 2
    c.eval_episodes = 512
  elif size == "gpu":
    c.task = dict(num_switches=15, num_secret=5)
    c.model = dict(width=384, num_layers=3, num_heads=8)
    c.learning_rate = 3e-4
    c.batch_size = 1024
    c.num_demos = c.rollouts_per_round = c.num_random = 65536
    c.pretrain_updates = c.retrain_updates = 2000
    c.scratch_updates = 4000
    c.counterfactual_updates = 4000
    c.eval_episodes = 8192
  elif size != "cpu":
    raise ValueError(f"padlock_retrain: size must be quick, cpu or gpu, got {size!r}")
  return c


def _agent(task, c, **kw):
  return agents.make("transformer", task, width=c.model.width, num_layers=c.model.num_layers,
                     num_heads=c.model.num_heads, **kw)


def _counterfactual_config(c):
  """The engine's own run: transformer, teaching='counterfactual', same task and sizes."""
  t = config_lib.default()
  t.seed = c.seed
  t.task.name = "padlock"
  t.task.padlock.num_switches = c.task.num_switches
  t.task.padlock.num_secret = c.task.num_secret
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


def run(c: ml_collections.ConfigDict, workdir: str | None = None, log=print) -> dict:
  """The whole padlock experiment; writes workdir/results.json and figures/. Returns results."""
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
      eval_episodes=c.eval_episodes, accumulate=c.accumulate, log=log)

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

  # 4. Counterfactual teaching with the engine (expert online, author-aware agent).
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

  results = dict(
      experiment="padlock", paper="[D] Table 1", config=c.to_dict(), task=task.summary(),
      rows=rows, from_scratch=scratch, counterfactual=counterfactual,
      oracle_interventional=oracles["interventional"], oracle_conditional=oracles["conditional"],
      paper_table=PAPER, targets=targets(rows, counterfactual, oracles),
      wall_seconds=time.time() - start, device=jax.devices()[0].device_kind)
  if workdir:
    write(workdir, results)
  return results


def targets(rows, counterfactual, oracles) -> dict:
  """The issue's targets (n=6, m=3), evaluated on this run."""
  pre, last = rows[0]["delusion"], min(r["delusion"] for r in rows[1:]) if len(rows) > 1 else None
  cf = counterfactual if counterfactual["delusion"] is not None else None
  return dict(
      pretrained_delusion_at_least_0_5=pre >= 0.5,
      retrained_delusion_at_most_a_third=last is not None and last <= pre / 3,
      counterfactual_delusion_at_most_0_05=cf is not None and cf["delusion"] <= 0.05,
      counterfactual_accuracy_within_5_points_of_oracle=cf is not None and abs(
          cf["accuracy"] - oracles["interventional"]["accuracy"]) <= 0.05)


def format_table(results: dict) -> str:
  """Markdown table: ours beside [D] Table 1."""
  p = results["paper_table"]
  f = lambda x, pct=False: "–" if x is None else (f"{100 * x:.2f}%" if pct else f"{x:.4f}")
  lines = ["| model | delusion (ours) | accuracy (ours) | delusion [D] | accuracy [D] |",
           "|---|---|---|---|---|"]
  for r in results["rows"]:
    ref = p["pretrained"] if r["round"] == 0 else (p["fine_tuned"] if r["round"] == 1 else {})
    name = "pretrained on demonstrations" if r["round"] == 0 else f"retrained, round {r['round']}"
    lines.append(f"| {name} | {f(r['delusion'])} | {f(r['accuracy'], True)} | "
                 f"{f(ref.get('delusion'))} | {f(ref.get('accuracy'), True)} |")
  s = results["from_scratch"]
  lines.append(f"| from scratch (random play) | {f(s['delusion'])} | {f(s['accuracy'], True)} | – "
               f"| {f(p['from_scratch']['accuracy'], True)} |")
  cf = results["counterfactual"]
  lines.append(f"| counterfactual teaching | {f(cf['delusion'])} | {f(cf['accuracy'], True)} "
               "| – | – |")
  o = results["oracle_interventional"]
  lines.append(f"| interventional oracle policy | 0 | {f(o['accuracy'], True)} | – | – |")
  o = results["oracle_conditional"]
  lines.append(f"| conditional oracle policy | – | {f(o['accuracy'], True)} | – | – |")
  return "\n".join(lines)


def write(workdir: str, results: dict) -> None:
  os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  rounds = [r["round"] for r in results["rows"]]
  plots.curves(os.path.join(workdir, "figures", "padlock_retrain.png"),
               {"delusion (nats/step)": [r["delusion"] for r in results["rows"]],
                "accuracy": [r["accuracy"] for r in results["rows"]],
                "counterfactual delusion": [results["counterfactual"]["delusion"]] * len(rounds),
                "oracle accuracy": [results["oracle_interventional"]["accuracy"]] * len(rounds)},
               "retraining round", "value", "Padlock: delusion and accuracy per round", x=rounds)


def reproduce(workdir: str, quick: bool = False) -> dict:
  """`python -m launch.reproduce padlock`: the cpu config (n=6, m=3), or quick."""
  results = run(get_config("quick" if quick else "cpu"), workdir)
  print(format_table(results))
  print("targets:", json.dumps(results["targets"]))
  return results
