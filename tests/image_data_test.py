"""Tests of image shapes and value types in discrete_vi.data: Caltech-101
silhouettes from .mat / .npz (layout, polarity, errors naming the file),
CIFAR-10 through a fake TFDS builder (no TensorFlow), 8-bit checks and the
binarisation rule, `Dataset.spec`, config validation, and binary-only
models refusing 8-bit data."""

import sys

import chex
import jax
import numpy as np
import pytest
from scipy import io as scipy_io
from tensorflow_datasets.image_classification import cifar

import data_test  # the fake-TFDS helpers of the binary sets
from configs import test as test_config
from configs import xor_flow as xor_flow_config
from discrete_vi import data
from discrete_vi.data import dataset as dataset_lib
from discrete_vi.data import local
from discrete_vi.data import tfds_loaders
from discrete_vi.models import registry
from discrete_vi.training import validation

SIZES = {"train_data": 6, "val_data": 3, "test_data": 2}


def _silhouettes(num, seed):
  """`[num, 28, 28]` 0/1 images, silhouette 1: asymmetric "L" shapes."""
  rng = np.random.default_rng(seed)
  images = np.zeros((num, 28, 28), np.uint8)
  for image in images:
    top, left = rng.integers(0, 10, 2)
    image[top:top + 15, left:left + 4] = 1  # the vertical bar
    image[top + 12:top + 15, left:left + 12] = 1  # the foot, to the right
  return images


def _marlin_rows(images):
  """Images as Marlin's file stores them: column-major, silhouette 0."""
  return (1 - images).transpose(0, 2, 1).reshape(len(images), 784)


def _caltech_arrays(seed=0):
  images = {k: _silhouettes(n, seed + i)
            for i, (k, n) in enumerate(SIZES.items())}
  return images, {k: _marlin_rows(v) for k, v in images.items()}


def _write(path, arrays):
  if str(path).endswith(".mat"):
    scipy_io.savemat(path, arrays)
  else:
    np.savez(path, **arrays)
  return path


# -------------------------------------------------------------- caltech101


@pytest.mark.parametrize("suffix", [".mat", ".npz"])
def test_caltech101_layout_polarity_and_spec(tmp_path, suffix):
  images, rows = _caltech_arrays()
  arrays = dict(rows, train_labels=np.arange(6)[:, None],
                classnames=np.array(["a", "b"], dtype=object))
  if suffix == ".npz":
    del arrays["classnames"]  # npz holds no object arrays
  path = _write(tmp_path / f"caltech101_silhouettes_28_split1{suffix}", arrays)
  ds = data.load_dataset("caltech101", path=path)
  assert ds.name == "caltech101" and ds.binarization == "static"
  for split, key in local.CALTECH_ARRAYS.items():
    # Upright (row-major) silhouettes of 1 on a background of 0.
    np.testing.assert_array_equal(getattr(ds, split),
                                  images[key].reshape(-1, 784))
  image = ds.train[0].reshape(28, 28)
  assert image.mean() < 0.5  # mostly background
  assert ds.spec.image_shape == (28, 28, 1) and ds.spec.value_type == "binary"
  np.testing.assert_allclose(ds.spec.train_mean, ds.train.mean(0), atol=1e-6)
  assert ds.spec.data_dim == 784


def test_caltech_to_row_major_puts_pixel_r_c_at_28r_plus_c():
  column_major = np.zeros((1, 784), np.uint8)
  column_major[0, 3 + 28 * 5] = 1  # (r, c) = (3, 5) in the file's order
  row_major = local.caltech_to_row_major(1 - column_major, "x")
  assert np.flatnonzero(row_major[0]).tolist() == [28 * 3 + 5]


@pytest.mark.parametrize("suffix", [".mat", ".npz"])
def test_caltech101_malformed_files_name_the_file(tmp_path, suffix):
  _, rows = _caltech_arrays()
  cases = {
      "keys": ({"train_data": rows["train_data"],
                "valid": rows["val_data"]},
               r"lacks array\(s\) \['val_data', 'test_data'\].*'valid'"),
      "shape": (dict(rows, val_data=np.zeros((3, 783))),
                r"'val_data'.*\[N, 784\].*\(3, 783\)"),
      "empty": (dict(rows, test_data=np.zeros((0, 784))),
                r"'test_data'.*\(0, 784\)"),
      "values": (dict(rows, train_data=np.full((2, 784), 0.5)),
                 r"'train_data'.*0/1 silhouettes.*1568 other value\(s\)"),
      "grey": (dict(rows, test_data=np.full((2, 784), 255)),
               r"'test_data'.*0/1 silhouettes.*255"),
  }
  for case, (arrays, message) in cases.items():
    path = _write(tmp_path / f"bad_{case}{suffix}", arrays)
    with pytest.raises(ValueError, match=message) as error:
      data.load_dataset("caltech101", path=path)
    assert f"bad_{case}{suffix}" in str(error.value), case


