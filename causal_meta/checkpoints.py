"""Checkpoints of the whole train state, with the config beside it (orbax, no pickle).

Layout: `WORKDIR/checkpoints/<step>/{state,meta}`. `state` is the TrainState as a nested dict
of arrays (params, optimizer state, RNG key, step; orbax's array format); `meta` is JSON: the
run's config and a SHA-256 of every array, so a checkpoint whose files were truncated or
overwritten is caught on restore, not trained on. A bad latest checkpoint is moved to
`WORKDIR/corrupt_checkpoints/` with a warning, and the one before it is used.

Saves copy the state to host memory first (the device buffers are donated to the next chunk)
and then write in the background; orbax commits each step atomically, so a process killed
mid-save leaves the previous steps intact.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any, Callable

import flax.serialization
import flax.traverse_util
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from causal_meta import workdir as workdir_lib

SUBDIR = "checkpoints"
CORRUPT_SUBDIR = "corrupt_checkpoints"
# Fields a run may change when it resumes (training for longer, logging, the cluster it runs
# on); a change to any other field stops the resume unless explicitly allowed.
RESUMABLE_CHANGES = ("num_updates", "log_every", "checkpoint_every", "keep_checkpoints",
                     "tensorboard", "eval_episodes", "updates_per_call", "distributed")


class IncompatibleCheckpoint(ValueError):
  """The workdir's checkpoints were written for another model: a one-line user error."""


class ConfigChanged(IncompatibleCheckpoint):
  """Resuming with a config that differs in fields a resume may not change."""


def directory(workdir) -> epath.Path:
  return workdir_lib.path(workdir) / SUBDIR


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  """A CheckpointManager over WORKDIR/checkpoints keeping the last `keep` steps."""
  # cleanup_tmp_directories: drop the half-written step a killed process left behind.
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         cleanup_tmp_directories=True)
  return ocp.CheckpointManager(directory(workdir), options=options, item_handlers=_handlers())


def _handlers() -> dict:
  # Named up front so that item_metadata can read a fresh process's checkpoints.
  return dict(state=ocp.StandardCheckpointHandler(), meta=ocp.JsonCheckpointHandler())


def _host_tree(state) -> dict:
  """TrainState -> nested dict of numpy arrays (a copy: safe against buffer donation)."""
  return jax.tree.map(lambda x: np.array(x, copy=True), flax.serialization.to_state_dict(state))


def digest(tree) -> str:
  """SHA-256 over every leaf's path, dtype, shape and bytes."""
  h = hashlib.sha256()
  for path, leaf in sorted(flax.traverse_util.flatten_dict(tree, sep="/").items()):
    leaf = np.ascontiguousarray(leaf)
    h.update(f"{path}:{leaf.dtype.str}:{leaf.shape}".encode())
    h.update(leaf.tobytes())
  return h.hexdigest()


def _step_of(host: dict) -> int:
  """The update count of a state: int [], or [S] for a seed sweep's stacked states, whose
  seeds all take the same updates."""
  steps = np.unique(np.asarray(host["step"]))
  if steps.size != 1:
    raise ValueError(f"the stacked states are at different steps {steps.tolist()}")
  return int(steps[0])


def save(mngr: ocp.CheckpointManager, state, config_dict: dict) -> int:
  """Saves `state` (a TrainState) at its step, with the config. Asynchronous; returns the
  step. Call `mngr.wait_until_finished()` before relying on it being on disk."""
  host = _host_tree(state)
  step = _step_of(host)
  meta = dict(step=step, config=config_dict, state_sha256=digest(host))
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(host),
                                          meta=ocp.args.JsonSave(meta)), force=True)
  return step


def _shapes(tree) -> dict[str, tuple[tuple[int, ...], str]]:
  flat = flax.traverse_util.flatten_dict(tree, sep="/")
  return {k: (tuple(v.shape), np.dtype(v.dtype).name) for k, v in flat.items()}


def _config_diff(saved: dict, current: dict, prefix: str = "",
                 defaults: dict | None = None) -> list[str]:
  """Dotted fields whose values differ: ['agent.hidden: 16 there, 32 here', ...]. With
  `defaults` (the default config), a field the saved config lacks (added to the code since)
  counts only where it is not at its default, the behaviour the code had before."""
  out = []
  defaults = defaults if isinstance(defaults, dict) else {}
  for k in sorted(set(saved) | set(current)):
    a, b = saved.get(k), current.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _config_diff(a, b, f"{prefix}{k}.", defaults.get(k))
    elif k not in saved and k in defaults and b == defaults[k]:
      continue
    elif a != b:
      out.append(f"{prefix}{k}: {a!r} there, {b!r} here")
  return out


