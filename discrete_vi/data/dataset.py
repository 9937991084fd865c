"""The `Dataset` container and the checks every loaded split goes through.

A loader returns raw `Splits`; `make_dataset` checks them against the
dataset's image shape and value type, applies the load-time binarisation
(binary data only) and records the training mean.

Value types (`VALUE_TYPES`):

- "binary": intensities in [0, 1], binarised to {0, 1} by one of
  `binarize.BINARIZATIONS` (at load time, or per batch for "dynamic").
- "uint8": 8-bit values, integers 0..255 kept as float32 and never
  binarised; their only binarisation mode is `NO_BINARIZATION` ("none").

Every split is stored flattened, `[N, D]` with `D = H * W * C`, in row-major
(H, W, C) order: `split.reshape(N, H, W, C)` gives the images.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from discrete_vi import checks
from discrete_vi.data import binarize

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = 784
BINARY_IMAGE_SHAPE = IMAGE_SHAPE + (1,)  # (H, W, C) of the 28x28 sets
SPLIT_NAMES = ("train", "valid", "test")
VALUE_TYPES = ("binary", "uint8")
NO_BINARIZATION = "none"  # the binarisation of non-binary value types


class DataSpec(NamedTuple):
  """What a model family needs to know of its data to build itself.

  Attributes:
    train_mean: `[D]` float32 mean of the training split (flattened).
    image_shape: `(H, W, C)` of one example; `D = H * W * C`. Models that
      work on images reshape `[..., D]` batches to `[..., H, W, C]` with it.
    value_type: one of `VALUE_TYPES`: "binary" (values in {0, 1}, or
      intensities in [0, 1] that are binarised) or "uint8" (integers 0..255
      as float32; `train_mean` is then in the same 0..255 units).
  """
  train_mean: np.ndarray
  image_shape: tuple
  value_type: str = "binary"

  @property
  def data_dim(self) -> int:
    """`D`, the length of a flattened example."""
    return int(np.prod(self.image_shape))

  def require_value_type(self, value_type: str, model: str) -> None:
    """Raises ValueError unless the data have `value_type`.

    Args:
      value_type: the value type `model` can model (e.g. "binary").
      model: who asks, for the message (e.g. "config.model.name='sbn'").
    """
    if self.value_type != value_type:
      raise ValueError(f"{model} models {value_type!r} data; got data of "
                       f"value_type={self.value_type!r} (image shape "
                       f"{tuple(self.image_shape)}).")


class Splits(NamedTuple):
  """Raw train / valid / test arrays as a loader returns them.

  Each is `[N, D]`, `[N, H, W, C]` or (when C = 1) `[N, H, W]`: for the
  28x28 binary sets `[N, 784]` or `[N, 28, 28]` with values in [0, 1]; for
  "uint8" data integers 0..255.
  """
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Flattened images, split three ways, ready for training.

  Attributes:
    name: the registry name the data were loaded under (e.g. "mnist5k").
    train: `[N_train, D]` float32 (`D = 784` for the 28x28 sets). Binary
      data: 0/1 for "static" and "threshold" binarisation; intensities in
      [0, 1] for "dynamic" (binarised per batch by `train_batches`). "uint8"
      data: integers 0..255.
    valid: `[N_valid, D]` float32, as `train`.
    test: `[N_test, D]` float32, as `train`.
    binarization: "static", "dynamic" or "threshold" for binary data;
      `NO_BINARIZATION` ("none") for "uint8" data.
    train_mean: `[D]` float32 mean of `train`, in the data's units (for
      "dynamic", the mean intensity, which is the expected mean of the
      binarised data; for "uint8", mean values in 0..255). Binary models
      use it for mean-centring encoder inputs and for the decoder output
      bias logit(clip(mean, 1e-3, 0.999)).
    seed: the seed of the static binarisation (for "dynamic", of the fixed
      evaluation draw, see `evaluation_split`).
    image_shape: `(H, W, C)` of one example: `(28, 28, 1)` for the binary
      sets, `(32, 32, 3)` for CIFAR-10.
    value_type: one of `VALUE_TYPES` (see `DataSpec`).
  """
  name: str
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  binarization: str
  train_mean: np.ndarray
  seed: int = 0
  image_shape: tuple = BINARY_IMAGE_SHAPE
  value_type: str = "binary"

  @property
  def spec(self) -> DataSpec:
    """The `DataSpec` that model families are built from."""
    return DataSpec(self.train_mean, tuple(self.image_shape), self.value_type)


def _shape_forms(image_shape: tuple) -> list[str]:
  """The accepted split shapes of `image_shape`, as text for messages."""
  height, width, channels = image_shape
  forms = [f"[N, {height * width * channels}]"]
  if channels == 1:
    forms.append(f"[N, {height}, {width}]")
  forms.append(f"[N, {height}, {width}, {channels}]")
  return forms


def _has_image_shape(array: np.ndarray, image_shape: tuple) -> bool:
  """Whether `array` is `[N, D]`, `[N, H, W, C]` or (C = 1) `[N, H, W]`."""
  height, width, channels = image_shape
  return (array.shape[1:] in ((height * width * channels,),
                              (height, width, channels)) or
          (channels == 1 and array.shape[1:] == (height, width)))


def _check_values(array: np.ndarray, where: str, value_type: str) -> None:
  """Raises ValueError unless the finite `array` suits `value_type`."""
  low, high = float(array.min()), float(array.max())
  if value_type == "binary":
    if low < 0. or high > 1.:
      raise ValueError(f"{where} has values in [{low}, {high}]; expected "
                       f"intensities in [0, 1] (divide 8-bit images by 255).")
    return
  fractional = array[array != np.round(array)]
  if low < 0. or high > 255. or fractional.size:
    example = f", e.g. {float(fractional[0])}" if fractional.size else ""
    raise ValueError(f"{where} has values in [{low}, {high}]{example}; "
                     f"expected 8-bit integers 0..255 (value_type="
                     f"{value_type!r}).")