def test_caltech101_missing_unreadable_or_wrong_kind_of_file(tmp_path):
  for name in ("nothere.mat", "nothere.npz"):
    with pytest.raises(FileNotFoundError, match=name):
      data.load_dataset("caltech101", path=tmp_path / name)
  for name in ("garbage.mat", "garbage.npz"):
    (tmp_path / name).write_text("not a MATLAB file or zip archive")
    with pytest.raises(ValueError, match=f"cannot read .*{name}"):
      data.load_dataset("caltech101", path=tmp_path / name)
  (tmp_path / "silhouettes.txt").write_text("0 1")
  with pytest.raises(ValueError, match=r"silhouettes.txt.*\.mat or \.npz"):
    data.load_dataset("caltech101", path=tmp_path / "silhouettes.txt")
  with pytest.raises(ValueError, match="needs path=.*path=None"):
    data.load_dataset("caltech101")


# ----------------------------------------------------------------- cifar10


def _cifar_images(seed):
  rng = np.random.default_rng(seed)
  return {"train": rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8),
          "test": rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)}


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("tfds")
  images = _cifar_images(0)
  ids = iter(range(100))
  data_test._prepare_fake(  # pylint: disable=protected-access
      cifar.Cifar10, "cifar10", images, directory,
      lambda image: {"id": f"x_{next(ids):05d}", "image": data_test._png(image),  # pylint: disable=protected-access
                     "label": 3})
  return directory, images


def test_tfds_cifar10_keeps_8_bit_values_without_tensorflow(cifar_dir,
                                                            monkeypatch):
  directory, images = cifar_dir
  monkeypatch.setitem(tfds_loaders.VALID_SIZES, "cifar10", 2)
  ds = data.load_dataset("cifar10", path=directory)
  assert ds.binarization == data.NO_BINARIZATION == "none"
  assert ds.image_shape == (32, 32, 3) and ds.value_type == "uint8"
  chex.assert_shape([ds.train, ds.valid, ds.test],
                    [(5, 3072), (2, 3072), (3, 3072)])
  expected = images["train"].reshape(7, 3072).astype(np.float32)
  np.testing.assert_array_equal(
      data_test._sorted_rows(np.concatenate([ds.train, ds.valid])),  # pylint: disable=protected-access
      data_test._sorted_rows(expected))  # pylint: disable=protected-access
  np.testing.assert_array_equal(
      data_test._sorted_rows(ds.test),  # pylint: disable=protected-access
      data_test._sorted_rows(images["test"].reshape(3, 3072)))  # pylint: disable=protected-access
  # Row-major (H, W, C): reshaping gives back images of the fake set.
  assert any(np.array_equal(ds.test[0].reshape(32, 32, 3), image)
             for image in images["test"])
  spec = ds.spec
  assert spec.image_shape == (32, 32, 3) and spec.value_type == "uint8"
  assert spec.data_dim == 3072
  np.testing.assert_allclose(spec.train_mean, ds.train.mean(0), rtol=1e-6)
  assert spec.train_mean.max() > 1.  # 0..255 units
  np.testing.assert_array_equal(data.evaluation_split(ds, "test"), ds.test)
  batch = np.asarray(next(data.train_batches(ds, 4, jax.random.PRNGKey(0))))
  chex.assert_shape(batch, (4, 3072))
  np.testing.assert_array_equal(batch, np.round(batch))
  assert "tensorflow" not in sys.modules


def test_cifar10_binarization_is_refused(cifar_dir):
  directory, _ = cifar_dir
  for mode in data.BINARIZATIONS:
    with pytest.raises(ValueError, match=f"binarization='{mode}'.*"
                       f"'cifar10'.*'uint8'.*binarization='none'"):
      data.load_dataset("cifar10", path=directory, binarization=mode)
  with pytest.raises(ValueError, match="binarization='none' is not one of"):
    data.load_dataset("mnist5k", binarization="none")


def test_tfds_cifar10_absent_says_how_to_prepare(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match="cifar10.*--file_format=array_record"):
    data.load_dataset("cifar10", path=tmp_path)


# ------------------------------------------------------ 8-bit split checks


def _uint8_splits(**overrides):
  rng = np.random.default_rng(0)
  arrays = {s: rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float64)
            for s, n in (("train", 5), ("valid", 2), ("test", 2))}
  arrays.update(overrides)
  return data.Splits(**arrays)


