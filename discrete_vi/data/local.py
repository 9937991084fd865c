"""Datasets from local files: `.npz` archives, Larochelle `.amat` text and
the Caltech-101 silhouettes `.mat` file.

- npz: one file holding arrays `train`, `valid` and `test`, each `[N, 784]` or
  `[N, 28, 28]`, with values in [0, 1] (non-binary values are binarised as
  the `Dataset` is configured).
- amat: a directory holding `binarized_mnist_train.amat`,
  `binarized_mnist_valid.amat` and `binarized_mnist_test.amat`, the
  statically binarised MNIST of Larochelle & Murray (2011): one image per
  line, 784 whitespace-separated 0/1 values (50,000 / 10,000 / 10,000 lines).
- caltech101: the 28x28 Caltech-101 silhouettes of Marlin et al. (2010),
  `caltech101_silhouettes_28_split1.mat` as published (MATLAB v5, read with
  `scipy.io.loadmat`), or an `.npz` holding the same arrays. Arrays
  `train_data`, `val_data`, `test_data` (4,100 / 2,264 / 2,307 images of
  101 classes in the published file), each `[N, 784]` of 0/1; the labels are
  not read. The file's conventions, which `load_caltech101` undoes: each row
  is a 28x28 image flattened in column-major (MATLAB, Fortran) order, so
  pixel (r, c) is entry `r + 28 c`; and the silhouette is 0 on a background
  of 1. We transpose to row-major order and invert (x -> 1 - x), so that the
  silhouette is 1 on 0, as Omniglot strokes and MNIST digits are, and as in
  the usual preprocessing of this file (e.g. Tomczak & Welling, 2018).
"""

import os
import warnings
import zipfile

import numpy as np

from discrete_vi.data import dataset as dataset_lib

CALTECH_ARRAYS = {"train": "train_data", "valid": "val_data",
                  "test": "test_data"}
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


def _read_mat(path: str) -> dict:
  """The arrays of a MATLAB `.mat` file (v4 to v7.2), or ValueError."""
  try:
    from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError(f"reading {path!r} needs scipy: pip install scipy"
                      ) from error
  try:
    contents = scipy_io.loadmat(path)
  # scipy raises errors of many kinds on malformed files (MatReadError,
  # IndexError on short ones, NotImplementedError on v7.3 HDF5 files).
  except Exception as error:  # pylint: disable=broad-except
    raise ValueError(f"cannot read {path!r} as a MATLAB .mat file (v7.3 "
                     f"files are HDF5; save with -v7 or convert to .npz): "
                     f"{error}") from error
  return {k: v for k, v in contents.items() if not k.startswith("__")}


def _read_npz_arrays(path: str, names) -> tuple[dict, list[str]]:
  """The arrays `names` of an `.npz` file that it has, and all its names."""
  with _open_npz(path) as archive:
    return ({n: _read_npz_array(archive, path, n) for n in archive.files
             if n in names}, sorted(archive.files))


def caltech_to_row_major(array: np.ndarray, where: str) -> np.ndarray:
  """Marlin's `[N, 784]` 0/1 rows -> `[N, 784]` silhouettes 1 on 0, row-major.

  Row n of the file holds pixel (r, c) at `r + 28 c` (column-major); the
  result holds it at `28 r + c`, the layout of every other dataset here.

  Raises:
    ValueError: a shape other than `[N, 784]` with N > 0, or values other
      than 0 and 1; the message starts with `where`.
  """
  array = np.asarray(array)
  if array.dtype.kind not in "biuf" or array.ndim != 2 or (
      array.shape[1] != dataset_lib.NUM_PIXELS) or array.shape[0] == 0:
    raise ValueError(f"{where} must be a non-empty [N, "
                     f"{dataset_lib.NUM_PIXELS}] array of numbers; got shape "
                     f"{array.shape} and dtype {array.dtype}.")
  bad = array[(array != 0) & (array != 1)]
  if bad.size:
    raise ValueError(f"{where} must hold 0/1 silhouettes; got {bad.size} "
                     f"other value(s), e.g. {bad.flat[0]!r}.")
  images = array.reshape(-1, *dataset_lib.IMAGE_SHAPE)  # [N, c, r]
  rows = images.transpose(0, 2, 1).reshape(len(array), -1)  # [N, 784]
  return (1 - rows).astype(np.float32)


def load_caltech101(path) -> dataset_lib.Splits:
  """Caltech-101 silhouettes (Marlin et al., 2010) from `.mat` or `.npz`.

  Args:
    path: `caltech101_silhouettes_28_split1.mat`, or an `.npz` holding its
      arrays `train_data`, `val_data`, `test_data` unchanged (see the module
      docstring for their layout).

  Returns:
    Raw `Splits` of `[N, 784]` float32 0/1, row-major, silhouettes 1.

  Raises:
    ValueError: no path, a file that is neither `.mat` nor `.npz`, an
      unreadable file, missing arrays (the message lists those present),
      or arrays of the wrong shape or values; every message names the file.
    FileNotFoundError: the file does not exist.
  """
  path = _require_path(path, "caltech101",
                       "caltech101_silhouettes_28_split1.mat or an .npz of "
                       "its arrays")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"caltech101 dataset file {path!r} does not "
                            f"exist.")
  names = tuple(CALTECH_ARRAYS.values())
  suffix = os.path.splitext(path)[1].lower()
  if suffix == ".mat":
    arrays = _read_mat(path)
    present = sorted(arrays)
  elif suffix == ".npz":
    arrays, present = _read_npz_arrays(path, names)
  else:
    raise ValueError(f"caltech101 file {path!r} must be a .mat or .npz file; "
                     f"got suffix {suffix!r}.")
  missing = [n for n in names if n not in arrays]
  if missing:
    raise ValueError(f"caltech101 file {path!r} lacks array(s) {missing}; it "
                     f"holds {present}; expected {list(names)}.")
  return dataset_lib.Splits(*(
      caltech_to_row_major(arrays[CALTECH_ARRAYS[s]],
                           f"array {CALTECH_ARRAYS[s]!r} of {path!r}")
      for s in dataset_lib.SPLIT_NAMES))
