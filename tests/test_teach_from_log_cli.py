"""`python -m launch.teach_from_log`: a log on disk -> a fitted model -> an agent taught in it,
scored on the named task; bad input is one `error:` line, exit status 2, nothing written.
Each invocation is a real subprocess."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from causal_meta import offline, rollout, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG_FILE = """
from causal_meta import config as config_lib
def get_config():
  c = config_lib.default()
  c.task.bandit.update(num_arms=3, horizon=6)
  c.agent.hidden = 16
  c.batch_size = 64
  c.num_updates = 200
  c.updates_per_call = c.log_every = c.checkpoint_every = 100
  c.eval_episodes = 512
  return c
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("teach_from_log")
  (root / "config.py").write_text(CONFIG_FILE)
  task = tasks.make("bandit", num_arms=3, horizon=6)
  log = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(0), 2000,
                      expert_prob=1.0)
  offline.save_log(str(root / "log.npz"), log)
  np.savez(root / "agent_log.npz", actions=np.asarray(log.actions),
           observations=np.asarray(log.observations), intervened=np.ones(log.actions.shape))
  np.savez(root / "short_log.npz", actions=np.asarray(log.actions)[:, :4],
           observations=np.asarray(log.observations)[:, :4])
  return root


def launch(root, *flags):
  return subprocess.run([sys.executable, "-m", "launch.teach_from_log",
                         f"--config={root / 'config.py'}", *flags], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)


BAD = {
    "agent_authored": (["--log={root}/agent_log.npz", "--num_latents=3"], "log.intervened"),
    "shape": (["--log={root}/short_log.npz", "--num_latents=3"], "log.actions"),
    "missing_file": (["--log={root}/none.npz", "--num_latents=3"], "no such file"),
    "zero_latents": (["--log={root}/log.npz", "--num_latents=0"], "--num_latents"),
    "model_class": (["--log={root}/log.npz", "--num_latents=3", "--model_class=linear"],
                    "--model_class"),
    "config_field": (["--log={root}/log.npz", "--num_latents=3", "--config.batch_size=0"],
                     "config.batch_size"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(setup, name):
  flags, expected = BAD[name]
  workdir = setup / f"bad_{name}"
  proc = launch(setup, f"--workdir={workdir}", *(f.format(root=setup) for f in flags))
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], lines
  assert not workdir.exists()


def test_teaches_from_the_log_and_scores_on_the_task(setup):
  """The 3-armed bandit from 2,000 demonstrations: the agent taught in the fitted model is far
  closer to the true interventional oracle than to the conditional one (behaviour cloning's
  limit); the run resumes (a second call trains nothing more)."""
  workdir = setup / "run"
  flags = (f"--workdir={workdir}", f"--log={setup}/log.npz", "--num_latents=3")
  proc = launch(setup, *flags)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads((workdir / "offline.json").read_text())
  scores = out["on_task"]
  assert out["num_latents"] == 3 and out["num_episodes"] == 2000
  assert scores["kl_action_interventional"] < 0.01
  assert scores["kl_action_interventional"] < 0.3 * scores["kl_action_conditional"]
  assert (workdir / "summary.json").exists() and "done: deployed in bandit" in proc.stdout
  again = launch(setup, *flags)
  assert again.returncode == 0, again.stderr[-3000:]
  assert json.loads((workdir / "offline.json").read_text())["on_task"] == scores
