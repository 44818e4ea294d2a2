"""Prize or frog ([O] §2): P(o = prize | a) = 1 but P(o = prize | do(a)) = 1/2.

`python -m launch.reproduce prize_or_frog --workdir=DIR [--quick]` trains an LSTM with
counterfactual teaching and one with demonstrations and prints each one's P(o = prize | do(a))
beside the exact conditional and interventional probabilities: counterfactual teaching learns
1/2, demonstrations learn the delusion 1.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import config as config_lib
from causal_meta import oracle, rollout, tasks, train
from causal_meta.reproduce import write_results


def _prize_probability(agent, params) -> list[float]:
  """The agent's P(o = prize | do(a)) for a = 0, 1 (its observation head after one action)."""
  actions = jnp.array([[0], [1]], jnp.int32)
  traj = rollout.Trajectory(
      theta=jnp.zeros(2, jnp.int32), actions=actions, expert_actions=actions,
      observations=jnp.zeros_like(actions), intervened=jnp.ones_like(actions, bool),
      mask=jnp.ones_like(actions, bool), done=jnp.zeros_like(actions, bool),
      rewards=jnp.zeros(actions.shape), best_actions=actions)
  _, obs_logits = agent.teacher_force(params, traj)
  return np.asarray(jax.nn.softmax(obs_logits)[:, 0, 1]).tolist()


def reproduce(workdir: str, quick: bool = False, config=None) -> dict:
  """[O] §2: P(o=+1 | a) = 1 but P(o=+1 | do(a)) = 1/2; what each kind of teaching learns.

  100 training updates per agent with `quick`, else 300.
  """
  del config  # no experiments/ file: `quick` sets the size
  task = tasks.make("prize_or_frog")
  exact = {
      "conditioning": [float(oracle.next_observation_probs(task, [a], [], False)[1])
                       for a in (0, 1)],
      "intervening": [float(oracle.next_observation_probs(task, [a], [], True)[1])
                      for a in (0, 1)],
  }
  learned = {}
  for teaching in ("counterfactual", "demonstration"):
    c = config_lib.default()
    c.task.name, c.teaching = "prize_or_frog", teaching
    c.num_updates = c.log_every = 100 if quick else 300
    _, agent = config_lib.validate(c)
    result = train.train_and_evaluate(c, os.path.join(workdir, teaching), verbose=False)
    learned[teaching] = dict(
        p_prize_given_action=_prize_probability(agent, result["params"]),
        **{k: result[k] for k in ("kl_observation_interventional",
                                  "kl_observation_conditional", "mean_reward")})
  results = write_results(workdir, dict(exact=exact, learned=learned))
  print("P(o = prize | a) for a = box 1, box 2:")
  print(f"  exact, conditioning  P(o|a):     {exact['conditioning']}")
  print(f"  exact, intervening   P(o|do(a)): {exact['intervening']}")
  for teaching, r in learned.items():
    print(f"  LSTM, {teaching:<15} {np.round(r['p_prize_given_action'], 4).tolist()}  "
          f"(mean reward {r['mean_reward']:+.3f})")
  return results
