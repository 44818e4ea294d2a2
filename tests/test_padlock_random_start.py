"""Padlock with [D]'s random start (`random_start=True`): the opening steps show the start,
the experts and the lock behave as in the paper, and the engine's interventional oracle agrees
with the exact enumeration of `tabular.padlock_exact`."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import oracle, tasks
from causal_meta.tabular import padlock_exact


def play(task, theta, start):
  """The expert's episode from `start`: (actions, observations, final state)."""
  n = task.num_switches
  s, actions, observations = task.initial_state(), [], []
  while not task.done(s) and len(actions) < task.horizon:
    a = int(jnp.argmax(task.expert_logits(theta, s)))
    logits = np.asarray(task.observation_logits(theta, s, a))
    if len(actions) < n:  # reading: the start bit, both equally likely under the task
      np.testing.assert_allclose(np.exp(logits), [0, 0, 0.5, 0.5], atol=1e-7)
      o = 2 + start[len(actions)]
    else:
      o = int(np.argmax(logits))
    actions.append(a)
    observations.append(o)
    s = task.next_state(s, a, o)
  return actions, observations, s


def test_every_start_and_code_by_brute_force():
  task = tasks.make("padlock", num_switches=4, num_secret=2, random_start=True)
  n = 4
  assert (task.num_actions, task.num_observations, task.horizon) == (5, 4, 5 + 4 + 4)
  for theta in range(task.num_latents):
    code = [1, 0] + [(theta >> j) & 1 for j in range(2)]
    for start in itertools.product((0, 1), repeat=n):
      actions, observations, s = play(task, theta, start)
      assert actions[:n + 1] == [n] * (n + 1)  # read every switch, then the test step
      differ = [i for i in range(n) if start[i] != code[i]]
      assert actions[n + 1:] == differ  # lowest differing switch first
      assert observations[n] == int(not differ)  # the test step: does the start open it?
      assert observations[n + 1:] == [0] * (len(differ) - 1) + [1] * bool(differ)
      assert task.done(s) and list(np.asarray(s[:n])) == code
      assert float(sum(task.reward(o) for o in observations)) == 1.0


def test_reading_and_wasted_actions_change_nothing():
  task = tasks.make("padlock", num_switches=3, num_secret=1, random_start=True)
  s = task.initial_state()
  s = task.next_state(s, 1, 3)  # a flip while reading reads switch 0 = 1, flips nothing
  np.testing.assert_array_equal(s, [1, 0, 0, 0, 1])
  for o in (2, 3):
    s = task.next_state(s, task.num_actions - 1, o)
  s = task.next_state(s, 0, 0)  # a flip at the test step flips nothing either
  np.testing.assert_array_equal(s, [1, 0, 1, 0, 4])
  s = task.next_state(s, 3, 0)  # the read action while flipping: nothing
  np.testing.assert_array_equal(s, [1, 0, 1, 0, 4])
  np.testing.assert_allclose(np.exp(task.observation_logits(0, s, 3)), [1, 0, 0, 0])
  s = task.next_state(s, 2, 0)
  np.testing.assert_array_equal(s, [1, 0, 0, 0, 4])


@pytest.mark.parametrize("flips", [2, 4])
def test_interventional_oracle_policy_against_the_enumeration(flips):
  """The engine's interventional oracle, acting, opens the lock as often as the exact
  enumeration says (sampling error only), with P(S) at every flip equal to the ideal's."""
  n, m = 4, 2
  task = tasks.make("padlock", num_switches=n, num_secret=m, random_start=True,
                    horizon=n + 1 + flips)
  traj, stats = oracle.run_policy(task, jax.random.PRNGKey(0), 20_000, causal=True)
  want = padlock_exact.evaluate(padlock_exact.Interventional(m), n, m, flips)["accuracy"]
  se = np.sqrt(want * (1 - want) / 20_000)
  assert abs(float(stats["success_rate"]) - want) < 4 * se
  # P(S) after each flip: 1 / (untested codes) where the public switches match, else 0.
  pred = oracle.predictives(task, traj.actions[:64], traj.observations[:64],
                            traj.intervened[:64])
  for b in range(64):
    start = [int(o) - 2 for o in traj.observations[b, :n]]
    seen, c = set(), list(start)
    for t in range(n, n + 1 + flips):
      if not traj.mask[b, t]:
        break
      a = int(traj.actions[b, t])
      if t > n and a < n:
        c[a] = 1 - c[a]
      config = tuple(c)
      public = config[:n - m] == (1, 0)
      want_s = 0.0 if (not public or config in seen) else 1 / (2 ** m - len(seen))
      np.testing.assert_allclose(pred.observation_probs[b, t, 1], want_s, atol=1e-5)
      if public:
        seen.add(config)


def test_random_start_is_validated():
  with pytest.raises(ValueError, match="random_start"):
    tasks.make("padlock", random_start="yes")
  with pytest.raises(ValueError, match="horizon"):
    tasks.make("padlock", random_start=True, horizon=7)  # 6 reading + 1 test step
  # The all-zero public pattern is allowed: a random start may open the lock at once.
  tasks.make("padlock", num_switches=3, num_secret=1, public_pattern=[0, 0], random_start=True)
