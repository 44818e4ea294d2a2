"""The exact oracle against the papers' numbers and against brute-force enumeration."""

import itertools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import oracle, tasks


# --- the papers' facts ---------------------------------------------------------------------------

def test_prize_or_frog_conditioning_vs_intervening():
  """[O] §2: P(o=+1 | a) = 1 but P(o=+1 | do(a)) = 1/2."""
  task = tasks.make("prize_or_frog")
  for a in (0, 1):
    np.testing.assert_allclose(oracle.next_observation_probs(task, [a], [], False), [0, 1],
                               atol=1e-6)
    np.testing.assert_allclose(oracle.next_observation_probs(task, [a], [], True), [0.5, 0.5],
                               atol=1e-6)


def test_bandit_conditional_value_from_notebook():
  """[N]: P(a3 = arm 1 | a1=1, o1=1, a2=2, o2=0) = 0.491304... under conditioning."""
  task = tasks.make("bandit")
  probs = oracle.next_action_probs(task, [0, 1], [1, 0], intervened=False)
  np.testing.assert_allclose(probs[0], 0.491304347826087, rtol=1e-5)
  # The same history as interventions: only the rewards are evidence.
  # weights ∝ Q(o1=1|θ,a1=0) Q(o2=0|θ,a2=1) = (.75·.75, .25·.25, .25·.75 ×3) = (9, 1, 3, 3, 3)/19
  expected_w = np.array([9, 1, 3, 3, 3]) / 19
  np.testing.assert_allclose(oracle.next_action_probs(task, [0, 1], [1, 0], True),
                             0.1 + 0.5 * expected_w, rtol=1e-5)
  np.testing.assert_allclose(oracle.posterior(task, [0, 1], [1, 0], True), expected_w, rtol=1e-5)


def test_empty_history_is_the_prior_predictive():
  task = tasks.make("bandit", prior=[0.5, 0.5, 0, 0, 0])
  np.testing.assert_allclose(oracle.next_action_probs(task, [], []),
                             [0.35, 0.35, 0.1, 0.1, 0.1], rtol=1e-5)


# --- brute force on random tabular tasks ----------------------------------------------------------

def random_task(rng, num_latents, num_states, num_actions, num_obs, zeros):
  def table(*shape):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    if zeros:  # exercise impossible events (-inf logits) while keeping rows valid
      p = np.where(rng.random(p.shape) < 0.3, 0.0, p)
      p[..., 0] += (p.sum(-1) == 0)
      p /= p.sum(-1, keepdims=True)
    return p
  transitions = rng.integers(0, num_states, size=(num_states, num_actions, num_obs))
  return tasks.make_tabular(rng.dirichlet(np.ones(num_latents)),
                            table(num_latents, num_states, num_actions),
                            table(num_latents, num_states, num_actions, num_obs),
                            horizon=4, transitions=transitions)


def sample_history(rng, task, length, intervened):
  """A history with positive probability: θ ~ prior, experts' actions ~ Q, agent's uniform."""
  prior, expert, obs = (np.asarray(x) for x in (task.prior, task.expert, task.observation))
  trans = np.asarray(task.transitions)
  theta, s = rng.choice(len(prior), p=prior), task.initial
  actions, observations = [], []
  for t in range(length + 1):
    a = rng.integers(task.num_actions) if intervened[t] else rng.choice(
        task.num_actions, p=expert[theta, s])
    o = rng.choice(task.num_observations, p=obs[theta, s, a])
    actions.append(int(a)), observations.append(int(o))
    s = trans[s, a, o]
  return actions, observations


def brute_force(task, actions, observations, intervened, t):
  """Enumerates every (θ, a_1, o_1, …, a_{t+1}, o_{t+1}) of the mutilated model.

  In the mutilated model an intervened action's mechanism is replaced by the constant it was set
  to (do); then P(a_{t+1} | h) and P(o_{t+1} | h, a_{t+1}) are ratios of sums over the joint.
  """
  prior, expert, obs = (np.asarray(x) for x in (task.prior, task.expert, task.observation))
  trans = np.asarray(task.transitions)
  A, O = task.num_actions, task.num_observations
  joint = {}
  for theta in range(len(prior)):
    for seq in itertools.product(range(A), range(O), repeat=t + 1):
      p, s = prior[theta], task.initial
      for tau in range(t + 1):
        a, o = seq[2 * tau], seq[2 * tau + 1]
        p *= float(a == actions[tau]) if intervened[tau] else expert[theta, s, a]
        p *= obs[theta, s, a, o]
        s = trans[s, a, o]
      joint[seq] = joint.get(seq, 0.0) + p
  prefix = tuple(itertools.chain(*zip(actions[:t], observations[:t])))
  matching = {k: v for k, v in joint.items() if k[:2 * t] == prefix}
  p_next_action = _brute_next_action(task, actions, observations, intervened, t)
  denom = sum(v for k, v in matching.items() if k[2 * t] == actions[t])
  p_next_obs = np.array([sum(v for k, v in matching.items()
                             if k[2 * t] == actions[t] and k[2 * t + 1] == o) for o in range(O)])
  return p_next_action, p_next_obs / denom


