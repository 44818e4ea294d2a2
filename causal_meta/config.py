"""The run configuration (ml_collections): every default, once, and one validation table.

Every field is listed, with its default and its meaning, in `default()`; experiment files in
`experiments/` override some. Any field can be set from the command line
(`--config.agent.kind=transformer`). Task parameters live under `task.<name>`, so
`--config.task.name=padlock` switches task without clashing with the bandit's parameters.
`validate` checks every field against `FIELDS` (field -> allowed values or range) and the
fields against each other, before anything is compiled or written.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import ml_collections

from causal_meta import agents, losses, parallel, rollout, tasks


SCHEDULES = ("constant", "cosine")


def default() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = ml_collections.ConfigDict(dict(
      name="bandit",
      bandit=dict(num_arms=5, best_arm_prob=0.6, reward_prob_best=0.75,
                  reward_prob_other=0.25, horizon=20),
      piecewise_bandit=dict(num_arms=5, best_arm_prob=0.6, reward_prob_best=0.75,
                            reward_prob_other=0.25, horizon=20, hazard=0.05),
      prize_or_frog=dict(),
      padlock=dict(num_switches=6, num_secret=3, epsilon=0.0, random_start=False),
  ))
  c.agent = ml_collections.ConfigDict(dict(
      kind="lstm",                 # lstm | gru | transformer
      hidden=64,                   # recurrent width
      width=64, num_layers=2, num_heads=4, mlp_ratio=4,  # transformer sizes
      # Transformer positions: learned | rope | none (agents/transformer.py).
      position="learned",
      # Transformer: > 0 attends this many queries at a time in the learning pass, keeping one
      # chunk's scores in memory instead of [L, L] per layer (the same logits; BENCHMARKS.md).
      attention_chunk=0,
      # Transformer: the learning pass packs the batch's episodes end to end, this many per
      # row on average (rows = ceil(batch_size / packing); agents/packing.py). The same
      # numbers, at a fraction of the cost when episodes end early (padlock); 1 = one episode
      # per row; a fraction such as 1.4 suits episodes that fill most of a row.
      # One device only. Recurrent agents ignore it (their pass is cheap already).
      packing=1.0))
  c.teaching = "counterfactual"   # counterfactual | demonstration | mixed
  c.mixed_prob = 0.5               # mixed: per-step probability that the expert acts
  c.loss = ml_collections.ConfigDict(dict(
      counterfactual_weight=1.0, factual_weight=1.0,
      # The counterfactual target: the expert's sampled action ("action", [O] Fig. 4) or its
      # whole policy ("policy": the expected loss over its draw, less noisy; losses.py).
      expert_target="action"))
  c.optim = ml_collections.ConfigDict(dict(learning_rate=3e-3, grad_clip=1.0, b1=0.9,
                                           b2=0.999, warmup_steps=0,
                                           # > 0: AdamW, decaying the weight matrices
                                           weight_decay=0.0,
                                           # constant | cosine (to 0 at num_updates)
                                           schedule="constant"))
  c.batch_size = 256               # episodes per update
  # The learning pass in this many slices of the batch, their gradients summed (gradient
  # accumulation): the same update, with a slice's activations in memory instead of the batch's.
  c.microbatches = 1
  c.num_updates = 1000
  c.updates_per_call = 100         # K updates per compiled call (lax.scan)
  c.scan_unroll = 1                # time steps per loop iteration (rollout, recurrent pass)
  c.eval_episodes = 2048           # deployment episodes per evaluation
  c.log_every = 200                # updates between evaluations/metric lines
  # With a workdir: checkpoint every N updates (0: every log_every) and at the end, keeping
  # the last `keep_checkpoints`; rerunning with the same workdir resumes from the latest.
  c.checkpoint_every = 0
  c.keep_checkpoints = 3
  c.tensorboard = True             # also write WORKDIR/tensorboard/events.out.tfevents.*
  # Data parallel over every device (batch_size and eval_episodes must divide by their count).
  # Multi-process (several hosts, or several processes on one): `enabled` calls
  # jax.distributed.initialize() before JAX touches a device; start the same command in every
  # process. Left unset ("", 0, -1), the coordinator, process count and id come from JAX's
  # cluster detection (SLURM, Cloud TPU, Kubernetes...); set, all three are given.
  c.distributed = ml_collections.ConfigDict(dict(
      enabled=False, coordinator_address="", num_processes=0, process_id=-1))
  return c


get_config = default  # so that `--config=causal_meta/config.py` works as an experiment file


def checkpoint_every(config) -> int:
  """Updates between checkpoints (the 0 default means every log_every)."""
  return config.checkpoint_every or config.log_every


def make_task(config) -> tasks.Task:
  name = config.task.name
  overrides = dict(config.task.get(name, {}))
  try:
    return tasks.make(name, **overrides)
  except ValueError as e:
    raise ValueError(f"config.task.{name}: {e}") from None


def make_agent(config, task) -> agents.Agent:
  """The agent `config.agent` describes (validated by `validate`): the builder of
  `config.agent.kind` (agents.register) gets every other field of config.agent. Naive
  conditioning reads every action as the expert's (see agents.Agent)."""
  options = {k: v for k, v in config.agent.items() if k != "kind"}
  try:
    return agents.make(config.agent.kind, task, scan_unroll=config.scan_unroll,
                       author_tokens=config.teaching != "demonstration", **options)
  except ValueError as e:
    raise ValueError(f"config.agent: {str(e).removeprefix('agent: ')}") from None