def check_compatible(saved: dict, wanted: dict, where: str, config_dict: dict,
                     saved_config: dict) -> None:
  """Raises IncompatibleCheckpoint (one line) if the saved arrays (`_shapes` of a checkpoint)
  differ in names or shapes from `wanted` (those this config would initialise)."""
  if saved == wanted:
    return
  diff = [d for d in _config_diff(saved_config, config_dict)
          if d.split(".")[0].split(":")[0] in ("agent", "task", "teaching", "num_seeds")]
  hint = f" (config differs: {'; '.join(diff)})" if diff else ""
  mismatch = sorted(set(saved) ^ set(wanted)) or [k for k in wanted if saved[k] != wanted[k]]
  first = mismatch[0]
  what = (f"{first} has shape {saved[first][0]} there, {wanted[first][0]} with this config"
          if first in saved and first in wanted else f"array {first!r} exists in only one of them")
  raise IncompatibleCheckpoint(
      f"checkpoint {where} holds a different model: {what}{hint}; use another --workdir or "
      f"the config it was written with")


def directory_of(mngr) -> epath.Path:
  return epath.Path(mngr.directory)


def _restore_step(mngr, step: int, template_host: dict) -> tuple[dict, dict]:
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(template_host), meta=ocp.args.JsonRestore()))
  host, meta = restored["state"], restored["meta"]
  if not isinstance(meta, dict) or meta.get("state_sha256") != digest(host):
    raise ValueError("the arrays do not match the digest saved with them")
  if _step_of(host) != step:
    raise ValueError(f"state step {_step_of(host)} != directory step {step}")
  return host, meta


def _saved_config(mngr, step: int) -> dict:
  try:
    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    return meta.get("config", {}) if isinstance(meta, dict) else {}
  except Exception:  # pylint: disable=broad-except  (an unreadable meta is caught below)
    return {}


def _resumable(change: str) -> bool:
  field = change.split(":")[0]
  return any(field == f or field.startswith(f + ".") for f in RESUMABLE_CHANGES)


def restore_latest(mngr: ocp.CheckpointManager, template, config_dict: dict,
                   warn: Callable[[str], Any] = None, defaults: dict | None = None,
                   allow_changes: bool = False, changes: list | None = None):
  """The newest readable checkpoint as a TrainState like `template`, or None if none.

  The config it was written with is compared with `config_dict` (`defaults`: the default
  config, so that fields added since it was written count only if set away from their
  defaults). Changes to `RESUMABLE_CHANGES` are allowed; any other raises `ConfigChanged`
  (one line listing them) unless `allow_changes`, when they come with a warning. Every change
  is appended to `changes` (a list, if given) for the run's history.

  A checkpoint that fails to restore or whose digest does not match is moved aside to
  WORKDIR/corrupt_checkpoints/<step> with a warning naming it, and the previous one is tried.
  Raises IncompatibleCheckpoint if the newest checkpoint holds a model of other shapes.
  """
  warn = warn or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=3))
  template_host = _host_tree(template)
  wanted = _shapes(template_host)
  for step in sorted(mngr.all_steps(), reverse=True):
    path = directory_of(mngr) / str(step)
    try:
      saved = _shapes(mngr.item_metadata(step)["state"].tree)
    except Exception:  # pylint: disable=broad-except  (unreadable: the restore below says so)
      saved = None
    if saved is not None:
      check_compatible(saved, wanted, path, config_dict, _saved_config(mngr, step))
    try:
      host, meta = _restore_step(mngr, step, template_host)
    except IncompatibleCheckpoint:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any failure = unusable)
      aside = _move_aside(mngr, step)
      warn(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: "
           f"{str(e).splitlines()[0][:200] if str(e) else ''}); moved to {aside}, trying the "
           f"previous one")
      continue
    diff = _config_diff(meta.get("config", {}), config_dict, defaults=defaults)
    if changes is not None:
      changes.extend(diff)
    changed = [d for d in diff if not _resumable(d)]
    if changed and not allow_changes:
      raise ConfigChanged(
          f"workdir's checkpoint {path} was written with another config: {'; '.join(changed)}"
          f"; rerun with that config, use another --workdir, or pass --allow_config_change")
    if changed:  # allowed: the run goes on with this config; say so rather than mix silently
      warn(f"resuming from {path}, written with another config: {'; '.join(changed)}")
    return flax.serialization.from_state_dict(template, jax.tree.map(jax.numpy.asarray, host))
  return None


def _move_aside(mngr, step: int) -> epath.Path:
  src = directory_of(mngr) / str(step)
  dst_dir = directory_of(mngr).parent / CORRUPT_SUBDIR
  dst_dir.mkdir(parents=True, exist_ok=True)
  dst = dst_dir / str(step)
  if dst.exists():
    dst.rmtree()
  src.rename(dst)
  mngr.reload()  # forget the moved step
  return dst


def load_state_dict(workdir: str, step: int | None = None) -> tuple[dict, dict]:
  """(state as nested numpy dict, meta JSON) of a run's checkpoint (latest by default), for
  analysis and tests; no template needed. Verifies the digest."""
  mngr = ocp.CheckpointManager(directory(workdir), item_handlers=_handlers())
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {directory(workdir)}")
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                        meta=ocp.args.JsonRestore()))
  host = jax.tree.map(np.asarray, restored["state"])
  if restored["meta"].get("state_sha256") != digest(host):
    raise ValueError(f"checkpoint {directory(workdir) / str(step)}: digest mismatch")
  mngr.close()
  return host, restored["meta"]
