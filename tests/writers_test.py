"""Tests of the sample-grid writer (`training.writers`): grayscale and RGB,
flattened or image-shaped batches, uint8 or [0, 1] floats."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from discrete_vi.training import writers


def numbered_images(n: int, shape) -> np.ndarray:
  """`[n, *shape]` floats in (0, 1): image k is constant (k + 1) / (n + 1)."""
  values = (np.arange(n) + 1.0) / (n + 1.0)
  return np.broadcast_to(values.reshape((n,) + (1,) * len(shape)),
                         (n,) + tuple(shape)).astype(np.float32)


def cell(grid: np.ndarray, row: int, col: int, height: int, width: int):
  """The tile at (row, col) of an `image_grid` grid."""
  top, left = 1 + row * (height + 1), 1 + col * (width + 1)
  return grid[top:top + height, left:left + width]


def test_image_k_is_at_row_k_div_columns_and_column_k_mod_columns():
  images = numbered_images(7, (5, 4, 3))  # 7 RGB 5 x 4 images
  grid = writers.image_grid(images, columns=3)
  assert grid.shape == (3 * 6 + 1, 3 * 5 + 1, 3)
  for k in range(7):
    np.testing.assert_array_equal(cell(grid, k // 3, k % 3, 5, 4), images[k])
  np.testing.assert_array_equal(cell(grid, 2, 1, 5, 4), 1.0)  # empty: white
  np.testing.assert_array_equal(grid[0], 1.0)  # borders white


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (6, 10, 3)])
def test_flattened_images_take_their_image_shape(shape):
  images = numbered_images(4, shape)
  np.testing.assert_array_equal(
      writers.as_images(images.reshape(4, -1), shape), images)


def test_flattened_square_grayscale_is_the_default_and_bad_shapes_fail():
  images = numbered_images(2, (28, 28))
  assert writers.as_images(images.reshape(2, -1)).shape == (2, 28, 28, 1)
  assert writers.as_images(images).shape == (2, 28, 28, 1)
  with pytest.raises(ValueError, match="image_shape"):
    writers.as_images(np.zeros((2, 3072)), (28, 28, 1))
  with pytest.raises(ValueError, match="C in"):
    writers.as_images(np.zeros((2, 8, 8, 2)))


def test_uint8_and_float_ranges():
  np.testing.assert_allclose(
      writers.to_unit_range(np.array([0, 51, 255], np.uint8)), [0, 0.2, 1])
  np.testing.assert_allclose(
      writers.to_unit_range(np.array([0.0, 127.5, 255.0]), 255.0),
      [0, 0.5, 1])
  for bad in ([0.5, 1.5], [-0.1, 0.5], [np.nan, 0.5]):
    with pytest.raises(ValueError, match=r"\[0, 1.0\]"):
      writers.to_unit_range(np.array(bad))


@pytest.mark.parametrize("shape", [(8, 8, 3), (8, 8, 1), (8, 8)])
def test_saved_png_holds_the_grid(shape, tmp_path):
  rng = np.random.RandomState(0)
  images = rng.randint(0, 256, size=(5,) + shape).astype(np.uint8)
  path = str(tmp_path / "samples.png")
  writers.save_image_grid(images, path, columns=2)
  png = plt.imread(path)  # [H, W, 4] RGBA floats
  assert png.shape[:2] == (3 * 9 + 1, 2 * 9 + 1)
  expected = writers.image_grid(writers.to_unit_range(
      writers.as_images(images)), columns=2)
  np.testing.assert_allclose(png[..., :3], np.broadcast_to(
      expected, expected.shape[:2] + (3,)), atol=1 / 255 + 1e-6)


def test_saved_png_of_flattened_cifar_shaped_floats(tmp_path):
  images = numbered_images(3, (32, 32, 3)).reshape(3, -1) * 255.0
  path = str(tmp_path / "samples.png")
  writers.save_image_grid(images, path, image_shape=(32, 32, 3),
                          max_value=255.0)
  png = plt.imread(path)
  np.testing.assert_allclose(png[1:33, 1 + 33:33 + 33, :3], 2 / 4, atol=1e-2)


def test_curves_add_a_chain_gap_panel_only_when_logged(tmp_path):
  records = [{"step": s, "wall_time_s": float(s), "train_objective": -s,
              "valid_log_likelihood": -2.0 * s} for s in (1, 2, 3)]
  plain = tmp_path / "plain.png"
  writers.plot_curves(records, str(plain))
  records[1].update(valid_chain_gap=3.5, valid_chain_gap_stderr=0.2)
  records[2].update(valid_chain_gap=0.1, valid_chain_gap_stderr=0.1)
  gap = tmp_path / "gap.png"
  writers.plot_curves(records, str(gap))
  plain_width = plt.imread(str(plain)).shape[1]
  gap_width = plt.imread(str(gap)).shape[1]
  assert gap_width == pytest.approx(1.5 * plain_width, rel=0.02)
