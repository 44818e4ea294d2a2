"""A trained run's distance to the conditional oracle, step by step, on two data sets.

`diagnose(workdir)` reads WORKDIR/config.json and the latest checkpoint and computes, for each
step t, the fraction of episodes still running and the agent's KL(conditional oracle ‖ agent)
for the next action: on its own deployment rollouts (the episodes of the run's evaluation, so
the mean is summary.json's `kl_action_conditional`) and on the expert's rollouts (the
demonstrations; `evaluate.expert_data_metrics`). For a demonstration agent, low on the
expert's data and high on its own rollouts means that it fits its data but its own actions
lead it to histories the data hardly covers; high on both, that it does not fit its data.
Command line: `python -m launch.diagnose --workdir=DIR`.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from causal_meta import checkpoints, evaluate, train
from causal_meta import config as config_lib


def diagnose(workdir: str, episodes: int | None = None) -> dict[str, dict[str, np.ndarray]]:
  """{'own': d, 'expert': d}, each d = {kl_action_conditional (mean, nats/step),
  kl_action_conditional_by_step [T], running_by_step [T]} as numpy. `episodes`: expert
  episodes (default: the run's eval_episodes)."""
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"no config.json in {workdir} (not a run directory?)")
  config = ml_collections.ConfigDict(json.loads(path.read_text()))
  task, agent = config_lib.validate(config, 1)
  state, _ = checkpoints.load_state_dict(workdir)
  params = jax.tree.map(jnp.asarray, state["params"])
  key = train.evaluation_key(config.seed)
  own = jax.jit(evaluate.agent_metrics, static_argnums=(0, 1, 4))(
      task, agent, params, key, config.eval_episodes)
  expert = jax.jit(evaluate.expert_data_metrics, static_argnums=(0, 1, 4))(
      task, agent, params, jax.random.fold_in(key, 1), episodes or config.eval_episodes)
  own = {k: own[k] for k in expert}
  return {name: jax.tree.map(np.asarray, d) for name, d in (("own", own), ("expert", expert))}


def format_table(out: dict) -> str:
  """The markdown table `python -m launch.diagnose` prints."""
  own, expert = out["own"], out["expert"]
  lines = ["| step | running (own) | KL_a(cond), own rollouts | running (expert) | "
           "KL_a(cond), expert's rollouts |", "|---|---|---|---|---|"]
  for t in range(len(own["running_by_step"])):
    lines.append(f"| {t + 1} | {own['running_by_step'][t]:.2f} | "
                 f"{own['kl_action_conditional_by_step'][t]:.4f} | "
                 f"{expert['running_by_step'][t]:.2f} | "
                 f"{expert['kl_action_conditional_by_step'][t]:.4f} |")
  lines.append(f"| mean | | {float(own['kl_action_conditional']):.4f} | | "
               f"{float(expert['kl_action_conditional']):.4f} |")
  return "\n".join(lines)
