"""Where the LSTM's update moves its bytes, compiled for the H100 (deviceless): per update,
the total, by phase (the rollout: kernels under the episodes' vmap; the learning pass: under
the agent's unroll or its gradient; the rest), and one phase's kernels one by one (the
rollout's unless named).

  PYTHONPATH=<tree> JAX_PLATFORMS=cpu python lstm_bytes.py [xla|pallas] [B] [T] [phase]
"""
import collections
import sys

import jax

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, benchmark  # pylint: disable=g-import-not-at-top
from causal_meta import config as config_lib  # pylint: disable=g-import-not-at-top

kernel, B, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shown = sys.argv[4] if len(sys.argv) > 4 else "rollout"
base = config_lib.default()
base.agent.update(kind="lstm", lstm_kernel=kernel)
config = benchmark.setting(base, B, T)
compiled, _ = aot.compile_update(config, aot.target_mesh("h100"))
moved = aot.traffic(compiled.as_text(), top=10**6)
K = config.updates_per_call
phase = lambda op: ("rollout" if "vmap()" in op else
                    "learning" if "unroll_batch" in op or "jvp(" in op else "rest")
by_phase = collections.defaultdict(lambda: [0.0, 0.0])
for k in moved["top"]:
  by_phase[phase(k["op"])][0] += k["launches"] / K
  by_phase[phase(k["op"])][1] += k["bytes"] / K / 1e9
print(f"lstm_kernel={kernel}, B={B}, T={T}: {moved['bytes'] / K / 1e9:.2f} GB and "
      f"{moved['kernels'] / K:.0f} kernels per update")
print("| phase | kernels/update | GB/update |\n|---|---|---|")
for name in ("rollout", "learning", "rest"):
  print(f"| {name} | {by_phase[name][0]:.0f} | {by_phase[name][1]:.2f} |")
print(f"\nThe {shown}'s kernels:\n| kernel | from | launches/update | MB/update |\n|---|---|---|---|")
for k in moved["top"]:
  if phase(k["op"]) == shown:
    print(f"| {k['name'][:32]} | {k['op'][-60:]} | {k['launches'] / K:.0f} | "
          f"{k['bytes'] / K / 1e6:.1f} |")
print()
