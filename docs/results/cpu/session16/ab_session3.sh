#!/usr/bin/env bash
# Session 16: is the current code slower than session 3's on this CPU, or the machine? Times
# the LSTM at B = 256 and 1,024, T = 20, alternately with session 3's code (6adabd7, in a git
# worktree) and the current one, two rounds each. Output: ab_session3.txt beside this file.
set -eu
root=$(pwd); old=$(mktemp -d)/old
git worktree add -q "$old" 6adabd7
for r in 1 2; do
  for v in old new; do
    dir=$root; [ $v = old ] && dir=$old
    (cd "$dir" && PYTHONPATH=$dir "$root/.venv/bin/python" -m launch.benchmark --agent=lstm \
      --batch_sizes=256,1024 --horizons=20 --json="/tmp/ab_${v}_$r.json" > /dev/null 2>&1)
    python3 -c "
import json; r = json.load(open('/tmp/ab_${v}_$r.json'))
print('$v', $r, [(x['batch_size'], round(x['ms_per_update'], 1), round(x['rollout_ms'], 1),
                  round(x['learning_ms'], 1)) for x in r])"
  done
done
git worktree remove --force "$old"
