"""The neural model class of `causal_meta.offline`: θ-conditioned networks fitted to a log.

The same assumption as `offline.fit_tabular` (a discrete latent with K̂ values; the expert and
the world are fixed functions of (θ, public state)), with the functions as one small network
instead of tables, for tasks whose public state a table does not suit (padlock's 2^n switch
settings; a state that is a vector). The network reads (one-hot θ̂, features of s) and returns
the expert's logits [A] and the world's logits for every action [A, O]; the prior is a free
vector. It is fitted by Adam on the same exact marginal likelihood of the demonstrations,

    log P(τ) = log Σ_θ̂ Q̂(θ̂) Π_t Q̂(a_t | θ̂, s_t) Q̂(o_t | θ̂, s_t, a_t)     (steps that happened),

summed over θ̂ exactly (it is enumerable), on minibatches of episodes, several restarts vmapped
in one compiled call, the best final log-likelihood on the whole log kept. The result,
`NeuralModel`, is a `Task`, so the engine, the oracle and the teaching loop apply unchanged.

State features: a `TabularTask`'s state index one-hot; any other task's state vector as
floats (padlock: the switches and the opened flag).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from causal_meta import offline
from causal_meta.tasks.base import Task
from causal_meta.tasks.tabular import TabularTask

Array = jax.Array


class _Net(nn.Module):
  """(θ one-hot [K], state features [F]) -> (expert logits [A], observation logits [A, O])."""
  hidden: int
  num_actions: int
  num_observations: int

  @nn.compact
  def __call__(self, theta_one_hot, features):
    x = jnp.concatenate([theta_one_hot, features])
    for _ in range(2):
      x = nn.relu(nn.Dense(self.hidden)(x))
    A, O = self.num_actions, self.num_observations
    return nn.Dense(A)(x), nn.Dense(A * O)(x).reshape(A, O)


def _features(public: Task, state: Array) -> Array:
  if isinstance(public, TabularTask):
    return jax.nn.one_hot(state, public.num_states)
  return jnp.asarray(state, jnp.float32).reshape(-1)


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, a static jit arg
class NeuralModel(Task):
  """A task whose prior, expert and world are a fitted network (module docstring); the
  public state, its transitions, `done`, rewards and horizon are `public`'s."""
  public: Task
  params: Any  # {"prior": float32 [K], "net": the network's parameters}
  latent_count: int
  hidden: int
  horizon: int
  name: str = "neural_fitted"

  @property
  def num_actions(self) -> int:
    return self.public.num_actions

  @property
  def num_observations(self) -> int:
    return self.public.num_observations

  @property
  def num_latents(self) -> int:
    return self.latent_count

  @property
  def num_states(self) -> int:  # as the public task's (offline.teach_from_log compares sizes)
    return getattr(self.public, "num_states", 0)

  def _net(self, theta, state):
    net = _Net(self.hidden, self.num_actions, self.num_observations)
    return net.apply(self.params["net"], jax.nn.one_hot(theta, self.latent_count),
                     _features(self.public, state))

  def log_prior(self):
    return jax.nn.log_softmax(self.params["prior"])

  def initial_state(self):
    return self.public.initial_state()

  def expert_logits(self, theta, state):
    return jax.nn.log_softmax(self._net(theta, state)[0])

  def observation_logits(self, theta, state, action):
    return jax.nn.log_softmax(self._net(theta, state)[1][action])

  def next_state(self, state, action, observation):
    return self.public.next_state(state, action, observation)

  def done(self, state):
    return self.public.done(state)

  def reward(self, observation):
    return self.public.reward(observation)


