"""`launch/gpu_benchmarks.sh` under CHECK=1: every command it would run on a GPU validates its
flags and configs here (`--check`: nothing compiled or written), so time on a device is not
spent finding a mistyped flag. One subprocess per part, for pytest-xdist."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "launch", "gpu_benchmarks.sh")
with open(SCRIPT) as f:
  PARTS = re.findall(r"^part_(\w+)\(\)", f.read(), re.MULTILINE)


# One device call runs for at most 600 s, its set-up included (installing a wheel, starting JAX).
CALL_BUDGET_S = 570


def _check(script, part, out):
  """(exit statuses of the script's commands, their output) for one part under CHECK=1."""
  env = dict(os.environ, CHECK="1", OUT=str(out), JAX_PLATFORMS="cpu",
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
  proc = subprocess.run(["bash", str(script), part], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  text = proc.stdout + proc.stderr
  return [int(s) for s in re.findall(r"\(exit (\d+)\)", text)], text


def test_the_script_has_its_parts():
  assert {"targets", "throughput", "profile", "options", "packing", "padlock", "seeds"} <= \
      set(PARTS)


@pytest.mark.parametrize("part", PARTS)
def test_every_command_of_a_part_is_valid(part, tmp_path):
  out = tmp_path / "gpu"
  statuses, text = _check(SCRIPT, part, out)
  assert statuses and all(s == 0 for s in statuses), text[-3000:]
  assert text.count("check: ") >= len(statuses)
  assert not out.exists()  # nothing written
  # Each command's time limit is printed once: the part fits in one device call.
  limits = [int(s) for s in re.findall(r"\(limit (\d+) s\)", text)]
  assert len(limits) == len(statuses) and sum(limits) <= CALL_BUDGET_S, (part, limits)


def test_a_mistyped_command_fails_its_check(tmp_path):
  """The check can fail: the same part with one agent kind misspelled exits 2, naming it."""
  with open(SCRIPT) as f:
    script = f.read()
  broken = script.replace("--agent=transformer --teaching=demonstration",
                          "--agent=transfomer --teaching=demonstration")
  assert broken != script
  path = tmp_path / "gpu_benchmarks.sh"
  path.write_text(broken)
  statuses, text = _check(path, "packing", tmp_path / "gpu")
  assert statuses and all(s == 2 for s in statuses), text[-3000:]
  assert "config.agent.kind: unknown value 'transfomer'" in text


def test_an_unknown_part_fails_before_anything_runs(tmp_path):
  out = tmp_path / "gpu"
  proc = subprocess.run(["bash", SCRIPT, "profile", "thruput"], cwd=ROOT, capture_output=True,
                        text=True, timeout=60, env=dict(os.environ, OUT=str(out)))
  assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown part 'thruput'"
  assert proc.stdout == "" and not out.exists()
