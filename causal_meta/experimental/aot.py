"""The update compiled for a GPU that this machine does not have.

XLA compiles for an NVIDIA GPU from a description of it, with no GPU attached (deviceless
ahead-of-time compilation, `jax.experimental.topologies`): the same passes as on the device,
fusion, scheduling, buffer assignment and Triton. Nothing runs, so nothing is timed. What the
compiled program does tell:
  - the memory XLA assigns to it: whether a setting fits;
  - its kernels: how many launches one update makes;
  - the bytes each kernel reads and writes, estimated from its operands' and results' shapes
    (`traffic`), hence a floor on an update's time at the device's memory bandwidth.

Needs JAX's CUDA plugin (`pip install "jax[cuda12]"`), not a GPU; without one, run JAX on the
CPU (JAX_PLATFORMS=cpu). `launch.benchmark --aot=h100` does both and prints these per setting;
BENCHMARKS.md holds them against the H100's measured numbers.
"""

from __future__ import annotations

import collections
import math
import re
import time

import jax

from causal_meta import config as config_lib
from causal_meta import parallel, train

# Published facts of each target (the CUDA device properties XLA's GPU compiler reads).
TARGETS = {
    "h100": dict(name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0), cores=132,
                 memory_bytes=84_942_979_072, memory_bandwidth=3.35e12, l2_bytes=50 * 2**20,
                 clock_ghz=1.98, shared_memory_per_core=233_472,
                 shared_memory_per_block_optin=232_448),
}
# JAX preallocates this fraction of a GPU's memory and allocates from it (its default
# XLA_PYTHON_CLIENT_MEM_FRACTION): a program needing more runs out of memory.
JAX_MEMORY_FRACTION = 0.75

HEADER = ("| target | agent | B | T | compile s | memory GiB | % of JAX's pool | kernels/update "
          "| GB moved/update | bandwidth floor ms/update | env-steps/s ceiling | products "
          "| Pallas calls |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def target_config(target: str) -> str:
  """The GpuTargetConfig text proto XLA compiles `target` against."""
  t = TARGETS[target]
  major, minor = t["compute_capability"]
  return f"""gpu_device_info {{
  threads_per_block_limit: 1024
  threads_per_warp: 32
  shared_memory_per_block: 49152
  shared_memory_per_core: {t['shared_memory_per_core']}
  shared_memory_per_block_optin: {t['shared_memory_per_block_optin']}
  threads_per_core_limit: 2048
  core_count: {t['cores']}
  fpus_per_core: 128
  block_dim_limit_x: 2147483647
  block_dim_limit_y: 65535
  block_dim_limit_z: 65535
  memory_bandwidth: {int(t['memory_bandwidth'])}
  l2_cache_size: {t['l2_bytes']}
  clock_rate_ghz: {t['clock_ghz']}
  device_memory_size: {t['memory_bytes']}
  cuda_compute_capability {{ major: {major} minor: {minor} }}
  registers_per_core_limit: 65536
  registers_per_block_limit: 65536
}}
platform_name: "CUDA"
device_description_str: "{t['name']}"
"""


def target_mesh(target: str = "h100", devices: int = 1) -> jax.sharding.Mesh:
  """A `data` mesh of `devices` abstract GPUs of kind `target` (compile only, never run).
  RuntimeError (one line) where JAX's CUDA plugin is missing."""
  if target not in TARGETS:
    raise ValueError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
  from jax.experimental import topologies
  try:
    topology = topologies.get_topology_desc(target, "cuda", target_config=target_config(target),
                                            topology=f"1x1x{devices}")
  except Exception as e:  # pylint: disable=broad-except  (no plugin: several error types)
    raise RuntimeError(f"compiling for {target} without a GPU needs JAX's CUDA plugin "
                       f"(pip install 'jax[cuda12]') and JAX_PLATFORMS=cpu: "
                       f"{str(e).splitlines()[0]}") from None
  return parallel.data_mesh(topology.devices)


def compile_update(config, mesh: jax.sharding.Mesh) -> tuple[jax.stages.Compiled, str]:
  """The train chunk of `config` (K = updates_per_call updates), compiled for `mesh`'s devices
  from abstract inputs (nothing is allocated on them), and what computes its matrix products:
  "Triton" (XLA's choice) or "cuBLAS" (the fallback, below)."""
  task, agent = config_lib.validate(config, mesh.size)
  optimizer = train.make_optimizer(config)
  update = train.make_update(task, agent, optimizer, config, mesh)
  chunk = train.make_train_chunk(update, config.updates_per_call)

  replicated = parallel.replicated(mesh)
  state = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                       jax.eval_shape(lambda: train.init_state(agent, optimizer, 0, mesh)))
  lowered = chunk.lower(state)
  try:
    return lowered.compile(), "Triton"
  except jax.errors.JaxRuntimeError as e:
    if "Couldn't find output tile sizes" not in str(e):
      raise
    # Without a device XLA cannot autotune, and its default Triton tiling fails for some
    # products (the transformer's): compile every product as a cuBLAS call instead.
    return lowered.compile({"xla_gpu_enable_triton_gemm": False}), "cuBLAS"


