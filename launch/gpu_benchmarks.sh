#!/usr/bin/env bash
# The GPU numbers in BENCHMARKS.md: run from the repository root on a machine with one GPU and
# JAX with CUDA (plus flax, optax, chex, orbax-checkpoint, absl-py, ml_collections). Each part
# has its own time limit so that one slow setting cannot take the rest down; outputs go to
# ${OUT:-runs/gpu}. Usage:
#   bash launch/gpu_benchmarks.sh [throughput|profile|variants|session14|session15|tune_lstm|
#                                  session19|tune_attention|long|target|seeds|padlock|
#                                  padlock_deep|tictactoe|unmet|all]...
# CHECK=1 first, on any machine: every command validates its flags and configs (`--check`) and
# says what it would run; nothing is compiled or written. Each part fits one 600 s call
# (tests/test_gpu_script.py). Not yet run on a GPU, in priority order (BENCHMARKS.md): unmet
# (the two targets not yet met, in one call; run tests/test_agents.py -k lowers_to_triton
# first), session19 and session15 (the T = 200 / T = 20 target), session14 (Pallas LSTM),
# tune_lstm, tune_attention, long, variants, throughput, profile, padlock_deep.
# AOT=h100, on a machine without a GPU but with JAX's CUDA plugin (PYTHON=its python): every
# benchmark command compiles its settings for an H100 instead (`launch.benchmark --aot`):
# whether each compiles and fits, and its kernels and estimated bytes per update. Training
# runs are skipped.
set -u
py=${PYTHON:-python3}
aot=${AOT:+--aot=$AOT}
[ -z "$aot" ] || export JAX_PLATFORMS=cpu  # it only compiles: JAX itself runs on the CPU
out=${OUT:-runs/${AOT:+aot_}gpu}  # benchmark JSON and logs
runs=${RUNS:-$out/runs}           # training runs' work directories
check=${CHECK:+--check}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
limit() { [ -z "$check" ] || echo "(limit $1 s)"; }  # CHECK=1: for the parts' 600 s budget
b() {
  if [ -n "$aot" ]; then  # no time limit: compiling is not what the limit is for
    case " ${*:2} " in
      *--target_kl*|*--profile_dir*) echo "(skipped under AOT: it runs)"; return ;;
    esac
    $py -m launch.benchmark $aot $check "${@:2}"; echo "(exit $?)"; return
  fi
  limit "$1"; timeout "$1" $py -m launch.benchmark $check "${@:2}"; echo "(exit $?)"
}
sw() {  # sw LIMIT NAME LINES ARGS...: launch.sweep into $out/NAME.log, then its last LINES lines
  [ -z "$aot" ] || { echo "$2 (skipped under AOT: training runs)"; return; }
  limit "$1"
  if [ -n "$check" ]; then
    $py -m launch.sweep --check "${@:4}"; echo "$2 (exit $?)"; return
  fi
  timeout "$1" $py -m launch.sweep "${@:4}" > "$out/$2.log" 2>&1; echo "$2 (exit $?)"
  tail -n "$3" "$out/$2.log"
}

part_profile() {  # the costliest kernels of the LSTM update (BENCHMARKS.md, session 3)
  b 150 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --profile_dir="$out/profile" --json="$out/lstm_profile.json"
  b 120 --agent=lstm --nofused_lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --profile_dir="$out/profile_reference" --json="$out/lstm_reference_profile.json"
}

part_throughput() {  # the LSTM's rows of the H100 table; 460 s (the transformer's: part_long)
  for u in 1 4; do
    b 80 --agent=lstm --batch_sizes=256,4096,65536 --horizons=20 --scan_unroll=$u \
      --json="$out/lstm_u$u.json"
  done
  b 150 --agent=lstm --batch_sizes=256,4096,65536 --horizons=100 --json="$out/lstm_t100.json"
  b 150 --agent=lstm --batch_sizes=256,4096 --horizons=500 --json="$out/lstm_t500.json"
}

