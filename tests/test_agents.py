"""Both faces of every agent agree: the logits produced while acting (step by step, recurrent
carry or KV cache) equal those of the learning pass over the same braided trajectory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import agents, benchmark, losses, rollout, tasks
from causal_meta.agents import attention_kernel, lstm_kernel, packing, recurrent, tokens
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


@pytest.fixture
def float32_products():
  """Matrix products in full float32 while a test traces. A no-op on the CPU; on a GPU, XLA's
  and the Pallas kernels' float32 products would otherwise both run as TF32 (10-bit
  mantissas), each rounding its own way, and the kernel-against-XLA tests compare them at
  float32 tolerances."""
  with jax.default_matmul_precision("float32"):
    yield


def acting_logits(agent, params, traj):
  """Replays each episode through the acting face, one env step (two tokens) at a time:
  ([B,T,A], [B,T,O])."""
  policy = agent.policy(params)
  A = agent.num_actions

  def episode(actions, intervened, observations):
    def body(carry, step):
      a, i, o = step
      action_logits = policy.action_logits(carry)
      # The observation prediction is the module's output on the action token, here from
      # the same two-token call that `observe` makes.
      module_carry = carry[0]
      step_tokens = jnp.stack([tokens.action_token(a, i, A), tokens.observation_token(o, A)])
      _, _, obs_logits = agent._step(params, module_carry, step_tokens)
      return policy.observe(carry, a, i, o), (action_logits, obs_logits[0])
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
  want_a, want_o = agent.unroll(params, traj)
  got_a, got_o = jax.jit(acting_logits, static_argnums=0)(agent, params, traj)
  np.testing.assert_allclose(got_a, want_a, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(got_o, want_o, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("position", ["rope", "none"])
@pytest.mark.parametrize("task_name", ["bandit", "padlock"])
def test_transformer_positions_act_as_they_learn(position, task_name):
  """Rotary and position-free transformers: the KV cache holds the same keys as the full pass."""
  task = tasks.make(task_name, **TASKS[task_name])
  agent = agents.make("transformer", task, position=position, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  assert "pos_embed" not in params
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 8, expert_prob=0.5)
  want_a, want_o = agent.unroll(params, traj)
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


def test_author_changes_the_prediction():
  """do(a) and a are different symbols: swapping the author of one action changes the logits."""
  task = tasks.make("bandit", horizon=3)
  agent = agents.make("transformer", task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, agent.policy(params), jax.random.PRNGKey(1), 2, expert_prob=0.0)
  flipped = traj._replace(intervened=traj.intervened.at[:, 0].set(False))
  a1, _ = agent.unroll(params, traj)
  a2, _ = agent.unroll(params, flipped)
  np.testing.assert_allclose(a1[:, 0], a2[:, 0])  # a_1 is predicted before it is seen
  assert not np.allclose(a1[:, 1], a2[:, 1])


def test_token_encoding():
  x = tokens.encode(jnp.array([[2, 0]]), jnp.array([[True, False]]), jnp.array([[1, 0]]), 3)
  # BOS, do(a=2)=3, o=1 -> 1+6+1=8, expert a=0 -> 1+3+0=4
  np.testing.assert_array_equal(x, [[0, 3, 8, 4]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="rnn"), "unknown agent kind 'rnn'"),
    (dict(kind="lstm", hidden=0), "'hidden' must be a positive integer"),
    (dict(kind="transformer", width=10, num_heads=4), "divisible"),
    (dict(kind="transformer", position="alibi"), "unknown 'position' 'alibi'"),
    (dict(kind="transformer", attention_chunk=2.5), "'attention_chunk' must be a non-negative"),
    (dict(kind="lstm", lstm_kernel="cuda"), "unknown 'lstm_kernel' 'cuda'"),
    (dict(kind="lstm", lstm_kernel="pallas", hidden=24), "power of two >= 16, got 24"),
    (dict(kind="lstm", lstm_kernel="pallas", fused_lstm=False), "needs fused_lstm=True"),
    (dict(kind="transformer", attention_kernel="cuda"), "unknown 'attention_kernel' 'cuda'"),
    (dict(kind="transformer", attention_kernel="pallas", width=32, num_heads=4),
     "width / num_heads a power of two >= 16, got 8"),
    (dict(kind="transformer", attention_kernel="pallas", attention_chunk=8),
     "attends without chunks"),
    (dict(kind="transformer", attention_kernel="pallas", cache_segments=2),
     "set cache_segments=1"),
])
def test_bad_agent_config(kwargs, match):
  with pytest.raises(ValueError, match=match):
    agents.make(task=tasks.make("bandit"), **kwargs)


@pytest.mark.parametrize("position,remat", [("learned", False), ("rope", True)])
def test_chunked_attention_changes_no_number(position, remat):
  """`attention_chunk` attends a few queries at a time, each query reading keys only up to
  its chunk's end: the logits, loss and gradient are the plain pass's, whether or not the
  chunk divides the sequence (2T = 12 tokens here), down to one query per chunk."""
  task = tasks.make("bandit", horizon=6)
  plain = agents.make("transformer", task, position=position, **SIZES)
  params = plain.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, plain.policy(params), jax.random.PRNGKey(1), 8)

  def loss_and_grad(agent):
    def loss(p):
      a, o = agent.unroll(p, traj)
      return losses.teaching_loss(a, o, traj, factual_weight=0.5)[0], (a, o)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

  (want_loss, want_logits), want_grad = loss_and_grad(plain)
  for chunk in (1, 5, 12):
    agent = agents.make("transformer", task, position=position, remat=remat,
                        attention_chunk=chunk, **SIZES)
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


def test_cache_segments_change_no_number():
  """`cache_segments=S`: the transformer acts in S loops over segments of the horizon, its KV
  cache in S blocks, a step attending only to the blocks filled so far. The rollout is the
  one-loop rollout (padlock, mixed authors, episodes ending early), for S = 3, which does not
  divide T = 7, and S = 7, one step per segment; replayed through the policy's own `observe`
  (which writes whichever block holds the position) the logits are the learning pass's. And
  the attention products shrink by exactly the unread slots: a step of segment [start, end)
  reads 2·end + 1 of the 2T + 1 slots, with one query per layer per token except in the top
  layer, which attends for the last token only."""
  task = tasks.make("padlock", num_switches=4, num_secret=2, epsilon=0.1, horizon=7)
  make = lambda S: agents.make("transformer", task, cache_segments=S, **SIZES)
  params = make(1).init(jax.random.PRNGKey(0))
  braid = lambda S: rollout.braid(task, make(S).policy(params), jax.random.PRNGKey(1), 16,
                                  0.5)
  want = jax.jit(lambda: braid(1))()
  assert bool(want.done.any()) and bool(want.intervened.any() & ~want.intervened.all())
  for S in (3, 7):
    jax.tree.map(np.testing.assert_array_equal, jax.jit(lambda: braid(S))(), want)
  agent = make(3)
  assert agent.segment_ends == (2, 5, 7) and agent.module.cache_ends == (5, 11, 15)
  assert make(50).segment_ends == tuple(range(1, 8))
  got_a, got_o = jax.jit(acting_logits, static_argnums=0)(agent, params, want)
  want_a, want_o = agent.unroll(params, want)
  np.testing.assert_allclose(got_a, want_a, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(got_o, want_o, atol=2e-5, rtol=1e-5)

  T, width, layers = task.horizon, SIZES["width"], SIZES["num_layers"]
  queries = 2 * (layers - 1) + 1
  unread = sum((end - start) * (2 * T - 2 * end) for start, end in zip([0, 2, 5], [2, 5, 7]))
  saved = benchmark.matmul_flops(lambda: braid(1)) - benchmark.matmul_flops(lambda: braid(3))
  assert saved == 16 * unread * queries * 2 * 2 * width


def test_a_segment_reads_only_the_cache_blocks_it_fills():
  """With NaN in every cache block after the segment's, the segment's policy still gives
  the one-block policy's logits on a clean cache: it never read those blocks. (The policy
  outside segments does read them all: a masked NaN value poisons its attention sum,
  0 · NaN = NaN.)"""
  task = tasks.make("bandit", horizon=6)
  plain = agents.make("transformer", task, **SIZES).policy
  agent = agents.make("transformer", task, cache_segments=3, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  policy, want_policy = agent.policy(params), plain(params)
  assert [end for end, _ in policy.segments] == [2, 4, 6]
  true = jnp.asarray(True)

  def poisoned(carry, segment):
    (keys, values, pos), logits, states = carry
    poison = lambda blocks: blocks[:segment + 1] + tuple(jnp.full_like(b, jnp.nan)
                                                         for b in blocks[segment + 1:])
    return ((tuple(map(poison, keys)), tuple(map(poison, values)), pos), logits, states)

  carry, want = policy.initial_carry(), want_policy.initial_carry()
  for t, (a, o) in enumerate([(0, 1), (2, 0), (1, 1), (3, 0), (0, 0)]):
    a, o, segment = jnp.int32(a), jnp.int32(o), t // 2
    want = want_policy.observe(want, a, true, o)
    dirty = poisoned(carry, segment)
    got = policy.segments[segment][1].observe(dirty, a, true, o)
    np.testing.assert_allclose(policy.action_logits(got), want_policy.action_logits(want),
                               rtol=1e-6, atol=1e-6)
    if segment < 2:
      assert np.isnan(policy.action_logits(policy.observe(dirty, a, true, o))).all()
    carry = policy.segments[segment][1].observe(carry, a, true, o)


def test_remat_and_unroll_change_no_number():
  """The speed options compute the same function: transformer remat (same loss and gradient),
  recurrent learning-scan unrolling and rollout unrolling (same trajectory and logits)."""
  task = tasks.make("bandit", horizon=5)
  plain = agents.make("transformer", task, **SIZES)
  params = plain.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, plain.policy(params), jax.random.PRNGKey(1), 4)
  loss = lambda agent: jax.value_and_grad(lambda p: jnp.sum(agent.unroll(p, traj)[0] ** 2))
  remat = agents.make("transformer", task, remat=True, **SIZES)
  want, got = loss(plain)(params), loss(remat)(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), want, got)

  lstm = agents.make("lstm", task, **SIZES)
  params = lstm.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, lstm.policy(params), jax.random.PRNGKey(1), 4)
  traj3 = rollout.braid(task, lstm.policy(params), jax.random.PRNGKey(1), 4, unroll=3)
  jax.tree.map(np.testing.assert_array_equal, traj, traj3)
  unrolled = agents.make("lstm", task, unroll=3, **SIZES)
  np.testing.assert_allclose(unrolled.unroll(params, traj)[0], lstm.unroll(params, traj)[0],
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("task_name", ["bandit", "padlock"])
def test_fused_lstm_pass_equals_the_reference(task_name):
  """The LSTM's batched pass with its hand-written backward (`recurrent.lstm_hidden`) gives
  the reference per-episode autodiff pass's loss and gradient, on mixed-author trajectories
  with episodes that end early (padlock), for both loss weights."""
  task = tasks.make(task_name, **TASKS[task_name])
  reference = agents.make("lstm", task, fused_lstm=False, **SIZES)
  fused = agents.make("lstm", task, **SIZES)
  params = reference.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, fused.policy(params), jax.random.PRNGKey(1), 8, expert_prob=0.5)
  # The acting face is shared: both agents roll out the same trajectory, bit for bit.
  jax.tree.map(np.testing.assert_array_equal, traj,
               rollout.braid(task, reference.policy(params), jax.random.PRNGKey(1), 8,
                             expert_prob=0.5))
  assert task_name != "padlock" or not bool(traj.mask.all())

  def loss_and_grad(agent):
    def loss(p):
      a, o = agent.unroll(p, traj)
      return losses.teaching_loss(a, o, traj, counterfactual_weight=1.0, factual_weight=0.5)[0]
    return jax.jit(jax.value_and_grad(loss))(params)

  (want_loss, want_grad), (got_loss, got_grad) = loss_and_grad(reference), loss_and_grad(fused)
  np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               got_grad, want_grad)


def _lstms_xla_and_pallas():
  """The padlock task, its LSTM agent with XLA's and with the Pallas kernels, and parameters
  whose output bias is not 0 (as at init, where it would hide the head's bias)."""
  task = tasks.make("padlock", **TASKS["padlock"])
  xla = agents.make("lstm", task, **SIZES)
  pallas = agents.make("lstm", task, lstm_kernel="pallas", **SIZES)
  params = xla.init(jax.random.PRNGKey(0))
  params["b_out"] = 0.3 * jax.random.normal(jax.random.PRNGKey(5), params["b_out"].shape)
  return task, xla, pallas, params


@pytest.mark.usefixtures("float32_products")
def test_pallas_lstm_kernels_equal_the_xla_pass():
  """`lstm_kernel="pallas"` (interpreted here: no GPU) gives the XLA pass's loss and gradient,
  learning from its own forward kernel or from the states acting recorded; 70 episodes, so
  the last block is padded, with episodes that end early (padlock)."""
  task, xla, pallas, params = _lstms_xla_and_pallas()
  traj = rollout.braid(task, xla.policy(params, record_states=True), jax.random.PRNGKey(1), 70,
                       expert_prob=0.5)
  assert not bool(traj.mask.all())

  def loss_and_grad(agent, traj):
    def loss(p):
      a, o = agent.unroll(p, traj)
      return losses.teaching_loss(a, o, traj, counterfactual_weight=1.0, factual_weight=0.5)[0]
    return jax.jit(jax.value_and_grad(loss))(params)

  want_loss, want_grad = loss_and_grad(xla, traj._replace(acting_states=None))
  for recorded in (False, True):  # the forward kernel, or the states acting recorded
    got_loss, got_grad = loss_and_grad(
        pallas, traj if recorded else traj._replace(acting_states=None))
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 got_grad, want_grad)