def analyse(config, target: str = "h100") -> dict:
  """One benchmark setting compiled for `target`: memory, kernels and estimated traffic per
  update (see the module docstring). The floor assumes that every byte counted crosses device
  memory once at full bandwidth: caches beat it for small batches, and it is only as good as
  the byte estimate (BENCHMARKS.md holds it against measured times)."""
  mesh = target_mesh(target)
  t0 = time.perf_counter()
  compiled, gemms = compile_update(config, mesh)
  compile_seconds = time.perf_counter() - t0
  text = compiled.as_text()
  mem = compiled.memory_analysis()
  need = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
          - mem.alias_size_in_bytes)
  spec = TARGETS[target]
  moved = traffic(text, top=10)
  K, B = config.updates_per_call, config.batch_size
  T = config.task[config.task.name].horizon
  floor_s = moved["bytes"] / spec["memory_bandwidth"]
  top = [dict(name=k["name"], op=k["op"], launches_per_update=k["launches"] / K,
              floor_ms_per_update=1e3 * k["bytes"] / spec["memory_bandwidth"] / K,
              fraction=k["bytes"] / max(moved["bytes"], 1)) for k in moved["top"]]
  return dict(
      target=spec["name"], jax_version=jax.__version__, task=config.task.name,
      agent=config.agent.kind, batch_size=B, horizon=T, updates_per_call=K,
      compile_seconds=compile_seconds, memory_gib=need / 2**30,
      memory_fraction_of_pool=need / (JAX_MEMORY_FRACTION * spec["memory_bytes"]),
      kernels_per_update=moved["kernels"] / K, gb_per_update=moved["bytes"] / K / 1e9,
      floor_ms_per_update=1e3 * floor_s / K, ceiling_env_steps_per_second=K * B * T / floor_s,
      gemms=gemms, triton_calls=text.count('custom_call_target="__gpu$xla.gpu.triton"'),
      loops_without_trip_count=moved["loops_without_trip_count"], top_kernels=top)


def format_row(r: dict) -> str:
  return (f"| {r['target']} | {r['agent']} | {r['batch_size']} | {r['horizon']} | "
          f"{r['compile_seconds']:.1f} | {r['memory_gib']:.2f} | "
          f"{100 * r['memory_fraction_of_pool']:.0f} | {r['kernels_per_update']:.0f} | "
          f"{r['gb_per_update']:.3g} | {r['floor_ms_per_update']:.3g} | "
          f"{r['ceiling_env_steps_per_second']:.3g} | {r['gemms']} | {r['triton_calls']} |")


def format_top(rows: list[dict]) -> str:
  """The kernels that move the most bytes (`analyse`'s top_kernels) as a table."""
  lines = ["| kernel | from | launches/update | floor ms/update | % of bytes |",
           "|---|---|---|---|---|"]
  lines += [f"| {r['name'][:40]} | {r['op'][-70:]} | {r['launches_per_update']:.3g} | "
            f"{r['floor_ms_per_update']:.3g} | {100 * r['fraction']:.1f} |" for r in rows]
  return "\n".join(lines)


# --- Reading a compiled module's text --------------------------------------------------------

_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
# Instructions that launch nothing: they name, pick or reinterpret buffers.
_FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all",
         "partition-id", "replica-id", "opt-barrier"}
_SLICES = {"slice", "dynamic-slice"}


