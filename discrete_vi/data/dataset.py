"""The `Dataset` container and the checks every loaded split goes through.

A loader returns raw `Splits` (intensities in [0, 1]); `make_dataset` checks
them, applies the load-time binarisation and records the training mean.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from discrete_vi.data import binarize

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = 784
SPLIT_NAMES = ("train", "valid", "test")


class DataSpec(NamedTuple):
  """What a model family needs to know of its data to build itself.

  Attributes:
    train_mean: `[D]` float32 mean of the training split (flattened).
    image_shape: `(H, W, C)` of one example; `D = H * W * C`. Models that
      work on images reshape `[..., D]` batches to `[..., H, W, C]` with it.
    value_type: "binary" (values in {0, 1}, or intensities in [0, 1] that
      are binarised) for every dataset of this module.
  """
  train_mean: np.ndarray
  image_shape: tuple
  value_type: str = "binary"

  @property
  def data_dim(self) -> int:
    """`D`, the length of a flattened example."""
    return int(np.prod(self.image_shape))


class Splits(NamedTuple):
  """Raw train / valid / test arrays as a loader returns them.

  Each is `[N, 784]` or `[N, 28, 28]`, with values in [0, 1].
  """
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Flattened 28x28 images, split three ways, ready for training.

  Attributes:
    name: the registry name the data were loaded under (e.g. "mnist5k").
    train: `[N_train, 784]` float32. 0/1 for "static" and "threshold"
      binarisation; intensities in [0, 1] for "dynamic" (binarised per batch
      by `train_batches`).
    valid: `[N_valid, 784]` float32, as `train`.
    test: `[N_test, 784]` float32, as `train`.
    binarization: "static", "dynamic" or "threshold".
    train_mean: `[784]` float32 mean of `train` (for "dynamic", the mean
      intensity, which is the expected mean of the binarised data). Used for
      mean-centring encoder inputs and for the decoder output bias
      logit(clip(mean, 1e-3, 0.999)).
    seed: the seed of the static binarisation (for "dynamic", of the fixed
      evaluation draw, see `evaluation_split`).
    image_shape: `(H, W, C)` of one example, `(28, 28, 1)` here.
    value_type: "binary" (see `DataSpec`).
  """
  name: str
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  binarization: str
  train_mean: np.ndarray
  seed: int = 0
  image_shape: tuple = IMAGE_SHAPE + (1,)
  value_type: str = "binary"

  @property
  def spec(self) -> DataSpec:
    """The `DataSpec` that model families are built from."""
    return DataSpec(self.train_mean, tuple(self.image_shape), self.value_type)


def check_split(array, split: str, source: str) -> np.ndarray:
  """Checks one split and returns it as float32 `[N, 784]`.

  Args:
    array: `[N, 784]` or `[N, 28, 28]` array-like with values in [0, 1].
    split: the split's name, for the error message.
    source: where it came from (file or dataset name), for the message.

  Returns:
    `[N, 784]` float32 copy of `array`.

  Raises:
    ValueError: non-numeric values, a wrong shape, an empty split, NaN or
      infinite values, or values outside [0, 1]; the message names `source`,
      `split` and the problem.
  """
  where = f"split {split!r} of {source}"
  array = np.asarray(array)
  if array.dtype.kind not in "biuf":
    raise ValueError(f"{where} must hold numbers; got dtype {array.dtype}.")
  flat = array.ndim == 2 and array.shape[1] == NUM_PIXELS
  square = array.ndim == 3 and array.shape[1:] == IMAGE_SHAPE
  if not (flat or square):
    raise ValueError(f"{where} must have shape [N, {NUM_PIXELS}] or [N, 28, "
                     f"28]; got shape {array.shape}.")
  if array.shape[0] == 0:
    raise ValueError(f"{where} is empty (shape {array.shape}).")
  array = array.reshape(array.shape[0], NUM_PIXELS).astype(np.float32)
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{where} contains {np.sum(~np.isfinite(array))} NaN or "
                     f"infinite value(s).")
  low, high = float(array.min()), float(array.max())
  if low < 0. or high > 1.:
    raise ValueError(f"{where} has values in [{low}, {high}]; expected "
                     f"intensities in [0, 1] (divide 8-bit images by 255).")
  return array


def make_dataset(name: str, splits: Splits, *, binarization: str, seed: int,
                 threshold: float = 0.5, source: str | None = None) -> Dataset:
  """Checks raw splits, binarises them and returns a `Dataset`.

  Args:
    name: registry name recorded in the dataset.
    splits: raw `Splits` with values in [0, 1].
    binarization: one of `binarize.BINARIZATIONS`.
    seed: seed of the static draw; split i (train 0, valid 1, test 2) uses the
      independent stream `[seed, i]`.
    threshold: cut-off of the "threshold" mode.
    source: description of the origin for error messages (default `name`).

  Returns:
    The `Dataset`.
  """
  binarize.check_binarization(binarization)
  binarize.check_seed(seed)
  binarize.check_threshold(threshold)
  arrays = {}
  for stream, split in enumerate(SPLIT_NAMES):
    raw = check_split(getattr(splits, split), split, source or repr(name))
    arrays[split] = binarize.binarize_split(
        raw, binarization, seed=seed, stream=stream, threshold=threshold)
  train_mean = arrays["train"].mean(axis=0, dtype=np.float64)
  return Dataset(name=name, binarization=binarization, seed=seed,
                 train_mean=train_mean.astype(np.float32), **arrays)


def evaluation_split(dataset: Dataset, split: str) -> np.ndarray:
  """The binary array to evaluate bounds on, `[N, 784]` float32.

  For "static" and "threshold" datasets this is the stored split. For
  "dynamic" datasets it is one static draw of the split from the dataset's
  seed, the same on every call, so that validation and test bounds are
  computed on fixed binary data (and equal those of a "static" dataset loaded
  with the same seed).

  Args:
    dataset: a `Dataset`.
    split: "train", "valid" or "test".

  Returns:
    `[N, 784]` float32 array of 0/1.
  """
  if split not in SPLIT_NAMES:
    raise ValueError(f"split={split!r} is unknown; expected one of "
                     f"{SPLIT_NAMES}.")
  array = getattr(dataset, split)
  if dataset.binarization != "dynamic":
    return array
  return binarize.binarize_static(array, dataset.seed, SPLIT_NAMES.index(split))
