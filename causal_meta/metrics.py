"""Where a run's numbers go: `metrics.jsonl`, TensorBoard event files, the environment.

`MetricsWriter(workdir, resume_step)` appends one JSON object per logging step to
WORKDIR/metrics.jsonl and the same scalars to WORKDIR/tensorboard/events.out.tfevents.*.
On resume, rows after the restored step (written after the last checkpoint by a run that was
then killed) are dropped first, so the file reads as if the run had never stopped.

The TensorBoard writer is a few lines of protobuf + TFRecord framing (the format is stable and
tiny) rather than a dependency: tensorboardX would pull in protobuf, flax's writer tensorflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import socket
import struct
import time
from typing import Any, Iterable, Mapping

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "orbax-checkpoint", "numpy",
            "ml_collections", "absl-py", "matplotlib")


# ---------------------------------------------------------------------------------- JSON lines
def read_jsonl(path: str) -> list[dict]:
  """The rows of a metrics.jsonl; a torn last line (a process killed mid-write) is skipped."""
  rows = []
  if not os.path.exists(path):
    return rows
  with open(path) as f:
    for line in f:
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


class MetricsWriter:
  """Appends rows to WORKDIR/metrics.jsonl (and TensorBoard events when `tensorboard`).

  resume_step: None or 0 for a fresh run (the file is truncated); otherwise rows with
  step > resume_step are dropped and the rest kept (`self.history`).
  """

  def __init__(self, workdir: str, resume_step: int | None = None, tensorboard: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.history = [r for r in read_jsonl(self.path) if r.get("step", 0) <= (resume_step or 0)]
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:  # rewrite then rename: a kill here loses nothing
      f.writelines(json.dumps(r) + "\n" for r in self.history)
    os.replace(tmp, self.path)
    self._file = open(self.path, "a")
    self._events = None
    if tensorboard:
      self._events = EventWriter(os.path.join(workdir, "tensorboard"))
      if resume_step:
        self._events.restart(resume_step)

  def write(self, row: Mapping[str, Any]) -> None:
    """One logging step: {'step': int, name: float, ...}."""
    row = {k: _finite_or_str(v) for k, v in row.items()}
    self.history.append(row)
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()
    if self._events:
      self._events.scalars(row["step"], {k: v for k, v in row.items()
                                         if k != "step" and isinstance(v, (int, float))})

  def close(self) -> None:
    self._file.close()
    if self._events:
      self._events.close()


# --------------------------------------------------------------------------------- TensorBoard
def _crc32c_table() -> list[int]:
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), as TFRecord frames use."""
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  n &= (1 << 64) - 1
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # length-delimited field
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, **fields: bytes) -> bytes:
  """tensorflow.Event: wall_time=1 (double), step=2 (int64), file_version=3, summary=5,
  session_log=6."""
  out = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
  numbers = dict(file_version=3, summary=5, session_log=6)
  for name, payload in fields.items():
    out += _field(numbers[name], payload)
  return out


def _scalar_summary(values: Mapping[str, float]) -> bytes:
  """tensorflow.Summary{value: [Value{tag=1, simple_value=2 (float)}]}."""
  return b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", float(v)))
                  for tag, v in values.items())


class EventWriter:
  """Scalars to a TensorBoard event file (TFRecord of tensorflow.Event protos)."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
    self.path = os.path.join(logdir, name)
    self._file = open(self.path, "ab")
    self._record(_event(0, time.time(), file_version=b"brain.Event:2"))

  def _record(self, data: bytes) -> None:
    header = struct.pack("<Q", len(data))
    self._file.write(header + struct.pack("<I", _masked_crc(header)) + data
                     + struct.pack("<I", _masked_crc(data)))
    self._file.flush()

  def restart(self, step: int) -> None:
    """SessionLog START at `step`: TensorBoard discards older files' events after it."""
    self._record(_event(step, time.time(), session_log=b"\x08\x01"))

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self._record(_event(step, time.time(), summary=_scalar_summary(values)))

  def close(self) -> None:
    self._file.close()


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
  n = shift = 0
  while True:
    b = buf[i]
    n |= (b & 0x7F) << shift
    i, shift = i + 1, shift + 7
    if not b & 0x80:
      return n, i


def _parse(buf: bytes) -> Iterable[tuple[int, int, Any]]:
  """(field number, wire type, value) of a protobuf message (the wire types used here)."""
  i = 0
  while i < len(buf):
    key, i = _read_varint(buf, i)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, i = _read_varint(buf, i)
    elif wire == 1:
      value, i = buf[i:i + 8], i + 8
    elif wire == 5:
      value, i = buf[i:i + 4], i + 4
    elif wire == 2:
      n, i = _read_varint(buf, i)
      value, i = buf[i:i + n], i + n
    else:
      raise ValueError(f"unsupported wire type {wire}")
    yield number, wire, value


def read_scalars(path: str) -> list[tuple[int, str, float]]:
  """(step, tag, value) of every scalar in an event file, checking each record's CRCs."""
  out = []
  with open(path, "rb") as f:
    data = f.read()
  i = 0
  while i < len(data):
    header = data[i:i + 8]
    (length,) = struct.unpack("<Q", header)
    if struct.unpack("<I", data[i + 8:i + 12])[0] != _masked_crc(header):
      raise ValueError(f"{path}: bad length CRC at byte {i}")
    payload = data[i + 12:i + 12 + length]
    if struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] != _masked_crc(payload):
      raise ValueError(f"{path}: bad data CRC at byte {i}")
    i += 16 + length
    fields = {n: v for n, _, v in _parse(payload) if n != 5}
    step = fields.get(2, 0)
    for n, _, summary in _parse(payload):
      if n != 5:
        continue
      for _, _, value in _parse(summary):
        v = {vn: vv for vn, _, vv in _parse(value)}
        out.append((step, v[1].decode(), struct.unpack("<f", v[2])[0]))
  return out


# --------------------------------------------------------------------------------- environment
def environment() -> dict[str, Any]:
  """Hardware, devices and package versions, for summary.json."""
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
      python_version=platform.python_version(), jax_version=jax.__version__, packages=versions)
