#!/usr/bin/env bash
# Session 17: the transformer at B = 4,096, T = 100 on the 2-core, 24 GB CPU, a cell session 16's
# grid (../session16/cpu_grid.sh) left out. As is, its learning pass does not fit (an out of
# memory row); in attention chunks of 50, as the grid's T = 500 row, it does (the peak RSS at the
# end of its .txt is from running that command under /usr/bin/time -v). Run from the repository
# root with nothing else running; outputs beside this file.
set -u
d=docs/results/cpu/session17
b() { local name=$1; shift; .venv/bin/python -m launch.benchmark "$@" --json="$d/$name.json" \
        2>&1 | grep -v -i warn | tee "$d/$name.txt"; }
b transformer_b4096_t100 --agent=transformer --batch_sizes=4096 --horizons=100 --updates_per_call=1
b transformer_b4096_t100_chunk50 --agent=transformer --attention_chunk=50 --batch_sizes=4096 \
  --horizons=100 --updates_per_call=1