part_variants() {  # what was tried (BENCHMARKS.md): loop unrolling, remat, act-and-learn; 570 s
  b 120 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --json="$out/lstm_unroll4.json"
  b 120 --agent=lstm --reuse_acting_states --batch_sizes=4096,65536 --horizons=20 \
    --scan_unroll=4 --json="$out/lstm_unroll4_reuse_acting_states.json"
  b 150 --agent=transformer --batch_sizes=4096 --horizons=20 --scan_unroll=4 \
    --json="$out/transformer_unroll4.json"
  b 180 --agent=transformer --remat --batch_sizes=256,4096 --horizons=20,200 \
    --json="$out/transformer_remat.json"
}

part_session14() {  # what session 14 built on the CPU (BENCHMARKS.md), to time on a GPU; the
                    # time limits add up to 400 s (attention_chunk alone: part_session15)
  b 120 --agent=lstm --lstm_kernel=pallas --batch_sizes=4096,65536 --horizons=20 \
    --json="$out/lstm_pallas.json"
  b 100 --agent=lstm --lstm_kernel=pallas --reuse_acting_states --batch_sizes=4096,65536 \
    --horizons=20 --json="$out/lstm_pallas_reuse_acting_states.json"
  b 80 --agent=lstm --nodonate --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --json="$out/lstm_unroll4_nodonate.json"
  b 100 --agent=transformer --attention_chunk=50 --microbatches=4 --batch_sizes=4096 \
    --horizons=200 --json="$out/transformer_chunk50_micro4.json"
}

part_unmet() {  # the issue's two targets not yet met, in one call (BENCHMARKS.md, "Against
                # the performance issue's targets"): the Pallas LSTM at B = 65,536, T = 20
                # (1e8 env-steps/s), and the transformer through the Pallas attention kernels
                # at B = 256, T = 20 and 200 (T = 200 at least half of T = 20's rate); 300 s
  b 120 --agent=lstm --lstm_kernel=pallas --batch_sizes=65536 --horizons=20 \
    --json="$out/unmet_lstm_pallas.json"
  b 180 --agent=transformer --attention_kernel=pallas --batch_sizes=256 --horizons=20,200 \
    --json="$out/unmet_transformer_pallas.json"
}

part_session15() {  # session 15 (BENCHMARKS.md): the transformer's KV cache in blocks, at T = 20
                    # and 200 with the same flags (the T = 200 / T = 20 target); 540 s in all
  for s in 1 4 8; do
    b 180 --agent=transformer --attention_chunk=50 --cache_segments=$s --batch_sizes=256,4096 \
      --horizons=20,200 --json="$out/transformer_chunk50_segments$s.json"
  done
}

part_session19() {  # session 19 (BENCHMARKS.md): the transformer through the Pallas attention
                    # kernels (learning and acting), against session15's XLA rows (the T = 200
                    # / T = 20 target), then T = 500 without chunks or microbatches; 360 s
  b 180 --agent=transformer --attention_kernel=pallas --batch_sizes=256,4096 \
    --horizons=20,200 --json="$out/transformer_pallas.json"
  b 180 --agent=transformer --attention_kernel=pallas --batch_sizes=256,4096 --horizons=500 \
    --updates_per_call=5 --json="$out/transformer_pallas_t500.json"
}

part_tune_attention() {  # the Pallas attention kernels' block (queries and keys), at the
                         # T = 200 target's B = 256 and at B = 4,096; 3 settings, 540 s
  for block in 16 32 64; do
    b 180 --agent=transformer --attention_kernel=pallas --attention_block=$block \
      --batch_sizes=256,4096 --horizons=200 --json="$out/transformer_pallas_block$block.json"
  done
}

part_long() {  # the transformer's rows of the H100 table: T = 20 and 200 as they are, then
                # 100 and 500 (issue: T 20/100/500) in attention chunks of 50 so that the
                # learning pass fits, at B = 4,096 also in 4 microbatches (as compiled here,
                # AOT=h100, T = 500 needs 72 GiB without them, 21 GiB with); 500 s
  b 200 --agent=transformer --batch_sizes=256,4096 --horizons=20,200 \
    --json="$out/transformer.json"
  b 120 --agent=transformer --attention_chunk=50 --batch_sizes=256 --horizons=100,500 \
    --updates_per_call=5 --json="$out/transformer_chunk50_long.json"
  b 180 --agent=transformer --attention_chunk=50 --microbatches=4 --batch_sizes=4096 \
    --horizons=100,500 --updates_per_call=5 --json="$out/transformer_chunk50_micro4_long.json"
}