def _brute_next_action(task, actions, observations, intervened, t):
  """P(a_{t+1} | h_t) by enumeration; a_{t+1} keeps its own (expert) mechanism."""
  flags = list(intervened[:t]) + [False]
  prior, expert, obs = (np.asarray(x) for x in (task.prior, task.expert, task.observation))
  trans = np.asarray(task.transitions)
  A, O = task.num_actions, task.num_observations
  totals = np.zeros(A)
  for theta in range(len(prior)):
    for seq in itertools.product(range(A), range(O), repeat=t):
      if list(seq) != list(itertools.chain(*zip(actions[:t], observations[:t]))):
        continue
      for a_next in range(A):
        p, s = prior[theta], task.initial
        for tau in range(t):
          a, o = seq[2 * tau], seq[2 * tau + 1]
          p *= float(a == actions[tau]) if flags[tau] else expert[theta, s, a]
          p *= obs[theta, s, a, o]
          s = trans[s, a, o]
        totals[a_next] += p * expert[theta, s, a_next]
  return totals / totals.sum()


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), num_latents=st.integers(1, 3),
                  num_states=st.integers(1, 3), num_actions=st.integers(2, 3),
                  num_obs=st.integers(2, 3), t=st.integers(0, 2), zeros=st.booleans())
def test_oracle_equals_brute_force_enumeration(seed, num_latents, num_states, num_actions,
                                               num_obs, t, zeros):
  rng = np.random.default_rng(seed)
  task = random_task(rng, num_latents, num_states, num_actions, num_obs, zeros)
  intervened = [bool(b) for b in rng.integers(0, 2, size=t + 1)]
  actions, observations = sample_history(rng, task, t, intervened)
  want_action, want_obs = brute_force(task, actions, observations, intervened, t)
  got_action = oracle.next_action_probs(task, actions[:t], observations[:t], intervened[:t])
  got_obs = oracle.next_observation_probs(task, actions[:t + 1], observations[:t],
                                          intervened[:t + 1])
  np.testing.assert_allclose(got_action, want_action, atol=2e-5)
  np.testing.assert_allclose(got_obs, want_obs, atol=2e-5)


def test_conditioning_equals_intervening_once_theta_is_observed():
  """After an observation that reveals θ, an action's author no longer matters."""
  rng = np.random.default_rng(0)
  L, A = 3, 3
  # State 0: any action reveals θ (o = θ) and moves to state 1; state 1 is a random bandit.
  expert = rng.dirichlet(np.ones(A), size=(L, 2))
  obs = np.zeros((L, 2, A, L))
  obs[np.arange(L), 0, :, np.arange(L)] = 1.0
  obs[:, 1] = rng.dirichlet(np.ones(L), size=(L, A))
  transitions = np.ones((2, A, L), int)
  task = tasks.make_tabular(rng.dirichlet(np.ones(L)), expert, obs, horizon=5,
                            transitions=transitions)
  actions, observations = [2, 0, 1, 1], [1, 2, 0, 1]
  for t in range(1, 4):
    a_c = oracle.next_action_probs(task, actions[:t], observations[:t], False)
    a_i = oracle.next_action_probs(task, actions[:t], observations[:t], True)
    np.testing.assert_allclose(a_c, a_i, atol=1e-6)
    o_c = oracle.next_observation_probs(task, actions[:t + 1], observations[:t], False)
    o_i = oracle.next_observation_probs(task, actions[:t + 1], observations[:t], True)
    np.testing.assert_allclose(o_c, o_i, atol=1e-6)
  # ...whereas before θ is revealed they differ.
  assert not np.allclose(oracle.next_observation_probs(task, [0], [], False),
                         oracle.next_observation_probs(task, [0], [], True), atol=1e-3)


# --- batched form, jit and vmap -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bandit", "padlock"])
def test_batched_predictives_equal_per_prefix_calls_and_eager(name):
  task = tasks.make(name, horizon=6)
  rng = np.random.default_rng(1)
  B, T = 3, 6
  actions = rng.integers(0, task.num_actions, size=(B, T))
  observations = np.zeros((B, T), int)
  intervened = rng.integers(0, 2, size=(B, T)).astype(bool)
  jitted = jax.jit(oracle.predictives, static_argnums=0)(task, actions, observations, intervened)
  with jax.disable_jit():
    eager = oracle.predictives(task, actions, observations, intervened)
  for x, y in zip(jitted, eager):
    np.testing.assert_allclose(x, y, atol=1e-6)
  for b in range(B):
    for t in range(T):
      np.testing.assert_allclose(
          jitted.action_probs[b, t],
          oracle.next_action_probs(task, actions[b, :t], observations[b, :t],
                                   intervened[b, :t]), atol=1e-6)
      np.testing.assert_allclose(
          jitted.observation_probs[b, t],
          oracle.next_observation_probs(task, actions[b, :t + 1], observations[b, :t],
                                        intervened[b, :t + 1]), atol=1e-6)


def test_padlock_oracle_after_failed_flips():
  """n=4, m=2, public bits (1, 0). Flipping switch 0 (public, correct) opens nothing unless the
  secret is 00; after that failure the interventional posterior is uniform on the other 3."""
  task = tasks.make("padlock", num_switches=4, num_secret=2)
  post = oracle.posterior(task, [0], [0], True)
  np.testing.assert_allclose(post, [0, 1 / 3, 1 / 3, 1 / 3], atol=1e-6)
  # The expert's next flip: secret 01 (θ=1: switch 2 on) -> flip 2; θ=2 (switch 3) -> 3; θ=3 -> 2.
  np.testing.assert_allclose(oracle.next_action_probs(task, [0], [0], True),
                             [0, 0, 2 / 3, 1 / 3], atol=1e-6)
