#!/usr/bin/env bash
# Session 3, device call 3: padlock with expert epsilon 0.42, cosine learning rate, larger batches.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
sw() { local t=$1 name=$2; shift 2; timeout $t python3 -m launch.sweep --config=experiments/padlock.py --workdir=/tmp/runs/$name --noprogress --config.task.padlock.epsilon=0.42 --config.optim.schedule=cosine "$@" > $OUT/$name.log 2>&1; echo "$name (exit $?)"; cp /tmp/runs/$name/results.csv $OUT/$name.csv 2>/dev/null; grep -E "^\| padlock" $OUT/$name.log; }
sw 400 padlock_eps042_cos_b4096 --config.batch_size=4096 --grid=agent.kind=lstm,transformer --grid=teaching=counterfactual,demonstration,mixed
sw 150 padlock_eps042_cos_b1024_lstm --config.batch_size=1024 --grid=teaching=counterfactual,demonstration