part_tune_lstm() {  # the Pallas LSTM kernels' block (episodes per program) and warps, B = 65,536,
                    # then 16 episodes, 8 warps in 2 pipeline stages (the next step's loads in
                    # flight); 5 settings, 300 s in all (run after session14 shows they
                    # compile). Not tried: 2 warps and blocks of 64 (they spill KBs), 16 warps
                    # (as many instructions per warp as 8), 32 episodes in 2 stages (more
                    # shared memory than an SM has; BENCHMARKS.md sessions 21-22)
  for block in 16 32; do
    for warps in 4 8; do
      b 60 --agent=lstm --lstm_kernel=pallas --lstm_block=$block --lstm_warps=$warps \
        --batch_sizes=65536 --horizons=20 --repeats=3 \
        --json="$out/lstm_pallas_block${block}_warps$warps.json"
    done
  done
  b 60 --agent=lstm --lstm_kernel=pallas --lstm_block=16 --lstm_warps=8 --lstm_stages=2 \
    --batch_sizes=65536 --horizons=20 --repeats=3 \
    --json="$out/lstm_pallas_block16_warps8_stages2.json"
}

part_padlock() {  # the README's padlock table (the config's gpu size: batch 4,096)
  sw 500 padlock 8 --config=experiments/padlock.py:gpu --workdir="$runs/padlock" --noprogress \
    --grid=agent.kind=lstm,transformer --grid=teaching=counterfactual,demonstration,mixed
}

part_padlock_deep() {  # the next padlock transformer shape (README, padlock): 8 layers of 32
  sw 550 padlock_deep 5 --config=experiments/padlock.py:gpu --workdir="$runs/padlock_deep" \
    --noprogress --config.agent.kind=transformer --config.agent.num_layers=8 \
    --config.agent.width=32 --grid=teaching=counterfactual,demonstration,mixed
}

part_tictactoe() {  # [D] Table 2 at minGPT size (experiments/tictactoe.py, 'gpu')
  [ -z "$aot" ] || { echo "tictactoe (skipped under AOT: training runs)"; return; }
  limit 450
  if [ -n "$check" ]; then
    $py -m launch.reproduce tictactoe --check --workdir="$runs/tictactoe"; echo "(exit $?)"
    return
  fi
  timeout 450 $py -m launch.reproduce tictactoe --workdir="$runs/tictactoe" \
    > "$out/tictactoe.log" 2>&1; echo "tictactoe (exit $?)"
  grep -v -E "Warning|warn|libtpu|fontManager" "$out/tictactoe.log" | tail -20
}

part_target() {
  b 60 --target_kl=0.01 --batch_sizes=256 --json="$out/target_b256.json"
  b 90 --target_kl=0.01 --batch_sizes=1024,4096 --learning_rate=1e-2 --eval_every=10 \
    --json="$out/target_large.json"
}

part_seeds() {
  for s in 1 8; do
    sw 120 seeds$s 0 --config=experiments/bandit.py --workdir="$runs/seeds$s" --seeds=$s
  done
  [ -z "$check$aot" ] || return 0
  $py - "$runs" <<'PY'
import json, sys
r = {s: json.load(open(f"{sys.argv[1]}/seeds{s}/seeds.json")) for s in (1, 8)}
for s, v in r.items():
  print(f"seeds={s}: compile {v['compile_seconds']:.1f} s, train {v['train_seconds']:.2f} s")
print(f"8 seeds cost {r[8]['train_seconds'] / r[1]['train_seconds']:.2f}x one seed")
PY
}

parts=("${@:-all}")
[ "${parts[*]}" = all ] && parts=(throughput long profile variants session14 session15
                                  session19 target seeds padlock tictactoe)
for part in "${parts[@]}"; do  # every name first: a typo must not cost the parts before it
  declare -F "part_$part" > /dev/null || { echo "error: unknown part '$part'" >&2; exit 2; }
done
[ -n "$check" ] || mkdir -p "$out" "$runs"
command -v nvidia-smi > /dev/null &&
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import jax, flax, optax; print('jax', jax.__version__, jax.devices(),
                                      'flax', flax.__version__, 'optax', optax.__version__)"
for part in "${parts[@]}"; do
  "part_$part"
done
