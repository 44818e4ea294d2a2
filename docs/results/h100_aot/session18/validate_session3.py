"""The H100 program of session 3's code, compiled on a CPU machine (`causal_meta/aot.py`), next
to what session 3 measured on an H100 for the same settings (docs/results/h100/session3/).

Run by `validate_session3.sh` with PYTHONPATH at a checkout of 850c45b (session 3's code, into
which the script copies today's aot.py). Prints, per measured row, the measured ms per update
and peak memory beside the compiled program's bandwidth floor and XLA's memory, and the
measured time divided by the kernels the program launches per update.
"""
import copy
import json
import os
import sys

from causal_meta import aot, benchmark
from causal_meta import config as config_lib

MEASURED = os.path.join(sys.argv[1], "docs/results/h100/session3")
FILES = ["call2_lstm_fused_u4.json", "call1_lstm_fused_u1.json", "call2_lstm_fused_t100.json",
         "call2_lstm_fused_t500.json", "call1_lstm_reference_u4.json",
         "call2_transformer_u4.json"]

print("| file | agent | B | T | unroll | measured ms/update | floor ms/update | measured / floor "
      "| measured peak MiB | XLA's memory MiB | GB moved/update | kernels/update "
      "| measured µs per kernel |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def printed_rows():
  """The transformer rows with --remat that session 3 printed but could not save as JSON
  (printed_rows.md, "call2.sh, transformer, `--remat`, per-layer caches")."""
  text = open(os.path.join(MEASURED, "printed_rows.md")).read()
  section = text.split("call2.sh, transformer, `--remat`")[1].split("Top device ops")[0]
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    if len(cells) == 13 and cells[1] == "transformer":
      yield dict(agent="transformer", fused_lstm=True, remat=True, scan_unroll=1,
                 updates_per_call=10, batch_size=int(cells[2]), horizon=int(cells[3]),
                 ms_per_update=float(cells[8].split("/")[0]), peak_memory_mib=float(cells[12]))


rows = []
measured = [(name, m) for name in FILES for m in json.load(open(os.path.join(MEASURED, name)))]
for name, m in measured + [("printed_rows.md", m) for m in printed_rows()]:
  base = config_lib.default()
  base.agent.kind = m["agent"]
  base.agent.fused_lstm = m["fused_lstm"]
  base.agent.remat = m["remat"]
  base.scan_unroll = m["scan_unroll"]
  base.updates_per_call = m["updates_per_call"]
  r = aot.analyse(benchmark.setting(copy.deepcopy(base), m["batch_size"], m["horizon"]))
  r.update(file=name, measured_ms_per_update=m["ms_per_update"],
           measured_peak_memory_mib=m["peak_memory_mib"], scan_unroll=m["scan_unroll"])
  rows.append(r)
  print(f"| {name} | {m['agent']}{'' if m['fused_lstm'] else ' (reference)'}"
        f"{', remat' if m['remat'] else ''} | "
        f"{m['batch_size']} | {m['horizon']} | {m['scan_unroll']} | "
        f"{m['ms_per_update']:.3g} | {r['floor_ms_per_update']:.3g} | "
        f"{m['ms_per_update'] / r['floor_ms_per_update']:.2f} | "
        f"{m['peak_memory_mib']:.0f} | {r['memory_gib'] * 1024:.0f} | "
        f"{r['gb_per_update']:.3g} | {r['kernels_per_update']:.0f} | "
        f"{1e3 * m['ms_per_update'] / r['kernels_per_update']:.2f} |", flush=True)
json.dump(rows, open(sys.argv[2], "w"), indent=1)
