"""Public datasets from TensorFlow Datasets (TFDS), read without TensorFlow.

`tensorflow_datasets` is imported inside the loaders only, so importing
`discrete_vi` never needs it. Data prepared in a random-access format
(`array_record` or `parquet`) are read through `builder.as_data_source`,
which decodes images with PIL or OpenCV and needs no TensorFlow. Data
prepared in the default `tfrecord` format can only be read through
`tf.data`; then TensorFlow must be installed, and the loader says so.

Preparing (downloading) a TFDS dataset needs network access and TensorFlow
(TFDS encodes images with it). Prepare once where both exist and copy the
directory:

    tfds build mnist --file_format=array_record --data_dir=DIR

then `load_dataset("mnist", path=DIR)`. `path=None` uses TFDS's default
directory (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).

Splits. `binarized_mnist` has its own train / validation / test (50,000 /
10,000 / 10,000; Larochelle & Murray, 2011). `mnist`, `fashion_mnist`,
`omniglot` and `cifar10` have only train / test; the last
`VALID_SIZES[name]` training examples (in TFDS order) become the validation
split: 50,000 / 10,000 / 10,000 for the MNISTs, as is customary, 1,345 for
Omniglot (the validation size of Rolfe, 2016 and Vahdat et al., 2018) and
5,000 for CIFAR-10.

CIFAR-10 (Krizhevsky, 2009). TFDS has train (50,000) and test (10,000) 32x32
RGB images; the last 5,000 training images (in TFDS order) are held out,
giving train / valid / test = 45,000 / 5,000 / 10,000. Values stay 8-bit:
integers 0..255 as float32, flattened row-major over (32, 32, 3), value type
"uint8", never binarised.

Omniglot. TFDS stores the 105x105 RGB images of Lake et al. (2015), black
strokes on white, split by alphabet (train = 30 "background" alphabets,
19,280 images; test = 20 "evaluation" alphabets, 13,180 images). We take the
grey level as the mean of the three channels divided by 255, resize to 28x28
by exact area averaging (each output pixel is the mean of the 3.75x3.75
input square it covers, fractional pixels weighted by overlap; see
`resize_area`), and invert (x -> 1 - x) when the training mean exceeds 0.5,
so that strokes are 1 and background 0. The result is a grey-level image
that is binarised like MNIST. Burda et al. (2016) used a different 28x28
release (24,345 / 8,070 images, not split by alphabet), so bounds on this
split are not directly comparable to theirs.
"""

import importlib.util
from typing import Callable

import numpy as np

from discrete_vi.data import dataset as dataset_lib

VALID_SIZES = {"mnist": 10_000, "fashion_mnist": 10_000, "omniglot": 1_345,
               "cifar10": 5_000}
CIFAR10_IMAGE_SHAPE = (32, 32, 3)
OMNIGLOT_SIZE = 28
_CHUNK = 1024  # records decoded at a time

Transform = Callable[[np.ndarray], np.ndarray]  # uint8 images -> [n, ...]


def _import_tfds():
  """Imports tensorflow_datasets; raises ImportError saying what to install."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError("TFDS datasets need tensorflow-datasets and "
                      "array_record: pip install tensorflow-datasets "
                      "array_record") from error
  return tfds


def open_builder(name: str, data_dir=None):
  """The TFDS builder of `name`, checked to be prepared under `data_dir`.

  Raises:
    FileNotFoundError: the dataset has not been prepared there; the message
      says how to prepare it.
  """
  tfds = _import_tfds()
  builder = tfds.builder(name, data_dir=None if data_dir is None
                         else str(data_dir))
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"TFDS dataset {name!r} is not prepared in {str(builder.data_dir)!r} "
        f"and cannot be downloaded here. Where there is network access and "
        f"tensorflow, run `tfds build {name} --file_format=array_record "
        f"--data_dir=DIR`, copy DIR to this machine and pass path=DIR (reading "
        f"array_record data needs no tensorflow).")
  return builder


def _has_random_access(builder) -> bool:
  """Whether the prepared files can be read without TensorFlow."""
  tfds = _import_tfds()
  random_access = tfds.core.file_adapters.FileFormat.with_random_access()
  return bool(set(builder.info.available_file_formats()) & random_access)


def _read_random_access(builder, split: str, transform: Transform
                        ) -> np.ndarray:
  """Decodes `split` through `as_data_source`, `_CHUNK` records at a time."""
  source = builder.as_data_source(split=split)
  get_many = getattr(source, "__getitems__", None)
  chunks = []
  for start in range(0, len(source), _CHUNK):
    keys = range(start, min(start + _CHUNK, len(source)))
    records = get_many(list(keys)) if get_many else [source[k] for k in keys]
    chunks.append(transform(np.stack([r["image"] for r in records])))
  return np.concatenate(chunks)


def _read_with_tensorflow(builder, split: str, transform: Transform
                          ) -> np.ndarray:
  """Reads a tfrecord-prepared `split` through tf.data (needs TensorFlow)."""
  if importlib.util.find_spec("tensorflow") is None:
    raise RuntimeError(
        f"TFDS dataset {builder.name!r} in {str(builder.data_dir)!r} is stored "
        f"as {builder.info.file_format.value}, which only tensorflow can read. "
        f"Either pip install tensorflow, or prepare it again with "
        f"`tfds build {builder.name} --file_format=array_record`.")
  tfds = _import_tfds()
  images = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
  return transform(images["image"])


def read_images(builder, split: str, transform: Transform) -> np.ndarray:
  """All images of `split`, each chunk passed through `transform`.

  Args:
    builder: a prepared TFDS builder (`open_builder`).
    split: a TFDS split name ("train", "validation", "test").
    transform: maps uint8 images `[n, H, W, C]` to float32 `[n, ...]`.

  Returns:
    The concatenated transformed images.
  """
  if _has_random_access(builder):
    return _read_random_access(builder, split, transform)
  return _read_with_tensorflow(builder, split, transform)


def _check_image_shape(images: np.ndarray, shape: tuple[int, ...]) -> None:
  if images.shape[1:] != shape:
    raise ValueError(f"TFDS images have shape {images.shape[1:]}; expected "
                     f"{shape}.")


def scale_mnist(images: np.ndarray) -> np.ndarray:
  """uint8 grey levels `[n, 28, 28, 1]` -> `[n, 784]` float32 in [0, 1]."""
  _check_image_shape(images, (28, 28, 1))
  return (images.reshape(len(images), -1) / 255.).astype(np.float32)


def flatten_binary(images: np.ndarray) -> np.ndarray:
  """uint8 0/1 images `[n, 28, 28, 1]` -> `[n, 784]` float32 0/1, unscaled."""
  _check_image_shape(images, (28, 28, 1))
  return images.reshape(len(images), -1).astype(np.float32)


def flatten_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 RGB `[n, 32, 32, 3]` -> `[n, 3072]` float32 integers 0..255."""
  _check_image_shape(images, CIFAR10_IMAGE_SHAPE)
  return images.reshape(len(images), -1).astype(np.float32)