@pytest.mark.usefixtures("float32_products")
def test_pallas_lstm_acting_equals_the_xla_cell():
  """With `lstm_kernel="pallas"` acting runs an env step as one kernel over the batch
  (`lstm_kernel.act`, interpreted here): the same action logits as XLA's cell step by step,
  70 episodes so the last block is padded; the same rollout; and, vmapped over parameters as
  a sweep does, the same rollouts again."""
  task, xla, pallas, params = _lstms_xla_and_pallas()
  traj = rollout.braid(task, xla.policy(params), jax.random.PRNGKey(1), 70, expert_prob=0.5)
  replay = jax.jit(acting_logits, static_argnums=0)
  got, want = replay(pallas, params, traj)[0], replay(xla, params, traj)[0]
  assert float(jnp.max(jnp.abs(got - want))) > 0  # the kernel ran: its sums are gate by gate
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  braid = lambda agent, p, batch: rollout.braid(task, agent.policy(p), jax.random.PRNGKey(2),
                                                batch)
  go = jax.jit(braid, static_argnums=(0, 2))
  assert (go(pallas, params, 70).actions == go(xla, params, 70).actions).all()
  sweep = jax.jit(lambda agent, ps: jax.vmap(lambda p: braid(agent, p, 40).actions)(ps),
                  static_argnums=0)
  seeds = jax.vmap(xla.init)(jax.random.split(jax.random.PRNGKey(3), 2))
  assert (sweep(pallas, seeds) == sweep(xla, seeds)).all()


