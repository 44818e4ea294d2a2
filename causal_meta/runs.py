"""A run directory read back: `load_run(workdir)` -> its config, task, agent, latest
parameters, summary and metric history, e.g. to evaluate or plot a run in a notebook.

The task and agent are rebuilt from WORKDIR/config.json through the registries
(`tasks.register`, `agents.register`), so a run of a registered name loads in a fresh process
once the name is registered again. A run trained with objects passed to
`train.train_and_evaluate(..., task=, agent=)` loads with the same objects passed here.
Every file is read through `etils.epath.Path`, so a gs:// workdir works.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections

from causal_meta import checkpoints
from causal_meta import config as config_lib
from causal_meta import metrics as metrics_lib
from causal_meta import workdir as workdir_lib
from causal_meta.agents import Agent
from causal_meta.tasks.base import Task


class Run(NamedTuple):
  """What `load_run` returns.

  config: WORKDIR/config.json as an ml_collections.ConfigDict.
  task, agent: the run's Task and Agent (from the config, or as passed to `load_run`).
  params: the checkpoint's parameters (jax arrays), the pytree `agent.init` returns.
  step: the updates done at that checkpoint.
  summary: WORKDIR/summary.json (the final evaluation, with its `curves`), or None if the run
    has not finished.
  history: the rows of WORKDIR/metrics.jsonl, one per evaluation.
  """
  config: ml_collections.ConfigDict
  task: Task
  agent: Agent
  params: Any
  step: int
  summary: dict | None
  history: list[dict]


def load_run(workdir, task: Task | None = None, agent: Agent | None = None,
             step: int | None = None) -> Run:
  """Reads the run in `workdir` (local or gs://): its latest checkpoint, or `step`'s.

  task, agent: pass the objects the run was trained with when its config names a task or an
  agent kind that is not registered in this process (or when `train_and_evaluate` got them).

  Raises:
    FileNotFoundError: no config.json or no checkpoint in `workdir`.
    ValueError (one line): the config names an unregistered task or agent kind and no object
      was passed, or the checkpoint's parameters do not fit the agent.
  """
  root = workdir_lib.path(workdir)
  config_path = root / "config.json"
  if not config_path.exists():
    raise FileNotFoundError(f"no config.json in {workdir} (not a run directory?)")
  config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
  try:
    task, agent = config_lib.validate(config, 1, task=task, agent=agent)
  except ValueError as e:
    message = str(e).splitlines()[0]
    if message.startswith(("config.task.name:", "config.agent.kind:")):
      message += ("; register it (tasks.register, agents.register) or pass the object: "
                  "load_run(workdir, task=..., agent=...)")
    raise ValueError(message) from None
  state, meta = checkpoints.load_state_dict(str(workdir), step)
  _check_shapes(state["params"], agent, f"{workdir}: checkpoint {meta.get('step')}")
  summary_path = root / "summary.json"
  summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
  return Run(config=config, task=task, agent=agent,
             params=jax.tree.map(jnp.asarray, state["params"]), step=int(meta["step"]),
             summary=summary, history=metrics_lib.read_jsonl(root / "metrics.jsonl"))


def _check_shapes(params, agent: Agent, where: str) -> None:
  """ValueError (one line) unless `params` has the names and shapes `agent.init` gives."""
  want = flax.traverse_util.flatten_dict(jax.eval_shape(agent.init, jax.random.PRNGKey(0)),
                                         sep="/")
  have = flax.traverse_util.flatten_dict(params, sep="/")
  for name in sorted(set(want) | set(have)):
    if name not in want or name not in have:
      raise ValueError(f"{where} holds a different model: parameter {name!r} exists in only "
                       f"one of the checkpoint and the agent")
    if tuple(want[name].shape) != tuple(have[name].shape):
      raise ValueError(f"{where} holds a different model: parameter {name!r} has shape "
                       f"{tuple(have[name].shape)} there, {tuple(want[name].shape)} in the agent")
