#!/usr/bin/env bash
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
b() { local t=$1; shift; timeout $t python3 -m launch.benchmark "$@" 2>&1 | grep -v -E "Warning|warn"; echo "(exit ${PIPESTATUS[0]})"; }
echo "== transformer, per-layer caches"; b 100 --agent=transformer --batch_sizes=4096 --horizons=20 --scan_unroll=4 --json=$OUT/tf_u4.json
b 170 --agent=transformer --remat --batch_sizes=256,1024 --horizons=20,200 --profile_dir=/tmp/prof_tf --json=$OUT/tf_remat.json
echo "== LSTM fused u4"; b 70 --agent=lstm --batch_sizes=256,4096,65536 --horizons=20 --scan_unroll=4 --json=$OUT/lstm_u4.json
echo "== LSTM fused T=100,500"; b 100 --agent=lstm --batch_sizes=256,4096,65536 --horizons=100 --json=$OUT/lstm_t100.json
b 70 --agent=lstm --batch_sizes=256,4096 --horizons=500 --json=$OUT/lstm_t500.json
echo "== target"; b 40 --target_kl=0.01 --batch_sizes=256 --json=$OUT/target_b256.json
