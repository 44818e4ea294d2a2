"""What `import causal_meta` brings in: no Pallas or Triton module beyond those its
dependencies (jax, flax, optax, chex, ml_collections) import themselves."""

import subprocess
import sys

SCRIPT = """
import sys
import chex, flax.linen, jax, ml_collections, optax
before = set(sys.modules)
import causal_meta
added = set(sys.modules) - before
assert any(m.startswith("causal_meta") for m in added)
print(sorted(m for m in added if "pallas" in m or "triton" in m))
"""


def test_import_adds_no_pallas_or_triton():
  proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == "[]"
