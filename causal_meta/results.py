"""One command per result of [O]: `python -m launch.reproduce prize_or_frog|bandit`.

Each function takes (workdir, quick) and writes workdir/results.json and figures, returning
the results dict. The tabular results ([D], [K], [H]) are in `causal_meta.tabular.reproduce`.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import config as config_lib
from causal_meta import demo, oracle, plots, rollout, tasks, train


def _prize_probability(agent, params) -> list[float]:
  """The agent's P(o = prize | do(a)) for a = 0, 1 (its observation head after one action)."""
  actions = jnp.array([[0], [1]], jnp.int32)
  traj = rollout.Trajectory(
      theta=jnp.zeros(2, jnp.int32), actions=actions, expert_actions=actions,
      observations=jnp.zeros_like(actions), intervened=jnp.ones_like(actions, bool),
      mask=jnp.ones_like(actions, bool), done=jnp.zeros_like(actions, bool),
      rewards=jnp.zeros(actions.shape), best_actions=actions)
  _, obs_logits = agent.unroll(params, traj)
  return np.asarray(jax.nn.softmax(obs_logits)[:, 0, 1]).tolist()


def prize_or_frog(workdir: str, quick: bool = False) -> dict:
  """[O] §2: P(o=+1 | a) = 1 but P(o=+1 | do(a)) = 1/2; what each kind of teaching learns."""
  task = tasks.make("prize_or_frog")
  exact = {
      "conditioning": [float(oracle.next_observation_probs(task, [a], [], False)[1])
                       for a in (0, 1)],
      "intervening": [float(oracle.next_observation_probs(task, [a], [], True)[1])
                      for a in (0, 1)],
  }
  learned = {}
  for teaching in ("counterfactual", "demonstration"):
    config = config_lib.default()
    config.task.name, config.teaching = "prize_or_frog", teaching
    config.num_updates = config.log_every = 100 if quick else 300
    _, agent = config_lib.validate(config)
    result = train.train_and_evaluate(config, os.path.join(workdir, teaching), verbose=False)
    learned[teaching] = dict(
        p_prize_given_action=_prize_probability(agent, result["params"]),
        **{k: result[k] for k in ("kl_observation_interventional",
                                  "kl_observation_conditional", "mean_reward")})
  results = dict(exact=exact, learned=learned)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  print("P(o = prize | a) for a = box 1, box 2:")
  print(f"  exact, conditioning  P(o|a):     {exact['conditioning']}")
  print(f"  exact, intervening   P(o|do(a)): {exact['intervening']}")
  for teaching, r in learned.items():
    print(f"  LSTM, {teaching:<15} {np.round(r['p_prize_given_action'], 4).tolist()}  "
          f"(mean reward {r['mean_reward']:+.3f})")
  return results


def bandit(workdir: str, quick: bool = False) -> dict:
  """[O] Remark 11 (the main job): agents and oracles on the paper's bandit."""
  if quick:
    return demo.run(workdir, episodes=5_000, num_updates=200, verbose=False)
  return demo.run(workdir)
