#!/usr/bin/env bash
# Session 3, device call 4: can a bigger transformer or batch bring the demonstration agent to 0.02?
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
tr() { local t=$1 name=$2; shift 2; timeout $t python3 -m launch.train --config=experiments/padlock.py --workdir=/tmp/runs/$name --noprogress --config.task.padlock.epsilon=0.42 --config.optim.schedule=cosine --config.agent.kind=transformer --config.teaching=demonstration "$@" > $OUT/$name.log 2>&1; echo "$name (exit $?)"; grep -E "^done|step +(3000|6000) " $OUT/$name.log; }
tr 140 tf_demo_w128_b4096 --config.batch_size=4096 --config.agent.width=128
tr 140 tf_demo_w64_b16384_u3000 --config.batch_size=16384 --config.num_updates=3000
