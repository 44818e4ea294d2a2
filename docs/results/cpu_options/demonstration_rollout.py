"""The demonstration rollout without the agent, on the 2-core CPU: the transformer's
demonstration update timed as it is (the expert takes every action, so the rollout does not
step the agent) and with a rollout that steps the agent anyway (the same trajectories), twice
each, alternately. Writes demonstration_rollout.json beside this file. Usage:

  PYTHONPATH=. python docs/results/cpu_options/demonstration_rollout.py
"""

import json
import os

from causal_meta import benchmark, rollout
from causal_meta import config as config_lib

SETTINGS = [(256, 20), (1024, 20)]


def rows(step_the_agent: bool) -> list[dict]:
  fixed = rollout._fixed
  if step_the_agent:  # the author is then drawn (always the expert): the agent is stepped
    rollout._fixed = lambda expert_prob: False
  try:
    out = []
    for B, T in SETTINGS:
      base = config_lib.default()
      base.agent.kind, base.teaching = "transformer", "demonstration"
      r = benchmark.measure(benchmark.setting(base, B, T))
      out.append({k: r[k] for k in ("batch_size", "horizon", "env_steps_per_second",
                                    "ms_per_update", "rollout_ms", "gflop_per_update")})
    return out
  finally:
    rollout._fixed = fixed


if __name__ == "__main__":
  result = dict(
      command="PYTHONPATH=. python docs/results/cpu_options/demonstration_rollout.py",
      note="transformer 2x64, demonstration teaching; agent_stepped: a rollout that steps the "
           "agent although the expert takes every action",
      agent_stepped=[], agent_skipped=[])
  for _ in range(2):
    result["agent_skipped"].append(rows(False))
    result["agent_stepped"].append(rows(True))
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demonstration_rollout.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result, indent=1))
