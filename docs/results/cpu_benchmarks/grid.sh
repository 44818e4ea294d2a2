#!/usr/bin/env bash
# The 2-core CPU grid of BENCHMARKS.md: batch sizes 256 to 65,536, horizons 20, 100 and 500
# where they fit in the machine's 24 GB. A setting that does not fit as it is prints an
# out-of-memory row (with the bytes XLA asked for) and runs again with the learning pass in
# attention chunks of 50 or in microbatches (memory changes, not the update). Run from the
# repository root with nothing else running. Writes grid.txt (each command, its table, its wall
# time and peak RSS) and grid.json (each command and its rows) beside this file.
set -u
d=docs/results/cpu_benchmarks
tmp=$(mktemp -d)
n=0
: > "$d/grid.txt"
b() {
  n=$((n + 1))
  echo "python -m launch.benchmark $*" > "$tmp/$n.cmd"
  echo "\$ python -m launch.benchmark $*" >> "$d/grid.txt"
  /usr/bin/time -v -o "$tmp/time" .venv/bin/python -m launch.benchmark "$@" \
    --json="$tmp/$n.json" 2>&1 | grep -v -i warn | tee -a "$d/grid.txt"
  grep -E 'Elapsed|Maximum resident' "$tmp/time" \
    | sed 's/^[[:space:]]*/# \/usr\/bin\/time -v: /' >> "$d/grid.txt"
  echo >> "$d/grid.txt"
}
b --agent=lstm --batch_sizes=256,1024,4096 --horizons=20,100
b --agent=lstm --batch_sizes=256,1024,4096 --horizons=500 --updates_per_call=2
b --agent=lstm --batch_sizes=65536 --horizons=20 --updates_per_call=2
b --agent=lstm --batch_sizes=65536 --horizons=100 --updates_per_call=1
b --agent=lstm --microbatches=4 --batch_sizes=65536 --horizons=100 --updates_per_call=1
b --agent=lstm --microbatches=16 --batch_sizes=65536 --horizons=500 --updates_per_call=1
b --agent=transformer --batch_sizes=256,1024 --horizons=20
b --agent=transformer --batch_sizes=4096 --horizons=20 --updates_per_call=2
b --agent=transformer --batch_sizes=65536 --horizons=20 --updates_per_call=1
b --agent=transformer --microbatches=4 --batch_sizes=65536 --horizons=20 --updates_per_call=1
b --agent=transformer --batch_sizes=256,1024 --horizons=100 --updates_per_call=2
b --agent=transformer --batch_sizes=4096 --horizons=100 --updates_per_call=1
b --agent=transformer --attention_chunk=50 --batch_sizes=4096 --horizons=100 --updates_per_call=1
b --agent=transformer --attention_chunk=50 --batch_sizes=256 --horizons=500 --updates_per_call=1
python3 - "$tmp" "$n" "$d/grid.json" <<'PY'
import json, sys
tmp, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = []
for i in range(1, n + 1):
  try:
    rows = json.load(open(f"{tmp}/{i}.json"))
  except FileNotFoundError:
    rows = []
  runs.append(dict(command=open(f"{tmp}/{i}.cmd").read().strip(), rows=rows))
json.dump(runs, open(out, "w"), indent=1)
PY
