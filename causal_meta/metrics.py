"""Where a run's numbers go: `metrics.jsonl`, TensorBoard, the run's provenance.

`MetricsWriter(workdir, resume_step)` appends one JSON object per logging step to
WORKDIR/metrics.jsonl and the same scalars to WORKDIR/tensorboard/ (tensorboardX), plus the
run's figures as images and, at the end, its hyperparameters with the final KLs (TensorBoard's
HParams tab). On resume, rows after the restored step (written after the last checkpoint by a
run that was then killed) are dropped first, so the file reads as if the run had never stopped;
TensorBoard is told to discard those events too (`purge_step`).

All file I/O goes through `etils.epath`, so WORKDIR may be a gs:// path (object stores cannot
append: there metrics.jsonl is rewritten whole at each row, a few hundred rows in a run).
`environment()` and `provenance()` describe the machine, packages, command and git commit for
summary.json.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from typing import Any, Mapping

import jax
import numpy as np
from etils import epath

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "orbax-checkpoint", "numpy",
            "ml_collections", "absl-py", "matplotlib", "tensorboardX")


# ---------------------------------------------------------------------------------- JSON lines
def read_jsonl(path: epath.PathLike) -> list[dict]:
  """The rows of a metrics.jsonl; a torn last line (a process killed mid-write) is skipped."""
  path = epath.Path(path)
  rows = []
  if not path.exists():
    return rows
  for line in path.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      break
  return rows


def _finite_or_str(value: Any) -> Any:
  """JSON has no NaN/inf: they are written as strings so that every line stays valid JSON."""
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str | float | int | bool]:
  """A nested config dict as {"optim.learning_rate": 0.003, ...}: the values TensorBoard's
  HParams accept (str, float, int, bool); anything else (None, lists) as its JSON text."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(flatten(value, name + "."))
    elif isinstance(value, (str, float, int, bool)):
      flat[name] = value
    else:
      flat[name] = json.dumps(value)
  return flat


# tensorboardX writes event files locally or, given the client library, to these stores.
_TENSORBOARD_STORES = {"gs": ("google.cloud.storage", "google-cloud-storage"),
                       "s3": ("boto3", "boto3")}


def _check_tensorboard_storage(workdir: str) -> None:
  """A one-line error, before anything is written, if tensorboardX cannot write there."""
  if "://" not in workdir:
    return
  scheme = workdir.split("://", 1)[0]
  if scheme not in _TENSORBOARD_STORES:
    raise ValueError(f"config.tensorboard: tensorboardX writes event files locally, to gs:// "
                     f"or to s3://, not to {scheme}://; set config.tensorboard=False")
  module, package = _TENSORBOARD_STORES[scheme]
  try:
    importlib.import_module(module)
  except ImportError:
    raise ValueError(f"config.tensorboard: event files in a {scheme}:// workdir need "
                     f"{package} (pip install {package}); or set config.tensorboard=False"
                     ) from None


