"""Progress on the terminal: a one-line bar on a TTY, plain log lines otherwise.

The host loop calls `chunk(step, row)` after every compiled chunk and `log(row)` at every
logging step. Rates count only the updates done by this process (after compilation), so a
resumed run's ETA is honest.
"""

from __future__ import annotations

import sys
import time
from typing import Mapping, TextIO


def format_duration(seconds: float) -> str:
  """3725 -> '1:02:05', 65 -> '1:05'."""
  if seconds != seconds or seconds == float("inf"):
    return "?"
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _num(x: float) -> str:
  return f"{x:.3g}" if abs(x) < 1e3 else f"{x / 1e3:.3g}k" if abs(x) < 1e6 else f"{x / 1e6:.3g}M"


class Progress:
  """Reports training progress.

  total: updates the run will have done at the end; start: updates done before this process
  (a resumed run); env_steps_per_update: batch × horizon. bar: draw a bar (None: iff `stream`
  is a TTY); enabled=False prints nothing.
  """

  def __init__(self, total: int, start: int, env_steps_per_update: int,
               stream: TextIO | None = None, bar: bool | None = None, enabled: bool = True,
               width: int = 24):
    self.total, self.start, self.spu = total, start, env_steps_per_update
    self.stream = stream or sys.stdout
    self.enabled = enabled
    self.bar = self.stream.isatty() if bar is None else bar
    self.width = width
    self.latest: dict[str, float] = {}
    self._t0 = None
    self._step = start
    self._last_draw = 0.0

  def begin(self) -> None:
    """Starts the clock (call after compilation)."""
    self._t0 = time.time()

  def rates(self, step: int) -> tuple[float, float, float]:
    """(updates/s, env-steps/s, ETA seconds) over this process's updates."""
    elapsed = max(time.time() - (self._t0 or time.time()), 1e-9)
    ups = (step - self.start) / elapsed
    eta = (self.total - step) / ups if ups > 0 else float("inf")
    return ups, ups * self.spu, eta

  def _status(self, step: int) -> str:
    ups, eps, eta = self.rates(step)
    parts = [f"{step}/{self.total} updates", f"{_num(ups)} upd/s", f"{_num(eps)} env-steps/s",
             f"ETA {format_duration(eta)}"]
    for key, label in (("loss", "loss"), ("kl_action_interventional", "KL(int)"),
                       ("kl_action_conditional", "KL(cond)")):
      if key in self.latest:
        parts.append(f"{label} {self.latest[key]:.4g}")
    return "  ".join(parts)

  def chunk(self, step: int, row: Mapping[str, float]) -> None:
    """After every compiled chunk: redraws the bar (at most 10 times a second)."""
    self._step = step
    self.latest.update({k: v for k, v in row.items() if isinstance(v, float)})
    if not (self.enabled and self.bar):
      return
    now = time.time()
    if now - self._last_draw < 0.1 and step < self.total:
      return
    self._last_draw = now
    done = int(self.width * step / max(self.total, 1))
    bar = "█" * done + "░" * (self.width - done)
    self.stream.write(f"\r{bar} {100 * step / max(self.total, 1):3.0f}%  "
                      f"{self._status(step)}\x1b[K")
    self.stream.flush()

  def log(self, row: Mapping[str, float]) -> None:
    """At every logging step: a plain line when there is no bar."""
    self.latest.update({k: v for k, v in row.items() if isinstance(v, float)})
    if self.enabled and not self.bar:
      print(f"step {row['step']:6d}  {self._status(row['step']).split('  ', 1)[1]}",
            file=self.stream, flush=True)

  def message(self, text: str) -> None:
    """A line that must not be overwritten by the bar (warnings, the final result)."""
    if not self.enabled:
      return
    if self.bar:
      self.stream.write("\r\x1b[K")
    print(text, file=self.stream, flush=True)

  def close(self) -> None:
    if self.enabled and self.bar:
      self.stream.write("\n")
      self.stream.flush()
