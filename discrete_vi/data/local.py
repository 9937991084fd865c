"""Datasets from local files: `.npz` archives and Larochelle `.amat` text.

- npz: one file holding arrays `train`, `valid` and `test`, each `[N, 784]` or
  `[N, 28, 28]`, with values in [0, 1] (non-binary values are binarised as
  the `Dataset` is configured).
- amat: a directory holding `binarized_mnist_train.amat`,
  `binarized_mnist_valid.amat` and `binarized_mnist_test.amat`, the
  statically binarised MNIST of Larochelle & Murray (2011): one image per
  line, 784 whitespace-separated 0/1 values (50,000 / 10,000 / 10,000 lines).
"""

import os
import warnings
import zipfile

import numpy as np

from discrete_vi.data import dataset as dataset_lib

AMAT_FILES = {"train": "binarized_mnist_train.amat",
              "valid": "binarized_mnist_valid.amat",
              "test": "binarized_mnist_test.amat"}


def _require_path(path, name: str, what: str) -> str:
  """Returns `path` as str; raises ValueError if it is None."""
  if path is None:
    raise ValueError(f"dataset {name!r} needs path= ({what}); got path=None.")
  return os.fspath(path)


def _open_npz(path: str):
  """Opens an `.npz` archive, or raises ValueError naming `path`."""
  try:
    archive = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
    raise ValueError(f"cannot read {path!r} as an .npz archive: "
                     f"{error}") from error
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise ValueError(f"{path!r} holds a single array, not an .npz archive of "
                     f"arrays {list(dataset_lib.SPLIT_NAMES)}.")
  return archive


def _read_npz_array(archive, path: str, split: str) -> np.ndarray:
  """One array of an open archive; object (pickled) arrays are refused."""
  try:
    return archive[split]
  except ValueError as error:
    raise ValueError(f"cannot read array {split!r} of {path!r}: "
                     f"{error}") from error


def load_npz(path) -> dataset_lib.Splits:
  """Reads arrays `train`, `valid`, `test` from an `.npz` file.

  Args:
    path: the `.npz` file.

  Returns:
    Raw `Splits` (checked later by `make_dataset`).

  Raises:
    ValueError: no path, an unreadable file, or missing arrays (the message
      lists those present).
    FileNotFoundError: the file does not exist.
  """
  path = _require_path(path, "npz", "an .npz file with arrays train, valid, "
                       "test")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"npz dataset file {path!r} does not exist.")
  with _open_npz(path) as archive:
    missing = [s for s in dataset_lib.SPLIT_NAMES if s not in archive.files]
    if missing:
      raise ValueError(f"npz file {path!r} lacks array(s) {missing}; it holds "
                       f"{sorted(archive.files)}; expected "
                       f"{list(dataset_lib.SPLIT_NAMES)}.")
    return dataset_lib.Splits(*(_read_npz_array(archive, path, s)
                                for s in dataset_lib.SPLIT_NAMES))


def read_amat(path: str) -> np.ndarray:
  """Reads one `.amat` file into `[N, 784]` float32.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: an empty file, or a line that is not 784 numbers (the message
      names the file).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"amat file {path!r} does not exist.")
  try:
    with warnings.catch_warnings():  # An empty file warns; we raise below.
      warnings.simplefilter("ignore", UserWarning)
      array = np.loadtxt(path, dtype=np.float32, ndmin=2)
  except ValueError as error:
    raise ValueError(f"cannot parse amat file {path!r} (expected lines of "
                     f"{dataset_lib.NUM_PIXELS} numbers): {error}") from error
  if array.shape[0] == 0:
    raise ValueError(f"amat file {path!r} is empty.")
  if array.shape[1:] != (dataset_lib.NUM_PIXELS,):
    raise ValueError(f"amat file {path!r} has {array.shape[1]} values per "
                     f"line; expected {dataset_lib.NUM_PIXELS}.")
  return array


def load_amat(path) -> dataset_lib.Splits:
  """Reads Larochelle's binarised MNIST from a directory of `.amat` files.

  Args:
    path: directory holding the three files of `AMAT_FILES`.

  Returns:
    Raw `Splits`.

  Raises:
    ValueError: no path.
    FileNotFoundError: the directory or one of its files is missing.
  """
  directory = _require_path(path, "amat", "a directory of "
                            "binarized_mnist_{train,valid,test}.amat")
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"amat dataset directory {directory!r} does not "
                            f"exist.")
  return dataset_lib.Splits(*(
      read_amat(os.path.join(directory, AMAT_FILES[s]))
      for s in dataset_lib.SPLIT_NAMES))
