"""The transformer's rollout alone with its KV cache in S blocks (`config.agent.cache_segments`),
timed round-robin in one process so that the machine's drift hits every S alike:

  python docs/results/cpu/session15/rollout_segments.py [--batch=256] [--horizons=100,200]
      [--segments=1,4,8] [--rounds=7]

Prints, per (T, S): the first call's seconds (compiling) and the median over the rounds of
ms per rollout (B episodes of T steps, the counterfactual rollout of one training update)
and env-steps/s.
"""

import argparse
import statistics
import time

import jax

from causal_meta import config as config_lib
from causal_meta import train


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--horizons", default="100,200")
  parser.add_argument("--segments", default="1,4,8")
  parser.add_argument("--rounds", type=int, default=7)
  args = parser.parse_args()
  print(f"{jax.devices()[0].device_kind}, JAX {jax.__version__}, transformer 2x64, "
        f"B = {args.batch}, {args.rounds} rounds")
  print("| T | S | first call s | ms per rollout (median) | env-steps/s |\n|---|---|---|---|---|")
  for T in [int(t) for t in args.horizons.split(",")]:
    acts, compile_s, times = {}, {}, {}
    for S in [int(s) for s in args.segments.split(",")]:
      c = config_lib.default()
      c.agent.update(kind="transformer", cache_segments=S)
      c.task.bandit.horizon = T
      c.batch_size = args.batch
      task, agent = config_lib.validate(c)
      state = train.init_state(agent, train.make_optimizer(c), 0)
      act = jax.jit(train.make_act(task, agent, c))
      t0 = time.perf_counter()
      jax.block_until_ready(act(state.params, state.key))
      compile_s[S], times[S] = time.perf_counter() - t0, []
      acts[S] = (act, state.params)
    for r in range(args.rounds):
      for S, (act, params) in acts.items():
        key = jax.random.PRNGKey(r)
        t0 = time.perf_counter()
        jax.block_until_ready(act(params, key))
        times[S].append(time.perf_counter() - t0)
    for S in acts:
      ms = 1e3 * statistics.median(times[S])
      print(f"| {T} | {S} | {compile_s[S]:.1f} | {ms:.0f} | {args.batch * T / ms * 1e3:.3g} |",
            flush=True)


if __name__ == "__main__":
  main()
