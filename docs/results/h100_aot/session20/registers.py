"""Registers and spills of the Pallas kernels, compiled for the H100 without one.

For each block and warp count of `gpu_benchmarks.sh tune_lstm` (and each block of
`tune_attention`), XLA compiles the kernels' programs for the H100 (deviceless,
`causal_meta.aot`), dumping their PTX: the LSTM's learning-pass gradient (forward and backward
kernels) and a vmapped acting step, B = 4,096; attention's gradient over 256 rows of 401
tokens (4 heads of 16) and an acting step over their KV caches. ptxas (from JAX's CUDA
plugin, nvidia-cuda-nvcc) then reports each kernel's registers per thread and spilled bytes.
A spill goes to local memory (L1, else device memory) at every use.

  PYTHONPATH=. JAX_PLATFORMS=cpu python registers.py
"""
import glob
import os
import re
import subprocess
import tempfile

import jax
import jax.numpy as jnp

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, parallel  # pylint: disable=g-import-not-at-top
from causal_meta.agents import attention_kernel, lstm_kernel, recurrent  # pylint: disable=g-import-not-at-top

PTXAS = glob.glob(os.path.join(os.path.dirname(jax.__file__), "..", "nvidia", "cuda_nvcc",
                               "bin", "ptxas"))[0]
replicated = parallel.replicated(aot.target_mesh("h100"))
KERNELS = ("_forward_kernel", "_backward_kernel", "_act_kernel", "mha_forward",
           "mha_preprocess_backward", "mha_backward", "cached_attention")
spec = lambda *s, dtype=jnp.float32: jax.ShapeDtypeStruct(s, dtype, sharding=replicated)


def report(setting, programs):
  """Compiles each (function, args) of programs, runs ptxas on the PTX of their Triton kernels
  and prints a row per kernel."""
  with tempfile.TemporaryDirectory() as d:
    for fn, args in programs:
      try:
        fn.trace(*args).lower().compile({"xla_dump_to": d})
      except jax.errors.JaxRuntimeError as e:  # e.g. more shared memory than an SM has
        print(f"| {setting} | did not compile | {str(e).splitlines()[0][:90]} | |", flush=True)
        return
    rows = []
    for path in glob.glob(os.path.join(d, "*.ptx")):
      if not any(f".entry {name}(" in open(path).read() for name in KERNELS):
        continue
      out = subprocess.run([PTXAS, "-v", "--gpu-name", "sm_90a", path, "-o", os.devnull],
                           capture_output=True, text=True, check=True).stderr
      for block in out.split("Compiling entry function ")[1:]:
        name = re.match(r"'(\w+)'", block).group(1)
        if name in KERNELS:
          rows.append((name, re.search(r"Used (\d+) registers", block).group(1),
                       re.search(r"(\d+) bytes spill stores", block).group(1)))
  for name, regs, spill in sorted(rows):
    print(f"| {setting} | {name} | {regs} | {spill} |", flush=True)


lstm_kernel._on_gpu = attention_kernel._on_gpu = lambda: True  # pylint: disable=protected-access
V, H, L, B, K = 13, 64, 40, 4096, 7  # the bandit: 13 tokens, 5 + 2 logits; hidden 64
weights = spec(V, 4 * H), spec(H, 4 * H), spec(4 * H)
print("| LSTM: block, warps | kernel | registers/thread | spill stores, bytes/thread |")
print("|---|---|---|---|")
for block in (16, 32, 64):
  for warps in (2, 4, 8):
    lstm_kernel.configure(block, warps)
    # New functions for each setting: jit would reuse the first setting's trace.
    head = spec(H, K), spec(K)
    if hasattr(lstm_kernel, "logits"):  # session 21 on: the output head in the kernels too
      learn = jax.jit(jax.grad(lambda w, tokens: jnp.sum(lstm_kernel.logits(*w, tokens, None))))
      learned = weights + head
    else:
      learn = jax.jit(jax.grad(lambda w, tokens: jnp.sum(recurrent.lstm_hidden(*w, tokens, 1,
                                                                                "pallas"))))
      learned = weights
    act = jax.jit(jax.vmap(lambda *x: recurrent.act(*x), (None,) * 6 + (0, 0, 0)))
    act_weights = jax.eval_shape(lstm_kernel.act_weights, *weights, *head)
    act_weights = jax.tree.map(lambda x: spec(*x.shape), act_weights)
    report(f"{block}, {warps}", [
        (learn, (learned, spec(L, B, dtype=jnp.int32))),
        (act, (*weights, *head, act_weights, spec(B, H), spec(B, H),
               spec(B, 2, dtype=jnp.int32)))])

B, L, heads, D = 256, 401, 4, 16
print("\n| attention: block | kernel | registers/thread | spill stores, bytes/thread |")
print("|---|---|---|---|")
for block in (16, 32, 64):
  attention_kernel.configure(block)
  S = attention_kernel.cache_len(L)
  learn = jax.jit(jax.grad(lambda *x: jnp.sum(jax.vmap(attention_kernel.causal_attention)(*x)),
                           (0, 1, 2)))
  act = jax.jit(jax.vmap(lambda *x: attention_kernel.cached_attention(*x)))
  report(str(block), [
      (learn, (spec(B, L, heads, D),) * 3),
      (act, (spec(B, 2, heads, D), spec(B, heads, S, D), spec(B, heads, S, D),
             spec(B, dtype=jnp.int32)))])
