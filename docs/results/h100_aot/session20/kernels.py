"""Kernels and GB per update at B = 256, T = 20, compiled for the H100 (deviceless), for each
agent and kernel choice: at this size an update's time follows its kernel launches (session
18), so this is what the session's changes to acting and the rollout's loop save there.

  PYTHONPATH=<tree> JAX_PLATFORMS=cpu python kernels.py
"""
import jax

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, benchmark  # pylint: disable=g-import-not-at-top
from causal_meta import config as config_lib  # pylint: disable=g-import-not-at-top

print("| agent | kernels | kernels/update | GB/update |\n|---|---|---|---|")
for kind, kernels in (("lstm", "xla"), ("lstm", "pallas"), ("transformer", "xla"),
                      ("transformer", "pallas")):
  base = config_lib.default()
  base.agent.update(kind=kind, lstm_kernel=kernels, attention_kernel=kernels)
  config = benchmark.setting(base, 256, 20)
  compiled, _ = aot.compile_update(config, aot.target_mesh("h100"))
  moved = aot.traffic(compiled.as_text())
  K = config.updates_per_call
  print(f"| {kind} | {kernels} | {moved['kernels'] / K:.0f} | {moved['bytes'] / K / 1e9:.3g} |")
