#!/usr/bin/env bash
# Session 21's deviceless H100 results (BENCHMARKS.md, "Session 21"). From the repository root,
# with PY a Python that has jax[cuda12]==0.10.2 and the package's dependencies; everything is
# written beside this file. "before" is 41641f2, the commit before the LSTM's backward kernel
# summed the weight gradients itself (and before the kernels' default block 32, 4 warps became
# 16, 8 warps); "sums" is 9e86573, that change alone; "head" is 061ab44, the output head's
# gradient in the backward kernel too ("now" also has the forward kernel write the logits).
set -u
d=docs/results/h100_aot/session21
s20=docs/results/h100_aot/session20
PY=${PY:-python}
# at_commit.sh runs it from another directory: a path, made absolute (symlinks kept: a venv)
[ -x "$PY" ] && PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
export PY JAX_PLATFORMS=cpu
t=$(mktemp -d)
git worktree add -q --detach "$t/before" 41641f2
git worktree add -q --detach "$t/sums" 9e86573
git worktree add -q --detach "$t/head" 061ab44
# "tf32": this commit with the forward kernel's head product at the default precision (TF32 on
# the GPU), as first written (step 5).
git worktree add -q --detach "$t/tf32" HEAD
sed -i 's/, precision=jax.lax.Precision.HIGHEST) \\$/) \\/' "$t/tf32/causal_meta/agents/lstm_kernel.py"
trap 'for x in before sums head tf32; do git worktree remove --force "$t/$x"; done' EXIT
# 1. Where the LSTM's bytes go at B = 65,536, T = 20 (Pallas kernels) at each commit: the
#    learning pass's kernels one by one.
for tree in before sums head now; do
  echo "## $tree"
  PYTHONPATH=$([ $tree = now ] && echo . || echo "$t/$tree") \
    $PY $s20/lstm_bytes.py pallas 65536 20 learning
done 2>&1 | grep -v -i warn > $d/lstm_bytes.txt
# 2. The LSTM's rows (Pallas kernels) at each commit; now also at the old default block and
#    warps (32, 4), to part the changes.
for rev_name in "41641f2 before" "9e86573 sums" "061ab44 head"; do
  set -- $rev_name
  PY=$PY bash docs/results/h100_aot/session18/at_commit.sh $1 ../session21/$2_pallas \
    --agent=lstm --lstm_kernel=pallas --batch_sizes=256,4096,65536 --horizons=20,100
done
for block_warps in "" "32 4"; do
  set -- $block_warps
  name=now_pallas${1:+_block$1_warps$2}
  $PY -m launch.benchmark --aot=h100 --agent=lstm --lstm_kernel=pallas \
    ${1:+--lstm_block=$1 --lstm_warps=$2} --batch_sizes=256,4096,65536 --horizons=20,100 \
    --json=$d/$name.json 2>&1 | grep -v -i warn > $d/$name.txt
done
# 3. The GPU script's LSTM parts, compiled: session14 and tune_lstm (blocks 16, 32 and 4, 8
#    warps).
AOT=h100 PYTHON=$PY OUT=$d/parts bash launch/gpu_benchmarks.sh session14 tune_lstm 2>&1 |
  grep -v -i warn > $d/parts.txt
# 4. Registers and spills of the Pallas kernels for each block and warp count (ptxas -v).
PYTHONPATH=. $PY $s20/registers.py 2>&1 | grep -v -i warn > $d/registers.txt
# 5. The forward kernel with its head as a TF32 product: registers and spills (why it is not).
PYTHONPATH=$t/tf32 $PY $s20/registers.py 2>&1 | grep "LSTM: block\|^|---|\|_forward_kernel" |
  head -9 > $d/registers_tf32_head.txt
