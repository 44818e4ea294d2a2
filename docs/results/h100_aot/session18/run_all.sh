#!/usr/bin/env bash
# Session 18's deviceless H100 results, in order (BENCHMARKS.md, "Session 18"). From the
# repository root, with PY a Python that has jax[cuda12]==0.10.2 and the package's
# dependencies; everything is written beside this file.
set -u
d=docs/results/h100_aot/session18
export PY=${PY:-python}
# 1. Session 3's code against session 3's H100 measurements.
bash $d/validate_session3.sh
# 2. The LSTM at B = 65,536, T = 20: before this session (69a9d50), after one product for both
#    weight gradients (d116876), after the acting head for the last token only (848b3bd), after
#    the Pallas path's bias gradient from the table's (6daf691); with each learning pass and
#    acting-state option.
for rev in 69a9d50 d116876 848b3bd 6daf691; do
  for v in "xla" "xla --reuse_acting_states" "pallas" "pallas --reuse_acting_states"; do
    name="lstm_b65536_${rev}_$(echo $v | sed 's/ --reuse_acting_states/_reuse/')"
    bash $d/at_commit.sh $rev "$name" --batch_sizes=65536 --horizons=20 --scan_unroll=4 \
      --updates_per_call=10 --lstm_kernel=$v
  done
done
# 3. Every benchmark command of the GPU script's parts not yet run on a GPU, compiled here.
AOT=h100 PYTHON=$PY OUT=$d/parts bash launch/gpu_benchmarks.sh session15 session14 \
  tune_lstm long variants throughput 2>&1 | grep -v -i warn > $d/parts.txt
# 4. The transformer's two queries per env step in one product, against one product each.
bash $d/joint_queries.sh
# 5. The transformer at B = 4,096, T = 500 in attention chunks, without microbatches: its memory.
JAX_PLATFORMS=cpu $PY -m launch.benchmark --aot=h100 --agent=transformer --attention_chunk=50 \
  --batch_sizes=4096 --horizons=500 --updates_per_call=5 --json=$d/transformer_b4096_t500_chunk50.json \
  2>&1 | grep -v -i warn | tee $d/transformer_b4096_t500_chunk50.txt
