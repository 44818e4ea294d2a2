# The H100 padlock commands, as they ran on a lent NVIDIA H100 80GB HBM3 (JAX 0.11.2), outputs in $OUT.
# experiments/padlock.py then had the gpu size's agents (hidden 64; 2 layers of width 64) and
# batch 256: with the overrides below it is `experiments/padlock.py:gpu` today.

# Padlock at expert epsilon 0.42, cosine learning rate: the table at batch 4,096 and the LSTM at 1,024.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
sw() { local t=$1 name=$2; shift 2; timeout $t python3 -m launch.sweep --config=experiments/padlock.py --workdir=/tmp/runs/$name --noprogress --config.task.padlock.epsilon=0.42 --config.optim.schedule=cosine "$@" > $OUT/$name.log 2>&1; echo "$name (exit $?)"; cp /tmp/runs/$name/results.csv $OUT/$name.csv 2>/dev/null; grep -E "^\| padlock" $OUT/$name.log; }
sw 400 padlock_eps042_cos_b4096 --config.batch_size=4096 --grid=agent.kind=lstm,transformer --grid=teaching=counterfactual,demonstration,mixed
sw 150 padlock_eps042_cos_b1024_lstm --config.batch_size=1024 --grid=teaching=counterfactual,demonstration

# The demonstration transformer wider (width 128) or with 16,384 episodes per update.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
tr() { local t=$1 name=$2; shift 2; timeout $t python3 -m launch.train --config=experiments/padlock.py --workdir=/tmp/runs/$name --noprogress --config.task.padlock.epsilon=0.42 --config.optim.schedule=cosine --config.agent.kind=transformer --config.teaching=demonstration "$@" > $OUT/$name.log 2>&1; echo "$name (exit $?)"; grep -E "^done|step +(3000|6000) " $OUT/$name.log; }
tr 140 tf_demo_w128_b4096 --config.batch_size=4096 --config.agent.width=128
tr 140 tf_demo_w64_b16384_u3000 --config.batch_size=16384 --config.num_updates=3000
