#!/usr/bin/env bash
# The 2-core CPU table of BENCHMARKS.md: the LSTM and the transformer at B = 256, 1,024 and
# 4,096, T = 20 and 100, each setting timed in turn with the PyTorch eager peer at the same B
# and T (`--peer`: needs torch; 3 rounds each), then the time to KL <= 0.01 for seeds 0-2.
# Run from the repository root with nothing else running. Writes grid.txt (each command, its
# table, its wall time and peak RSS) and grid.json (each command and its rows) beside this file.
# `grid.sh two_devices` runs it all with JAX_NUM_CPU_DEVICES=2 (each core runs half of every
# batch) and writes grid_two_devices.txt and .json instead.
set -u
d=docs/results/cpu_benchmarks
name=grid
if [ "${1:-}" = two_devices ]; then
  export JAX_NUM_CPU_DEVICES=2
  name=grid_two_devices
fi
tmp=$(mktemp -d)
n=0
: > "$d/$name.txt"
b() {
  n=$((n + 1))
  echo "python -m launch.benchmark $*" > "$tmp/$n.cmd"
  echo "\$ ${JAX_NUM_CPU_DEVICES:+JAX_NUM_CPU_DEVICES=$JAX_NUM_CPU_DEVICES }python -m launch.benchmark $*" \
    >> "$d/$name.txt"
  /usr/bin/time -v -o "$tmp/time" .venv/bin/python -m launch.benchmark "$@" \
    --json="$tmp/$n.json" 2>&1 | grep -v -i warn | tee -a "$d/$name.txt"
  grep -E 'Elapsed|Maximum resident' "$tmp/time" \
    | sed 's/^[[:space:]]*/# \/usr\/bin\/time -v: /' >> "$d/$name.txt"
  echo >> "$d/$name.txt"
}
b --peer --agent=lstm --batch_sizes=256,1024,4096 --horizons=20,100
b --peer --agent=transformer --batch_sizes=256,1024,4096 --horizons=20
b --peer --agent=transformer --batch_sizes=256,1024 --horizons=100 --updates_per_call=2
b --peer --agent=transformer --batch_sizes=4096 --horizons=100 --updates_per_call=1 --repeats=3
for seed in 0 1 2; do
  b --target_kl=0.01 --batch_sizes=256 --seed=$seed
done
python3 - "$tmp" "$n" "$d/$name.json" <<'PY'
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
