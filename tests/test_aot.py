"""Reading compiled programs (`causal_meta.aot`): kernel and byte counts on hand-written HLO,
whose expected numbers follow from its shapes, and on programs XLA compiled here. Compiling
for an H100 without one needs JAX's CUDA plugin; where it is missing, only its error is tested.
"""

import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from causal_meta import benchmark
from causal_meta.experimental import aot
from causal_meta import config as config_lib

HAS_CUDA_PLUGIN = importlib.util.find_spec("jax_cuda12_plugin") is not None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A loop of 5 trips. Its body's fusion reads one [1, 8] row of `a` (a dynamic slice), writes
# one row into `b` in place (a dynamic-update-slice) and reads the index; the loop counter's
# add and the condition's compare are one kernel each.
LOOP = """HloModule loop

%fused (p0: f32[100,8], p1: f32[100,8], p2: s32[]) -> f32[100,8] {
  %p0 = f32[100,8]{1,0} parameter(0)
  %p1 = f32[100,8]{1,0} parameter(1)
  %p2 = s32[] parameter(2)
  %zero = s32[] constant(0)
  %row = f32[1,8]{1,0} dynamic-slice(%p0, %p2, %zero), dynamic_slice_sizes={1,8}
  %twice = f32[1,8]{1,0} add(%row, %row)
  ROOT %out = f32[100,8]{1,0} dynamic-update-slice(%p1, %twice, %p2, %zero)
}

%body (s: (s32[], f32[100,8], f32[100,8])) -> (s32[], f32[100,8], f32[100,8]) {
  %s = (s32[], f32[100,8]{1,0}, f32[100,8]{1,0}) parameter(0)
  %i = s32[] get-tuple-element(%s), index=0
  %a = f32[100,8]{1,0} get-tuple-element(%s), index=1
  %b = f32[100,8]{1,0} get-tuple-element(%s), index=2
  %f = f32[100,8]{1,0} fusion(%a, %b, %i), kind=kLoop, calls=%fused
  %one = s32[] constant(1)
  %next = s32[] add(%i, %one)
  ROOT %t = (s32[], f32[100,8]{1,0}, /*index=2*/f32[100,8]{1,0}) tuple(%next, %a, %f)
}

%cond (s: (s32[], f32[100,8], f32[100,8])) -> pred[] {
  %s = (s32[], f32[100,8]{1,0}, f32[100,8]{1,0}) parameter(0)
  %i = s32[] get-tuple-element(%s), index=0
  %n = s32[] constant(5)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}

ENTRY %main (x: f32[100,8]) -> f32[100,8] {
  %x = f32[100,8]{1,0} parameter(0)
  %y = f32[100,8]{1,0} copy(%x)
  %zero = s32[] constant(0)
  %init = (s32[], f32[100,8]{1,0}, f32[100,8]{1,0}) tuple(%zero, %x, %y)
  %w = (s32[], f32[100,8]{1,0}, f32[100,8]{1,0}) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"5"}}
  ROOT %r = f32[100,8]{1,0} get-tuple-element(%w), index=2
}
"""

# A conditional: the costlier branch counts.
BRANCHES = """HloModule branches

%small (p: f32[10]) -> f32[10] {
  %p = f32[10]{0} parameter(0)
  ROOT %n = f32[10]{0} negate(%p)
}

%big (p: f32[10]) -> f32[10] {
  %p = f32[10]{0} parameter(0)
  %e = f32[10]{0} exponential(%p)
  ROOT %l = f32[10]{0} log(%e)
}

ENTRY %main (c: pred[], x: f32[10]) -> f32[10] {
  %c = pred[] parameter(0)
  %x = f32[10]{0} parameter(1)
  ROOT %r = f32[10]{0} conditional(%c, %x, %x), true_computation=%small, false_computation=%big
}
"""


def test_shape_bytes():
  assert aot.shape_bytes("f32[4,8]{1,0}") == 4 * 8 * 4
  assert aot.shape_bytes("f32[]") == 4
  assert aot.shape_bytes("(f32[2]{0}, s32[3]{0}, /*index=2*/pred[])") == 8 + 12 + 1
  assert aot.shape_bytes("bf16[2,3]{1,0:S(1)}") == 12


