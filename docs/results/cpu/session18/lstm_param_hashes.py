"""A fingerprint of training: the SHA-256 (first 16 hex digits) of the LSTM's parameters after
40 updates (batch 256, four chunks of 10) of the default bandit and padlock configs, with
counterfactual teaching and with demonstrations.

  python docs/results/cpu/session18/lstm_param_hashes.py

Run it from another checkout (`PYTHONPATH=<checkout> python …`) to compare revisions: equal
digests mean bit-identical training on this machine.
"""

import hashlib

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import train

for task in ("bandit", "padlock"):
  for teaching in ("counterfactual", "demonstration"):
    c = config_lib.default()
    c.task.name, c.agent.kind, c.teaching = task, "lstm", teaching
    c.batch_size, c.num_updates, c.updates_per_call, c.log_every = 256, 40, 10, 10
    task_, agent = config_lib.validate(c)
    optimizer = train.make_optimizer(c)
    chunk = jax.jit(train.make_train_chunk(train.make_update(task_, agent, optimizer, c), 10))
    state = train.init_state(agent, optimizer, 0)
    for _ in range(4):
      state, _ = chunk(state)
    digest = hashlib.sha256(b"".join(np.asarray(x).tobytes()
                                     for x in jax.tree.leaves(state.params))).hexdigest()
    print(f"{task}, {teaching}: {digest[:16]}")
