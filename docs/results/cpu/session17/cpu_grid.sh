#!/usr/bin/env bash
# Session 17: cells of the 2-core, 24 GB CPU grid that session 16's (../session16/cpu_grid.sh)
# left out. Each is first run as is; where XLA asks for more memory than the machine has, the
# benchmark prints an out-of-memory row (with XLA's message), and the setting is run again with
# the learning pass in attention chunks of 50 (as the grid's T = 500 row) or in 4 microbatches,
# which change the memory, not the update. The peak RSS and wall time at the end of a .txt are
# from running that command under /usr/bin/time -v. Run from the repository root with nothing
# else running; outputs beside this file.
set -u
d=docs/results/cpu/session17
b() { local name=$1; shift; .venv/bin/python -m launch.benchmark "$@" --json="$d/$name.json" \
        2>&1 | grep -v -i warn | tee "$d/$name.txt"; }
b transformer_b4096_t100 --agent=transformer --batch_sizes=4096 --horizons=100 --updates_per_call=1
b transformer_b4096_t100_chunk50 --agent=transformer --attention_chunk=50 --batch_sizes=4096 \
  --horizons=100 --updates_per_call=1
b transformer_b65536_t20 --agent=transformer --batch_sizes=65536 --horizons=20 --updates_per_call=1
b transformer_b65536_t20_micro4 --agent=transformer --microbatches=4 --batch_sizes=65536 \
  --horizons=20 --updates_per_call=1
b lstm_b65536_t100 --agent=lstm --batch_sizes=65536 --horizons=100 --updates_per_call=1
b lstm_b65536_t100_micro4 --agent=lstm --microbatches=4 --batch_sizes=65536 --horizons=100 \
  --updates_per_call=1
