"""Seeded, reproducible batches with fixed shapes (one `jit` trace).

Training batches come from an endless stream: the permutations of epochs
0, 1, 2, ... (epoch e permuted with `fold_in(key, e)`) are concatenated and
cut into batches of `batch_size`. Every example appears exactly once in each
consecutive block of N = `len(train)` positions of the stream; a batch may
straddle two epochs, so no example is dropped and every batch has the same
shape. Batch t is a pure function of `(key, t)`, so training resumed at step
t (`start_batch=t`) sees the same batches as an uninterrupted run. For
"dynamic" datasets batch t is binarised with `fold_in(binarize_key, t)`.

Evaluation batches never drop examples: the last batch is padded with zero
rows to `batch_size`, and a boolean mask marks the real rows.
"""

import itertools
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.data import binarize
from discrete_vi.data import dataset as dataset_lib
from discrete_vi.types import Array, PRNGKey


@jax.jit
def _binarize_step(key: PRNGKey, step, probs: Array) -> Array:
  """Binarises batch `step` with `fold_in(key, step)` (one compiled call)."""
  return binarize.binarize_dynamic(jax.random.fold_in(key, step), probs)


def epoch_permutation(key: PRNGKey, epoch: int, num_examples: int
                      ) -> np.ndarray:
  """The order of epoch `epoch`: a permutation of `range(num_examples)`."""
  permutation = jax.random.permutation(jax.random.fold_in(key, epoch),
                                       num_examples)
  return np.asarray(permutation)


def batch_indices(key: PRNGKey, num_examples: int, batch_size: int,
                  start_batch: int = 0) -> Iterator[np.ndarray]:
  """Endless stream of `[batch_size]` index arrays, from batch `start_batch`.

  Args:
    key: PRNG key of the permutations.
    num_examples: N, the number of training examples.
    batch_size: B <= N.
    start_batch: index of the first batch to yield (to resume training).

  Yields:
    Batch t holds positions [t B, (t + 1) B) of the concatenated epoch
    permutations.
  """
  epoch, offset = divmod(start_batch * batch_size, num_examples)
  buffer = epoch_permutation(key, epoch, num_examples)[offset:]
  while True:
    while buffer.size < batch_size:
      epoch += 1
      buffer = np.concatenate(
          [buffer, epoch_permutation(key, epoch, num_examples)])
    yield buffer[:batch_size]
    buffer = buffer[batch_size:]


def train_batches(dataset: dataset_lib.Dataset, batch_size: int,
                  key: PRNGKey, *, start_batch: int = 0,
                  num_batches: int | None = None) -> Iterator[Array]:
  """Training batches `[batch_size, D]` float32, reproducible from `key`.

  0/1 for binary data (D = 784 for the 28x28 sets), integers 0..255 for
  "uint8" data.

  Args:
    dataset: a `Dataset`; "dynamic" ones are binarised per batch.
    batch_size: examples per batch, at most `len(dataset.train)`.
    key: PRNG key; the same key gives the same stream.
    start_batch: index of the first batch (the training step to resume from).
    num_batches: stop after this many batches (None: endless).

  Yields:
    `[batch_size, D]` float32 batches (jax arrays).
  """
  num_examples = len(dataset.train)
  checks.check_int("batch_size", batch_size, 1)
  if batch_size > num_examples:
    raise ValueError(f"batch_size={batch_size} exceeds the {num_examples} "
                     f"training examples of {dataset.name!r}.")
  checks.check_int("start_batch", start_batch, 0)
  if num_batches is not None:
    checks.check_int("num_batches", num_batches, 0)
  order_key, binarize_key = jax.random.split(key)
  indices = batch_indices(order_key, num_examples, batch_size, start_batch)
  for step, index in enumerate(itertools.islice(indices, num_batches),
                               start=start_batch):
    batch = jnp.asarray(dataset.train[index])  # [B, D]
    if dataset.binarization == "dynamic":
      batch = _binarize_step(binarize_key, step, batch)
    yield batch


def eval_batches(array, batch_size: int) -> Iterator[tuple[Array, Array]]:
  """All rows of `array` in order, in fixed-size batches with a mask.

  Args:
    array: `[N, D]` examples (e.g. `evaluation_split(dataset, "test")`).
    batch_size: rows per batch.

  Yields:
    `(batch [batch_size, D] float32, mask [batch_size] bool)`; the last batch
    is padded with zero rows whose mask is False. Summing a per-example
    statistic times the mask over all batches visits each row exactly once.
  """
  checks.check_int("batch_size", batch_size, 1)
  array = np.asarray(array, np.float32)
  if array.ndim != 2 or array.shape[0] == 0:
    raise ValueError(f"eval_batches needs a non-empty [N, D] array; got shape "
                     f"{array.shape}.")
  for start in range(0, len(array), batch_size):
    rows = array[start:start + batch_size]  # [b, D], b <= batch_size
    padding = batch_size - len(rows)
    mask = np.arange(batch_size) < len(rows)  # [batch_size]
    yield jnp.asarray(np.pad(rows, ((0, padding), (0, 0)))), jnp.asarray(mask)
