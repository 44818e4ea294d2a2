#!/usr/bin/env bash
# Session 22's deviceless H100 results (BENCHMARKS.md, "Session 22"). From the repository root,
# with PY a Python that has jax[cuda12]==0.10.2, the package's dependencies and nvdisasm
# (`pip install nvidia-cuda-nvdisasm`); everything is written beside this file. "before" is
# 6fcaf7f (the kernels' input projection a one-hot product in full float32), "now" this
# tree (a gather of the table's rows). Three variants of "now", tried and not adopted:
# "approx", tanh and the sigmoids as the GPU's tanh.approx.f32 (approx_tanh.patch); "exp2",
# the sigmoids through exp2 (exp2_sigmoid.patch); "tf32", the forward kernel's head product at
# the default precision (TF32 on the GPU).
set -u
d=docs/results/h100_aot/session22
PY=${PY:-python}
export JAX_PLATFORMS=cpu
t=$(mktemp -d)
git worktree add -q --detach "$t/before" 6fcaf7f
git worktree add -q --detach "$t/approx" HEAD
git -C "$t/approx" apply "$PWD/$d/approx_tanh.patch"
git worktree add -q --detach "$t/exp2" HEAD
git -C "$t/exp2" apply "$PWD/$d/exp2_sigmoid.patch"
git worktree add -q --detach "$t/tf32" HEAD
sed -i 's/, precision=jax.lax.Precision.HIGHEST) \\$/) \\/' "$t/tf32/causal_meta/agents/lstm_kernel.py"
trap 'for x in before approx exp2 tf32; do git worktree remove --force "$t/$x"; done' EXIT
tree() { [ "$1" = now ] && echo . || echo "$t/$1"; }
# 1. The three kernels' SASS, counted, at B = 65,536, T = 20 (default block and warps).
for name in before now approx exp2 tf32; do
  echo "## $name"
  PYTHONPATH=$(tree $name) $PY $d/sass.py 65536 20
  echo
done 2>&1 | grep -v -i warn > $d/sass.txt
# 2. The same for the other settings `tune_lstm` tries, and 16 warps, before and now; then
#    now with 2 pipeline stages (before had no such setting).
for name in before now; do
  for block_warps in "16 4" "32 4" "32 8" "16 16"; do
    echo "## $name, block and warps $block_warps"
    PYTHONPATH=$(tree $name) $PY $d/sass.py 65536 20 $block_warps
    echo
  done
done 2>&1 | grep -v -i warn > $d/sass_settings.txt
for block_warps_stages in "16 8 2" "32 8 2"; do
  echo "## now, block, warps and stages $block_warps_stages"
  PYTHONPATH=. $PY $d/sass.py 65536 20 $block_warps_stages
  echo
done 2>&1 | grep -v -i warn > $d/sass_stages.txt
# 3. Registers and spills for every block and warp count (session 20's script).
PYTHONPATH=. $PY docs/results/h100_aot/session20/registers.py 2>&1 | grep -v -i warn \
  > $d/registers.txt
# 4. Bytes: the learning pass's kernels at B = 65,536, T = 20, and the LSTM's rows.
PYTHONPATH=. $PY docs/results/h100_aot/session20/lstm_bytes.py pallas 65536 20 learning 2>&1 |
  grep -v -i warn > $d/lstm_bytes.txt
$PY -m launch.benchmark --aot=h100 --agent=lstm --lstm_kernel=pallas \
  --batch_sizes=256,4096,65536 --horizons=20,100 --json=$d/now_pallas.json 2>&1 |
  grep -v -i warn > $d/now_pallas.txt
# 5. The bytes at 32 episodes with 8 warps, the cheapest setting by step 2's count.
$PY -m launch.benchmark --aot=h100 --agent=lstm --lstm_kernel=pallas --lstm_block=32 \
  --lstm_warps=8 --batch_sizes=65536 --horizons=20 --json=$d/now_pallas_block32_warps8.json 2>&1 |
  grep -v -i warn > $d/now_pallas_block32_warps8.txt
