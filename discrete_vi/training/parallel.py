"""Data parallelism over a 1-D `jax.sharding.Mesh` (axis "data").

The batch is split over the devices of the mesh; parameters, optimiser and
estimator state, the PRNG key and the metrics are replicated. The train and
evaluation steps are `jax.jit`-ed with explicit `NamedSharding` in/out
shardings, so XLA (GSPMD) inserts the cross-device reductions (gradient and
batch-statistic all-reduces) itself and the same code runs on one device,
on N local devices, and on several hosts:

    mesh = parallel.make_mesh(config.train.data_parallel)
    state = parallel.replicate(state, mesh)
    train_steps = parallel.jit_train_steps(fused_steps, mesh)
    state, metrics = train_steps(state, parallel.shard_batch(xs, mesh, 1))

With `jax_threefry_partitionable` (the default) random draws do not depend
on how an array is sharded, so an N-device run equals the one-device run of
the same seed up to the order of floating-point reductions.

Multi-host: the mesh holds every device of every process
(`jax.devices()`); each process computes the same global batch (batches are
a pure function of the seed and the step) and `shard_batch` hands each
device its slice. The launcher calls `jax.distributed.initialize()` first.
"""

from typing import Any, Callable, Mapping, NamedTuple

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

from discrete_vi import checks

DATA_AXIS = "data"


def make_mesh(data_parallel: bool = True) -> Mesh:
  """A 1-D mesh over all devices, or over the first one only.

  Args:
    data_parallel: use every device (of every process) when True; one
      device when False.

  Returns:
    A `Mesh` with the single axis `DATA_AXIS`.
  """
  devices = jax.devices() if data_parallel else jax.devices()[:1]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """The sharding of arrays held whole on every device of `mesh`."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """The sharding that splits axis `batch_axis` over the mesh's devices."""
  return NamedSharding(mesh, PartitionSpec(*([None] * batch_axis),
                                           DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, field: str) -> None:
  """Raises ValueError unless `batch_size` splits evenly over the mesh.

  Args:
    batch_size: examples per batch.
    mesh: the data mesh.
    field: the config field to name in the error, e.g.
      "config.train.batch_size".
  """
  devices = mesh.devices.size
  if batch_size % devices:
    raise ValueError(
        f"{field}={batch_size} is not divisible by the {devices} devices of "
        f"the data-parallel mesh; choose a multiple of {devices} or set "
        f"config.train.data_parallel=False.")


def validate_config(config: Mapping[str, Any]) -> None:
  """Checks `config.train.data_parallel` and the batch size against devices."""
  data_parallel = config["train"]["data_parallel"]
  checks.check_bool("config.train.data_parallel", data_parallel)
  check_batch_size(config["train"]["batch_size"], make_mesh(data_parallel),
                   "config.train.batch_size")


def replicate(tree, mesh: Mesh):
  """`tree` with every array placed whole on every device of `mesh`."""
  return jax.device_put(tree, replicated(mesh))


def shard_batch(batch, mesh: Mesh, batch_axis: int = 0) -> jax.Array:
  """A global array with axis `batch_axis` split over the mesh.

  Every process passes the same whole batch; each device receives its slice
  (also across hosts, where `jax.device_put` of a host array would need the
  whole array on every process's devices).
  """
  host = np.asarray(batch)
  return jax.make_array_from_callback(
      host.shape, batch_sharded(mesh, batch_axis), lambda index: host[index])


def jit_train_steps(train_steps: Callable, mesh: Mesh) -> Callable:
  """`jit` of `train_steps(state, xs [n, B, ...])` with the batch split.

  State in and out and the metrics are replicated; xs is split along B.
  The input state is donated (its buffers are reused for the new state, so
  it must not be used after the call, and its leaves must not share
  buffers: see `steps.own_buffers`).
  """
  return jax.jit(train_steps,
                 in_shardings=(replicated(mesh), batch_sharded(mesh, 1)),
                 out_shardings=replicated(mesh), donate_argnums=0)


class ShardedEvalStep(NamedTuple):
  """A jitted `eval_step(params, context, key, x [B, D]) -> [B]` over a mesh
  (`shard_eval_step`), called like the function it wraps; `lower` takes
  the same arguments (e.g. for XLA's memory analysis)."""
  jitted: Callable
  mesh: Mesh
  split: bool  # x split over the mesh (else replicated)

  def place(self, params, context, key, x) -> tuple:
    """The arguments placed on the mesh as the jitted function expects."""
    x = (shard_batch(x, self.mesh) if self.split
         else replicate(np.asarray(x), self.mesh))
    return (replicate(params, self.mesh), replicate(context, self.mesh),
            replicate(key, self.mesh), x)

  def __call__(self, params, context, key, x):
    return self.jitted(*self.place(params, context, key, x))

  def lower(self, params, context, key, x):
    return self.jitted.lower(*self.place(params, context, key, x))


def shard_eval_step(eval_step: Callable, mesh: Mesh, batch_size: int
                    ) -> ShardedEvalStep:
  """`eval_step(params, context, key, x [B, D]) -> [B]` over the mesh.

  The batch is split when `batch_size` divides evenly over the devices
  (otherwise every device evaluates the whole batch); parameters, the
  evaluation context, key and the returned bounds are replicated, so the
  host can read them on any process.
  """
  split = batch_size % mesh.devices.size == 0
  x_sharding = batch_sharded(mesh) if split else replicated(mesh)
  jitted = jax.jit(eval_step,
                   in_shardings=(replicated(mesh), replicated(mesh),
                                 replicated(mesh), x_sharding),
                   out_shardings=replicated(mesh))
  return ShardedEvalStep(jitted, mesh, split)