def shape_bytes(shape: str) -> int:
  """Bytes of every array in an HLO type, e.g. 'f32[4,8]{1,0}' or a tuple of them."""
  return sum(_BYTES.get(dtype, 0) * math.prod(int(d) for d in dims.split(",") if d)
             for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", shape))


def _parse(text: str) -> dict[str, list[dict]]:
  """{computation name: its instructions}, each {name, shape, op, operands, attrs, root}."""
  computations, current = {}, None
  for line in text.splitlines():
    header = re.match(r"^(?:ENTRY )?%([\w.\-]+) .*\{$", line)
    if header:
      current = computations.setdefault(header.group(1), [])
      continue
    m = re.match(r"^\s+(ROOT )?%([\w.\-]+) = (.*)$", line)
    if current is None or not m:
      continue
    rest = m.group(3)
    shape_end = _matching(rest, 0) + 1 if rest.startswith("(") else rest.index(" ")
    shape, rest = rest[:shape_end], rest[shape_end:].lstrip()
    op = rest[:rest.index("(")]
    close = _matching(rest, len(op))
    current.append(dict(name=m.group(2), shape=shape, op=op, root=bool(m.group(1)),
                        operands=re.findall(r"%([\w.\-]+)", rest[len(op):close]),
                        attrs=rest[close + 1:]))
  return computations


def _matching(s: str, start: int) -> int:
  """Index of the parenthesis closing the one at s[start]."""
  depth = 0
  for i in range(start, len(s)):
    depth += {"(": 1, ")": -1}.get(s[i], 0)
    if depth == 0:
      return i
  raise ValueError(f"unbalanced parentheses in HLO: {s[:80]}")


def _fusion_bytes(body: list[dict]) -> int:
  """Bytes a fused kernel reads and writes. A parameter read only through slices counts the
  slices; an output written by dynamic-update-slice into a parameter (in place) counts the
  update, and that parameter is not read."""
  by_name = {i["name"]: i for i in body}
  users = {}
  for i in body:
    for o in i["operands"]:
      users.setdefault(o, []).append(i)

  def through_bitcasts(name):  # the users of `name`, looking through bitcasts
    found = []
    for u in users.get(name, []):
      found += through_bitcasts(u["name"]) if u["op"] == "bitcast" else [u]
    return found

  def written(i):  # bytes written for output instruction i
    if i["op"] == "bitcast":
      return written(by_name[i["operands"][0]])
    if i["op"] == "dynamic-update-slice":
      return shape_bytes(by_name[i["operands"][1]]["shape"])
    return shape_bytes(i["shape"])

  total = 0
  for p in (i for i in body if i["op"] == "parameter"):
    uses = through_bitcasts(p["name"])
    if uses and all(_sliced(u, p["name"], by_name) for u in uses):
      total += sum(shape_bytes(u["shape"]) for u in uses if u["op"] in _SLICES)
    else:
      total += shape_bytes(p["shape"])
  root = next(i for i in body if i["root"])
  outputs = [by_name[o] for o in root["operands"]] if root["op"] == "tuple" else [root]
  return total + sum(written(o) for o in outputs)


def _sliced(use: dict, param: str, by_name: dict) -> bool:
  """True if `use` is a slice of `param` (or of a bitcast of it), or a dynamic-update-slice
  into it, rather than using it as an index or a value."""
  if use["op"] not in _SLICES | {"dynamic-update-slice"}:
    return False
  name = use["operands"][0]
  while by_name[name]["op"] == "bitcast":
    name = by_name[name]["operands"][0]
  return name == param


def traffic(text: str, top: int = 0) -> dict:
  """Kernel launches and bytes moved by one run of a compiled module (`Compiled.as_text()`):
  loops count their trip count times (XLA's `known_trip_count`; once where it is unknown),
  a conditional its costliest branch. A kernel is a fusion, a custom call, a copy or any
  other unfused instruction; its bytes are its operands' plus its results' (`_fusion_bytes`
  for fusions). Returns {kernels, bytes, loops_without_trip_count, top}: top, the `top`
  kernels that move the most, [{name, op (the JAX operation it came from), launches, bytes}]."""
  computations = _parse(text)
  entry = re.search(r"^ENTRY %([\w.\-]+)", text, re.M).group(1)
  unknown, ops = [0], {}

  def cost(name) -> dict:  # {kernel: [launches, bytes]} for one run of computation `name`
    total = collections.defaultdict(lambda: [0, 0])

    def add(part, times=1):
      for kernel, (launches, moved) in part.items():
        total[kernel][0] += times * launches
        total[kernel][1] += times * moved

    shapes = {i["name"]: i["shape"] for i in computations[name]}
    for i in computations[name]:
      called = lambda key: re.search(key + r"=%([\w.\-]+)", i["attrs"]).group(1)
      if i["op"] in _FREE:
        continue
      if i["op"] == "while":
        trip = re.search(r'"known_trip_count":\{"n":"(\d+)"', i["attrs"])
        unknown[0] += trip is None
        times = int(trip.group(1)) if trip else 1
        add(cost(called("body")), times)
        add(cost(called("condition")), times)
      elif i["op"] == "conditional":
        branches = re.findall(r"%([\w.\-]+)",
                              re.search(r"(branch_computations=\{[^}]*\}|true_computation="
                                        r"%[\w.\-]+, false_computation=%[\w.\-]+)",
                                        i["attrs"]).group(1))
        add(max((cost(c) for c in branches), key=lambda p: sum(b for _, b in p.values())))
      elif i["op"] == "call":
        add(cost(called("to_apply")))
      else:
        if i["op"] == "fusion":
          moved = _fusion_bytes(computations[called("calls")])
        else:
          result = i["shape"]
          if "cublas" in i["attrs"]:  # its result's s8 element is cuBLAS's scratch workspace
            result = re.sub(r"\bs8\[[\d,]*\]", "", result)
          moved = shape_bytes(result) + sum(shape_bytes(shapes[o]) for o in i["operands"]
                                            if o in shapes)
        op = re.search(r'op_name="([^"]*)"', i["attrs"])
        ops[i["name"]] = op.group(1) if op else ""
        add({i["name"]: [1, moved]})
    return total

  kernels = cost(entry)
  ranked = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:top]
  return dict(kernels=sum(n for n, _ in kernels.values()),
              bytes=sum(b for _, b in kernels.values()), loops_without_trip_count=unknown[0],
              top=[dict(name=k, op=ops[k], launches=n, bytes=b) for k, (n, b) in ranked])