def check_value_type(value_type: str) -> None:
  """Raises ValueError unless `value_type` is one of `VALUE_TYPES`."""
  checks.check_one_of("value_type", value_type, VALUE_TYPES)


def check_split(array, split: str, source: str,
                image_shape: tuple = BINARY_IMAGE_SHAPE,
                value_type: str = "binary") -> np.ndarray:
  """Checks one split and returns it as float32 `[N, D]`.

  Args:
    array: `[N, D]`, `[N, H, W, C]` or (C = 1) `[N, H, W]` array-like with
      values in [0, 1] ("binary") or integers 0..255 ("uint8").
    split: the split's name, for the error message.
    source: where it came from (file or dataset name), for the message.
    image_shape: `(H, W, C)` of one example; `D = H * W * C`.
    value_type: one of `VALUE_TYPES`.

  Returns:
    `[N, D]` float32 copy of `array`, row-major over (H, W, C).

  Raises:
    ValueError: non-numeric values, a wrong shape, an empty split, NaN or
      infinite values, or values outside the value type's range; the message
      names `source`, `split` and the problem.
  """
  check_value_type(value_type)
  where = f"split {split!r} of {source}"
  array = np.asarray(array)
  if array.dtype.kind not in "biuf":
    raise ValueError(f"{where} must hold numbers; got dtype {array.dtype}.")
  if array.ndim < 2 or not _has_image_shape(array, image_shape):
    forms = _shape_forms(image_shape)
    raise ValueError(f"{where} must have shape {', '.join(forms[:-1])} or "
                     f"{forms[-1]}; got shape {array.shape}.")
  if array.shape[0] == 0:
    raise ValueError(f"{where} is empty (shape {array.shape}).")
  array = array.reshape(array.shape[0], -1).astype(np.float32)  # [N, D]
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{where} contains {np.sum(~np.isfinite(array))} NaN or "
                     f"infinite value(s).")
  _check_values(array, where, value_type)
  return array


def check_binarization_of(binarization: str, value_type: str,
                          source: str) -> None:
  """Raises ValueError unless `binarization` applies to `value_type` data.

  Binary data take one of `binarize.BINARIZATIONS`; every other value type
  is kept as it is and takes only `NO_BINARIZATION`.
  """
  if value_type == "binary":
    binarize.check_binarization(binarization)
  elif binarization != NO_BINARIZATION:
    raise ValueError(f"binarization={binarization!r} does not apply to "
                     f"{source}: its value_type={value_type!r} data are kept "
                     f"as they are; use binarization={NO_BINARIZATION!r}.")


def make_dataset(name: str, splits: Splits, *, binarization: str, seed: int,
                 threshold: float = 0.5, source: str | None = None,
                 image_shape: tuple = BINARY_IMAGE_SHAPE,
                 value_type: str = "binary") -> Dataset:
  """Checks raw splits, binarises them and returns a `Dataset`.

  Args:
    name: registry name recorded in the dataset.
    splits: raw `Splits` (values in [0, 1] for binary data, integers 0..255
      for "uint8").
    binarization: one of `binarize.BINARIZATIONS` for binary data,
      `NO_BINARIZATION` otherwise.
    seed: seed of the static draw; split i (train 0, valid 1, test 2) uses the
      independent stream `[seed, i]`.
    threshold: cut-off of the "threshold" mode.
    source: description of the origin for error messages (default `name`).
    image_shape: `(H, W, C)` of one example.
    value_type: one of `VALUE_TYPES`.

  Returns:
    The `Dataset`.
  """
  source = source or repr(name)
  check_value_type(value_type)
  checks.check_ints("image_shape", image_shape, 1)
  if len(image_shape) != 3:
    raise ValueError(f"image_shape must be (H, W, C); got image_shape="
                     f"{image_shape!r}.")
  check_binarization_of(binarization, value_type, source)
  binarize.check_seed(seed)
  binarize.check_threshold(threshold)
  arrays = {}
  for stream, split in enumerate(SPLIT_NAMES):
    raw = check_split(getattr(splits, split), split, source,
                      tuple(image_shape), value_type)
    arrays[split] = raw if value_type != "binary" else binarize.binarize_split(
        raw, binarization, seed=seed, stream=stream, threshold=threshold)
  train_mean = arrays["train"].mean(axis=0, dtype=np.float64)
  return Dataset(name=name, binarization=binarization, seed=seed,
                 train_mean=train_mean.astype(np.float32),
                 image_shape=tuple(image_shape), value_type=value_type,
                 **arrays)


def evaluation_split(dataset: Dataset, split: str) -> np.ndarray:
  """The array to evaluate bounds on, `[N, D]` float32.

  For "static" and "threshold" datasets, and for non-binary value types,
  this is the stored split. For "dynamic" datasets it is one static draw of
  the split from the dataset's seed, the same on every call, so that
  validation and test bounds are computed on fixed binary data (and equal
  those of a "static" dataset loaded with the same seed).

  Args:
    dataset: a `Dataset`.
    split: "train", "valid" or "test".

  Returns:
    `[N, D]` float32 array: 0/1 for binary data, integers 0..255 for
    "uint8".
  """
  if split not in SPLIT_NAMES:
    raise ValueError(f"split={split!r} is unknown; expected one of "
                     f"{SPLIT_NAMES}.")
  array = getattr(dataset, split)
  if dataset.binarization != "dynamic":
    return array
  return binarize.binarize_static(array, dataset.seed, SPLIT_NAMES.index(split))
