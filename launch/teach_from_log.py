"""Teach an agent from a log of demonstrations alone ([O] §4.2; docs/offline.md):

  python -m launch.teach_from_log --config=experiments/bandit.py --log=LOG.npz \
      --num_latents=5 --workdir=DIR [--model_class=tabular|neural]

The task that `config.task` names gives the public structure (actions, observations, states
and their transitions, horizon); its expert and world are not read. A model with
`--num_latents` latents is fitted to the log (`offline.fit`), the agent of `config` is trained
in braided rollouts of it as `launch.train` trains (checkpoints, metrics, resume: rerun the
command), and the trained agent is then deployed in the named task and scored against its
exact oracles (meaningful when the named task is the truth, as for the built-in ones).
DIR/offline.json holds the fit and those scores.

The log is an .npz with `actions` and `observations` int [N, T] (T the task's horizon),
optional `mask` bool [N, T] and `weights` [N]; `offline.save_log` writes one. `intervened`,
if present, must be all False: every action the expert's.

Exit status: 0 done; 2 bad input (one `error:` line naming it, nothing written: the config, the
log file or its arrays, --num_latents < 1, --model_class); 1 a non-finite loss; 143 preempted.
"""

import json

from absl import app, flags
from ml_collections import config_flags

from launch import (define_check_flag, describe, fail, parse_flags, quiet_logging,
                    run_training)

config_flags.DEFINE_config_file("config", None, "Experiment config file (get_config()).",
                                lock_config=True)
flags.DEFINE_string("log", None, "The demonstrations: an .npz file (module docstring).")
flags.DEFINE_integer("num_latents", None, "K̂, the assumed number of latent values (>= 1).")
flags.DEFINE_string("model_class", "tabular", "tabular (EM on tables of the public state) or "
                    "neural (a θ-conditioned network, Adam).")
flags.DEFINE_string("workdir", None, "Where the run goes (as launch.train) and offline.json.")
define_check_flag()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])}")
  quiet_logging()
  import jax
  import numpy as np
  from etils import epath

  from causal_meta import config as config_lib
  from causal_meta import offline, parallel, train
  from causal_meta import workdir as workdir_lib
  config = FLAGS.config
  if config is None:
    fail("--config is required (e.g. --config=experiments/bandit.py)")
  for name in ("log", "workdir"):
    if not FLAGS[name].value:
      fail(f"--{name} is required")
  if FLAGS.num_latents is None or FLAGS.num_latents < 1:
    fail(f"--num_latents must be an integer >= 1, got {FLAGS.num_latents}")
  if FLAGS.model_class not in offline.MODEL_CLASSES:
    fail(f"--model_class must be one of {', '.join(offline.MODEL_CLASSES)}, "
         f"got {FLAGS.model_class!r}")
  try:
    task, _ = config_lib.validate(config)
    workdir_lib.check(FLAGS.workdir)
    log = offline.load_log(FLAGS.log, task)
  except (ValueError, TypeError, KeyError) as e:
    fail(str(e).splitlines()[0])
  if FLAGS.check:
    print(f"check: {describe(config)}; {log.actions.shape[0]} logged episodes, "
          f"K̂ = {FLAGS.num_latents} ({FLAGS.model_class}) -> {FLAGS.workdir}")
    return
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x0ff1)  # the fit's own stream
  try:
    model, info = offline.fit(task, log, FLAGS.num_latents, key, FLAGS.model_class)
  except ValueError as e:  # e.g. a mask that is not the task's own
    fail(str(e).splitlines()[0])
  final = float(np.ravel(info["log_likelihood"])[-1])  # EM gives its trace, Adam its end
  if parallel.is_primary():
    print(f"fitted {FLAGS.model_class} model, K̂ = {FLAGS.num_latents}: log-likelihood "
          f"{final:.4f} nats/episode on {info['num_episodes']:.0f} episodes", flush=True)
  summary = run_training(lambda: train.train_and_evaluate(config, FLAGS.workdir, verbose=True,
                                                          task=model))
  _, agent = config_lib.validate(config, task=model)
  scores = offline.evaluate_on_true_task(task, agent, summary["params"], config.seed,
                                         config.eval_episodes)
  if not parallel.is_primary():
    return
  (epath.Path(FLAGS.workdir) / "offline.json").write_text(json.dumps(dict(
      log=FLAGS.log, num_latents=FLAGS.num_latents, model_class=FLAGS.model_class,
      num_episodes=float(info["num_episodes"]), log_likelihood=final,
      in_model={k: float(summary[k]) for k in offline.AGENT_METRICS}, on_task=scores),
      indent=1))
  print(f"done: deployed in {task.name}: KL(int) {scores['kl_action_interventional']:.4g}, "
        f"KL(cond) {scores['kl_action_conditional']:.4g}, reward/step "
        f"{scores['mean_reward']:.3f}; wrote {FLAGS.workdir}", flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
