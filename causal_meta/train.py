"""Training: act, then teach, K updates per compiled call.

One update = a braided rollout under the current parameters (plain data, no gradient through
the sampled actions) + the factual and counterfactual losses on the agent's predictions (for
a recurrent agent, those it made while acting, differentiated through the rollout; for the
transformer, a teacher-forced pass over the trajectory) + an optax step. `lax.scan` runs
`updates_per_call` of them inside one `jit` with the state donated; the host loop only logs,
checks for non-finite losses, checkpoints and reports progress between chunks.
`train_and_evaluate(config, workdir)` is the whole job, callable from a notebook; given the
same workdir again it resumes from the latest checkpoint, and because update i uses
fold_in(key, i) a resumed run is bitwise the uninterrupted one (on CPU).

Data parallel over every device (`causal_meta.parallel`): the state is replicated, the batch of
episodes split over the mesh axis `data`; each device acts and differentiates on its share, and
the losses and gradients are all-reduced once per update. `config.distributed = True` spans the
hosts of a multi-host job.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from causal_meta import config as config_lib
from causal_meta import checkpoints, evaluate, losses, parallel, plots, rollout
from causal_meta import metrics as metrics_lib
from causal_meta import workdir as workdir_lib
from causal_meta import progress as progress_lib
from causal_meta.agents import Agent, packing
from causal_meta.tasks.base import Task


class NonFiniteLoss(FloatingPointError):
  """A chunk produced a non-finite loss or gradient; the bad state was not saved."""


class Preempted(Exception):
  """SIGTERM arrived; the state was checkpointed and the run stopped. Rerun to resume."""

  def __init__(self, step: int, checkpoint: str):
    super().__init__(f"preempted (SIGTERM) at update {step}; checkpoint saved in "
                     f"{checkpoint}; rerun the same command to resume")
    self.step = step


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array   # the run's base key; update i uses fold_in(key, i)
  step: jax.Array  # int32 [], updates done


def make_optimizer(config) -> optax.GradientTransformation:
  """Adam with global-norm clipping; AdamW (decoupled weight decay on the weight matrices and
  embeddings, not on biases and norms) when `optim.weight_decay` > 0. The learning rate:
  linear warm-up over `optim.warmup_steps`, then constant, or (`optim.schedule = "cosine"`) a
  cosine decay to 0 at `num_updates`, which lets the last updates settle instead of jittering
  at full step size."""
  o = config.optim
  lr = o.learning_rate
  if o.schedule == "cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, o.learning_rate, o.warmup_steps,
                                            max(config.num_updates, o.warmup_steps + 1))
  elif o.warmup_steps:
    lr = optax.linear_schedule(0.0, o.learning_rate, o.warmup_steps)
  if o.weight_decay:
    matrices = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    adam = optax.adamw(lr, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay, mask=matrices)
  else:
    adam = optax.adam(lr, b1=o.b1, b2=o.b2)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip), adam)


def jit_rarely_run(fun: Callable, **jit_kwargs) -> Callable:
  """`jax.jit` for what runs once or between training chunks (initialisation, evaluation).
  On CPU it compiles at XLA's backend optimisation level 1: measured on the 2-core CPU, these
  functions compile 30-45% faster and run as fast (BENCHMARKS.md). The train chunk keeps the
  default level, under which the LSTM update at B = 256 runs ~10% faster."""
  if jax.default_backend() == "cpu":
    jit_kwargs["compiler_options"] = {"xla_backend_optimization_level": 1}
  return jax.jit(fun, **jit_kwargs)


def init_state(agent: Agent, optimizer, seed: int, mesh=None) -> TrainState:
  """A fresh TrainState, replicated over `mesh` (default: every device) as the update keeps
  it, so that feeding a chunk's output back to it never retraces. One compiled call (run op
  by op, the initializers would compile each of their operations)."""
  mesh = parallel.data_mesh() if mesh is None else mesh

  @functools.partial(jit_rarely_run, out_shardings=parallel.replicated(mesh))
  def init(key):
    params = agent.init(jax.random.fold_in(key, -1 & 0x7FFFFFFF))
    return TrainState(params, optimizer.init(params), key, jnp.zeros((), jnp.int32))

  return init(jax.random.PRNGKey(seed))


def make_act(task: Task, agent: Agent, config, mesh=None):
  """The acting half of an update: (params, key) -> Trajectory [B, T] of braided rollouts
  under `params`, the batch axis split over `mesh`'s `data` axis (default: every device)."""
  run = _make_run(task, agent, config, parallel.data_mesh() if mesh is None else mesh)
  return lambda params, key: run(params, *rollout.episode_keys(task, key, config.batch_size))


