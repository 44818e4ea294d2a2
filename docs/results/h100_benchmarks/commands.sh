# The H100 commands behind BENCHMARKS.md, as they ran on a lent NVIDIA H100 80GB HBM3 (JAX 0.11.2):
# two device calls of at most 600 s, the package installed from a wheel, outputs in $OUT.
# rows.json holds each JSON under a key named by what it measures; printed_rows.md the rows that
# have no JSON. The transformer's --remat command used an option that no longer exists; the
# benchmark without it runs the same rollout.

# ---- call 1
# First device call: the LSTM (fused pass; the reference pass; XLA command buffers; matmul precision).
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

# ---- call 2
# Second device call: the transformer, the LSTM at T = 20/100/500, time to KL <= 0.01.
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
