#!/usr/bin/env bash
# `launch.benchmark --aot ARGS` on the code of commit REV (with today's causal_meta/aot.py and
# launch/benchmark.py copied in): REV's program compiled for an H100 here. Usage, from the
# repository root, with a Python that has jax[cuda12]==0.10.2 and the package's dependencies:
#   PY=/path/to/python bash docs/results/h100_aot/session18/at_commit.sh REV NAME ARGS...
# prints the rows and writes NAME.txt and NAME.json beside this file.
set -eu
PY=${PY:-python}
rev=$1 name=$2; shift 2
d=docs/results/h100_aot/session18
w=$(mktemp -d)/tree
git worktree add -q --detach "$w" "$rev"
trap 'git worktree remove --force "$w"' EXIT
cp causal_meta/aot.py "$w/causal_meta/aot.py"
cp launch/benchmark.py "$w/launch/benchmark.py"
(cd "$w" && JAX_PLATFORMS=cpu "$PY" -m launch.benchmark --aot=h100 "$@" \
   --json="$OLDPWD/$d/$name.json") 2>&1 | grep -v -i warn | tee "$d/$name.txt"