@pytest.mark.usefixtures("float32_products")
def test_lstm_kernel_block_warps_and_stages_are_tunable(monkeypatch):
  """`lstm_kernel.configure` (`launch.benchmark --lstm_block --lstm_warps --lstm_stages`)
  refuses settings Triton cannot take, changing nothing; with a block of 16 episodes, 2 warps
  and 2 stages (3 programs for 40, the last padded) the kernels give the XLA pass's logits and
  gradient."""
  tuning = lambda: (lstm_kernel.BLOCK, lstm_kernel.NUM_WARPS, lstm_kernel.NUM_STAGES)
  for name, value in zip(("BLOCK", "NUM_WARPS", "NUM_STAGES"), tuning()):
    monkeypatch.setattr(lstm_kernel, name, value)
  before = tuning()
  power, stages = "a power of two", "an integer in 1…4"
  for bad, match in ((dict(block=24), power), (dict(block=8), power), (dict(block=True), power),
                     (dict(num_warps=3), power), (dict(num_warps=64), power),
                     (dict(block=16, num_warps=0), power), (dict(num_stages=0), stages),
                     (dict(num_stages=5), stages), (dict(block=32, num_stages=2.0), stages)):
    with pytest.raises(ValueError, match=f"must be {match}"):
      lstm_kernel.configure(**bad)
    assert tuning() == before
  lstm_kernel.configure(block=16, num_warps=2, num_stages=2)
  assert tuning() == (16, 2, 2)
  V, H, K, L, B = 13, 16, 7, 5, 40
  keys = jax.random.split(jax.random.PRNGKey(0), 7)
  weights = (0.5 * jax.random.normal(keys[0], (V, 4 * H)),
             0.3 * jax.random.normal(keys[1], (H, 4 * H)),
             0.1 * jax.random.normal(keys[2], (4 * H,)),
             0.3 * jax.random.normal(keys[3], (H, K)), 0.1 * jax.random.normal(keys[4], (K,)))
  tokens = jax.random.randint(keys[5], (L, B), 0, V)
  d_out = jax.random.normal(keys[6], (L, B, K))  # an arbitrary linear loss of the logits
  xla = lambda *w: recurrent.lstm_hidden(*w[:3], tokens, 1) @ w[3] + w[4]
  pallas = lambda *w: lstm_kernel.logits(*w, tokens, None)
  loss = lambda fn: jax.value_and_grad(lambda *w: jnp.sum(d_out * fn(*w)), range(5))(*weights)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
               loss(pallas), loss(xla))


