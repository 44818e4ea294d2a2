"""What the H100 would execute for the LSTM's Pallas kernels: their machine code (SASS), compiled
without an H100, counted instruction by instruction.

The update (paper bandit, counterfactual teaching, `lstm_kernel=pallas`) is compiled for the
H100 (deviceless, `causal_meta.aot`) with XLA dumping its kernels' PTX (through XLA_FLAGS, so
that any commit's tree can be measured); ptxas (JAX's CUDA plugin) assembles each Pallas
kernel for sm_90a, reporting registers and spills, and nvdisasm (`pip install
nvidia-cuda-nvdisasm`) prints its SASS. Each kernel is one loop over tokens (`fori_loop`);
the loop body is the code between the loop's label and its backward branch. Per kernel, the
body's instructions by kind, then per update:

  warp-instructions = launches x programs x warps x (body x trips + the rest, once)

and the issue floor, the time if every SM's 4 schedulers issued one warp-instruction per cycle
at the boost clock (1.98 GHz) the whole time. A floor: with one program (8 warps) per SM, two
warps per scheduler, cycles will also go to waiting on products, loads and barriers. Last,
per kernel, how many programs can be resident on an SM at once, as its registers and its
shared memory (XLA's thunk sequence) allow: more hide more of that latency.

  PYTHONPATH=<tree> JAX_PLATFORMS=cpu python sass.py [B T [block warps [stages]]]
"""
import atexit
import collections
import glob
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

DUMP = tempfile.mkdtemp()  # removed at exit
atexit.register(shutil.rmtree, DUMP)
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={DUMP}"
import jax  # pylint: disable=g-import-not-at-top

jax.config.update("jax_platforms", "cpu")
from causal_meta import aot, benchmark  # pylint: disable=g-import-not-at-top
from causal_meta import config as config_lib  # pylint: disable=g-import-not-at-top
from causal_meta.agents import lstm_kernel  # pylint: disable=g-import-not-at-top

SITE = os.path.join(os.path.dirname(jax.__file__), "..")
PTXAS = glob.glob(os.path.join(SITE, "nvidia", "cuda_nvcc", "bin", "ptxas"))[0]
NVDISASM = glob.glob(os.path.join(SITE, "nvidia", "cu*", "bin", "nvdisasm"))[0]
KINDS = {  # SASS opcodes by what they use
    "tensor": {"HMMA", "HGMMA"},
    "fp32": {"FFMA", "FMUL", "FADD", "FMNMX", "FSETP", "FSEL", "FCHK"},
    "mufu": {"MUFU"},
    "shared": {"LDS", "STS", "LDSM", "STSM"},
    "global": {"LDG", "STG", "LDGSTS", "RED", "ATOMG"},
    "sync": {"BAR", "WARPGROUP", "MEMBAR", "FENCE", "DEPBAR", "WARPSYNC"},
}
SMS, SCHEDULERS, CLOCK = 132, 4, 1.98e9
# Per SM: registers, and shared memory (each resident program also takes 1 KB of it).
REGISTERS, SHARED, SHARED_PER_PROGRAM = 65_536, 233_472, 1024


def census(sass: str) -> tuple[collections.Counter, int]:
  """SASS text -> (the loop body's opcodes counted, the other instructions' count)."""
  lines, labels, loop = [], {}, None
  for line in sass.splitlines():
    label = re.match(r"^(\.L_x_\d+):", line)
    if label:
      labels[label.group(1)] = len(lines)
    m = re.match(r"^\s+/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", line)
    if m:
      lines.append(m.group(1))
      target = re.search(r"BRA `\((\.L_x_\d+)\)", line)
      # A backward branch is the loop; one to itself ends the kernel (a trap, never reached).
      if target and labels.get(target.group(1), len(lines) - 1) < len(lines) - 1:
        assert loop is None, "more than one loop"
        loop = (labels[target.group(1)], len(lines))
  body = collections.Counter(lines[loop[0]:loop[1]])
  return body, len(lines) - sum(body.values())