def hold_out_validation(train: np.ndarray, num_valid: int, name: str
                        ) -> tuple[np.ndarray, np.ndarray]:
  """Splits off the last `num_valid` training examples as validation data."""
  if not 0 < num_valid < len(train):
    raise ValueError(f"cannot hold out {num_valid} validation examples from "
                     f"the {len(train)} training examples of {name!r}.")
  return train[:-num_valid], train[-num_valid:]


def _load_train_test(name: str, data_dir, transform: Transform
                     ) -> dataset_lib.Splits:
  """Train / held-out valid / test of a TFDS dataset without a valid split."""
  builder = open_builder(name, data_dir)
  train = read_images(builder, "train", transform)
  train, valid = hold_out_validation(train, VALID_SIZES[name], name)
  return dataset_lib.Splits(train, valid, read_images(builder, "test",
                                                      transform))


def load_mnist(path=None) -> dataset_lib.Splits:
  """MNIST (LeCun et al., 1998): 50,000 / 10,000 / 10,000 grey levels in [0, 1].

  Args:
    path: TFDS data directory (None: TFDS's default).
  """
  return _load_train_test("mnist", path, scale_mnist)


def load_fashion_mnist(path=None) -> dataset_lib.Splits:
  """Fashion-MNIST (Xiao et al., 2017): 50,000 / 10,000 / 10,000 in [0, 1].

  Args:
    path: TFDS data directory (None: TFDS's default).
  """
  return _load_train_test("fashion_mnist", path, scale_mnist)


def load_binarized_mnist(path=None) -> dataset_lib.Splits:
  """The fixed binarisation of Larochelle & Murray (2011), 0/1 values.

  Args:
    path: TFDS data directory (None: TFDS's default).
  """
  builder = open_builder("binarized_mnist", path)
  return dataset_lib.Splits(*(read_images(builder, split, flatten_binary)
                              for split in ("train", "validation", "test")))


def load_cifar10(path=None) -> dataset_lib.Splits:
  """CIFAR-10: 45,000 / 5,000 / 10,000 RGB images, integers 0..255.

  Args:
    path: TFDS data directory (None: TFDS's default).
  """
  return _load_train_test("cifar10", path, flatten_uint8)


def area_weights(in_size: int, out_size: int) -> np.ndarray:
  """`[out_size, in_size]` weights of exact area-averaging resampling.

  Output pixel i covers the input interval [i s, (i + 1) s), s = in / out;
  its weight on input pixel j is the length of [j, j + 1) inside that
  interval, divided by s, so every row sums to 1.
  """
  scale = in_size / out_size
  starts = np.arange(out_size)[:, None] * scale  # [out, 1]
  left = np.maximum(starts, np.arange(in_size)[None, :])  # [out, in]
  right = np.minimum(starts + scale, np.arange(in_size)[None, :] + 1.)
  return np.clip(right - left, 0., None) / scale


def resize_area(images: np.ndarray, size: int) -> np.ndarray:
  """Resizes square images `[n, H, H]` to `[n, size, size]` by area averaging.

  Separable: out = A x A^T with A = `area_weights(H, size)`. Constant images
  stay constant and the mean intensity is preserved.
  """
  weights = area_weights(images.shape[-1], size)  # [size, H]
  return np.einsum("ij,njk,lk->nil", weights, images, weights)


def omniglot_to_28x28(images: np.ndarray) -> np.ndarray:
  """uint8 RGB `[n, 105, 105, 3]` -> grey `[n, 784]` in [0, 1], not inverted."""
  _check_image_shape(images, (105, 105, 3))
  grey = images.astype(np.float32).mean(axis=-1) / 255.  # [n, 105, 105]
  small = resize_area(grey, OMNIGLOT_SIZE)  # [n, 28, 28]
  return np.clip(small, 0., 1.).reshape(len(images), -1).astype(np.float32)


def load_omniglot(path=None) -> dataset_lib.Splits:
  """Omniglot (Lake et al., 2015) at 28x28, strokes 1: see the module doc.

  Args:
    path: TFDS data directory (None: TFDS's default).
  """
  splits = _load_train_test("omniglot", path, omniglot_to_28x28)
  if splits.train.mean() > 0.5:  # Mostly white: strokes are dark; invert.
    splits = dataset_lib.Splits(*(1. - split for split in splits))
  return splits