# ------------------------------------------------------------------ the validation table
def _one_of(*allowed) -> Callable[[Any], str | None]:
  return lambda v: None if v in allowed else f"unknown value {v!r}; allowed: " + \
      ", ".join(map(str, allowed))


def _registered(names: Callable[[], list[str]]) -> Callable[[Any], str | None]:
  """`_one_of` what `names()` returns when the check runs: a name registered after import (in
  a notebook, an experiment file) validates."""
  return lambda v: _one_of(*names())(v)


def _integer(low: int | None = None) -> Callable[[Any], str | None]:
  what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
      low, f"an integer >= {low}")
  ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)
  return lambda v: None if ok(v) else f"must be {what}, got {v!r}"


def _number(low: float, high: float | None = None, low_open: bool = False):
  def check(v):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = ok and (v > low if low_open else v >= low) and (high is None or v <= high)
    bounds = f"{'(' if low_open else '['}{low}, {'∞)' if high is None else f'{high}]'}"
    return None if ok else f"must be a number in {bounds}, got {v!r}"
  return check


def _boolean(v) -> str | None:
  return None if isinstance(v, bool) else f"must be True or False, got {v!r}"


def _address(v) -> str | None:
  """'' (JAX's cluster detection) or HOST:PORT."""
  host, _, port = v.rpartition(":") if isinstance(v, str) else ("", "", "")
  ok = v == "" or (host and port.isdigit() and 0 < int(port) < 65536)
  return None if ok else f"must be HOST:PORT (e.g. 10.0.0.1:1234) or '' (detected), got {v!r}"


FIELDS: dict[str, Callable[[Any], str | None]] = {
    "seed": _integer(),
    "task.name": _registered(lambda: [n for n in tasks.names() if n != "tabular"]),
    "agent.kind": _registered(agents.kinds),
    "agent.hidden": _integer(1),
    "agent.width": _integer(1),
    "agent.num_layers": _integer(1),
    "agent.num_heads": _integer(1),
    "agent.mlp_ratio": _integer(1),
    "agent.position": _one_of(*agents.POSITIONS),
    "agent.attention_chunk": _integer(0),
    "agent.packing": _number(1),
    "teaching": _one_of(*rollout.TEACHING_MODES),
    "mixed_prob": _number(0.0, 1.0),
    "loss.counterfactual_weight": _number(0.0),
    "loss.factual_weight": _number(0.0),
    "loss.expert_target": _one_of(*losses.EXPERT_TARGETS),
    "optim.learning_rate": _number(0.0, low_open=True),
    "optim.grad_clip": _number(0.0, low_open=True),
    "optim.b1": _number(0.0, 1.0),
    "optim.b2": _number(0.0, 1.0),
    "optim.warmup_steps": _integer(0),
    "optim.weight_decay": _number(0.0),
    "optim.schedule": _one_of(*SCHEDULES),
    "batch_size": _integer(1),
    "microbatches": _integer(1),
    "num_updates": _integer(1),
    "updates_per_call": _integer(1),
    "scan_unroll": _integer(1),
    "eval_episodes": _integer(1),
    "log_every": _integer(1),
    "checkpoint_every": _integer(0),
    "keep_checkpoints": _integer(1),
    "tensorboard": _boolean,
    "distributed.enabled": _boolean,
    "distributed.coordinator_address": _address,
    "distributed.num_processes": _integer(0),
    "distributed.process_id": _integer(-1),
}


