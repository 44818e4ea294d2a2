#!/usr/bin/env bash
# Session 19's deviceless H100 results (BENCHMARKS.md, "Session 19"). From the repository root,
# with PY a Python that has jax[cuda12]==0.10.2 and the package's dependencies; everything is
# written beside this file.
set -u
d=docs/results/h100_aot/session19
export PY=${PY:-python} JAX_PLATFORMS=cpu
aot() {  # aot NAME FLAGS...: one launch.benchmark --aot=h100 table, as text and JSON
  $PY -m launch.benchmark --aot=h100 --agent=transformer "${@:2}" --json=$d/$1.json 2>&1 |
    grep -v -i warn > $d/$1.txt
}
# 1. The transformer at the T = 200 / T = 20 target's settings and B = 4,096: XLA's attention
#    in chunks of 50 (session 15's part), the cache in 1 or 8 blocks, against the Pallas
#    kernels (which read only the filled part of a one-block cache).
for s in 1 8; do
  aot xla_chunk50_segments$s --attention_chunk=50 --cache_segments=$s --batch_sizes=256,4096 \
    --horizons=20,200
done
aot pallas --attention_kernel=pallas --batch_sizes=256,4096 --horizons=20,200
# 2. T = 500 with the Pallas kernels, no chunks or microbatches: does B = 4,096 fit?
aot pallas_t500 --attention_kernel=pallas --batch_sizes=256,4096 --horizons=500 \
  --updates_per_call=5
# 3. Where the bytes go, by phase (rollout, learning forward and backward, the rest).
for args in "256 20 attention_chunk=50" "256 200 attention_chunk=50 cache_segments=8" \
            "256 20 attention_kernel=pallas" "256 200 attention_kernel=pallas"; do
  PYTHONPATH=. $PY $d/phases.py $args top=6
done 2>&1 | grep -v -i warn > $d/phases.txt
# 4. The GPU script's new parts, compiled: session19 and tune_attention (blocks of 16, 32, 64).
AOT=h100 PYTHON=$PY OUT=$d/parts bash launch/gpu_benchmarks.sh session19 tune_attention 2>&1 |
  grep -v -i warn > $d/parts.txt
# 5. The update compiled for two H100s: what XLA gathers for the Pallas kernels.
PYTHONPATH=. $PY $d/two_devices.py 2>&1 | grep -v -i warn > $d/two_devices.txt