class MetricsWriter:
  """Appends rows to WORKDIR/metrics.jsonl (and TensorBoard events when `tensorboard`).

  resume_step: None or 0 for a fresh run (the file is truncated); otherwise rows with
  step > resume_step are dropped and the rest kept (`self.history`), and TensorBoard drops the
  events after resume_step.
  """

  def __init__(self, workdir: epath.PathLike, resume_step: int | None = None,
               tensorboard: bool = True):
    if tensorboard:
      _check_tensorboard_storage(os.fspath(workdir))
    workdir = epath.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    self.path = workdir / "metrics.jsonl"
    self.history = [r for r in read_jsonl(self.path) if r.get("step", 0) <= (resume_step or 0)]
    # An object store (gs://) cannot append: there each row rewrites the (small) file.
    self._append = "://" not in os.fspath(self.path)
    self._rewrite()
    self._file = self.path.open("a") if self._append else None
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # imported here: its import takes a second
      # The events after resume_step are the killed run's: TensorBoard hides every event at or
      # after purge_step in the files before this one (resume_step's own row stays, as in
      # metrics.jsonl). The suffix keeps two writers started in the same second
      # (tensorboardX names files by the second) from sharing, and truncating, a file.
      self._tb = SummaryWriter(os.fspath(workdir / "tensorboard"),
                               purge_step=(resume_step or 0) + 1,
                               filename_suffix=f".{time.time_ns()}.{os.getpid()}")

  def _rewrite(self) -> None:
    text = "".join(json.dumps(r) + "\n" for r in self.history)
    if not self._append:
      self.path.write_text(text)  # an object is replaced whole: a kill here loses nothing
      return
    tmp = self.path.with_name(self.path.name + ".tmp")
    tmp.write_text(text)  # rewrite then rename: a kill here loses nothing
    tmp.replace(self.path)

  def write(self, row: Mapping[str, Any]) -> dict[str, Any]:
    """One logging step: {'step': int, name: float, ...}. Returns the row as stored (NaN and
    inf as strings)."""
    stored = {k: _finite_or_str(v) for k, v in row.items()}
    self.history.append(stored)
    if self._file:
      self._file.write(json.dumps(stored) + "\n")
      self._file.flush()
    else:
      self._rewrite()
    if self._tb:
      for tag, value in row.items():
        if tag != "step" and isinstance(value, (int, float)):
          self._tb.add_scalar(tag, value, row["step"])
      self._tb.flush()  # as metrics.jsonl: a killed run keeps every logged row
    return stored

  def figure(self, tag: str, path_png: epath.PathLike, step: int) -> None:
    """A PNG file (a figure of the run) as TensorBoard image `tag` at `step`."""
    if not self._tb:
      return
    from PIL import Image  # matplotlib's own dependency; tensorboardX encodes with it too
    with Image.open(io.BytesIO(epath.Path(path_png).read_bytes())) as image:
      if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
      pixels = np.asarray(image)  # uint8 [H, W, 3 or 4]
    self._tb.add_image(tag, pixels, step, dataformats="HWC")

  def hparams(self, config: Mapping[str, Any], final_metrics: Mapping[str, float],
              step: int | None = None) -> None:
    """The run's config (nested or already flat: `flatten`) and its final metrics, as
    TensorBoard's HParams tab shows them (in tensorboard/hparams/; the metrics are logged
    there as `final/<name>`, apart from the training curves of the same name)."""
    if not self._tb:
      return
    self._tb.add_hparams(flatten(config),
                         {f"final/{k}": float(v) for k, v in final_metrics.items()},
                         name="hparams", global_step=step)

  def close(self) -> None:
    """Closes the files; a second call does nothing."""
    if self._file:
      self._file.close()
      self._file = None
    if self._tb:
      self._tb.close()
      self._tb = None


# --------------------------------------------------------------------------------- environment
def environment() -> dict[str, Any]:
  """Hardware, devices, package versions and `provenance()`, for summary.json."""
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  devices = jax.devices()
  return dict(
      hardware=dict(machine=platform.machine(), processor=platform.processor() or None,
                    system=platform.system(), cpu_count=os.cpu_count(),
                    hostname=socket.gethostname()),
      backend=jax.default_backend(), device=devices[0].device_kind,
      devices=[str(d) for d in devices], num_devices=len(devices),
      python_version=platform.python_version(), jax_version=jax.__version__, packages=versions,
      **provenance())


def command() -> str | None:
  """The command line that started this process (shell-quoted); None in a notebook or an
  interactive interpreter, where there is none."""
  # A Jupyter kernel's argv is its launcher's (ipykernel_launcher.py -f kernel.json).
  if not sys.argv or not sys.argv[0] or "ipykernel" in os.path.basename(sys.argv[0]):
    return None
  return shlex.join(sys.argv)


def git_state(directory: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
  """{git_commit, git_dirty} of the git checkout holding `directory` (default: this package),
  if its files are tracked there (a package installed into a virtualenv inside some checkout
  is not); git_dirty: tracked or untracked changes in the checkout. None where git, the
  checkout or an answer within `timeout` seconds is missing."""
  directory = directory or os.path.dirname(os.path.abspath(__file__))

  def git(*args: str) -> str:
    return subprocess.run(["git", "--no-optional-locks", "-C", directory, *args],
                          capture_output=True, text=True, timeout=timeout,
                          check=True).stdout.strip()

  state = dict(git_commit=None, git_dirty=None)
  try:
    git("ls-files", "--error-unmatch", ".")  # fails outside a checkout and on untracked files
    state["git_commit"] = git("rev-parse", "HEAD")
    state["git_dirty"] = bool(git("status", "--porcelain"))
  except (OSError, subprocess.SubprocessError):
    pass
  return state


def provenance() -> dict[str, Any]:
  """What produced a run: the command line (`command`) and the code's git commit
  (`git_state`)."""
  return dict(command=command(), **git_state())
