"""Self-retraining ([D] §4.1): outcome tokens, relabelling, the delusion measure, the loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from causal_meta import agents, retrain, rollout, tasks
from causal_meta.agents import tokens

SIZES = dict(width=16, num_layers=1, num_heads=2)


def fixed_policy(sequences):
  """Plays actions[t] at step t (one row of `sequences` per episode via the carry)."""
  seqs = jnp.asarray(sequences, jnp.int32)
  return rollout.Policy(
      initial_carry=lambda: jnp.zeros((), jnp.int32),
      action_logits=lambda t: jnp.where(jnp.arange(3) == seqs[t], 0.0, -1e9),
      observe=lambda t, a, i, o: t + 1)


def hand_case():
  """Padlock n=3, m=1 (code 10θ), θ = 1. Episode A flips 0 then 2; episode B flips 2 then 0."""
  task = tasks.make("padlock", num_switches=3, num_secret=1)
  trajs = [rollout.braid(task, fixed_policy(seq), jax.random.PRNGKey(0), 1,
                         theta=jnp.array([1])) for seq in ([0, 2, 1, 1, 1], [2, 0, 1, 1, 1])]
  return task, jax.tree.map(lambda *x: jnp.concatenate(x), *trajs)


def test_outcome_tokens_extend_the_vocabulary():
  """The outcome start tokens are new symbols past a plain model's vocabulary, distinct from
  each other and from BOS, and like BOS they read no observation."""
  A, O = 3, 2
  plain = tokens.vocab_size(A, O)
  assert tokens.vocab_size(A, O, tokens.NUM_OUTCOMES) == plain + 2 * (O + 1)
  bos = int(tokens.start_token(-1, A, O))
  ids = {int(tokens.start_token(k, A, O)) for k in (tokens.FAILURE, tokens.SUCCESS)}
  assert bos < plain and len(ids) == 2 and all(plain <= i < plain + 2 * (O + 1) for i in ids)
  assert {int(tokens.split(i, O)[1]) for i in ids | {bos}} == {O}


def test_goal_conditioned_acting_equals_learning():
  task = tasks.make("padlock", num_switches=4, num_secret=2)
  agent = agents.make("transformer", task, author_tokens=False,
                      num_outcomes=tokens.NUM_OUTCOMES, **SIZES)
  params = agent.init(jax.random.PRNGKey(0))
  for outcome in (tokens.SUCCESS, tokens.FAILURE):
    policy = agent.policy(params, outcome)
    traj = rollout.braid(task, policy, jax.random.PRNGKey(1), 4)

    def replay(actions, observations):
      def body(carry, step):
        a, o = step
        return policy.observe(carry, a, jnp.array(True), o), policy.action_logits(carry)
      return jax.lax.scan(body, policy.initial_carry(), (actions, observations))[1]
    acting = jax.jit(jax.vmap(replay))(traj.actions, traj.observations)
    learning, _ = agent.teacher_force(params, traj, jnp.full((4,), outcome))
    np.testing.assert_allclose(acting, learning, atol=2e-5, rtol=1e-5)
  # The outcome token is read: success and failure starts predict differently.
  a_s, _ = agent.teacher_force(params, traj, jnp.full((4,), tokens.SUCCESS))
  a_f, _ = agent.teacher_force(params, traj, jnp.full((4,), tokens.FAILURE))
  assert not np.allclose(a_s, a_f)


def test_relabel_marks_opened_episodes_and_clones_actions():
  task, traj = hand_case()
  data = retrain.relabel(traj)
  np.testing.assert_array_equal(data.outcome, [tokens.SUCCESS, tokens.SUCCESS])
  np.testing.assert_array_equal(data.traj.expert_actions, traj.actions)
  assert not np.any(data.traj.intervened)
  # One random flip cannot open a lock two flips away (code 101θ from 0000): all failures.
  short = tasks.make("padlock", num_switches=4, num_secret=1, horizon=1)  # code 101θ
  data = retrain.random_play(short, jax.random.PRNGKey(0), 64)
  assert np.all(np.asarray(data.outcome) == tokens.FAILURE)


def test_demonstrations_always_open_the_lock_in_at_most_n_flips():
  task = tasks.make("padlock")
  data = retrain.demonstrations(task, jax.random.PRNGKey(0), 256)
  assert np.all(np.asarray(data.outcome) == tokens.SUCCESS)
  assert int(jnp.max(jnp.sum(data.traj.mask, 1))) <= task.num_switches


def test_delusion_on_a_hand_checked_case():
  task, traj = hand_case()
  np.testing.assert_array_equal(traj.mask[:, :3], [[1, 1, 0], [1, 1, 0]])
  np.testing.assert_array_equal(traj.observations[:, :2], [[0, 1], [0, 1]])
  # The model's P(open) at the two steps of each episode.
  p_open = jnp.array([[0.9, 0.5, 0.5, 0.5, 0.5], [0.2, 0.5, 0.5, 0.5, 0.5]])
  logits = jnp.log(jnp.stack([1 - p_open, p_open], -1))
  out = retrain.delusion_from_logits(task, traj, logits)
  # Exact interventional P(open): A: flip 0 -> 100 opens iff θ=0: 1/2; then (θ=1 known) 1.
  # B: flip 2 -> 001 never opens: 0 (and no information); flip 0 -> 101: 1/2.
  kl = lambda p, q: sum(pi * math.log(pi / qi) for pi, qi in ((p, q), (1 - p, 1 - q)) if pi)
  steps = [kl(0.5, 0.9), kl(1.0, 0.5), kl(0.0, 0.2), kl(0.5, 0.5)]
  np.testing.assert_allclose(out["delusion"], np.mean(steps), rtol=1e-5)
  # B's first step cannot open under any θ: excluded from the uncertain-step average.
  np.testing.assert_allclose(out["delusion_uncertain"], np.mean([steps[0], steps[1], steps[3]]),
                             rtol=1e-5)
  assert float(out["accuracy"]) == 1.0


def test_mixing_draws_rows_from_the_right_dataset():
  task = tasks.make("padlock", num_switches=4, num_secret=2)
  demos = retrain.demonstrations(task, jax.random.PRNGKey(0), 32)
  randoms = retrain.random_play(task, jax.random.PRNGKey(1), 32)
  key = jax.random.PRNGKey(2)
  only_new = retrain.sample_batch(key, randoms, 64, demos, mix=0.0)
  only_old = retrain.sample_batch(key, randoms, 64, demos, mix=1.0)
  # Demonstrations never flip a switch back; random play mostly does within 6 steps.
  flips_once = lambda a, m: jnp.all(jnp.bincount(a, m.astype(jnp.int32), length=4) <= 1)
  is_demo = lambda d: jax.vmap(flips_once)(d.traj.actions, d.traj.mask)
  assert np.all(is_demo(only_old))
  assert np.mean(is_demo(only_new)) < 0.5


def test_fit_lowers_the_loss_on_demonstrations():
  task = tasks.make("padlock", num_switches=4, num_secret=2)
  agent = agents.make("transformer", task, author_tokens=False,
                      num_outcomes=tokens.NUM_OUTCOMES, **SIZES)
  demos = retrain.demonstrations(task, jax.random.PRNGKey(0), 64)
  opt = optax.adam(3e-3)
  fit = retrain.make_fit(agent, opt, 32, 60)
  params = agent.init(jax.random.PRNGKey(1))
  _, _, metrics = fit(params, opt.init(params), jax.random.PRNGKey(2), demos, demos)
  assert float(metrics["loss"][-5:].mean()) < 0.5 * float(metrics["loss"][:5].mean())


def _brute_force_reference(task, actions, observations, t):
  """P(opens at t | steps before t, a_t, success within T) when uniformly random actions
  follow, by enumerating codes and action sequences with the padlock's rules written out."""
  n, A, T = task.num_switches, task.num_actions, task.horizon
  codes = [np.asarray(task.code(th)) for th in range(task.num_latents)]

  def apply(sw, s, a):
    if task.random_start and s <= n:  # reading steps set the start; the test step changes nothing
      return sw
    out = sw.copy()
    if a < n:
      out[a] ^= 1
    return out

  sw, consistent = np.zeros(n, int), np.ones(len(codes), bool)
  for s in range(t):
    if task.random_start and s < n:
      sw[s] = observations[s] - 2
      continue
    sw = apply(sw, s, actions[s])
    consistent &= np.array([np.all(sw == c) == (observations[s] == 1) for c in codes])
  after = apply(sw, t, actions[t])

  def p_later(start, steps, code):
    if steps == 0:
      return 0.0
    total = 0.0
    for a in range(A):
      nxt = apply(start, n + 1 if task.random_start else 0, a)
      total += 1.0 if np.all(nxt == code) else p_later(nxt, steps - 1, code)
    return total / A

  open_now = np.array([np.all(after == c) for c in codes], float)
  later = np.array([0.0 if o else p_later(after, T - 1 - t, c) for o, c in zip(open_now, codes)])
  w = consistent.astype(float)
  return np.sum(w * open_now) / np.sum(w * (open_now + (1 - open_now) * later))