def _make_run(task: Task, agent: Agent, config, mesh=None, with_logits: bool = False):
  """(params, keys [B, 2], θ int [B]) (`rollout.episode_keys`) -> the rollouts (with
  `with_logits`, also the policy's logits; `rollout.braid`), split over `mesh`; mesh=None:
  not constrained (inside `_per_device`, where each device runs its own share).

  Only the output is constrained; XLA propagates the split back through the rollout, so each
  device simulates its B/n episodes (and forward into what reads them).
  """
  expert_prob = rollout.expert_prob_for(config.teaching, config.mixed_prob)
  expert_policy = config.loss.expert_target == "policy"

  def run(params, keys, theta):
    out = rollout.run_episodes(task, agent.policy(params), keys, theta, expert_prob,
                               scan_unroll=config.scan_unroll, expert_policy=expert_policy,
                               with_logits=with_logits)
    return out if mesh is None else parallel.shard_batch(out, mesh)

  return run


def _weights(config) -> dict:
  return dict(counterfactual_weight=config.loss.counterfactual_weight,
              factual_weight=config.loss.factual_weight,
              expert_target=config.loss.expert_target)


def make_loss(agent: Agent, config):
  """The teacher-forced learning pass: (params, Trajectory [B, T], packed=None) -> (loss,
  dict of parts), with the config's counterfactual and factual weights and expert target
  (packed: see `Agent.teacher_force`)."""
  def loss_fn(params, traj, packed=None):
    action_logits, obs_logits = agent.teacher_force(params, traj, packed=packed)
    return losses.teaching_loss(action_logits, obs_logits, traj, **_weights(config))

  return loss_fn


def make_value_and_grad(task: Task, agent: Agent, config, mesh=None):
  """Act and the gradient of the teaching loss: (params, key) -> ((loss, parts), gradient,
  Trajectory [B, T]).

  An agent that `learns_in_rollout` (recurrent) is differentiated through its own rollout:
  the losses on the logits it produced while acting, one recurrence per update. The
  transformer acts, then learns in one teacher-forced pass over the trajectory; with
  `config.agent.packing` > 1 its episodes are packed into ceil(batch_size / packing) rows when
  they fit (parts["packed"] = 1), else run one per row (0): the same numbers either way. The
  choice is a `lax.cond` around the whole gradient, so only one pass runs (under autodiff a
  cond inside the loss cost both).

  With `config.microbatches` = k > 1 the update runs on k slices of the batch in turn
  (`lax.scan`), and their losses and gradients are summed, each weighted by its share of the
  batch's steps (the losses are means over steps): the same numbers up to float rounding.

  On a mesh of n > 1 devices (default: every device) each device runs all of this on its
  B/n episodes (`_per_device`), and the losses and gradients are combined in the same way:
  one all-reduce per update.
  """
  mesh = parallel.data_mesh() if mesh is None else mesh
  split = mesh.size > 1
  if agent.learns_in_rollout:
    act = _make_run(task, agent, config, None if split else mesh, with_logits=True)

    def rollout_loss(params, keys, theta):
      traj, (action_logits, obs_logits) = act(params, keys, theta)
      traj = jax.lax.stop_gradient(traj)  # plain data: actions are interventions
      loss, parts = losses.teaching_loss(action_logits, obs_logits, traj, **_weights(config))
      return loss, (parts, traj)

    grad_fn = jax.value_and_grad(rollout_loss, has_aux=True)

    def slice_grad(params, batch):
      (loss, (parts, traj)), grads = grad_fn(params, *batch)
      return (loss, parts), grads, traj
  else:
    act = _make_run(task, agent, config, None if split else mesh)
    grad_fn = jax.value_and_grad(make_loss(agent, config), has_aux=True)
    per_row = config.agent.packing
    if per_row > 1 and agent.packs_episodes:
      plain, rows = grad_fn, math.ceil(config.batch_size / per_row)

      def grad_fn(params, traj):
        packed = packing.pack_episodes(traj.mask, rows)
        (loss, parts), grads = jax.lax.cond(packed.fits, lambda: plain(params, traj, packed),
                                            lambda: plain(params, traj))
        return (loss, dict(parts, packed=packed.fits.astype(jnp.float32))), grads

    def slice_grad(params, batch):
      traj = jax.lax.stop_gradient(act(params, *batch))
      return (*grad_fn(params, traj), traj)

  if config.microbatches > 1:
    slice_grad = _in_microbatches(slice_grad, config.microbatches)
  if split:
    slice_grad = _per_device(slice_grad, mesh)

  def value_and_grad(params, key):
    return slice_grad(params, rollout.episode_keys(task, key, config.batch_size))

  return value_and_grad


