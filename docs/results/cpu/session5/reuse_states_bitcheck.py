"""Fused act-and-learn changes no number: for the default bandit and padlock LSTM configs, the
states the rollout records equal the learning pass's forward states, and 20 updates with and
without `agent.reuse_acting_states` give the same parameters. Prints the largest differences
(0.0 on the 2-core CPU, session 5).

  python docs/results/cpu/session5/reuse_states_bitcheck.py
"""

import jax

from causal_meta import agents, rollout, train
from causal_meta import config as config_lib
from causal_meta.agents import recurrent, tokens

for name in ["bandit", "padlock"]:
  c = config_lib.default()
  c.task.name = name
  if name == "padlock":
    c.task.padlock.epsilon = 0.42
  task, agent = config_lib.validate(c)
  params = agent.init(jax.random.PRNGKey(0))
  traj = rollout.braid(task, agent.policy(params, record_states=True), jax.random.PRNGKey(1),
                       256)
  inputs = tokens.encode(traj.actions, traj.intervened, traj.observations, task.num_actions)
  table = agent.module.bind({"params": params})._input_table()
  H = c.agent.hidden
  want_h, want_c = jax.jit(recurrent._lstm_states, static_argnums=4)(
      table, params["w"][H:], params["b"], inputs.T, 1)
  got_h, got_c = agents._time_major_states(*traj.acting_states)
  print(name, "states: max |difference|", float(abs(got_h - want_h).max()),
        float(abs(got_c - want_c).max()))
  trained = []
  for reuse in (True, False):
    c.agent.reuse_acting_states = reuse
    task, agent = config_lib.validate(c)
    optimizer = train.make_optimizer(c)
    chunk = train.make_train_chunk(train.make_update(task, agent, optimizer, c), 20)
    state, _ = chunk(train.init_state(agent, optimizer, 0))
    trained.append(jax.tree.leaves(state.params))
  print(name, "parameters after 20 updates: max |difference|",
        max(float(abs(a - b).max()) for a, b in zip(*trained)))
