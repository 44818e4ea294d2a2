"""Training: act, then teach, K updates per compiled call.

One update = a braided rollout under the current parameters (plain data, no gradient through
the sampled actions) + one teacher-forced pass with the factual and counterfactual losses +
an optax step. `lax.scan` runs `updates_per_call` of them inside one `jit` with the state
donated; the host loop only logs between chunks. `train_and_evaluate(config, workdir)` is the
whole job, callable from a notebook.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from causal_meta import config as config_lib
from causal_meta import evaluate, losses, plots, rollout
from causal_meta.agents import Agent
from causal_meta.tasks.base import Task


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  key: jax.Array   # the run's base key; update i uses fold_in(key, i)
  step: jax.Array  # int32 [], updates done


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  lr = o.learning_rate
  if o.warmup_steps:
    lr = optax.linear_schedule(0.0, o.learning_rate, o.warmup_steps)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip),
                     optax.adam(lr, b1=o.b1, b2=o.b2))


def init_state(agent: Agent, optimizer, seed: int) -> TrainState:
  key = jax.random.PRNGKey(seed)
  params = agent.init(jax.random.fold_in(key, -1 & 0x7FFFFFFF))
  return TrainState(params, optimizer.init(params), key, jnp.zeros((), jnp.int32))


def make_update(task: Task, agent: Agent, optimizer, config):
  """The pure update: TrainState -> (TrainState, metrics dict of scalars)."""
  expert_prob = rollout.expert_prob_for(config.teaching, config.mixed_prob)
  weights = dict(counterfactual_weight=config.loss.counterfactual_weight,
                 factual_weight=config.loss.factual_weight)

  def loss_fn(params, traj):
    action_logits, obs_logits = agent.unroll(params, traj)
    return losses.teaching_loss(action_logits, obs_logits, traj, **weights)

  def update(state: TrainState) -> tuple[TrainState, dict]:
    key = jax.random.fold_in(state.key, state.step)
    # Act: the rollout is data. stop_gradient makes explicit what the sampled action already
    # is: an intervention, with no gradient path back into the policy ([O] Fig. 4c).
    traj = jax.lax.stop_gradient(
        rollout.braid(task, agent.policy(state.params), key, config.batch_size, expert_prob))
    # Teach.
    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, traj)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(loss=loss, grad_norm=optax.global_norm(grads),
                   mean_reward=jnp.mean(jnp.sum(traj.rewards, 1)) / task.horizon, **parts)
    return TrainState(params, opt_state, state.key, state.step + 1), metrics

  return update


def make_train_chunk(update, num_updates: int):
  """jit(K updates via lax.scan), state donated; metrics stacked [K]."""
  @functools.partial(jax.jit, donate_argnums=0)
  def train_chunk(state):
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)
  return train_chunk


def _to_python(tree):
  return jax.tree.map(lambda x: np.asarray(x).tolist(), tree)


def train_and_evaluate(config, workdir: str | None = None, verbose: bool = True) -> dict:
  """Trains an agent as `config` says, evaluates it against the exact oracle.

  Writes `workdir/config.json`, `metrics.jsonl`, `summary.json` and `figures/` (when workdir
  is given). Returns the summary dict (plus `params` and per-step `curves`).
  """
  task, agent = config_lib.validate(config)  # before anything is compiled or written
  start = time.time()
  optimizer = make_optimizer(config)
  update = make_update(task, agent, optimizer, config)
  train_chunk = make_train_chunk(update, config.updates_per_call)
  state = init_state(agent, optimizer, config.seed)
  eval_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5EED)
  eval_fn = jax.jit(functools.partial(evaluate.agent_metrics, task, agent,
                                      episodes=config.eval_episodes))
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=1))
    metrics_file = open(os.path.join(workdir, "metrics.jsonl"), "w")

  t0 = time.time()
  compiled = train_chunk.lower(state).compile()
  compile_seconds = time.time() - t0
  steps_per_update = config.batch_size * task.horizon
  history, train_seconds = [], 0.0
  num_chunks = config.num_updates // config.updates_per_call
  for chunk in range(num_chunks):
    t0 = time.time()
    state, metrics = compiled(state)
    metrics = jax.device_get(metrics)
    train_seconds += time.time() - t0
    step = int(state.step)
    if step % config.log_every == 0 or chunk == num_chunks - 1:
      row = dict(step=step, env_steps=step * steps_per_update,
                 env_steps_per_second=step * steps_per_update / max(train_seconds, 1e-9),
                 **{k: float(np.mean(v)) for k, v in metrics.items()})
      ev = eval_fn(state.params, eval_key)
      row.update({k: float(v) for k, v in ev.items() if not k.endswith("_by_step")})
      history.append(row)
      if workdir:
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
      if verbose:
        print(f"step {step:6d}  loss {row['loss']:.4f}  KL(int) {row['kl_action_interventional']:.4f}"
              f"  KL(cond) {row['kl_action_conditional']:.4f}  reward {row['mean_reward']:.3f}"
              f"  {row['env_steps_per_second']:.3g} env-steps/s", flush=True)
  if workdir:
    metrics_file.close()

  final = _to_python(eval_fn(state.params, eval_key))
  oracles = _to_python(jax.jit(functools.partial(evaluate.oracle_metrics, task),
                               static_argnums=1)(eval_key, config.eval_episodes))
  env_steps = int(state.step) * steps_per_update
  curves = {k: v for k, v in {**final, **oracles}.items() if k.endswith("_by_step")}
  summary = dict(
      task=task.name, agent=config.agent.kind, teaching=config.teaching,
      **{k: v for k, v in {**final, **oracles}.items() if not k.endswith("_by_step")},
      updates=int(state.step), env_steps=env_steps, compile_seconds=compile_seconds,
      train_seconds=train_seconds, wall_seconds=time.time() - start,
      env_steps_per_second=env_steps / max(train_seconds, 1e-9),
      device=jax.devices()[0].device_kind, num_devices=jax.device_count(),
      jax_version=jax.__version__,
  )
  if workdir:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(dict(summary, curves=curves), f, indent=1)
    _figures(workdir, history, curves)
  return dict(summary, curves=curves, params=state.params, history=history)


def _figures(workdir, history, curves):
  fig_dir = os.path.join(workdir, "figures")
  env_steps = [r["env_steps"] for r in history]
  plots.curves(os.path.join(fig_dir, "kl.png"),
               {"KL(interventional oracle ‖ agent)": [r["kl_action_interventional"]
                                                      for r in history],
                "KL(conditional oracle ‖ agent)": [r["kl_action_conditional"] for r in history]},
               "env steps", "action KL (nats/step)", "KL to the oracles", logy=True, x=env_steps)
  plots.curves(os.path.join(fig_dir, "losses.png"),
               {k: [r[k] for r in history] for k in ("counterfactual_loss", "factual_loss")},
               "env steps", "loss (nats)", "Teaching losses", x=env_steps)
  plots.curves(os.path.join(fig_dir, "p_best_action.png"),
               {"agent": curves["p_best_agent_by_step"],
                "interventional oracle": curves["p_best_oracle_interventional_by_step"],
                "conditional oracle": curves["p_best_oracle_conditional_by_step"]},
               "step t", "P(best action)", "Probability of the best action on the agent's rollouts")
