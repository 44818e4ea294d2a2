"""`evaluate.expert_data_metrics` against the oracle at every prefix, and `causal_meta.diagnose`
(`python -m launch.diagnose`) against the run's own summary.json."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from causal_meta import agents, diagnose, evaluate, oracle, rollout, tasks, train
from causal_meta import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_expert_data_metrics_against_the_oracle_at_every_prefix():
  task = tasks.make("padlock", num_switches=4, num_secret=2, epsilon=0.2)
  agent = agents.make("lstm", task, hidden=16, author_tokens=False)
  params = agent.init(jax.random.PRNGKey(0))
  key, B, T = jax.random.PRNGKey(1), 6, task.horizon
  out = evaluate.expert_data_metrics(task, agent, params, key, B)
  # The same episodes (same key), scored one prefix at a time with the oracle's own entry point.
  traj = rollout.braid(task, agent.policy(params), key, B, expert_prob=1.0)
  log_q = np.asarray(jax.nn.log_softmax(agent.teacher_force(params, traj)[0]))
  kl = np.zeros((B, T))
  for b in range(B):
    for t in range(T):
      p = np.asarray(oracle.next_action_probs(task, traj.actions[b, :t],
                                              traj.observations[b, :t], intervened=False))
      kl[b, t] = np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - log_q[b, t]), 0))
  mask = np.asarray(traj.mask)
  assert 0 < mask.sum() < B * T  # some episodes ended early: the mask matters
  np.testing.assert_allclose(out["kl_action_conditional"], kl[mask].mean(), rtol=1e-5)
  np.testing.assert_allclose(out["running_by_step"], mask.mean(0))
  want_by_step = (kl * mask).sum(0) / np.maximum(mask.sum(0), 1)
  np.testing.assert_allclose(out["kl_action_conditional_by_step"], want_by_step, rtol=1e-5,
                             atol=1e-7)


def test_diagnose_reads_a_run_and_matches_its_summary(tmp_path):
  config = config_lib.default()
  config.task.bandit.horizon = 6
  config.teaching = "demonstration"
  config.agent.hidden = 16
  config.batch_size, config.num_updates, config.eval_episodes = 64, 50, 256
  config.updates_per_call = config.log_every = 25
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  out = diagnose.diagnose(str(tmp_path), episodes=256)
  with open(tmp_path / "summary.json") as f:
    summary = json.load(f)
  # The own-rollout half re-runs the run's final evaluation from its checkpoint.
  np.testing.assert_allclose(out["own"]["kl_action_conditional"],
                             summary["kl_action_conditional"], rtol=1e-5)
  for d in out.values():  # the mean is the running-weighted mean of the curve
    np.testing.assert_allclose(
        d["kl_action_conditional"],
        np.sum(d["kl_action_conditional_by_step"] * d["running_by_step"])
        / np.sum(d["running_by_step"]), rtol=1e-5)
  table = diagnose.format_table(out).splitlines()
  assert len(table) == 2 + 6 + 1 and table[-1].startswith("| mean |")


def test_cli_on_a_directory_that_is_not_a_run(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", "launch.diagnose", f"--workdir={tmp_path}"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  want = f"error: diagnose: no config.json in {tmp_path} (not a run directory?)"
  assert proc.stderr.strip() == want