def _get(config, path: str):
  for part in path.split("."):
    config = config[part]
  return config


def check_fields(config, skip: tuple[str, ...] = ()) -> None:
  """Each field but `skip` against its row of `FIELDS`: ValueError 'config.FIELD: PROBLEM'."""
  for path, check in FIELDS.items():
    if path in skip:
      continue
    try:
      value = _get(config, path)
    except KeyError:
      raise ValueError(f"config.{path}: missing (see causal_meta/config.py)") from None
    problem = check(value)
    if problem:
      raise ValueError(f"config.{path}: {problem}")


def validate(config, num_devices: int | None = None, task: tasks.Task | None = None,
             agent: agents.Agent | None = None) -> tuple[tasks.Task, agents.Agent]:
  """Checks every field; returns the task and agent it describes. Raises ValueError naming
  the field and the allowed values. `num_devices`: what the batch is split over (default: all
  devices, after `jax.distributed.initialize()` if `config.distributed.enabled`).

  `task`, `agent`: objects built by the caller, used instead of the ones `config.task` and
  `config.agent` name (whose `task.name` and `agent.kind` are then not checked); the agent
  must have the task's sizes."""
  skip = (("task.name",) if task is not None else ()) + \
      (("agent.kind",) if agent is not None else ())
  check_fields(config, skip)
  if task is None:
    task = make_task(config)
  elif not isinstance(task, tasks.Task):
    raise ValueError(f"task: must be a causal_meta.tasks.Task, got {type(task).__name__}")
  if agent is None:
    agent = make_agent(config, task)
  else:
    agents.check_matches(agent, task)
  if config.batch_size % config.microbatches:
    raise ValueError(f"config.microbatches: must divide config.batch_size "
                     f"({config.batch_size}), got {config.microbatches!r}")
  packs = config.agent.packing > 1 and agent.packs_episodes
  if config.microbatches > 1 and packs:
    raise ValueError("config.microbatches: packing episodes (config.agent.packing > 1) in "
                     "microbatches is not supported; use one of the two")
  for path in ("num_updates", "log_every", "checkpoint_every"):
    if config[path] % config.updates_per_call:
      raise ValueError(f"config.{path} ({config[path]}) must be a multiple of "
                       f"config.updates_per_call ({config.updates_per_call})")
  _check_distributed(config.distributed)
  if num_devices is None:
    parallel.initialize_distributed(config)
    num_devices = jax.device_count()
  for path in ("batch_size", "eval_episodes"):
    parallel.check_divisible(path, config[path], num_devices)
  share = config.batch_size // num_devices
  if share % config.microbatches:
    raise ValueError(f"config.microbatches: must divide each device's share of the batch "
                     f"(batch_size {config.batch_size} / {num_devices} devices = {share}), "
                     f"got {config.microbatches}")
  if packs and num_devices > 1:
    raise ValueError(f"config.agent.packing: packing episodes across {num_devices} devices is "
                     f"not supported; use packing=1")
  return task, agent


def _check_distributed(d) -> None:
  """The process fields: all unset (JAX detects them) or all set, with 0 <= id < count."""
  given = [d.coordinator_address != "", d.num_processes > 0, d.process_id >= 0]
  if any(given) and not all(given):
    raise ValueError("config.distributed: coordinator_address, num_processes and process_id "
                     "are set together or not at all (unset: JAX's cluster detection)")
  if all(given) and d.process_id >= d.num_processes:
    raise ValueError(f"config.distributed.process_id: must be in [0, num_processes = "
                     f"{d.num_processes}), got {d.process_id}")
  if any(given) and not d.enabled:
    raise ValueError("config.distributed.enabled: must be True when the process fields are set")