def _per_device(slice_grad, mesh):
  """`slice_grad(params, batch) -> ((loss, parts), grads, traj)` run by each device of `mesh`
  on its share of the batch (`jax.shard_map`), each device's losses and gradients weighted by
  its share of the steps that happened, summed over the devices: one all-reduce. (Left to
  XLA's partitioner, a recurrent agent's gradient is all-reduced at every time step, inside the
  backward loop.)"""
  def local(params, batch):
    value, grads, traj = slice_grad(params, batch)
    steps = jnp.sum(traj.mask.astype(jnp.float32))
    total = jnp.maximum(jax.lax.psum(steps, parallel.AXIS), 1.0)
    value, grads = jax.tree.map(lambda x: jax.lax.psum(steps * x, parallel.AXIS) / total,
                                (value, grads))
    return value, grads, traj

  # check_vma=False: the rollout's scans start from carries made of the replicated parameters.
  return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(parallel.AXIS)),
                       out_specs=(P(), P(), P(parallel.AXIS)), check_vma=False)


def _in_microbatches(slice_grad, k: int):
  """`slice_grad(params, batch) -> ((loss, parts), grads, traj)` over k slices of the batch
  (a pytree of [B, ...] arrays): slice j holds episodes j, j + k, j + 2k, …, so that each
  device's share of a sharded batch splits evenly among the slices. Each slice's result is
  weighted by its share of the steps that happened; the trajectories are put back in order."""
  def value_and_grad(params, batch):
    B = jax.tree.leaves(batch)[0].shape[0]
    slices = jax.tree.map(lambda x: jnp.swapaxes(x.reshape(B // k, k, *x.shape[1:]), 0, 1),
                          batch)

    def add(total, piece):
      value, grads, traj = slice_grad(params, piece)
      steps = jnp.sum(traj.mask.astype(jnp.float32))
      return jax.tree.map(lambda t, x: t + steps * x, total, (value, grads)), traj

    first = jax.tree.map(lambda x: x[0], slices)
    value, grads, _ = jax.eval_shape(slice_grad, params, first)
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), (value, grads))
    total, trajs = jax.lax.scan(add, zeros, slices)
    steps = jnp.maximum(jnp.sum(trajs.mask.astype(jnp.float32)), 1.0)
    value, grads = jax.tree.map(lambda x: x / steps, total)
    traj = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(B, *x.shape[2:]), trajs)
    return value, grads, traj

  return value_and_grad


def make_update(task: Task, agent: Agent, optimizer, config, mesh=None):
  """The pure update: TrainState -> (TrainState, metrics dict of scalars).

  `mesh` (default: every device) splits the batch; the returned state is kept replicated, so
  the gradient all-reduce is XLA's and a compiled chunk's output can be fed back to it.
  """
  mesh = parallel.data_mesh() if mesh is None else mesh
  value_and_grad = make_value_and_grad(task, agent, config, mesh)

  def update(state: TrainState) -> tuple[TrainState, dict]:
    key = jax.random.fold_in(state.key, state.step)
    # Act and teach. The sampled actions are plain data: interventions, with no gradient
    # path back into the policy ([O] Fig. 4c).
    (loss, parts), grads, traj = value_and_grad(state.params, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.global_norm(grads)
    metrics = dict(loss=loss, grad_norm=grad_norm,
                   mean_reward=jnp.mean(jnp.sum(traj.rewards, 1)) / task.horizon, **parts,
                   # Checked on the host after the chunk: a NaN stops the run unsaved.
                   finite=jnp.isfinite(loss) & jnp.isfinite(grad_norm))
    new_state = parallel.replicate(TrainState(params, opt_state, state.key, state.step + 1),
                                   mesh)
    return new_state, metrics

  return update


def make_train_chunk(update, num_updates: int, donate: bool = True):
  """jit(K updates via lax.scan), state donated (its buffers reused for the new state);
  metrics stacked [K]."""
  @functools.partial(jax.jit, donate_argnums=0 if donate else ())
  def train_chunk(state):
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)
  return train_chunk


