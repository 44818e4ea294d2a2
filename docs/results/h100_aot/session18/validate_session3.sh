#!/usr/bin/env bash
# Session 18: session 3's code (850c45b) compiled here for an H100, without one, beside what
# session 3 measured on the H100 (validate_session3.py says what is printed). Needs a Python
# with jax[cuda12]==0.10.2 and the package's dependencies: PY=/path/to/python bash THIS.
# Run from the repository root; writes validate_session3.{txt,json} beside this file.
set -eu
PY=${PY:-python}
d=docs/results/h100_aot/session18
w=$(mktemp -d)/s3
git worktree add -q --detach "$w" 850c45b
trap 'git worktree remove --force "$w"' EXIT
cp causal_meta/aot.py "$w/causal_meta/aot.py"
# Session 3 had no Pallas kernels; aot.py only needs their GPU switch to exist.
printf 'def _on_gpu():\n  return False\n' > "$w/causal_meta/agents/lstm_kernel.py"
PYTHONPATH="$w" JAX_PLATFORMS=cpu "$PY" "$d/validate_session3.py" "$PWD" "$PWD/$d/validate_session3.json" \
  2>&1 | grep -v -i warn | tee "$d/validate_session3.txt"
