"""Kernels and bytes per update of the transformer's update compiled for the H100, by phase:
the rollout's steps, the learning pass forward and backward, and the rest (loss, optimizer,
data movement), from the op each kernel came from (`aot.traffic`).

usage (repository root, JAX's CUDA plugin installed, JAX_PLATFORMS=cpu):
  python phases.py B T [agent_option=value ...] [top=N]
"""
import collections
import sys

import jax

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, benchmark  # pylint: disable=wrong-import-position
from causal_meta import config as config_lib  # pylint: disable=wrong-import-position

B, T = int(sys.argv[1]), int(sys.argv[2])
options = dict(arg.split("=") for arg in sys.argv[3:])
top = int(options.pop("top", 0))
base = config_lib.default()
base.agent.kind = "transformer"
base.updates_per_call = K = 2
for key, value in options.items():
  base.agent[key] = type(base.agent[key])(value)
config = benchmark.setting(base, B, T)
compiled, _ = aot.compile_update(config, aot.target_mesh("h100"))
moved = aot.traffic(compiled.as_text(), top=10**9)  # every kernel


def phase(op: str) -> str:
  if "Transformer.step" in op:
    return "rollout"
  if "transpose(jvp" in op:
    return "learning backward"
  return "learning forward" if "jvp(" in op else "rest"


total = collections.defaultdict(lambda: [0, 0])
for k in moved["top"]:
  total[phase(k["op"])][0] += k["launches"] / K
  total[phase(k["op"])][1] += k["bytes"] / K
print(f"B = {B}, T = {T}, {' '.join(sys.argv[3:]) or 'defaults'}: "
      f"{moved['kernels'] / K:.0f} kernels, {moved['bytes'] / K / 1e9:.3g} GB per update")
for name, (n, b) in sorted(total.items(), key=lambda kv: -kv[1][1]):
  print(f"  {name:18s} {n:6.0f} kernels  {b / 1e9:6.3g} GB  "
        f"{100 * b / (moved['bytes'] / K):3.0f}% of the bytes")
learning = [total[p] for p in ("learning forward", "learning backward")]
print(f"  learning pass: {sum(n for n, _ in learning):.0f} kernels, "
      f"{sum(b for _, b in learning) / 1e9:.3g} GB")
for k in moved["top"][:top]:
  print(f"    {k['launches'] / K:5.0f} x {k['bytes'] / k['launches'] / 1e6:8.3f} MB  "
        f"{k['op'][-90:]}")
