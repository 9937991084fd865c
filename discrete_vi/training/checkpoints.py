"""Orbax checkpoints: the latest train state (for resuming) and the best one.

Two managers under the workdir: `checkpoints/` keeps the most recent states,
and `best/` keeps the state with the best validation bound. Saving is
synchronous, so a run killed at any point leaves complete checkpoints only
(orbax writes to a temporary directory and renames it when done).
"""

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Latest and best train-state checkpoints of one run."""

  def __init__(self, workdir: str, max_to_keep: int = 2):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True)
    self._latest = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")), options=options)
    best_options = ocp.CheckpointManagerOptions(
        max_to_keep=1, enable_async_checkpointing=False, create=True)
    self._best = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "best")), options=best_options)

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def save(self, step: int, state) -> None:
    """Saves `state` as the latest checkpoint at `step` (overwrites same step)."""
    if step in self._latest.all_steps():
      return
    self._latest.save(step, args=ocp.args.StandardSave(state), force=True)
    self._latest.wait_until_finished()

  def restore(self, target, step: int | None = None):
    """The latest (or given) checkpoint, shaped like `target`."""
    step = self._latest.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    return self._latest.restore(step, args=ocp.args.StandardRestore(abstract))

  def save_best(self, step: int, state) -> None:
    """Replaces the best-validation checkpoint with `state`."""
    if step in self._best.all_steps():
      return
    self._best.save(step, args=ocp.args.StandardSave(state), force=True)
    self._best.wait_until_finished()

  def best_step(self) -> int | None:
    return self._best.latest_step()

  def restore_best(self, target):
    step = self._best.latest_step()
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    return self._best.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._latest.close()
    self._best.close()