def test_pallas_lstm_kernels_lower_to_triton(monkeypatch):
  """On a GPU the kernels compile through Triton: lowered here for CUDA (no GPU needed,
  nothing runs), the learning pass's gradient holds two Triton calls, forward and backward,
  and an acting step one."""
  monkeypatch.setattr(lstm_kernel, "_on_gpu", lambda: True)
  V, H, L, B = 13, 64, 40, 256
  tokens_ = jnp.zeros((L, B), jnp.int32)
  weights = (jnp.zeros((V, 4 * H)), jnp.zeros((H, 4 * H)), jnp.zeros((4 * H,)),
             jnp.zeros((H, 7)), jnp.zeros((7,)))
  grad = jax.jit(jax.grad(lambda *w: jnp.sum(lstm_kernel.logits(*w, tokens_, None)), range(5)))
  text = grad.trace(*weights).lower(lowering_platforms=("cuda",)).as_text()
  assert text.count("custom_call @__gpu$xla.gpu.triton") == 2
  assert 'name = "_forward_kernel"' in text and 'name = "_backward_kernel"' in text
  # Acting: an env step of B episodes, vmapped as the rollout does, is one kernel.
  step = jax.vmap(recurrent.act, (None,) * 6 + (0, 0, 0))
  text = jax.jit(step).trace(
      *weights, lstm_kernel.act_weights(*weights), jnp.zeros((B, H)), jnp.zeros((B, H)),
      jnp.zeros((B, 2), jnp.int32)).lower(lowering_platforms=("cuda",)).as_text()
  assert text.count("custom_call @__gpu$xla.gpu.triton") == 1
  assert 'name = "_act_kernel"' in text


