"""`evaluate.mixed_author_metrics`: KL to the author-respecting oracle on pasts where the
expert acts with probability q ([O] Remarks 14-15)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import config as config_lib
from causal_meta import evaluate, oracle, rollout


@pytest.fixture(scope="module")
def bandit():
  config = config_lib.default()
  config.agent.hidden = 8
  task = config_lib.make_task(config)
  agent = config_lib.make_agent(config, task)
  return task, agent, agent.init(jax.random.PRNGKey(3))


class PolicyAgent:
  """An agent-shaped wrapper of a fixed Policy (hashable, so it can be a static jit argument)."""

  def __init__(self, policy):
    self._policy = policy

  def policy(self, params):
    del params
    return self._policy


def oracle_agent(task):
  """The author-respecting oracle posing as an agent: its logits are the exact predictives."""
  def observe(belief, action, intervened, observation):
    return oracle.update(task, belief, action, intervened, observation)
  policy = rollout.Policy(
      initial_carry=lambda: oracle.initial_belief(task),
      action_logits=lambda b: jnp.log(oracle.action_probs(task, b)),
      observe=observe,
      observation_logits=lambda b, a, i: jnp.log(oracle.observation_probs(task, b, a, i)))
  return PolicyAgent(policy)


def test_q0_is_agent_metrics_on_the_same_rollouts(bandit):
  task, agent, params = bandit
  key = jax.random.PRNGKey(7)
  mixed = evaluate.mixed_author_metrics(task, agent, params, key, 64, 0.0)
  own = evaluate.agent_metrics(task, agent, params, key, 64)
  np.testing.assert_allclose(mixed["kl_action"], own["kl_action_interventional"], rtol=1e-6)
  np.testing.assert_allclose(mixed["kl_observation"], own["kl_observation_interventional"],
                             rtol=1e-6)
  assert mixed["kl_action"] > 0.01  # an untrained agent is far from the oracle


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_the_oracle_itself_scores_zero_at_every_mixture(bandit, q):
  task = bandit[0]
  out = jax.jit(evaluate.mixed_author_metrics, static_argnums=(0, 1, 4))(
      task, oracle_agent(task), None, jax.random.PRNGKey(1), 32, q)
  np.testing.assert_allclose(out["kl_action"], 0.0, atol=1e-5)
  np.testing.assert_allclose(out["kl_observation"], 0.0, atol=1e-5)
  assert out["kl_action_by_step"].shape == (task.horizon,)


def test_the_oracle_that_ignores_authors_is_scored_against_them(bandit):
  """The conditional oracle's logits: right on the expert's data (q = 1), wrong on its own."""
  task = bandit[0]
  base = oracle_agent(task).policy(None)
  deluded = base._replace(
      observe=lambda b, a, i, o: oracle.update(task, b, a, False, o),
      observation_logits=lambda b, a, i: jnp.log(oracle.observation_probs(task, b, a, False)))
  agent = PolicyAgent(deluded)
  kls = [float(evaluate.mixed_author_metrics(task, agent, None, jax.random.PRNGKey(2), 256,
                                             q)["kl_action"]) for q in (0.0, 1.0)]
  assert kls[1] < 1e-5 < 0.01 < kls[0]