def main(B, T):
  base = config_lib.default()
  base.agent.update(kind="lstm", lstm_kernel="pallas")
  config = benchmark.setting(base, B, T)
  K = config.updates_per_call
  trips = {"_forward_kernel": 2 * T, "_backward_kernel": 2 * T, "_act_kernel": 2}  # 2 tokens
  try:
    compiled, _ = aot.compile_update(config, aot.target_mesh("h100"))
  except jax.errors.JaxRuntimeError as e:  # e.g. more shared memory than an SM has
    print(f"B={B}, T={T}: did not compile: {str(e).splitlines()[0]}")
    return
  launches = collections.Counter()  # per update, by kernel (the pallas_call's jaxpr path)
  for k in aot.traffic(compiled.as_text(), top=10**6)["top"]:
    if k["op"].endswith("pallas_call"):
      name = ("_act_kernel" if "Recurrent.step" in k["op"] else "_backward_kernel"
              if "transpose(" in k["op"] else "_forward_kernel")
      launches[name] += k["launches"] / K
  rows = {}
  for path in glob.glob(os.path.join(DUMP, "*.ptx")):
    entry = re.search(r"\.entry (\w+)\(", open(path).read())
    name = entry and entry.group(1)
    if name not in trips:
      continue
    cubin = path + ".cubin"
    info = subprocess.run([PTXAS, "-v", "--gpu-name", "sm_90a", path, "-o", cubin],
                          capture_output=True, text=True, check=True).stderr
    sass = subprocess.run([NVDISASM, "-c", cubin], capture_output=True, text=True,
                          check=True).stdout
    regs = int(re.search(r"Used (\d+) registers", info).group(1))
    spills = int(re.search(r"(\d+) bytes spill stores", info).group(1))
    rows[name] = (regs, spills) + census(sass)
  shared = {}  # bytes of shared memory per program, from XLA's thunk sequence
  for path in glob.glob(os.path.join(DUMP, "*thunk_sequence.txt")):
    for m in re.finditer(r"(_\w+_kernel) grid: .*? shared_memory: (\d+) bytes", open(path).read()):
      shared[m.group(1)] = int(m.group(2))
  programs = math.ceil(B / lstm_kernel.BLOCK)
  warps = lstm_kernel.NUM_WARPS
  stages = getattr(lstm_kernel, "NUM_STAGES", 1)  # a setting since session 22
  print(f"B={B}, T={T}: {programs} programs of {lstm_kernel.BLOCK} episodes, {warps} warps"
        + (f", {stages} pipeline stages" if stages > 1 else ""))
  print("| kernel | registers | spills B | loop body: instructions | " +
        " | ".join(KINDS) + " | other | trips | launches/update | rest | "
        "warp-instructions/update | issue floor ms |\n" + "|---" * (len(KINDS) + 10) + "|")
  total_ms = total = 0.0
  for name in ("_act_kernel", "_forward_kernel", "_backward_kernel"):
    if name not in rows:
      continue
    regs, spills, body, rest = rows[name]
    kinds = [sum(body[op] for op in ops) for ops in KINDS.values()]
    size = sum(body.values())
    executed = launches[name] * programs * warps * (size * trips[name] + rest)
    ms = executed / (SMS * SCHEDULERS * CLOCK) * 1e3
    total_ms += ms
    total += executed
    print(f"| {name} | {regs} | {spills} | {size} | " + " | ".join(map(str, kinds)) +
          f" | {size - sum(kinds)} | {trips[name]} | {launches[name]:.0f} | {rest} | "
          f"{executed:.3g} | {ms:.2f} |")
  print(f"\nIssue floor of the three kernels: {total:.3g} warp-instructions, {total_ms:.2f} ms "
        f"per update ({B * T / total_ms * 1e3:.3g} env-steps/s at most)")
  print("\n| kernel | shared memory, bytes | programs per SM, by registers | by shared memory |"
        "\n|---|---|---|---|")
  for name in sorted(rows):
    per_warp = math.ceil(rows[name][0] / 8) * 8 * 32  # registers come in 256 per warp
    print(f"| {name} | {shared[name]} | {REGISTERS // (per_warp * warps)} | "
          f"{SHARED // (shared[name] + SHARED_PER_PROGRAM)} |")
  for name, (_, _, body, _) in sorted(rows.items()):
    print(f"\n{name}'s loop body, by opcode: " +
          ", ".join(f"{op} {n}" for op, n in body.most_common()))


if __name__ == "__main__":
  if len(sys.argv) > 4:
    lstm_kernel.configure(*(int(a) for a in sys.argv[3:6]))
  main(*(int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (65536, 20))
