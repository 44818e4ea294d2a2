#!/usr/bin/env bash
# The GPU numbers in BENCHMARKS.md: run from the repository root on a machine with one GPU and
# JAX with CUDA (plus flax, optax, chex, orbax-checkpoint, absl-py, ml_collections). Each part
# has its own time limit so that one slow setting cannot take the rest down; outputs go to
# ${OUT:-runs/gpu}. Usage:
#   bash launch/gpu_benchmarks.sh [targets|peer|throughput|long|profile|scan_unroll|options|
#                                  packing|target|seeds|padlock|padlock_seeds_lstm|
#                                  padlock_seeds_transformer|padlock_deep|tictactoe|all]...
# CHECK=1 first, on any machine: every command validates its flags and configs (`--check`) and
# says what it would run; nothing is compiled or written. Each part fits one 600 s call
# (tests/test_gpu_script.py). `targets` first: the performance targets in one call.
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

part_targets() {  # the performance targets in one call: the LSTM at B = 65,536, T = 20
                  # (1e8 env-steps/s), the transformer at B = 4,096, T = 20 and 200 (T = 200
                  # at least half of T = 20's rate), time to KL <= 0.01; 420 s
  b 120 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --json="$out/targets_lstm.json"
  b 240 --agent=transformer --batch_sizes=4096 --horizons=20,200 \
    --json="$out/targets_transformer.json"
  b 60 --target_kl=0.01 --batch_sizes=256 --json="$out/targets_time_to_kl.json"
}

part_peer() {  # the LSTM beside the PyTorch eager peer on CUDA (needs torch on the machine)
  b 300 --peer --agent=lstm --batch_sizes=4096,65536 --horizons=20 --json="$out/peer.json"
}

part_profile() {  # the costliest kernels of the LSTM update
  b 150 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --profile_dir="$out/profile" --json="$out/lstm_profile.json"
}

part_throughput() {  # the LSTM's rows of the H100 table; 460 s (the transformer's: part_long)
  for u in 1 4; do
    b 80 --agent=lstm --batch_sizes=256,4096,65536 --horizons=20 --scan_unroll=$u \
      --json="$out/lstm_u$u.json"
  done
  b 150 --agent=lstm --batch_sizes=256,4096,65536 --horizons=100 --json="$out/lstm_t100.json"
  b 150 --agent=lstm --batch_sizes=256,4096 --horizons=500 --json="$out/lstm_t500.json"
}

part_scan_unroll() {  # time steps per compiled-loop iteration, LSTM and transformer; 270 s
  b 120 --agent=lstm --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --json="$out/lstm_unroll4.json"
  b 150 --agent=transformer --batch_sizes=4096 --horizons=20 --scan_unroll=4 \
    --json="$out/transformer_unroll4.json"
}

part_options() {  # the kept options against the plain XLA path: donation, attention chunks
                  # and microbatches at T = 200; 380 s
  b 80 --agent=lstm --nodonate --batch_sizes=4096,65536 --horizons=20 --scan_unroll=4 \
    --json="$out/lstm_unroll4_nodonate.json"
  b 150 --agent=transformer --attention_chunk=50 --batch_sizes=4096 --horizons=20,200 \
    --json="$out/transformer_chunk50.json"
  b 150 --agent=transformer --attention_chunk=50 --microbatches=4 --batch_sizes=4096 \
    --horizons=200 --json="$out/transformer_chunk50_micro4.json"
}

part_packing() {  # episodes packed end to end in the padlock transformer's learning pass; 240 s
  for p in 1 2; do
    b 120 --task=padlock --agent=transformer --teaching=demonstration --packing=$p \
      --batch_sizes=4096 --horizons=14 --json="$out/padlock_transformer_packing$p.json"
  done
}

part_long() {  # the transformer's rows of the H100 table: T = 20 and 200 as they are, then
                # 100 and 500 in attention chunks of 50 so that the learning pass fits, at
                # B = 4,096 also in 4 microbatches (as compiled here, AOT=h100, T = 500 needs
                # 72 GiB without them, 21 GiB with); 500 s
  b 200 --agent=transformer --batch_sizes=256,4096 --horizons=20,200 \
    --json="$out/transformer.json"
  b 120 --agent=transformer --attention_chunk=50 --batch_sizes=256 --horizons=100,500 \
    --updates_per_call=5 --json="$out/transformer_chunk50_long.json"
  b 180 --agent=transformer --attention_chunk=50 --microbatches=4 --batch_sizes=4096 \
    --horizons=100,500 --updates_per_call=5 --json="$out/transformer_chunk50_micro4_long.json"
}

part_padlock() {  # the README's padlock table (the config's gpu size: batch 4,096)
  sw 500 padlock 8 --config=experiments/padlock.py:gpu --workdir="$runs/padlock" --noprogress \
    --grid=agent.kind=lstm,transformer --grid=teaching=counterfactual,demonstration,mixed
}

padlock_seeds() {  # padlock_seeds KIND: the README padlock rows of one agent over seeds 0-2
  for t in counterfactual demonstration mixed; do
    sw 180 "padlock_seeds_$1_$t" 3 --config=experiments/padlock.py:gpu --seeds=3 \
      --workdir="$runs/padlock_seeds_$1_$t" --config.agent.kind="$1" --config.teaching=$t \
      --noprogress
  done
}
part_padlock_seeds_lstm() { padlock_seeds lstm; }
part_padlock_seeds_transformer() { padlock_seeds transformer; }

part_padlock_deep() {  # the next padlock transformer shape (README, padlock): 8 layers of 32
  sw 550 padlock_deep 5 --config=experiments/padlock.py:gpu --workdir="$runs/padlock_deep" \
    --noprogress --config.agent.kind=transformer --config.agent.num_layers=8 \
    --config.agent.width=32 --grid=teaching=counterfactual,demonstration,mixed
}

part_tictactoe() {  # [D] Table 2 at minGPT size (experiments/tictactoe_retrain.py, 'gpu')
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
[ "${parts[*]}" = all ] && parts=(targets throughput long profile scan_unroll options packing
                                  target seeds padlock tictactoe)
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
