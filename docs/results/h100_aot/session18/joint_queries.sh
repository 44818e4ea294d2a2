#!/usr/bin/env bash
# The transformer's rollout with an env step's two queries in one attention product (session
# 4's first version; joint_queries.patch, set JOINT=1) against one product per query (the
# code), both compiled here for an H100 at the session15 part's settings with S = 1. From the
# repository root, PY a Python with jax[cuda12]==0.10.2; writes joint_queries.txt beside this.
set -eu
PY=${PY:-python}
d=docs/results/h100_aot/session18
w=$(mktemp -d)/tree
git worktree add -q --detach "$w" HEAD
trap 'git worktree remove --force "$w"' EXIT
git -C "$w" apply "$PWD/$d/joint_queries.patch"
for joint in "" 1; do
  echo "== JOINT=$joint"
  (cd "$w" && JOINT=$joint "$PY" -m launch.benchmark --aot=h100 --agent=transformer \
     --attention_chunk=50 --batch_sizes=256,4096 --horizons=20,200 2>&1 | grep -v -i warn \
     | grep "^| NVIDIA\|^| target\|^|---|---|---|---|---|---|")
done | tee "$d/joint_queries.txt"