def _log_likelihood(model: NeuralModel, states, actions, observations, mask):
  """Per-episode exact log marginal likelihood: float32 [N] for [N, T] steps."""
  thetas = jnp.arange(model.latent_count)

  def step_log_p(theta, s, a, o):
    expert, world = model._net(theta, s)  # one forward pass for both heads
    return jax.nn.log_softmax(expert)[a] + jax.nn.log_softmax(world[a])[o]

  per_step = jax.vmap(lambda th: jax.vmap(jax.vmap(lambda s, a, o: step_log_p(th, s, a, o)))(
      states, actions, observations))(thetas)  # [K, N, T]
  per_episode = jnp.sum(jnp.where(mask, per_step, 0.0), -1)  # [K, N]
  return jax.nn.logsumexp(model.log_prior()[:, None] + per_episode, axis=0)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _fit(public: Task, num_latents: int, hidden: int, steps: int, batch_size: int,
         restarts: int, key, states, actions, observations, mask, weights, learning_rate):
  """`restarts` Adam runs vmapped; returns (params [R, ...], final log-lik [R], trace [R, steps])."""
  net = _Net(hidden, public.num_actions, public.num_observations)
  probe = _features(public, public.initial_state())
  optimizer = optax.adam(learning_rate)
  n = actions.shape[0]
  probs = weights / weights.sum()

  def model_of(params):
    return NeuralModel(public, params, num_latents, hidden, public.horizon)

  def one(key):
    k_init, k_prior, k_data = jax.random.split(key, 3)
    params = {"prior": 0.1 * jax.random.normal(k_prior, (num_latents,)),
              "net": net.init(k_init, jnp.zeros(num_latents), probe)}

    def loss(params, rows):
      pick = lambda x: x[rows]
      return -jnp.mean(_log_likelihood(model_of(params), pick(states), pick(actions),
                                       pick(observations), pick(mask)))

    def body(carry, k):
      params, opt_state = carry
      rows = jax.random.choice(k, n, (batch_size,), p=probs)  # episodes by their weights
      value, grads = jax.value_and_grad(loss)(params, rows)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), value

    (params, _), trace = jax.lax.scan(body, (params, optimizer.init(params)),
                                      jax.random.split(k_data, steps))
    full = _log_likelihood(model_of(params), states, actions, observations, mask)
    return params, jnp.dot(probs, full), -trace

  return jax.vmap(one)(jax.random.split(key, restarts))


def fit_neural(task_like: Task, log, num_latents: int, key: Array, restarts: int = 4,
               steps: int = 1000, batch_size: int = 64, hidden: int = 32,
               learning_rate: float = 1e-2) -> tuple[NeuralModel, dict[str, Any]]:
  """Fits a `NeuralModel` with `num_latents` latents to demonstrations (module docstring).

  Args:
    task_like: the true task; only its public parts are read (initial state, transitions,
      done, rewards, horizon, sizes).
    log: demonstrations, a `Trajectory` [N, T] whose actions are all the expert's, or
      `offline.Episodes`.
    num_latents: K̂ >= 1.
    key: initial parameters and minibatches of each restart.
    restarts: R >= 1 runs vmapped; the best final log-likelihood on the whole log is kept.
    steps: Adam steps per restart, each on `batch_size` episodes drawn by their weights.
    hidden: width of the network's two hidden layers.
  Returns:
    (the NeuralModel named `<task>_neural_fitted`, info) with info: log_likelihood (float,
    nats/episode on the whole log, the kept restart), log_likelihood_all [R], trace [steps]
    (the kept restart's minibatch log-likelihood), best_restart, num_episodes.
  Raises:
    ValueError, one line naming the field: as `offline.fit_tabular`, and steps,
    batch_size, hidden < 1 or learning_rate <= 0.
  """
  for name, value, low in (("num_latents", num_latents, 1), ("restarts", restarts, 1),
                           ("steps", steps, 1), ("batch_size", batch_size, 1),
                           ("hidden", hidden, 1)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
      raise ValueError(f"offline.fit_neural: {name} must be an integer >= {low}, "
                       f"got {value!r}")
  if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
    raise ValueError(f"offline.fit_neural: learning_rate must be a number > 0, "
                     f"got {learning_rate!r}")
  offline.check_static(task_like)
  episodes = offline.check_log(task_like, log)
  states, _ = offline.logged_states(task_like, episodes)
  params, final, trace = _fit(task_like, int(num_latents), int(hidden), int(steps),
                              int(batch_size), int(restarts), key, states,
                              jnp.asarray(episodes.actions), jnp.asarray(episodes.observations),
                              jnp.asarray(episodes.mask), jnp.asarray(episodes.weights),
                              float(learning_rate))
  final = np.asarray(final)
  best = int(np.nanargmax(final))
  model = NeuralModel(task_like, jax.tree.map(lambda x: x[best], params), int(num_latents),
                      int(hidden), task_like.horizon, name=f"{task_like.name}_neural_fitted")
  info = dict(log_likelihood=float(final[best]), log_likelihood_all=final,
              trace=np.asarray(trace[best]), best_restart=best,
              num_episodes=float(np.sum(episodes.weights)))
  return model, info