def make_data_fit(batch_loss, sample, optimizer, num_updates: int):
  """Supervised fitting on fixed data, `num_updates` optimizer steps in one `lax.scan` under
  one `jit`: fit(params, opt_state, key, data, original) -> (params, opt_state, metrics [K]).

  Step i draws its batch with `sample(fold_in(key, i), data, original)` and minimises
  `batch_loss(params, batch) -> (loss, dict of aux scalars)`; metrics = dict(loss, **aux).
  Used by the retraining experiments (`retrain`, `reproduce.tictactoe_retrain`).
  """
  def update(carry, i):
    params, opt_state, key, data, original = carry
    batch = sample(jax.random.fold_in(key, i), data, original)
    (loss, aux), grads = jax.value_and_grad(batch_loss, has_aux=True)(params, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state, key, data, original), dict(loss=loss, **aux)

  @jax.jit
  def fit(params, opt_state, key, data, original):
    (params, opt_state, *_), metrics = jax.lax.scan(
        update, (params, opt_state, key, data, original), jnp.arange(num_updates))
    return params, opt_state, metrics

  return fit


def _to_python(tree):
  return jax.tree.map(lambda x: np.asarray(x).tolist(), tree)


def first_nonfinite(chunk_metrics: dict) -> tuple[int, ...] | None:
  """Index of the first update in the chunk whose loss or gradient was not finite: (k,) for
  metrics [K], (seed, k) for a seed sweep's [S, K]; None if all were finite."""
  bad = np.argwhere(~np.asarray(chunk_metrics["finite"]))
  return tuple(int(i) for i in bad[0]) if bad.size else None


def chunk_row(chunk_metrics: dict) -> dict[str, float]:
  """Means over the chunk's updates (and seeds) of each metric ([K] or [S, K] -> float)."""
  return {k: float(np.mean(v)) for k, v in chunk_metrics.items() if k != "finite"}


@contextlib.contextmanager
def _preemption(mngr):
  """Yields `preempted(steps) -> bool`, asked between chunks with the chunk's update steps (the
  compiled call is never interrupted): whether a SIGTERM arrived. In a multi-process job this
  is orbax's preemption sync point, at which every process agrees (JAX's coordination service
  catches the signal sent to any one of them and picks the step after the largest any process
  has reported, so every step is reported, in order); in one process, a SIGTERM handler.
  Always False without a checkpoint manager, or outside the main thread (where signals can't
  be set)."""
  if mngr is not None and jax.distributed.is_initialized():
    yield lambda steps: any(mngr.reached_preemption(s) for s in steps)
    return
  flag = {"set": False}
  if mngr is None or threading.current_thread() is not threading.main_thread():
    yield lambda steps: False
    return
  previous = signal.signal(signal.SIGTERM, lambda *_: flag.update(set=True))
  try:
    yield lambda steps: flag["set"]
  finally:
    signal.signal(signal.SIGTERM, previous)


def _warn(message: str) -> None:
  print(f"warning: {message}", file=sys.stderr, flush=True)


