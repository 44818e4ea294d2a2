"""The braided-rollout engine samples from the task's mechanisms and records authors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import oracle, rollout, tasks


def test_demonstration_counterfactual_and_mixed_authors():
  task = tasks.make("bandit")
  policy = rollout.uniform_policy(task)
  key = jax.random.PRNGKey(0)
  demo = rollout.braid(task, policy, key, 512, expert_prob=1.0)
  assert not demo.intervened.any()
  np.testing.assert_array_equal(demo.actions, demo.expert_actions)
  cf = rollout.braid(task, policy, key, 512, expert_prob=0.0)
  assert cf.intervened.all()
  mixed = rollout.braid(task, policy, key, 512, expert_prob=0.3)
  assert abs(1 - float(mixed.intervened.mean()) - 0.3) < 0.02
  taken = np.where(mixed.intervened, mixed.actions, mixed.expert_actions)
  np.testing.assert_array_equal(taken, mixed.actions)


def test_samples_follow_the_mechanisms():
  """Expert actions ~ Q(ā|θ), observations ~ Q(o|θ,a) for the action actually taken."""
  task = tasks.make("bandit")
  traj = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(1), 4000, 0.0)
  theta = np.asarray(traj.theta)[:, None]
  expert_hits = np.mean(np.asarray(traj.expert_actions) == theta)
  assert abs(expert_hits - 0.6) < 0.01
  pulled_best = np.asarray(traj.actions) == theta
  obs = np.asarray(traj.observations)
  assert abs(obs[pulled_best].mean() - 0.75) < 0.015
  assert abs(obs[~pulled_best].mean() - 0.25) < 0.01
  assert abs(pulled_best.mean() - 0.2) < 0.01  # the uniform agent's actions were taken
  np.testing.assert_array_equal(traj.best_actions, np.broadcast_to(theta, obs.shape))


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_demonstration_rollouts_do_not_run_the_agent(kind):
  """When the expert takes every action the agent's policy is never called, and the rollout is
  the one the acting agent would have given: an array expert_prob of 1 (known only at run
  time) still runs it, and every field agrees."""
  from causal_meta import agents
  task = tasks.make("padlock", num_switches=4, num_secret=2, epsilon=0.3)
  agent = agents.make(kind, task, hidden=8, width=8, num_layers=1, num_heads=2)
  params = agent.init(jax.random.PRNGKey(0))
  calls = []
  policy = agent.policy(params)
  counted = policy._replace(action_logits=lambda c: calls.append(1) or policy.action_logits(c))
  key = jax.random.PRNGKey(6)
  skipped = rollout.braid(task, counted, key, 64, expert_prob=1.0)
  assert not calls
  acted = rollout.braid(task, counted, key, 64, expert_prob=jnp.float32(1.0))
  assert calls
  for field in ("theta", "actions", "expert_actions", "observations", "intervened", "mask",
                "done", "rewards", "best_actions"):
    np.testing.assert_array_equal(getattr(skipped, field), getattr(acted, field), err_msg=field)
  assert not bool(acted.intervened.any())


def test_the_policy_observes_every_step_but_the_last():
  """Step t's action is drawn from what the policy observed of steps 1 … t-1, and nothing
  reads its memory after step T: `observe` runs T - 1 times per episode."""
  task = tasks.make("bandit")
  calls = []
  base = rollout.uniform_policy(task)
  # The carry counts the observations; the action logits favour arm (count mod A).
  policy = base._replace(
      initial_carry=lambda: jnp.zeros((), jnp.int32),
      action_logits=lambda c: 50.0 * jax.nn.one_hot(c % task.num_actions, task.num_actions),
      observe=lambda c, a, i, o: jax.debug.callback(lambda: calls.append(1)) or c + 1)
  traj = jax.jit(lambda k: rollout.braid(task, policy, k, 1))(jax.random.PRNGKey(0))
  jax.effects_barrier()  # every callback has run
  np.testing.assert_array_equal(traj.actions[0], np.arange(task.horizon) % task.num_actions)
  assert len(calls) == task.horizon - 1


def test_padlock_masks_steps_after_the_lock_opens():
  task = tasks.make("padlock")
  traj = rollout.braid(task, rollout.uniform_policy(task), jax.random.PRNGKey(2), 256, 1.0)
  # The expert opens every lock, in exactly (number of 1s in the code) steps.
  np.testing.assert_array_equal(traj.done.any(1), True)
  first_done = np.argmax(np.asarray(traj.done), 1)
  secret_ones = np.array([bin(int(t)).count("1") for t in traj.theta])
  np.testing.assert_array_equal(first_done + 1, 2 + secret_ones)
  mask = np.asarray(traj.mask)
  for b in range(256):
    assert mask[b, :first_done[b] + 1].all() and not mask[b, first_done[b] + 1:].any()
  assert float(jnp.sum(traj.rewards)) == 256.0


@pytest.mark.parametrize("expert_prob", [0.0, 1.0])
def test_expert_policy_is_the_policy_its_actions_were_drawn_from(expert_prob):
  """`expert_policy=True` keeps log Q(· | θ, s_t) and changes nothing else. On the bandit it is
  the closed form (0.6 on arm θ, 0.1 elsewhere); on padlock (state-dependent) the expert's
  actions have its mean as their frequencies, step by step."""
  task = tasks.make("bandit")
  policy = rollout.uniform_policy(task)
  key = jax.random.PRNGKey(7)
  plain = rollout.braid(task, policy, key, 64, expert_prob)
  kept = rollout.braid(task, policy, key, 64, expert_prob, expert_policy=True)
  assert plain.expert_log_probs is None
  jax.tree.map(np.testing.assert_array_equal, kept._replace(expert_log_probs=None), plain)
  want = np.where(np.eye(5)[np.asarray(kept.theta)], 0.6, 0.1)  # [B, A]
  np.testing.assert_allclose(np.exp(kept.expert_log_probs),
                             np.broadcast_to(want[:, None], (64, 20, 5)), rtol=1e-6)

  task = tasks.make("padlock", epsilon=0.3)
  traj = rollout.braid(task, rollout.uniform_policy(task), key, 8000, expert_prob,
                       expert_policy=True)
  mask = np.asarray(traj.mask)[..., None]
  drawn = np.eye(task.num_actions)[np.asarray(traj.expert_actions)]  # [B, T, A]
  freq = (drawn * mask).sum(0) / mask.sum(0)
  mean = (np.exp(np.asarray(traj.expert_log_probs)) * mask).sum(0) / mask.sum(0)
  for t in range(5):  # steps that enough episodes reach
    assert mask[:, t].sum() > 1000
    np.testing.assert_allclose(freq[t], mean[t], atol=0.04)  # > 3 standard errors


def test_rollout_is_reproducible_and_keyed():
  task = tasks.make("bandit")
  p = rollout.uniform_policy(task)
  a = rollout.braid(task, p, jax.random.PRNGKey(3), 16)
  b = rollout.braid(task, p, jax.random.PRNGKey(3), 16)
  c = rollout.braid(task, p, jax.random.PRNGKey(4), 16)
  np.testing.assert_array_equal(a.actions, b.actions)
  assert not np.array_equal(a.actions, c.actions)


def test_oracle_policies_reproduce_remark_11():
  """Intervening finds the best arm more often than conditioning, which repeats itself."""
  task = tasks.make("bandit")
  _, causal = oracle.run_policy(task, jax.random.PRNGKey(0), 20_000, True)
  _, naive = oracle.run_policy(task, jax.random.PRNGKey(0), 20_000, False)
  assert causal["best_action_rate"] > naive["best_action_rate"] + 0.1
  assert causal["mean_reward"] > naive["mean_reward"] + 0.02
  # The first action of both is the prior predictive: uniform over arms, so P(best) = 1/5.
  np.testing.assert_allclose(causal["best_action_by_step"][0], 0.2, atol=0.01)
  np.testing.assert_allclose(naive["best_action_by_step"][0], 0.2, atol=0.01)


def test_thompson_sampling_matches_posterior_sampling():
  """[O] Remark 5: acting with the interventional predictive = sampling θ from the posterior
  and then acting as the expert with that θ. Checked at step 2 of the bandit by Monte Carlo."""
  task = tasks.make("bandit")
  traj, _ = oracle.run_policy(task, jax.random.PRNGKey(5), 50_000, True)
  a1, o1, a2 = (np.asarray(x) for x in (traj.actions[:, 0], traj.observations[:, 0],
                                         traj.actions[:, 1]))
  for a, o in [(0, 1), (2, 0)]:
    sel = (a1 == a) & (o1 == o)
    post = np.asarray(oracle.posterior(task, [a], [o], True))
    expert = np.where(np.eye(5), 0.6, 0.1)
    want = post @ expert
    got = np.bincount(a2[sel], minlength=5) / sel.sum()
    np.testing.assert_allclose(got, want, atol=0.025)


def test_unknown_mode():
  with pytest.raises(ValueError, match="allowed: counterfactual, demonstration, mixed"):
    rollout.expert_prob_for("imitation")