def test_traffic_of_a_loop_counts_its_trips_slices_and_in_place_writes():
  copy = 2 * 100 * 8 * 4                 # read x, write y
  fusion = 8 * 4 + 4 + 8 * 4             # a row of a, the index, a row written into b
  counter = 4 + 4 + 4                    # add: i, the constant 1, the result
  compare = 4 + 4 + 1
  moved = aot.traffic(LOOP, top=2)
  assert (moved["kernels"], moved["bytes"], moved["loops_without_trip_count"]) == (
      1 + 5 * 3, copy + 5 * (fusion + counter + compare), 0)
  assert moved["top"] == [dict(name="y", op="", launches=1, bytes=copy),
                          dict(name="f", op="", launches=5, bytes=5 * fusion)]
  unknown = aot.traffic(LOOP.replace(', backend_config={"known_trip_count":{"n":"5"}}', ""))
  assert unknown["loops_without_trip_count"] == 1 and unknown["kernels"] == 1 + 3


def test_traffic_of_a_conditional_is_its_costlier_branch():
  moved = aot.traffic(BRANCHES)
  assert (moved["kernels"], moved["bytes"]) == (2, 2 * (40 + 40))


def test_traffic_of_programs_compiled_here():
  """XLA's own output: an elementwise kernel moves its input and output once; a scan of 7
  steps is a loop of known trip count whose body reads and writes the carry each step."""
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  one = jax.jit(lambda x: jnp.sin(x) * 2).lower(f32(1000)).compile().as_text()
  moved = aot.traffic(one)
  assert (moved["kernels"], moved["bytes"], moved["loops_without_trip_count"]) == (1, 8000, 0)
  scan = jax.jit(lambda x: jax.lax.scan(lambda c, _: (jnp.sin(c) * 2, None), x, None,
                                        length=7)[0])
  moved = aot.traffic(scan.lower(f32(256)).compile().as_text())
  assert moved["loops_without_trip_count"] == 0
  assert 7 * 2 * 1024 <= moved["bytes"] < 7 * 2 * 1024 + 4 * 1024  # + counters, copies in


def test_target_config_names_the_device():
  text = aot.target_config("h100")
  assert 'device_description_str: "NVIDIA H100 80GB HBM3"' in text and "core_count: 132" in text
  with pytest.raises(ValueError, match="unknown target 'v100'; allowed: h100"):
    aot.target_mesh("v100")


def _benchmark(*flags):
  return subprocess.run([sys.executable, "-m", "launch.benchmark", *flags], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_aot_refuses_what_it_cannot_do():
  proc = _benchmark("--aot=h100", "--target_kl=0.01")
  assert proc.returncode == 2 and proc.stderr.strip() == (
      "error: --aot only compiles: it cannot be combined with --target_kl or --profile_dir")


@pytest.mark.skipif(HAS_CUDA_PLUGIN, reason="the CUDA plugin is installed")
def test_without_the_cuda_plugin_the_error_says_what_to_install():
  with pytest.raises(RuntimeError, match=r"needs JAX's CUDA plugin \(pip install 'jax\[cuda12\]'"):
    aot.target_mesh("h100")
  proc = _benchmark("--aot=h100", "--batch_sizes=8", "--horizons=3")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "error: --aot=h100: compiling for h100 without a GPU needs JAX's CUDA plugin")


@pytest.mark.skipif(not HAS_CUDA_PLUGIN, reason="needs JAX's CUDA plugin (no GPU needed)")
def test_the_update_compiles_for_an_h100():
  """The LSTM's update compiled for an H100 here, with the memory XLA assigns."""
  base = config_lib.default()
  base.updates_per_call = 2
  row = aot.analyse(benchmark.setting(base, 256, 5))
  assert row["loops_without_trip_count"] == 0
  assert 0 < row["memory_gib"] < 1 and row["kernels_per_update"] > 10