@pytest.mark.parametrize("overrides, message", [
    (dict(train=np.full((5, 48), 256.)), r"'train'.*\[256.0, 256.0\].*0\.\.255"),
    (dict(valid=np.full((2, 48), -1.)), r"'valid'.*\[-1.0, -1.0\]"),
    (dict(test=np.full((2, 48), 3.5)), r"'test'.*e\.g\. 3\.5.*integers"),
    (dict(test=np.full((2, 48), np.nan)), r"'test'.*NaN"),
    (dict(train=np.zeros((5, 4, 4))),
     r"\[N, 48\] or \[N, 4, 4, 3\]; got shape \(5, 4, 4\)"),
])
def test_uint8_splits_are_checked(overrides, message):
  with pytest.raises(ValueError, match=message) as error:
    data.make_dataset("tiny", _uint8_splits(**overrides), binarization="none",
                      seed=0, image_shape=(4, 4, 3), value_type="uint8",
                      source="'tiny' at 'f.npz'")
  assert "f.npz" in str(error.value)


def test_uint8_dataset_keeps_values_and_flattens_row_major():
  splits = _uint8_splits()
  ds = data.make_dataset("tiny", splits, binarization="none", seed=0,
                         image_shape=(4, 4, 3), value_type="uint8")
  np.testing.assert_array_equal(ds.valid, splits.valid.reshape(2, 48))
  assert ds.train.dtype == np.float32 and ds.spec.image_shape == (4, 4, 3)
  with pytest.raises(ValueError, match="value_type='int16' is not one of"):
    data.make_dataset("tiny", splits, binarization="none", seed=0,
                      image_shape=(4, 4, 3), value_type="int16")
  with pytest.raises(ValueError, match=r"image_shape=\(48,\)"):
    data.make_dataset("tiny", splits, binarization="none", seed=0,
                      image_shape=(48,), value_type="uint8")


def test_binary_sets_accept_a_channel_axis_and_keep_their_spec():
  rows = (data_test._probabilities(3, shape=(28, 28, 1)) < 0.5)  # pylint: disable=protected-access
  ds = data.make_dataset("b", data.Splits(rows, rows, rows),
                         binarization="static", seed=0)
  np.testing.assert_array_equal(ds.test, rows.reshape(3, 784))
  assert ds.spec.image_shape == (28, 28, 1) and ds.spec.value_type == "binary"


# ------------------------------------------------- configs and models


def _data_config(**fields):
  return {"data": {"name": "mnist5k", "path": None, "binarization": "static",
                   **fields}}


@pytest.mark.parametrize("fields, message", [
    (dict(name="caltech101"), "config.data.path must name .*'caltech101'"),
    (dict(name="cifar10"), r"config.data.binarization='static' does not "
     r"apply to config.data.name='cifar10'.*'none'"),
    (dict(name="mnist", binarization="none"),
     "config.data.binarization='none' is not one of"),
])
def test_validate_data_rules(fields, message):
  with pytest.raises(ValueError, match=message):
    validation.validate_data(_data_config(**fields))


def test_validate_data_accepts_image_sets():
  validation.validate_data(_data_config(name="cifar10", binarization="none"))
  validation.validate_data(_data_config(name="caltech101", path="f.mat"))


UINT8_SPEC = dataset_lib.DataSpec(np.full(3072, 120., np.float32),
                                  (32, 32, 3), "uint8")


@pytest.mark.parametrize("config, model", [
    (test_config.get_config(), "sbn"),
    (xor_flow_config.get_config("ste"), "xor_flow"),
])
def test_binary_models_refuse_8_bit_data(config, model):
  with pytest.raises(ValueError, match=f"config.model.name='{model}' models "
                     r"'binary' data; got data of value_type='uint8' "
                     r"\(image shape \(32, 32, 3\)\)"):
    registry.build_model(config, UINT8_SPEC)


def test_registry_lists_the_image_sets():
  assert data.DATASETS["caltech101"].value_type == "binary"
  assert "caltech101" in data.LOCAL_DATASETS
  cifar10 = data.DATASETS["cifar10"]
  assert (cifar10.image_shape, cifar10.value_type, cifar10.binarization) == (
      (32, 32, 3), "uint8", "none")
  assert tfds_loaders.VALID_SIZES["cifar10"] == 5000  # 45k / 5k / 10k


def test_model_data_check_accepts_8_bit_integers_only():
  from discrete_vi.models import _checks  # pylint: disable=g-import-not-at-top
  x = _checks.check_data(np.array([[0., 255., 17.]]), 3, value_type="uint8")
  assert x.dtype == np.float32
  for bad in ([[0., 256., 1.]], [[0., 0.5, 1.]], [[-1., 0., 1.]]):
    with pytest.raises(ValueError, match="8-bit integers"):
      _checks.check_data(np.array(bad), 3, value_type="uint8")
  with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
    _checks.check_data(np.zeros((2, 4)), 3, value_type="uint8")