def test_success_conditioned_reference_against_brute_force():
  """The Monte Carlo reference of the like-with-like delusion, with uniformly random play as the
  previous model, against exact enumeration of codes and continuations, on two small padlocks
  (switches from 0, and [D]'s random start read first)."""
  for task in (tasks.make("padlock", num_switches=3, num_secret=2, horizon=5),
               tasks.make("padlock", num_switches=3, num_secret=2, random_start=True,
                          horizon=4 + 4)):
    policy = rollout.uniform_policy(task)
    traj = rollout.braid(task, policy, jax.random.PRNGKey(0), 6)
    ref = np.asarray(jax.jit(lambda tr, k: retrain.success_conditioned_reference(
        task, policy, tr, k, 4000))(traj, jax.random.PRNGKey(1)))
    q = np.asarray(retrain.oracle.predictives(
        task, traj.actions, traj.observations,
        jnp.ones_like(traj.intervened)).observation_probs[..., 1])
    checked = 0
    for b in range(6):
      for t in range(task.horizon):
        if not traj.mask[b, t] or not 0 < q[b, t] < 1:
          continue
        want = _brute_force_reference(task, np.asarray(traj.actions[b]),
                                      np.asarray(traj.observations[b]), t)
        np.testing.assert_allclose(ref[b, t], want, atol=0.03, err_msg=f"{task} {b} {t}")
        checked += 1
    assert checked >= 5
