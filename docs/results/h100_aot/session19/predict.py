"""A time model for small batches on the H100, fitted to session 3's measurements, applied to
session 19's compiled programs: ms per update ≈ a · kernels per update + b · GB per update.

Fitted by least squares to every row of session 18's validation (session 3's code compiled
for the H100, beside what session 3 measured there) with B ≤ 1,024, where neither term alone
explains the time (BENCHMARKS.md, session 18). Applied to the B = 256 rows of run_all.sh's
tables (for the Pallas acting kernel, the bytes it reads: `filled_part_correction`), it
predicts the transformer's T = 200 / T = 20 ratio of env-steps/s (target ≥ 0.5).
A prediction from 7 points and 2 parameters, not a measurement: `launch/gpu_benchmarks.sh
session19 session15` measures it. Usage, from the repository root: python3 THIS_FILE.
"""
import json
import os

import numpy as np

from causal_meta import aot
from causal_meta import config as config_lib
from causal_meta.agents import attention_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
rows = [r for r in json.load(open(os.path.join(HERE, "../session18/validate_session3.json")))
        if r["batch_size"] <= 1024]
X = np.array([[r["kernels_per_update"], r["gb_per_update"]] for r in rows])
y = np.array([r["measured_ms_per_update"] for r in rows])
(a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
print(f"fit on {len(rows)} rows: {1e3 * a:.3f} µs per kernel + {b:.3f} ms per GB "
      f"(an effective {1 / b:.2f} TB/s)")
print("| agent | B | T | measured ms | fitted ms | fitted / measured | fitted without this row "
      "/ measured |")
print("|---|---|---|---|---|---|---|")
for i, (r, fit) in enumerate(zip(rows, X @ [a, b])):
  others = np.arange(len(rows)) != i  # leave-one-out: the model predicting a row it never saw
  loo = X[i] @ np.linalg.lstsq(X[others], y[others], rcond=None)[0]
  print(f"| {r['agent']} | {r['batch_size']} | {r['horizon']} | {y[i]:.3g} | {fit:.3g} | "
        f"{fit / y[i]:.2f} | {loo / y[i]:.2f} |")



def filled_part_correction(r: dict) -> float:
  """GB per update that `aot.traffic` counts for the Pallas acting kernel beyond what it reads.
  The traffic estimate counts a kernel's operands whole: for `cached_attention` the layer's
  whole KV cache, at every step. The kernel reads only the key blocks up to the step's last
  position, last = 2t + 2 at step t (BOS, then an action and an observation token a step)."""
  agent = config_lib.default().agent
  B, T, H, D = r["batch_size"], r["horizon"], agent.num_heads, agent.width // agent.num_heads
  S = attention_kernel.cache_len(2 * T + 1)
  slot = 2 * B * H * D * 4  # bytes of one slot's key and value over the batch (float32)
  unread = sum(S - ((2 * t + 2) // attention_kernel.BLOCK + 1) * attention_kernel.BLOCK
               for t in range(T))
  steps = sum(k["launches_per_update"] for k in r["top_kernels"]
              if k["op"].endswith("cached_attention/pallas_call"))
  assert steps == agent.num_layers * T, steps  # every layer's step kernel is among the top
  return agent.num_layers * unread * slot / 1e9


print("\n| attention | cache blocks | T | kernels/update | GB/update (read) "
      "| predicted ms/update | predicted env-steps/s | T = 200 / T = 20 |")
print("|---|---|---|---|---|---|---|---|")
for name in ("xla_chunk50_segments1", "xla_chunk50_segments8", "pallas"):
  by_t = {r["horizon"]: r for r in json.load(open(os.path.join(HERE, name + ".json")))
          if r["batch_size"] == 256}
  rate = {}
  for T, r in sorted(by_t.items()):
    gb = r["gb_per_update"]
    read = f"{gb:.3g}"
    if name == "pallas":
      gb -= filled_part_correction(r)
      read = f"{r['gb_per_update']:.3g} ({gb:.3g})"
    ms = a * r["kernels_per_update"] + b * gb
    rate[T] = r["batch_size"] * T / ms * 1e3
    ratio = f"{rate[200] / rate[20]:.2f}" if T == 200 else ""
    print(f"| {name.split('_')[0]} | {name[-1] if name != 'pallas' else 1} | {T} | "
          f"{r['kernels_per_update']:.0f} | {read} | {ms:.3g} | {rate[T]:.3g} | {ratio} |")

print("\nThe Pallas kernels' rows, with the bytes the acting kernel reads:\n")
print("| B | T | GB/update counted | not read by the acting kernel | GB/update read "
      "| floor ms/update (read) | ceiling env-steps/s (read) |")
print("|---|---|---|---|---|---|---|")
for name in ("pallas", "pallas_t500"):
  for r in json.load(open(os.path.join(HERE, name + ".json"))):
    unread = filled_part_correction(r)
    read = r["gb_per_update"] - unread
    floor_ms = read / aot.TARGETS["h100"]["memory_bandwidth"] * 1e12  # GB / (B/s) in ms
    print(f"| {r['batch_size']} | {r['horizon']} | {r['gb_per_update']:.3g} | {unread:.3g} | "
          f"{read:.3g} | "
          f"{floor_ms:.3g} | {r['batch_size'] * r['horizon'] / floor_ms * 1e3:.3g} |")