@pytest.mark.usefixtures("float32_products")
@pytest.mark.parametrize("position,packed", [("learned", False), ("rope", True)])
def test_pallas_attention_equals_the_xla_pass(position, packed):
  """`attention_kernel="pallas"` (interpreted here: no GPU) gives the XLA pass's logits, loss
  and gradient: L = 2T + 1 = 9 tokens padded to a block of 32, or episodes packed end to end
  (segment ids; padlock episodes end early), the latter under `remat`. Acting, its kernel
  reading the KV cache, gives the same logits step by step."""
  task = tasks.make("padlock", num_switches=4, num_secret=2, epsilon=0.3)
  sizes = dict(width=32, num_layers=2, num_heads=2)  # heads of 16, Triton's least
  xla = agents.make("transformer", task, position=position, **sizes)
  pallas = agents.make("transformer", task, position=position, attention_kernel="pallas",
                       remat=packed, **sizes)
  params = xla.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, xla.policy(params), jax.random.PRNGKey(1), 12, 0.5)
  rows = packing.pack_episodes(traj.mask, 8) if packed else None
  assert rows is None or bool(rows.fits)

  def loss_and_grad(agent):
    def loss(p):
      a, o = agent.unroll(p, traj, packed=rows)
      return losses.teaching_loss(a, o, traj, factual_weight=0.5)[0], (a, o)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

  mask = np.asarray(traj.mask)
  want = loss_and_grad(xla)
  assert_same_pass(loss_and_grad(pallas), want, mask)
  for got, want in zip(jax.jit(acting_logits, static_argnums=0)(pallas, params, traj),
                       want[0][1]):
    np.testing.assert_allclose(np.asarray(got)[mask], np.asarray(want)[mask],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("float32_products")
def test_attention_kernel_block_is_tunable(monkeypatch):
  """`attention_kernel.configure` (`launch.benchmark --attention_block`) refuses blocks Triton
  cannot take, changing nothing; with blocks of 16, a causal pass over L = 41 tokens (3
  blocks, the last padded) and an acting step's two queries over the cache (48 slots) give
  `transformer.attention`'s outputs."""
  monkeypatch.setattr(attention_kernel, "BLOCK", attention_kernel.BLOCK)
  before = attention_kernel.BLOCK
  for bad in (24, 8, True, 0, 16.0):
    with pytest.raises(ValueError, match="must be a power of two >= 16"):
      attention_kernel.configure(bad)
    assert attention_kernel.BLOCK == before
  attention_kernel.configure(16)
  assert attention_kernel.BLOCK == 16 and attention_kernel.cache_len(41) == 48
  L, H, D = 41, 2, 16
  q, k, v = jax.random.normal(jax.random.PRNGKey(0), (3, L, H, D))
  heads_first = lambda x: jnp.swapaxes(x, 0, 1)
  causal = jnp.tril(jnp.ones((L, L), bool))
  np.testing.assert_allclose(attention_kernel.causal_attention(q, k, v),
                             transformer.attention(q, heads_first(k), heads_first(v), causal),
                             rtol=1e-5, atol=1e-6)
  cache_k, cache_v = (jnp.pad(heads_first(x), ((0, 0), (0, 48 - L), (0, 0))) for x in (k, v))
  got = attention_kernel.cached_attention(q[-2:], cache_k, cache_v, L - 1)
  want = transformer.attention(q[-2:], cache_k, cache_v, jnp.pad(causal[-2:], ((0, 0), (0, 7))))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pallas_attention_lowers_to_triton(monkeypatch):
  """On a GPU the attention kernels compile through Triton: lowered here for CUDA (nothing
  runs), the gradient of a causal pass holds the forward kernel and the backward's two, and
  an acting step over 8 episodes' caches one kernel."""
  monkeypatch.setattr(attention_kernel, "_on_gpu", lambda: True)
  lower = lambda f, *args: jax.jit(f).trace(*args).lower(
      lowering_platforms=("cuda",)).as_text()
  q = jnp.zeros((8, 41, 4, 16))
  text = lower(jax.grad(lambda *x: jnp.sum(jax.vmap(attention_kernel.causal_attention)(*x)),
                        (0, 1, 2)), q, q, q)
  assert text.count("custom_call @__gpu$xla.gpu.triton") == 3
  assert 'name = "mha_forward"' in text and 'name = "mha_backward"' in text
  cache = jnp.zeros((8, 4, attention_kernel.cache_len(41), 16))
  text = lower(jax.vmap(attention_kernel.cached_attention), q[:, :2], cache, cache,
               jnp.arange(8))
  assert text.count("custom_call @__gpu$xla.gpu.triton") == 1
  assert 'name = "cached_attention"' in text


@pytest.mark.parametrize("task_name", ["bandit", "padlock"])
def test_learning_from_the_acting_states(task_name):
  """Fused act-and-learn: the states the LSTM records while acting are the learning pass's own
  forward states, and learning from them gives its loss and gradient. Recording changes
  nothing else in the rollout."""
  task = tasks.make(task_name, **TASKS[task_name])
  agent = agents.make("lstm", task, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(1)
  plain = rollout.braid(task, agent.policy(params), key, 8, expert_prob=0.5)
  traj = rollout.braid(task, agent.policy(params, record_states=True), key, 8, expert_prob=0.5)
  assert plain.acting_states is None
  jax.tree.map(np.testing.assert_array_equal, traj._replace(acting_states=None), plain)

  # The recorded states, in the learning pass's layout, against its forward recurrence.
  module = agent.module.bind({"params": params})
  inputs = tokens.encode(traj.actions, traj.intervened, traj.observations, task.num_actions)
  want_h, want_c = recurrent._lstm_states(module._input_table(), params["w"][SIZES["hidden"]:],
                                          params["b"], inputs.T, 1)
  got_h, got_c = agents._time_major_states(*traj.acting_states)
  np.testing.assert_allclose(got_h, want_h, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(got_c, want_c, rtol=1e-6, atol=1e-6)

  def loss_and_grad(trajectory):
    def loss(p):
      a, o = agent.unroll(p, trajectory)
      return losses.teaching_loss(a, o, trajectory, factual_weight=0.5)[0]
    return jax.jit(jax.value_and_grad(loss))(params)

  (want_loss, want_grad), (got_loss, got_grad) = loss_and_grad(plain), loss_and_grad(traj)
  np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               got_grad, want_grad)


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
  rows = int(np.ceil(2 * mask.sum() / (2 * task.horizon))) + 1  # one more than the minimum
  packed = packing.pack_episodes(traj.mask, rows)
  assert rows < 32 // 2 and bool(packed.fits)

  @jax.jit
  def loss_and_grad(p, packed):
    def loss(p):
      a, o = (agent if packed is None else packed_agent).unroll(p, traj, outcome, packed=packed)
      return losses.teaching_loss(a, o, traj, factual_weight=0.5)[0], (a, o)
    return jax.value_and_grad(loss, has_aux=True)(p)

  assert_same_pass(loss_and_grad(params, packed), loss_and_grad(params, None), mask)
  with pytest.raises(ValueError, match="only the transformer packs"):
    agents.make("lstm", task, **SIZES).unroll(params, traj, packed=packed)
