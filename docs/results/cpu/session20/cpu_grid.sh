#!/usr/bin/env bash
# Session 20: the LSTM at B = 65,536, T = 500 on the 2-core, 24 GB CPU, the last LSTM cell of
# the grid (../session16, ../session17). As is, XLA would need about 5 times the 35 GB that
# T = 100 asked for; in 16 microbatches the compiled update needs 11.4 GB of temporaries
# (`memory_analysis`). One update per chunk, the median of 5. Run from the repository root
# with nothing else running, under /usr/bin/time -v (peak RSS and wall time appended to the
# .txt); outputs beside this file.
set -u
d=docs/results/cpu/session20
b() { local name=$1; shift; .venv/bin/python -m launch.benchmark "$@" --json="$d/$name.json" \
        2>&1 | grep -v -i warn | tee "$d/$name.txt"; }
b lstm_b65536_t500_micro16 --agent=lstm --microbatches=16 --batch_sizes=65536 --horizons=500 \
  --updates_per_call=1
