"""Any task with finitely many reachable public states, written out as a `TabularTask`.

`as_tabular(task)` walks the task's state machine from `initial_state` through every (action,
observation) and evaluates the expert and the world for every (θ, reachable state): the same
task as tables (and its latent chain, if θ moves), with the same oracle and the same rollouts
in distribution. What needs tables
(the EM fit of `causal_meta.offline`) then applies to a task written in JAX, such as padlock.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta.tasks.base import Task
from causal_meta.tasks.tabular import TabularTask, make_tabular

# Past this many reachable states the tables would not fit comfortably in memory.
MAX_STATES = 100_000


def reachable_states(task: Task, max_states: int = MAX_STATES) -> np.ndarray:
  """Every state reachable from `initial_state` before the task is done, the initial one
  first, in breadth-first order: int32 [S, *state_shape]. States where the task is done are
  included but not expanded (the engine does not move past them)."""
  A, O = task.num_actions, task.num_observations
  pairs = jnp.stack(jnp.meshgrid(jnp.arange(A), jnp.arange(O), indexing="ij"), -1).reshape(-1, 2)

  @jax.jit
  def successors(states):  # [F, *shape] -> ([F, A·O, *shape], done [F])
    step = lambda s, ao: task.next_state(s, ao[0], ao[1])
    return (jax.vmap(lambda s: jax.vmap(lambda ao: step(s, ao))(pairs))(states),
            jax.vmap(task.done)(states))

  start = np.asarray(task.initial_state())
  seen = {start.tobytes(): 0}
  order, frontier = [start], [start]
  while frontier:
    nexts, done = map(np.asarray, successors(jnp.asarray(np.stack(frontier))))
    frontier = []
    for s_next, d in zip(nexts, done):
      if d:
        continue
      for s in s_next:
        if s.tobytes() not in seen:
          seen[s.tobytes()] = len(order)
          order.append(s)
          frontier.append(s)
          if len(order) > max_states:
            raise ValueError(f"as_tabular: task {task.name!r} reaches more than {max_states} "
                             f"states")
  return np.stack(order).astype(np.int32)


def as_tabular(task: Task, max_states: int = MAX_STATES) -> TabularTask:
  """`task` as probability tables over its reachable states (module docstring).

  State i of the result is `reachable_states(task)[i]` (0 is the initial state); its
  transitions, terminal states and rewards are the task's. Tables are float64 from the
  task's float32 logits.
  """
  states = reachable_states(task, max_states)
  index = {s.tobytes(): i for i, s in enumerate(states)}
  A, O = task.num_actions, task.num_observations
  thetas, log_prior = task.latents()

  @jax.jit
  def tables(states):
    expert = jax.vmap(lambda th: jax.vmap(lambda s: task.expert_logits(th, s))(states))(thetas)
    obs = jax.vmap(lambda th: jax.vmap(lambda s: jax.vmap(
        lambda a: task.observation_logits(th, s, a))(jnp.arange(A)))(states))(thetas)
    nxt = jax.vmap(lambda s: jax.vmap(lambda a: jax.vmap(
        lambda o: task.next_state(s, a, o))(jnp.arange(O)))(jnp.arange(A)))(states)
    rewards = jax.vmap(task.reward)(jnp.arange(O))
    return (jax.nn.softmax(expert, -1), jax.nn.softmax(obs, -1), nxt,
            jax.vmap(task.done)(states), rewards)

  expert, observation, nxt, terminal, rewards = map(np.asarray, tables(jnp.asarray(states)))
  S = len(states)
  transitions = np.zeros((S, A, O), np.int64)
  for s in range(S):
    for a in range(A):
      for o in range(O):
        # A done state stays put; from a live state an unreachable (a, o) (probability 0
        # under every θ) goes nowhere new either.
        transitions[s, a, o] = s if terminal[s] else index.get(nxt[s, a, o].tobytes(), s)
  prior = np.exp(np.asarray(log_prior, np.float64))
  chain = (np.exp(np.asarray(task.log_latent_transition(), np.float64))
           if task.changes_latent else None)
  normalise = lambda p: np.asarray(p, np.float64) / np.asarray(p, np.float64).sum(-1, keepdims=True)
  return make_tabular(normalise(prior), normalise(expert), normalise(observation),
                      horizon=task.horizon, transitions=transitions,
                      terminal=terminal.astype(bool) if terminal.any() else None,
                      rewards=np.asarray(rewards, np.float64), initial=0,
                      latent_transition=None if chain is None else normalise(chain),
                      name=f"{task.name}_tabular")