def evaluation_key(seed: int) -> jax.Array:
  """The key of every evaluation in a run: the same deployment episodes each time."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), 0x5EED)


def restore(mngr, template, config, config_dict: dict, warn=None, allow_changes=False,
            changes: list | None = None):
  """The latest checkpoint in `mngr` as a state like `template` (a TrainState, or a seed
  sweep's stacked one), or None (`checkpoints.restore_latest`: config changes outside
  `RESUMABLE_CHANGES` raise `ConfigChanged` unless `allow_changes`; all are appended to
  `changes`). Fields added to the config since the checkpoint was written are not changes
  while at their defaults. Raises IncompatibleCheckpoint if the updates left are not whole
  chunks of `config.updates_per_call`."""
  restored = checkpoints.restore_latest(
      mngr, template, config_dict, warn=warn,
      defaults=json.loads(config_lib.default().to_json_best_effort()),
      allow_changes=allow_changes, changes=changes)
  if restored is not None:
    step, K = int(np.max(restored.step)), config.updates_per_call
    if step < config.num_updates and (config.num_updates - step) % K:
      raise checkpoints.IncompatibleCheckpoint(
          f"config.updates_per_call ({K}) does not divide the updates left after the "
          f"checkpoint at update {step}")
  return restored


def run_chunks(compiled, state, config, *, mngr=None, config_dict=None, workdir=None,
               on_chunk: Callable[[Any, dict, float], Any] | None = None,
               seeds: list[int] | None = None):
  """The host loop shared by a run and a seed sweep: calls the compiled chunk until
  `config.num_updates`, then returns (state, seconds spent in the chunks).

  After each chunk: stops on a non-finite loss (`NonFiniteLoss`, the bad state unsaved),
  calls `on_chunk(state, chunk metrics, train seconds so far)` (logging, evaluation),
  checkpoints every `checkpoint_every` updates and at the end, and on SIGTERM saves and
  raises `Preempted`. `seeds`: the seeds of a stacked state (metrics [S, K]), for messages.
  """
  ckpt_every = config_lib.checkpoint_every(config)
  train_seconds = 0.0
  with _preemption(mngr) as preempted:
    while (step := int(np.max(state.step))) < config.num_updates:
      t0 = time.time()
      state, chunk_metrics = compiled(state)
      chunk_metrics = jax.device_get(chunk_metrics)  # blocks: the timing is honest
      train_seconds += time.time() - t0
      bad = first_nonfinite(chunk_metrics)
      if bad is not None:
        last = mngr.latest_step() if mngr else None
        loss = float(np.asarray(chunk_metrics["loss"])[bad])
        who = f" for seed {seeds[bad[0]]}" if seeds else ""
        raise NonFiniteLoss(
            f"non-finite loss at update step {step + bad[-1] + 1}{who} (loss {loss}); stopped "
            f"without saving it; last good checkpoint: "
            f"{checkpoints.directory(workdir) / str(last) if last else 'none'}")
      step = int(np.max(state.step))
      if on_chunk:
        on_chunk(state, chunk_metrics, train_seconds)
      stop = preempted(range(step - config.updates_per_call + 1, step + 1))
      if mngr and (step % ckpt_every == 0 or step == config.num_updates or stop):
        checkpoints.save(mngr, state, config_dict)
      if stop:
        mngr.wait_until_finished()
        raise Preempted(step, str(checkpoints.directory(workdir) / str(step)))
  return state, train_seconds


def train_and_evaluate(config, workdir: str | None = None, verbose: bool = True,
                       progress: bool | None = None,
                       warn: Callable[[str], Any] = _warn, mesh=None,
                       allow_config_change: bool = False,
                       writers: Sequence[Callable[[dict], Any]] = (),
                       task: Task | None = None, agent: Agent | None = None) -> dict:
  """Trains an agent as `config` says, evaluates it against the exact oracle.

  With a workdir: resumes from the latest checkpoint in WORKDIR/checkpoints if there is one,
  checkpoints every `config.checkpoint_every` updates, at the end and on SIGTERM (then raises
  `Preempted`), and writes `config.json`, `metrics.jsonl` (appended on resume),
  `tensorboard/`, `summary.json` and `figures/`. A non-finite loss raises `NonFiniteLoss`
  without saving the bad state. `progress`: a progress bar (None: iff stdout is a TTY);
  `verbose=False` prints nothing. `mesh`: the devices to split each batch over (default: a
  `data` mesh of every device; `config.distributed` first joins the processes of a
  multi-process job, of which only process 0 writes files, checkpoints excepted: orbax's).

  The workdir (local or gs://, `causal_meta.workdir`) is locked while the run uses it
  (`workdir.WorkdirError` if another run holds it). Resuming with a config that differs from
  the checkpoint's outside `checkpoints.RESUMABLE_CHANGES` raises
  `checkpoints.ConfigChanged` unless `allow_config_change`; every resume and its config
  changes are appended to WORKDIR/resumes.jsonl.

  `writers`: callables, each called (in process 0) with every metrics row, the dict that
  metrics.jsonl gets, e.g. to send the rows to W&B or MLflow (docs/guide.md).

  `task`, `agent`: a Task and/or an Agent built by the caller, trained instead of the ones
  `config.task.name` and `config.agent.kind` name (config.json still records the config, which
  is validated for everything else). Such a run resumes only when given the same objects
  again; `runs.load_run(workdir, task=, agent=)` loads it back the same way.

  Returns the summary dict (plus `params`, per-step `curves` and the metric `history`).
  """
  # Before anything is compiled or written (and, if config.distributed, after the hosts join).
  agent_name = config.agent.kind if agent is None else type(agent.module).__name__
  task, agent = config_lib.validate(config, None if mesh is None else mesh.size, task=task,
                                    agent=agent)
  if callable(writers) or not all(callable(w) for w in writers):
    raise TypeError("writers: must be a sequence of callables, each taking a metrics row "
                    f"(dict); got {writers!r}")
  wd = workdir_lib.check(workdir) if workdir else None
  primary = parallel.is_primary()  # the process that writes the run's files
  verbose = verbose and primary
  mesh = parallel.data_mesh() if mesh is None else mesh
  start = time.time()
  optimizer = make_optimizer(config)
  train_chunk = make_train_chunk(make_update(task, agent, optimizer, config, mesh),
                                 config.updates_per_call)
  state = init_state(agent, optimizer, config.seed, mesh)
  eval_key = evaluation_key(config.seed)
  eval_fn = jit_rarely_run(functools.partial(evaluate.agent_metrics, task, agent,
                                             episodes=config.eval_episodes, mesh=mesh))
  config_dict = json.loads(config.to_json_best_effort())
  steps_per_update = config.batch_size * task.horizon
  mngr = writer = None
  history: list[dict] = []
  lock = contextlib.ExitStack()
  try:
    if workdir:
      lock.enter_context(workdir_lib.locked(wd, primary, warn, parallel.agree))
      mngr = checkpoints.manager(wd, config.keep_checkpoints)
      changes = []
      restored = restore(mngr, state, config, config_dict, warn,
                         allow_changes=allow_config_change, changes=changes)
      if restored is not None:
        state = parallel.put_replicated(restored, mesh)  # the compiled chunk's input sharding
      if primary:
        if restored is not None:
          workdir_lib.record_resume(wd, int(state.step), changes)
        writer = metrics_lib.MetricsWriter(wd, int(state.step), config.tensorboard)
        history = writer.history
        (wd / "config.json").write_text(config.to_json_best_effort(indent=1))
    resumed_from = int(state.step)
    bar = progress_lib.Progress(config.num_updates, resumed_from, steps_per_update,
                                bar=progress, enabled=verbose)
    if verbose and resumed_from:
      bar.message(f"resuming from the checkpoint at update {resumed_from}")

    t0 = time.time()
    compiled = train_chunk.lower(state).compile()  # once: every chunk reuses it
    evaluate_params = eval_fn.lower(state.params, eval_key).compile()
    compile_seconds = time.time() - t0
    last_log = dict(step=resumed_from, seconds=0.0)

    def log(state, chunk_metrics, train_seconds):
      step = int(state.step)
      row = chunk_row(chunk_metrics)
      bar.chunk(step, row)
      if step % config.log_every and step != config.num_updates:
        return
      interval = max(train_seconds - last_log["seconds"], 1e-9)
      updates = step - last_log["step"]
      row = dict(step=step, env_steps=step * steps_per_update,
                 env_steps_per_second=updates * steps_per_update / interval,
                 updates_per_second=updates / interval, **row)
      last_log.update(step=step, seconds=train_seconds)
      row.update({k: float(v) for k, v in evaluate_params(state.params, eval_key).items()
                  if not k.endswith("_by_step")})
      if writer:
        writer.write(row)
      else:
        history.append(row)
      if primary:
        for hook in writers:
          hook(dict(row))  # a copy: no hook changes what the others and the files get
      bar.log(row)

    bar.begin()
    try:
      state, train_seconds = run_chunks(compiled, state, config, mngr=mngr,
                                        config_dict=config_dict, workdir=workdir,
                                        on_chunk=log)
    finally:
      bar.close()
  except BaseException:
    if writer:
      writer.close()
    raise
  finally:
    if mngr:
      mngr.wait_until_finished()
      mngr.close()
    lock.close()

  final = _to_python(evaluate_params(state.params, eval_key))
  oracle_fn = jit_rarely_run(functools.partial(evaluate.oracle_metrics, task, mesh=mesh),
                             static_argnums=1)
  oracles = _to_python(oracle_fn(eval_key, config.eval_episodes))
  env_steps = int(state.step) * steps_per_update
  curves = {k: v for k, v in {**final, **oracles}.items() if k.endswith("_by_step")}
  summary = dict(
      task=task.name, agent=agent_name, teaching=config.teaching,
      **{k: v for k, v in {**final, **oracles}.items() if not k.endswith("_by_step")},
      updates=int(state.step), env_steps=env_steps, resumed_from=resumed_from,
      mesh_size=mesh.size,  # devices the batch was split over
      compile_seconds=compile_seconds, train_seconds=train_seconds,
      wall_seconds=time.time() - start,
      env_steps_per_second=((int(state.step) - resumed_from) * steps_per_update
                            / max(train_seconds, 1e-9)),
      **metrics_lib.environment(),
  )
  if workdir:
    raster = deployments(task, agent, state.params, eval_key)  # in every process: SPMD
  if workdir and primary:
    (wd / "summary.json").write_text(json.dumps(dict(summary, curves=curves), indent=1))
    figures = training_figures(str(wd / "figures"), history, curves)
    plots.action_raster(str(wd / "figures" / "actions.png"),
                        {f"{agent_name}, {config.teaching}": raster},
                        task.num_actions, f"{task.name}: three deployments with "
                        f"{'θ_1' if task.changes_latent else 'θ'} = 0")
    figures.append(str(wd / "figures" / "actions.png"))
    with contextlib.closing(writer):  # the figures and the hyperparameters join TensorBoard
      for path in figures:
        writer.figure(f"figures/{os.path.splitext(os.path.basename(path))[0]}", path,
                      int(state.step))
      writer.hparams(config_dict, {k: v for k, v in summary.items() if k.startswith("kl_")},
                     int(state.step))
  return dict(summary, curves=curves, params=state.params, history=history)


def deployments(task: Task, agent: Agent, params, key, episodes: int = 3):
  """The agent acting alone with θ = 0 (the bandit's arm 1 best, as in [O] Remark 11's
  table; for a moving latent, θ_1 = 0): (actions int [E, T], rewards [E, T]) as numpy."""
  traj = jit_rarely_run(lambda p, k: rollout.braid(
      task, agent.policy(p), k, episodes, 0.0, theta=jnp.zeros(episodes, jnp.int32)))(params, key)
  return np.asarray(traj.actions), np.asarray(traj.rewards)


def training_figures(fig_dir: str, history: list[dict], curves: dict) -> list[str]:
  """figures/kl.png (KL to both oracles vs env steps, log scale), losses.png, and
  p_best_action.png (the agent's and the oracles' P(best action) over t). Returns paths.
  (`train_and_evaluate` adds actions.png, the Remark-11 raster of three deployments.)"""
  col = lambda k: [float(r[k]) for r in history]  # float(): NaN rows are stored as "nan"
  env_steps = col("env_steps")
  return [
      plots.curves(os.path.join(fig_dir, "kl.png"),
                   {"KL(interventional oracle ‖ agent)": col("kl_action_interventional"),
                    "KL(conditional oracle ‖ agent)": col("kl_action_conditional")},
                   "env steps", "action KL (nats/step)", "KL to the oracles", logy=True,
                   x=env_steps),
      plots.curves(os.path.join(fig_dir, "losses.png"),
                   {k: col(k) for k in ("counterfactual_loss", "factual_loss")},
                   "env steps", "loss (nats)", "Teaching losses", x=env_steps),
      plots.curves(os.path.join(fig_dir, "p_best_action.png"),
                   {"agent": curves["p_best_agent_by_step"],
                    "interventional oracle": curves["p_best_oracle_interventional_by_step"],
                    "conditional oracle": curves["p_best_oracle_conditional_by_step"]},
                   "step t", "P(best action)",
                   "Probability of the best action on the agent's rollouts"),
  ]
