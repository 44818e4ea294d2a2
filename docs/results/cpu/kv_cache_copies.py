"""Counts the copies of a whole KV cache that XLA puts in the compiled transformer rollout.

  python docs/results/cpu/kv_cache_copies.py

Compiles `rollout.braid` for the default transformer (2 layers, width 64, 4 heads) on the paper
bandit, B = 8 episodes, on the CPU, and counts the `copy` instructions whose shape is one
layer's cache, [B, heads, max_len, head width], per computation of the optimised HLO (the
rollout's time loop is a `while` whose body is one computation). Every such copy is executed
once per env step.
"""

import collections
import re

import jax

from causal_meta import agents, rollout, tasks

B = 8
task = tasks.make("bandit")
agent = agents.make("transformer", task)
params = agent.init(jax.random.PRNGKey(0))
braid = jax.jit(lambda p, k: rollout.braid(task, agent.policy(p), k, B, expert_prob=0.0))
hlo = braid.lower(params, jax.random.PRNGKey(1)).compile().as_text()
m = agent.module
cache = f"f32[{B},{m.num_heads},{m.max_len},{m.width // m.num_heads}]"
copies, computation = collections.Counter(), None
for line in hlo.splitlines():
  if line and not line.startswith(" ") and line.rstrip().endswith("{"):
    computation = line.split()[1] if line.startswith("ENTRY") else line.split()[0]
  elif f"= {cache}" in line and " copy(" in line:
    copies[computation] += 1
print(f"jax {jax.__version__}; cache {cache}; whole-cache copies: {sum(copies.values())}")
for name, n in copies.items():
  print(f"  {n} in {name}")
