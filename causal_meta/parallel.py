"""Data parallelism: one mesh axis, `data`, over every device; the batch of episodes is split
over it, parameters and optimizer state are replicated.

The update's gradient is computed per device (`jax.shard_map`, in `train`): each device rolls
out and differentiates its share of the batch, and the losses and gradients are all-reduced
once per update, each device's weighted by its share of the steps (the losses are means over
steps, so the result is the single-device one up to float rounding). Evaluation and the rest
are written for one device and told where the batch axis lives with
`with_sharding_constraint`; XLA's SPMD partitioner splits them. On one device the update runs
without `shard_map`: no weighting, no all-reduce.

On a CPU, `JAX_NUM_CPU_DEVICES=2` (JAX's setting, read when it starts) makes two devices of
one machine, so that each core runs half of the batch (BENCHMARKS.md).

Multi-process: set `config.distributed.enabled = True` and start the same program in every
process; `initialize_distributed` calls `jax.distributed.initialize()` (coordinator, process
count and id from the config, or from the environment: SLURM, Cloud TPU) before JAX touches a
device. `jax.devices()` is then every process's devices, the mesh spans them all, and the
batch is split over all of them; only process 0 writes the run's files (`is_primary`).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"


def initialize_distributed(config) -> None:
  """`jax.distributed.initialize()` once, if `config.distributed.enabled`, with the config's
  coordinator, process count and id where set (else JAX's cluster detection). Call before
  anything asks JAX for devices (`config.validate` does)."""
  d = config.distributed
  if d.enabled and not jax.distributed.is_initialized():
    jax.distributed.initialize(coordinator_address=d.coordinator_address or None,
                               num_processes=d.num_processes or None,
                               process_id=None if d.process_id < 0 else d.process_id)


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0; the only one without
  `jax.distributed`). Every process runs every computation: they are SPMD programs."""
  return jax.process_index() == 0


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh with axis `data` over `devices` (default: all of them, every host's)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, the rest replicated."""
  return NamedSharding(mesh, P(AXIS))


def shard_batch(tree: Any, mesh: Mesh) -> Any:
  """Inside jit: every leaf [B, ...] split along B over the mesh (B divisible by its size)."""
  return jax.lax.with_sharding_constraint(tree, batch_sharded(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Inside jit: every leaf replicated. Outside jit: use `put_replicated`."""
  return jax.lax.with_sharding_constraint(tree, replicated(mesh))


def put_replicated(tree: Any, mesh: Mesh) -> Any:
  """A host or device pytree placed whole on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))


def check_divisible(field: str, value: int, num_devices: int) -> None:
  """ValueError (one line, naming the field) unless `num_devices` divides `value`."""
  if value % num_devices:
    lo = num_devices * max(value // num_devices, 1)
    raise ValueError(f"config.{field} ({value}) must be a multiple of the device count "
                     f"({num_devices}), over which it is split; allowed: multiples of "
                     f"{num_devices}, e.g. {lo} or {lo + num_devices}")


def agree(ok: bool) -> bool:
  """Process 0's `ok`, in every process (a decision only process 0 can make, such as taking
  the workdir's lock, that all must follow). One process: `ok` itself."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(ok)))
