"""The run directory: one path type for local and remote workdirs, a lock while a run uses it,
and the record of each resume.

Every file of a run (config.json, metrics.jsonl, summary.json, figures/, checkpoints/, sweep
tables) goes through `etils.epath.Path`, so `--workdir=gs://bucket/run` works wherever
etils can reach the bucket, as orbax's checkpoints already do.

The lock is WORKDIR/lock, holding "HOST pid PID" of the process running there (process 0 of a
multi-process job). A second run on the same workdir stops with one line naming the holder; a
lock left by a dead process on this host is taken over with a warning (on another host it
cannot be checked: the message says to remove it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterator

from etils import epath

LOCK = "lock"
RESUMES = "resumes.jsonl"


class WorkdirError(ValueError):
  """The workdir cannot be used as asked: a one-line user error."""


def path(workdir: str | os.PathLike) -> epath.Path:
  """The workdir as an epath.Path (local paths made absolute; gs://... left as given)."""
  p = epath.Path(workdir)
  return p if "://" in str(workdir) else p.resolve()


def check(workdir: str | os.PathLike) -> epath.Path:
  """The workdir's path; WorkdirError if it names an existing file (not a directory)."""
  p = path(workdir)
  if p.exists() and not p.is_dir():
    raise WorkdirError(f"--workdir {workdir} is an existing file, not a directory; choose "
                       f"another path")
  return p


def _owner() -> str:
  return f"{socket.gethostname()} pid {os.getpid()}"


def _alive_here(owner: str) -> bool | None:
  """Whether the lock's process is alive: True/False on this host, None on another."""
  host, _, pid = owner.rpartition(" pid ")
  if host != socket.gethostname() or not pid.isdigit():
    return None
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's live process
    return True
  return True


def _create_exclusive(lock: epath.Path, owner: str) -> bool:
  """Writes the lock unless it exists; False if it did. Atomic on local disks (O_EXCL)."""
  if "://" in str(lock):  # object stores have no O_EXCL: check, then write
    if lock.exists():
      return False
    lock.write_text(owner)
    return True
  try:
    fd = os.open(os.fspath(lock), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    f.write(owner)
  return True


def acquire(workdir: epath.Path, warn: Callable[[str], Any]) -> None:
  """Takes WORKDIR/lock for this process; WorkdirError if a live process holds it."""
  workdir.mkdir(parents=True, exist_ok=True)
  lock, owner = workdir / LOCK, _owner()
  if _create_exclusive(lock, owner):
    return
  try:
    holder = lock.read_text().strip()
  except FileNotFoundError:  # released in between
    holder = ""
  alive = _alive_here(holder) if holder else False
  if alive is False:
    warn(f"taking over {lock}: its process ({holder or 'unknown'}) is gone")
    lock.write_text(owner)
    return
  where = "" if alive else " on another host; if no run uses it, remove the lock"
  raise WorkdirError(f"workdir {workdir} is in use by {holder}{where} ({lock})")


def release(workdir: epath.Path) -> None:
  """Removes WORKDIR/lock if this process holds it."""
  lock = workdir / LOCK
  with contextlib.suppress(FileNotFoundError):
    if lock.read_text().strip() == _owner():
      lock.unlink()


@contextlib.contextmanager
def locked(workdir: epath.Path | None, primary: bool, warn: Callable[[str], Any],
           agree: Callable[[bool], bool] = lambda ok: ok) -> Iterator[None]:
  """Holds the workdir's lock for the block (taken by the `primary` process only).
  `agree(ok) -> bool`: every process's view of whether the primary got it (a multi-process
  job's other processes must stop too)."""
  if workdir is None:
    yield
    return
  error = None
  if primary:
    try:
      acquire(workdir, warn)
    except WorkdirError as e:
      error = e
  if not agree(error is None):
    raise error or WorkdirError(f"workdir {workdir} is in use (process 0 could not lock it)")
  try:
    yield
  finally:
    if primary:
      release(workdir)


def record_resume(workdir: epath.Path, step: int, changes: list[str]) -> None:
  """Appends {step, time, command, changes} to WORKDIR/resumes.jsonl: the run's history of
  restarts and of the config fields changed at each."""
  line = json.dumps(dict(step=step, time=time.time(), command=" ".join(sys.argv) or None,
                         changes=changes))
  log = workdir / RESUMES
  old = log.read_text() if log.exists() else ""
  log.write_text(old + line + "\n")  # object stores have no append
