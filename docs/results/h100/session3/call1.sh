#!/usr/bin/env bash
# Session 3, device call 1: fused LSTM pass, reference, XLA command buffers, precision, transformer cache layout.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
b() { local t=$1; shift; timeout $t python3 -m launch.benchmark "$@" 2>&1 | grep -v -E "Warning|warn"; echo "(exit ${PIPESTATUS[0]})"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, flax, optax; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'prec', jax.config.jax_default_matmul_precision)"
echo "== fused LSTM, profile"; b 150 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 --profile_dir=/tmp/prof --json=$OUT/fused_u4.json
echo "== fused LSTM u1"; b 100 --agent=lstm --batch_sizes=256,4096,65536 --horizons=20 --json=$OUT/fused_u1.json
echo "== reference LSTM, profile"; b 120 --agent=lstm --nofused_lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 --profile_dir=/tmp/prof_ref --json=$OUT/ref_u4.json
echo "== fused, command buffers incl. WHILE"; XLA_FLAGS=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,WHILE,CONDITIONAL b 100 --agent=lstm --batch_sizes=256,4096 --horizons=20 --scan_unroll=4 --json=$OUT/fused_cmdbuf.json
echo "== fused, precision float32 (no TF32)"; JAX_DEFAULT_MATMUL_PRECISION=float32 b 80 --agent=lstm --batch_sizes=65536 --horizons=20 --scan_unroll=4
echo "== fused, precision bfloat16"; JAX_DEFAULT_MATMUL_PRECISION=bfloat16 b 80 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4
echo "== transformer, new cache layout"; b 150 --agent=transformer --batch_sizes=4096 --horizons=20 --scan_unroll=4 --json=$OUT/tf_u4.json
b 150 --agent=transformer --remat --batch_sizes=256,1024 --horizons=20,200 --profile_dir=/tmp/prof_tf --json=$OUT/tf_remat.json
