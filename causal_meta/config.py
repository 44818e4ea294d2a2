"""The run configuration (ml_collections) and its validation.

Every field is listed in `default()`; experiment files in `experiments/` override some. Any
field can be set from the command line (`--config.agent.kind=transformer`). Task parameters
live under `task.<name>`, so `--config.task.name=padlock` switches task without clashing with
the bandit's parameters. `validate` checks every field before anything is compiled or written.
"""

from __future__ import annotations

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
      prize_or_frog=dict(),
      padlock=dict(num_switches=6, num_secret=3, epsilon=0.0),
  ))
  c.agent = ml_collections.ConfigDict(dict(
      kind="lstm", hidden=64, width=64, num_layers=2, num_heads=4, mlp_ratio=4,
      # Transformer positions: learned | rope | none (agents/transformer.py).
      position="learned",
      # Transformer: recompute attention in the backward pass instead of keeping its [L, L]
      # scores (for memory at long horizons `attention_chunk` is what works; BENCHMARKS.md).
      remat=False,
      # Transformer: > 0 attends this many queries at a time in the learning pass, keeping one
      # chunk's scores in memory instead of [L, L] per layer (the same logits; BENCHMARKS.md).
      attention_chunk=0,
      # Transformer: attention, learning and acting, as XLA ops ("xla") or fused Pallas kernels
      # ("pallas": flash attention, the scores kept on chip, acting reading only the filled
      # cache; GPU, Triton; one device; width / num_heads a power of two >= 16; instead of
      # attention_chunk and cache_segments; interpreted, slowly, elsewhere;
      # agents/attention_kernel.py).
      attention_kernel="xla",
      # Transformer: the rollout in this many segments of the horizon, its KV cache in as many
      # blocks; a step attends only to the blocks filled so far instead of the whole cache.
      cache_segments=1,
      # LSTM: learn through the batched pass with a hand-written backward (agents/recurrent.py);
      # False: autodiff of the per-episode reference cell (the same gradient, slower).
      fused_lstm=True,
      # Fused LSTM: its recurrences, learning and acting, as XLA loops ("xla") or Pallas
      # kernels ("pallas": GPU, Triton; one device; hidden a power of two >= 16; interpreted,
      # slowly, elsewhere; agents/lstm_kernel.py).
      lstm_kernel="xla",
      # Fused LSTM: the learning pass takes the states the rollout computed under the same
      # parameters instead of running the recurrence again (fused act-and-learn). Off: on the
      # CPU recording the states costs the rollout what the learning pass saves (BENCHMARKS.md).
      reuse_acting_states=False,
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
  # Multi-host: True calls jax.distributed.initialize() before JAX touches a device (the
  # coordinator comes from the environment); start the same command on every host.
  c.distributed = False
  return c


get_config = default  # so that `--config=causal_meta/config.py` works as an experiment file


def checkpoint_every(config) -> int:
  """Updates between checkpoints (the 0 default means every log_every)."""
  return config.checkpoint_every or config.log_every


def make_task(config) -> tasks.Task:
  name = config.task.name
  if name not in tasks.REGISTRY or name == "tabular":
    allowed = sorted(n for n in tasks.REGISTRY if n != "tabular")
    raise ValueError(f"config.task.name: unknown task {name!r}; allowed: {', '.join(allowed)}")
  overrides = dict(config.task.get(name, {}))
  try:
    return tasks.make(name, **overrides)
  except ValueError as e:
    raise ValueError(f"config.task.{name}: {e}") from None


def make_agent(config, task) -> agents.Agent:
  a = config.agent
  if a.kind not in agents.KINDS:
    raise ValueError(f"config.agent.kind: unknown agent kind {a.kind!r}; allowed: "
                     f"{', '.join(agents.KINDS)}")
  for name in ("hidden", "width", "num_layers", "num_heads", "mlp_ratio"):
    _positive_int(config, f"agent.{name}")
  if "cache_segments" in a:
    _positive_int(config, "agent.cache_segments")
  for flag in ("remat", "fused_lstm", "reuse_acting_states"):
    if not isinstance(a.get(flag, False), bool):
      raise ValueError(f"config.agent.{flag} must be True or False, got {a[flag]!r}")
  if a.get("position", "learned") not in agents.POSITIONS:
    raise ValueError(f"config.agent: unknown 'position' {a.position!r}; allowed: "
                     f"{', '.join(agents.POSITIONS)}")
  if "scan_unroll" in config:
    _positive_int(config, "scan_unroll")
  if "packing" in a:
    _number(config, "agent.packing", 1)
  try:
    # Naive conditioning reads every action as the expert's (see agents.Agent).
    return agents.make(a.kind, task, hidden=a.hidden, width=a.width, num_layers=a.num_layers,
                       num_heads=a.num_heads, mlp_ratio=a.mlp_ratio,
                       remat=a.get("remat", False), unroll=config.get("scan_unroll", 1),
                       fused_lstm=a.get("fused_lstm", True),
                       position=a.get("position", "learned"),
                       attention_chunk=a.get("attention_chunk", 0),
                       cache_segments=a.get("cache_segments", 1),
                       lstm_kernel=a.get("lstm_kernel", "xla"),
                       attention_kernel=a.get("attention_kernel", "xla"),
                       author_tokens=config.teaching != "demonstration")
  except ValueError as e:
    raise ValueError(f"config.agent: {str(e).removeprefix('agent: ')}") from None


def _positive_int(config, path):
  value = config
  for part in path.split("."):
    value = value[part]
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"config.{path} must be a positive integer, got {value!r}")


def _number(config, path, low, high=None, low_open=False):
  value = config
  for part in path.split("."):
    value = value[part]
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  ok = ok and (value > low if low_open else value >= low) and (high is None or value <= high)
  if not ok:
    lo = f"{'(' if low_open else '['}{low}"
    raise ValueError(f"config.{path} must be a number in {lo}, {high if high is not None else '∞'}"
                     f"{']' if high is not None else ')'}, got {value!r}")


def validate(config, num_devices: int | None = None) -> tuple[tasks.Task, agents.Agent]:
  """Checks every field; returns the task and agent it describes. Raises ValueError naming
  the field and the allowed values. `num_devices`: what the batch is split over (default: all
  devices, after `jax.distributed.initialize()` if `config.distributed`)."""
  task = make_task(config)
  if config.teaching not in rollout.TEACHING_MODES:
    raise ValueError(f"config.teaching: unknown teaching mode {config.teaching!r}; allowed: "
                     f"{', '.join(rollout.TEACHING_MODES)}")
  agent = make_agent(config, task)
  for path in ("batch_size", "num_updates", "updates_per_call", "eval_episodes", "log_every",
               "keep_checkpoints"):
    _positive_int(config, path)
  if isinstance(config.checkpoint_every, bool) or not isinstance(config.checkpoint_every, int) \
      or config.checkpoint_every < 0:
    raise ValueError(f"config.checkpoint_every must be a non-negative integer (0: every "
                     f"log_every), got {config.checkpoint_every!r}")
  if not isinstance(config.tensorboard, bool):
    raise ValueError(f"config.tensorboard must be True or False, got {config.tensorboard!r}")
  if not isinstance(config.get("distributed", False), bool):
    raise ValueError(f"config.distributed must be True or False, got {config.distributed!r}")
  if isinstance(config.seed, bool) or not isinstance(config.seed, int):
    raise ValueError(f"config.seed must be an integer, got {config.seed!r}")
  _number(config, "mixed_prob", 0.0, 1.0)
  _number(config, "loss.counterfactual_weight", 0.0)
  _number(config, "loss.factual_weight", 0.0)
  if config.loss.get("expert_target", "action") not in losses.EXPERT_TARGETS:
    raise ValueError(f"config.loss.expert_target: unknown target {config.loss.expert_target!r};"
                     f" allowed: {', '.join(losses.EXPERT_TARGETS)}")
  _number(config, "optim.learning_rate", 0.0, low_open=True)
  _number(config, "optim.grad_clip", 0.0, low_open=True)
  _number(config, "optim.b1", 0.0, 1.0)
  _number(config, "optim.b2", 0.0, 1.0)
  _number(config, "optim.warmup_steps", 0)
  if "weight_decay" in config.optim:
    _number(config, "optim.weight_decay", 0.0)
  if config.optim.get("schedule", "constant") not in SCHEDULES:
    raise ValueError(f"config.optim.schedule: unknown schedule {config.optim.schedule!r}; "
                     f"allowed: {', '.join(SCHEDULES)}")
  micro = config.get("microbatches", 1)
  if isinstance(micro, bool) or not isinstance(micro, int) or micro < 1 or \
      config.batch_size % micro:
    raise ValueError(f"config.microbatches must be a positive integer dividing "
                     f"config.batch_size ({config.batch_size}), got {micro!r}")
  if micro > 1 and config.agent.get("packing", 1) > 1 and agent.packs_episodes:
    raise ValueError("config.microbatches: packing episodes (config.agent.packing > 1) in "
                     "microbatches is not supported; use one of the two")
  if config.num_updates % config.updates_per_call:
    raise ValueError(f"config.num_updates ({config.num_updates}) must be a multiple of "
                     f"config.updates_per_call ({config.updates_per_call})")
  for path in ("log_every", "checkpoint_every"):
    if config[path] % config.updates_per_call:
      raise ValueError(f"config.{path} ({config[path]}) must be a multiple of "
                       f"config.updates_per_call ({config.updates_per_call})")
  if num_devices is None:
    parallel.initialize_distributed(config)
    num_devices = jax.device_count()
  for path in ("batch_size", "eval_episodes"):
    parallel.check_divisible(path, config[path], num_devices)
  if config.agent.get("packing", 1) > 1 and agent.packs_episodes and num_devices > 1:
    raise ValueError(f"config.agent.packing: packing episodes across {num_devices} devices is "
                     f"not supported; use packing=1")
  for name, kind in (("lstm_kernel", "lstm"), ("attention_kernel", "transformer")):
    # XLA's partitioner cannot split a Pallas call over the batch: it would gather the whole
    # batch onto every device for it (docs/results/h100_aot/session19/two_devices.txt).
    if config.agent.get(name, "xla") == "pallas" and config.agent.kind == kind and \
        num_devices > 1:
      raise ValueError(f"config.agent.{name}: the Pallas kernels run on one device, not split "
                       f"over {num_devices}; use '{name}=xla'")
  return task, agent
