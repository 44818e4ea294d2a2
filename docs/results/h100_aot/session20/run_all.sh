#!/usr/bin/env bash
# Session 20's deviceless H100 results (BENCHMARKS.md, "Session 20"). From the repository root,
# with PY a Python that has jax[cuda12]==0.10.2 and the package's dependencies; everything is
# written beside this file. "before" is fb28072, the commit before the LSTM's acting kernel.
set -u
d=docs/results/h100_aot/session20
PY=${PY:-python}
# at_commit.sh runs it from another directory: a path, made absolute (symlinks kept: a venv)
[ -x "$PY" ] && PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
export PY JAX_PLATFORMS=cpu
w=$(mktemp -d)/before
git worktree add -q --detach "$w" fb28072
trap 'git worktree remove --force "$w"' EXIT
# 1. Where the LSTM's bytes go at B = 65,536, T = 20, before and now, with the XLA and the
#    Pallas kernels.
for kernel in xla pallas; do
  for tree in "$w" .; do
    echo "## $([ "$tree" = . ] && echo now || echo before)"
    PYTHONPATH=$tree $PY $d/lstm_bytes.py $kernel 65536 20
  done
done 2>&1 | grep -v -i warn > $d/lstm_bytes.txt
# 1b. Kernels per update at B = 256, T = 20 for every agent, before and now.
for tree in "$w" .; do
  echo "## $([ "$tree" = . ] && echo now || echo before)"
  PYTHONPATH=$tree $PY $d/kernels.py
done 2>&1 | grep -v -i warn > $d/kernels.txt
# 2. The LSTM's rows, before and now (Pallas kernels).
PY=$PY bash docs/results/h100_aot/session18/at_commit.sh fb28072 ../session20/before_pallas \
  --agent=lstm --lstm_kernel=pallas --batch_sizes=256,4096,65536 --horizons=20,100
$PY -m launch.benchmark --aot=h100 --agent=lstm --lstm_kernel=pallas \
  --batch_sizes=256,4096,65536 --horizons=20,100 --json=$d/now_pallas.json 2>&1 |
  grep -v -i warn > $d/now_pallas.txt
# 3. The GPU script's LSTM parts, compiled: session14 and tune_lstm (blocks 16, 32, 64 and
#    2, 4, 8 warps, now for the acting kernel too).
AOT=h100 PYTHON=$PY OUT=$d/parts bash launch/gpu_benchmarks.sh session14 tune_lstm 2>&1 |
  grep -v -i warn > $d/parts.txt
# 4. Registers and spills of the LSTM's kernels for each block and warp count (ptxas -v).
PYTHONPATH=. $PY $d/registers.py 2>&1 | grep -v -i warn > $d/registers.txt
