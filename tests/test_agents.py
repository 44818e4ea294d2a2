"""Both faces of every agent agree: the logits produced while acting (step by step, recurrent
carry or KV cache) equal those of the learning pass over the same braided trajectory."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import agents, benchmark, losses, rollout, tasks
from causal_meta.agents import packing, recurrent, tokens
from causal_meta.agents import transformer

TASKS = {
    "prize_or_frog": {},
    "bandit": dict(horizon=6),
    "padlock": dict(num_switches=4, num_secret=2, epsilon=0.1),
    "tabular": dict(prior=[0.3, 0.7], expert=[[[0.2, 0.8], [0.5, 0.5]], [[0.9, 0.1], [0.4, 0.6]]],
                    observation=np.full((2, 2, 2, 3), 1 / 3), horizon=4,
                    transitions=np.ones((2, 2, 3), int) * [[[0], [1]], [[1], [0]]]),
}
SIZES = dict(hidden=16, width=16, num_layers=2, num_heads=2)


def acting_logits(agent, params, traj):
  """Replays each episode through the acting face, one env step (one token) at a time:
  ([B,T,A], [B,T,O])."""
  policy = agent.policy(params)

  def episode(actions, intervened, observations):
    def body(carry, step):
      a, i, o = step
      logits = (policy.action_logits(carry), policy.observation_logits(carry, a, i))
      return policy.observe(carry, a, i, o), logits
    _, out = jax.lax.scan(body, policy.initial_carry(), (actions, intervened, observations))
    return out

  return jax.vmap(episode)(traj.actions, traj.intervened, traj.observations)


def assert_same_pass(got, want, mask):
  """Two ((loss, logits), gradient) results of a learning pass agree: the logits on the steps
  in mask bool [B, T], the loss, and the gradient."""
  (got_loss, got_logits), got_grad = got
  (want_loss, want_logits), want_grad = want
  for g, w in zip(got_logits, want_logits):
    np.testing.assert_allclose(np.asarray(g)[mask], np.asarray(w)[mask], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               got_grad, want_grad)


@pytest.mark.parametrize("kind", agents.KINDS)
@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_acting_equals_learning(kind, task_name):
  task = tasks.make(task_name, **TASKS[task_name])
  agent = agents.make(kind, task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  # Mixed authors, so both action embeddings are exercised.
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 8, expert_prob=0.5)
  want_a, want_o = agent.teacher_force(params, traj)
  got_a, got_o = jax.jit(acting_logits, static_argnums=0)(agent, params, traj)
  np.testing.assert_allclose(got_a, want_a, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(got_o, want_o, atol=2e-5, rtol=1e-5)
  # The logits the rollout records while acting are the same ones.
  same, (got_a, got_o) = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 8,
                                       expert_prob=0.5, with_logits=True)
  jax.tree.map(np.testing.assert_array_equal, same, traj)
  np.testing.assert_allclose(got_a, want_a, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(got_o, want_o, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("kind,teaching", [("lstm", t) for t in rollout.TEACHING_MODES] +
                         [("gru", "mixed")])  # the GRU shares the path; mixed authors cover it
def test_gradient_through_the_rollout_equals_the_teacher_forced_one(kind, task_name, teaching):
  """One recurrence per update: the teaching loss on the logits a recurrent agent produced
  while acting, differentiated through the rollout (actions, expert targets and observations
  plain data), has the loss and gradient of the teacher-forced pass over the same
  trajectory, on every task in every teaching mode."""
  task = tasks.make(task_name, **TASKS[task_name])
  agent = agents.make(kind, task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  expert_prob = rollout.expert_prob_for(teaching)
  weights = dict(counterfactual_weight=1.0, factual_weight=0.5)

  def in_rollout(p):
    traj, logits = rollout.braid(task, agent.policy(p), jax.random.PRNGKey(1), 8, expert_prob,
                                 with_logits=True)
    traj = jax.lax.stop_gradient(traj)
    return losses.teaching_loss(*logits, traj, **weights)[0], traj

  (loss, traj), grad = jax.jit(jax.value_and_grad(in_rollout, has_aux=True))(params)
  teacher = lambda p: losses.teaching_loss(*agent.teacher_force(p, traj), traj, **weights)[0]
  want_loss, want_grad = jax.jit(jax.value_and_grad(teacher))(params)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               grad, want_grad)
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad)) > 0


@pytest.mark.parametrize("position", ["rope", "none"])
@pytest.mark.parametrize("task_name", ["bandit", "padlock"])
def test_transformer_positions_act_as_they_learn(position, task_name):
  """Rotary and position-free transformers: the KV cache holds the same keys as the full pass."""
  task = tasks.make(task_name, **TASKS[task_name])
  agent = agents.make("transformer", task, position=position, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  assert "pos_embed" not in params
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 8, expert_prob=0.5)
  want_a, want_o = agent.teacher_force(params, traj)
  got_a, got_o = jax.jit(acting_logits, static_argnums=0)(agent, params, traj)
  np.testing.assert_allclose(got_a, want_a, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(got_o, want_o, atol=2e-5, rtol=1e-5)


def test_rope_scores_depend_on_the_offset_only():
  """<rope(q, i), rope(k, j)> is a function of i - j, and rotation keeps the norm."""
  q, k = jax.random.normal(jax.random.PRNGKey(0), (2, 1, 3, 8))  # [n=1, H=3, D=8]
  score = lambda i, j: jnp.sum(transformer.rope(q, jnp.array([i])) *
                               transformer.rope(k, jnp.array([j])), -1)
  np.testing.assert_allclose(score(5, 2), score(13, 10), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(score(0, 0), jnp.sum(q * k, -1), rtol=1e-5, atol=1e-5)
  assert not np.allclose(score(5, 2), score(5, 3))
  np.testing.assert_allclose(jnp.linalg.norm(transformer.rope(q, jnp.array([7])), axis=-1),
                             jnp.linalg.norm(q, axis=-1), rtol=1e-5)


@pytest.mark.parametrize("kind", agents.KINDS)
def test_author_changes_the_prediction(kind):
  """do(a) and a are different symbols ([O] Remarks 13, 14): swapping the author of a_1
  changes the prediction of o_1 (the observation head reads a_1 with its author) and of
  everything after it, but not the prediction of a_1 itself."""
  task = tasks.make("bandit", horizon=3)
  agent = agents.make(kind, task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 2, expert_prob=0.0)
  flipped = traj._replace(intervened=traj.intervened.at[:, 0].set(False))
  (a1, o1), (a2, o2) = agent.teacher_force(params, traj), agent.teacher_force(params, flipped)
  np.testing.assert_allclose(a1[:, 0], a2[:, 0])  # a_1 is predicted before it is seen
  assert not np.allclose(o1[:, 0], o2[:, 0])
  assert not np.allclose(a1[:, 1], a2[:, 1])
  # An author-blind (demonstration) agent reads both as the expert's action.
  blind = dataclasses.replace(agent, author_tokens=False)
  (b1, p1), (b2, p2) = blind.teacher_force(params, traj), blind.teacher_force(params, flipped)
  np.testing.assert_allclose(p1, p2)
  np.testing.assert_allclose(b1, b2)


def test_token_encoding():
  """One token per interaction, (action part)·(O + 1) + (observation part), with action parts
  do(a) = a, expert a = A + a, BOS = 2A and observation part O for none (agents/tokens.py):
  A = 3, O = 2 below."""
  x = tokens.encode(jnp.array([[2, 0, 1]]), jnp.array([[True, False, True]]),
                    jnp.array([[1, 0, 1]]), 3, 2)
  # BOS: 6·3 + 2 = 20; (do(2), o=1): 2·3 + 1 = 7; (expert 0, o=0): 3·3 + 0 = 9.
  np.testing.assert_array_equal(x, [[20, 7, 9]])
  np.testing.assert_array_equal(tokens.split(x, 2), [[[6, 2, 3]], [[2, 1, 0]]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="rnn"), "unknown agent kind 'rnn'"),
    (dict(kind="transformer", width=10, num_heads=4), "divisible"),
    (dict(kind="lstm", hiden=32), "unknown option.s. hiden"),
])
def test_bad_agent_config(kwargs, match):
  with pytest.raises(ValueError, match=match):
    agents.make(task=tasks.make("bandit"), **kwargs)


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_chunked_attention_changes_no_number(position):
  """`attention_chunk` attends a few queries at a time, each query reading keys only up to
  its chunk's end: the logits, loss and gradient are the plain pass's, whether or not the
  chunk divides the sequence (T = 6 tokens here), down to one query per chunk."""
  task = tasks.make("bandit", horizon=6)
  plain = agents.make("transformer", task, position=position, **SIZES)
  params = plain.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, plain.policy(params), jax.random.PRNGKey(1), 8)

  def loss_and_grad(agent):
    def loss(p):
      a, o = agent.teacher_force(p, traj)
      return losses.teaching_loss(a, o, traj, factual_weight=0.5)[0], (a, o)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

  (want_loss, want_logits), want_grad = loss_and_grad(plain)
  for chunk in (1, 5, 12):
    agent = agents.make("transformer", task, position=position, attention_chunk=chunk,
                        **SIZES)
    (got_loss, got_logits), got_grad = loss_and_grad(agent)
    for got, want in zip(got_logits, want_logits):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 got_grad, want_grad)


def test_chunked_attention_skips_the_masked_keys():
  """Chunk c's queries multiply only the keys up to its end: the attention products of one
  causal pass over L = 12 tokens in chunks of 4 count Σ_c 4·(4c) = 96 query-key pairs of
  L² = 144, and queries · keys and scores · values each cost 2·H·D = 2·width FLOPs a pair."""
  width, heads, L = 16, 2, 12
  q = jnp.ones((L, heads, width // heads))
  kv = jnp.ones((heads, L, width // heads))
  mask = jnp.tril(jnp.ones((L, L), bool))
  count = lambda f: benchmark.matmul_flops(f, q, kv, kv, mask)
  assert count(transformer.attention) == 2 * 2 * width * L * L
  chunked = lambda *a: transformer.chunked_causal_attention(*a, chunk=4)
  assert count(chunked) == 2 * 2 * width * (4 * 4 + 4 * 8 + 4 * 12)


def test_scan_unroll_changes_no_number():
  """`scan_unroll` (time steps per compiled-loop iteration) computes the same function: the
  rollout's trajectory and logits, and the recurrent learning pass's logits."""
  task = tasks.make("bandit", horizon=5)
  plain = agents.make("lstm", task, **SIZES)
  unrolled = agents.make("lstm", task, scan_unroll=3, **SIZES)
  params = plain.init(jax.random.PRNGKey(0))
  out = rollout.braid(task, plain.policy(params), jax.random.PRNGKey(1), 4, with_logits=True)
  out3 = rollout.braid(task, plain.policy(params), jax.random.PRNGKey(1), 4, scan_unroll=3,
                       with_logits=True)
  jax.tree.map(np.testing.assert_array_equal, out[0], out3[0])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
               out[1], out3[1])
  np.testing.assert_allclose(unrolled.teacher_force(params, out[0])[0],
                             plain.teacher_force(params, out[0])[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell,kept,autodiff", [("lstm", 8, 13), ("gru", 5, 10)])
def test_the_backward_pass_keeps_the_activations_not_their_derivatives(cell, kept, autodiff,
                                                                       monkeypatch):
  """Differentiated through the rollout, a recurrent agent keeps per step the gates'
  activations (and the carries and the head's input), not also each one's derivative as
  autodiff alone does (`recurrent._keep_activations`); the gradient is the same."""
  task = tasks.make("bandit", horizon=6)
  agent = agents.make(cell, task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))

  def loss(p):
    traj, logits = rollout.braid(task, agent.policy(p), jax.random.PRNGKey(1), 8,
                                 with_logits=True)
    return losses.teaching_loss(*logits, jax.lax.stop_gradient(traj))[0]

  def per_step_residuals_and_gradient():
    _, backward = jax.vjp(loss, params)  # a pytree whose leaves are the kept residuals
    stacks = [x for x in jax.tree.leaves(backward) if x.shape == (5, 8, SIZES["hidden"])]
    return len(stacks), backward(1.0)[0]

  count, grad = per_step_residuals_and_gradient()
  monkeypatch.setattr(recurrent, "_cell", recurrent._cell.__wrapped__)  # autodiff alone
  plain_count, plain_grad = per_step_residuals_and_gradient()
  assert (count, plain_count) == (kept, autodiff)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8),
               grad, plain_grad)


def test_first_fit_decreasing_places_every_episode_without_overlap():
  """Every episode gets its own columns inside one row; a batch with more tokens than the
  rows hold does not fit. Checked on a brute-force occupancy grid."""
  lengths = jax.random.randint(jax.random.PRNGKey(0), (300,), 0, 21)
  rows, row_len = 200, 20  # ~3,000 tokens in 4,000 slots
  fit = packing.first_fit_decreasing(lengths, rows, row_len)
  assert bool(fit.fits)
  grid = np.zeros((rows, row_len), int)
  for r, s, n in zip(np.asarray(fit.row), np.asarray(fit.offset), np.asarray(lengths)):
    assert 0 <= s and s + n <= row_len
    grid[r, s:s + n] += 1
  assert grid.max() == 1 and grid.sum() == int(lengths.sum())
  # Too few rows for the tokens: no packing can fit.
  too_few = int(lengths.sum()) // row_len
  assert not bool(packing.first_fit_decreasing(lengths, too_few, row_len).fits)


@pytest.mark.parametrize("position,attention_chunk", [("learned", 0), ("rope", 0),
                                                      ("learned", 5)])
def test_packed_pass_equals_the_plain_one(position, attention_chunk):
  """Episodes packed end to end (padlock: they end early) get the plain pass's logits on
  every step that happened, and its loss and gradient. Also with outcome tokens first
  (goal-conditioned models), and with the packed pass attending in chunks of queries."""
  task = tasks.make("padlock", num_switches=4, num_secret=2, epsilon=0.3)
  agent = agents.make("transformer", task, position=position, num_outcomes=tokens.NUM_OUTCOMES,
                      **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  packed_agent = agents.make("transformer", task, position=position,
                             num_outcomes=tokens.NUM_OUTCOMES, attention_chunk=attention_chunk,
                             **SIZES)
  traj = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(1), 32, 1.0)
  outcome = jnp.arange(32) % 2
  mask = np.asarray(traj.mask)
  rows = int(np.ceil(mask.sum() / task.horizon)) + 1  # one more than the minimum
  packed = packing.pack_episodes(traj.mask, rows)
  assert rows < 32 // 2 and bool(packed.fits)

  @jax.jit
  def loss_and_grad(p, packed):
    def loss(p):
      learner = agent if packed is None else packed_agent
      a, o = learner.teacher_force(p, traj, outcome, packed=packed)
      return losses.teaching_loss(a, o, traj, factual_weight=0.5)[0], (a, o)
    return jax.value_and_grad(loss, has_aux=True)(p)

  assert_same_pass(loss_and_grad(params, packed), loss_and_grad(params, None), mask)
  with pytest.raises(ValueError, match="only the transformer packs"):
    agents.make("lstm", task, **SIZES).teacher_force(params, traj, packed=packed)
