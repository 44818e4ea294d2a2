"""The package as installed: what `import causal_meta` brings in (no Pallas or Triton module
beyond those its dependencies import themselves, no matplotlib), the one version string, the
constraints file against setup.cfg's bounds, and figures written through epath."""

import configparser
import pathlib
import re
import subprocess
import sys

import numpy as np
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import chex, flax.linen, jax, ml_collections, optax
before = set(sys.modules)
import causal_meta
added = set(sys.modules) - before
assert any(m.startswith("causal_meta") for m in added)
print(sorted(m for m in added if "pallas" in m or "triton" in m))
"""


def _run(script: str) -> str:
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        timeout=300, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout.strip()


def test_import_adds_no_pallas_or_triton():
  assert _run(SCRIPT) == "[]"


def test_import_does_not_import_matplotlib():
  # matplotlib is a fifth of the import time; only drawing a figure may load it.
  _run("import causal_meta, causal_meta.train, sys; assert 'matplotlib' not in sys.modules, "
       "[m for m in sys.modules if m.startswith('matplotlib')]")


def test_version_is_written_once():
  init = (ROOT / "causal_meta" / "__init__.py").read_text()
  (version,) = re.findall(r'^__version__ = "([^"]+)"$', init, flags=re.M)
  others = [p for p in (ROOT / "causal_meta").rglob("*.py")
            if p != ROOT / "causal_meta" / "__init__.py" and "__version__ =" in p.read_text()]
  assert not others, others
  cfg = configparser.ConfigParser()
  cfg.read(ROOT / "setup.cfg")
  assert cfg["metadata"]["version"] == "attr: causal_meta.__version__"
  assert version not in (ROOT / "setup.cfg").read_text()
  (cff_version,) = re.findall(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(),
                              flags=re.M)
  assert cff_version == version


def test_setuptools_reads_the_version_without_importing_the_package():
  # A static read lets `pip install -e .` build metadata before any dependency is installed.
  out = _run("import sys\n"
             "from setuptools.config.setupcfg import read_configuration\n"
             "print(read_configuration('setup.cfg')['metadata']['version'])\n"
             "assert 'causal_meta' not in sys.modules and 'jax' not in sys.modules\n")
  import causal_meta
  assert out.splitlines()[-1] == causal_meta.__version__


def _requirements(cfg: configparser.ConfigParser, key: str, section: str = "options"):
  return [Requirement(line) for line in cfg[section][key].splitlines() if line.strip()]


def test_constraints_pin_every_requirement_within_its_bounds():
  cfg = configparser.ConfigParser()
  cfg.read(ROOT / "setup.cfg")
  pins = {}
  for line in (ROOT / "constraints.txt").read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
      name, sep, version = line.partition("==")
      assert sep and version, f"constraints.txt: {line!r} is not an exact `==` pin"
      pins[canonicalize_name(name)] = version
  assert "torch" not in pins
  required = (_requirements(cfg, "install_requires")
              + _requirements(cfg, "test", "options.extras_require"))
  for req in required:
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is required by setup.cfg but not pinned"
    assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} outside {req}"
  # The accelerator extras pin jax to the same range as the CPU install.
  jax_bounds = {str(r.specifier) for r in _requirements(cfg, "install_requires")
                if r.name == "jax"}
  for extra in ("cuda12", "tpu"):
    (req,) = _requirements(cfg, extra, "options.extras_require")
    assert req.name == "jax" and req.extras == {extra}
    assert {str(req.specifier)} == jax_bounds


def test_makefile_installs_with_the_constraints():
  makefile = (ROOT / "Makefile").read_text()
  (deps,) = re.findall(r"^\$\(VENV\)/\.installed:(.*)$", makefile, flags=re.M)
  assert "constraints.txt" in deps.split()
  assert "-e '.[test]' -c constraints.txt" in makefile


def test_figures_create_their_directory_and_are_png(tmp_path):
  from causal_meta import plots
  curve = plots.curves(str(tmp_path / "a" / "b" / "kl.png"), {"kl": [1.0, 0.5, 0.25]}, "t",
                       "KL", logy=True)
  raster = plots.action_raster(str(tmp_path / "c" / "raster.png"),
                               {"agent": (np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 0]]))},
                               num_actions=3)
  for path in (curve, raster):
    assert pathlib.Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
