#!/usr/bin/env bash
# Session 16: the 2-core CPU grid of BENCHMARKS.md with the current code, batch sizes 256 to
# 65,536 and horizons 20 / 100 / 500 where they fit in this machine's 24 GB, one command per
# row group (run from the repository root; nothing else running). Outputs beside this file.
set -u
d=docs/results/cpu/session16
b() { local name=$1; shift; .venv/bin/python -m launch.benchmark "$@" --json="$d/$name.json" \
        2>&1 | grep -v -i warn | tee "$d/$name.txt"; }
b lstm_t20_t100 --agent=lstm --batch_sizes=256,1024,4096 --horizons=20,100
b lstm_t500 --agent=lstm --batch_sizes=256,1024,4096 --horizons=500 --updates_per_call=2
b lstm_b65536 --agent=lstm --batch_sizes=65536 --horizons=20 --updates_per_call=2
b transformer_t20 --agent=transformer --batch_sizes=256,1024 --horizons=20
b transformer_b4096_t20 --agent=transformer --batch_sizes=4096 --horizons=20 --updates_per_call=2
b transformer_t100 --agent=transformer --batch_sizes=256,1024 --horizons=100 --updates_per_call=2
b transformer_t500_chunk50 --agent=transformer --attention_chunk=50 --batch_sizes=256 \
  --horizons=500 --updates_per_call=1
