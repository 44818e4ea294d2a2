"""The update compiled for two H100s (a `data` mesh of 2, B = 512, T = 20; nothing runs): the
all-gathers XLA's partitioner inserts, and the ops they feed. With XLA's passes none; with a
Pallas kernel (a custom call the partitioner cannot split) it gathers that call's batch
inputs onto every device, which then runs the kernel on the whole batch. Hence
`config.validate` refuses Pallas kernels on several devices; this script skips that check.

usage (repository root, JAX's CUDA plugin installed): python two_devices.py
"""
import re

import jax

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, benchmark  # pylint: disable=wrong-import-position
from causal_meta import config as config_lib  # pylint: disable=wrong-import-position

# The check that these results are the reason for, skipped (validated for one device).
validate = config_lib.validate
config_lib.validate = lambda config, num_devices=None: validate(config, 1)

for kind, option in (("lstm", "lstm_kernel"), ("transformer", "attention_kernel")):
  for kernel in ("xla", "pallas"):
    base = config_lib.default()
    base.updates_per_call = 1
    base.agent.kind = kind
    base.agent[option] = kernel
    compiled, _ = aot.compile_update(benchmark.setting(base, 512, 20),
                                     aot.target_mesh("h100", devices=2))
    gathers = [line for line in compiled.as_text().splitlines()
               if re.search(r"\) all-gather-start\(|\] all-gather-start\(", line)]
    print(f"{kind}, {option}={kernel}: {len(gathers)} all-gathers")
    for line in gathers:  # what is gathered (the result's shapes), for which op
      gathered = re.search(r"= (.*) all-gather-start\(", line).group(1)
      op = re.search(r'op_name="([^"]*)"', line).group(1)
      print(f"  {gathered[-90:]} for ...{op[-60:]}")
