"""A fingerprint of training: the SHA-256 (first 16 hex digits) of the transformer's parameters
after 20 updates (batch 64, two chunks of 10) of the default bandit and padlock configs.

  python docs/results/cpu/session15/param_hashes.py [--cache_segments=S]

Run it from another checkout (`PYTHONPATH=<checkout> python …`) to compare revisions: equal
digests mean bit-identical training on this machine.
"""

import argparse
import hashlib

import jax
import numpy as np

from causal_meta import config as config_lib
from causal_meta import train


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--cache_segments", type=int, default=None)
  args = parser.parse_args()
  for task in ("bandit", "padlock"):
    c = config_lib.default()
    c.task.name, c.agent.kind = task, "transformer"
    if args.cache_segments is not None:
      c.agent.cache_segments = args.cache_segments
    c.batch_size, c.num_updates, c.updates_per_call, c.log_every = 64, 20, 10, 10
    c.eval_episodes = 64
    task_, agent = config_lib.validate(c)
    optimizer = train.make_optimizer(c)
    chunk = jax.jit(train.make_train_chunk(train.make_update(task_, agent, optimizer, c), 10))
    state = train.init_state(agent, optimizer, 0)
    for _ in range(2):
      state, _ = chunk(state)
    digest = hashlib.sha256(b"".join(np.asarray(x).tobytes()
                                     for x in jax.tree.leaves(state.params))).hexdigest()
    print(f"{task}: {digest[:16]}")


if __name__ == "__main__":
  main()
