"""Metric writers: metrics.jsonl, TensorBoard events (no TensorFlow needed),
and the learning-curve and sample-grid PNGs."""

import json
import math
import os
from typing import Mapping

import numpy as np


def _plain(value):
  value = np.asarray(value)
  return value.item() if value.size == 1 else value.tolist()


class MetricWriter:
  """Appends one JSON line per record to metrics.jsonl and mirrors scalars to
  TensorBoard event files (via tensorboardX, which needs no TensorFlow)."""

  def __init__(self, workdir: str, enabled: bool = True):
    """Opens the writers; with `enabled=False` (a non-primary process of a
    multi-host run) every call does nothing."""
    self._enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    record = {"step": int(step)}
    record.update({k: _plain(v) for k, v in metrics.items()})
    with open(self._path, "a") as fh:
      fh.write(json.dumps(record) + "\n")
    for name, value in record.items():
      if name != "step" and isinstance(value, float) and math.isfinite(value):
        self._tb.add_scalar(name, value, int(step))
    self._tb.flush()

  def close(self) -> None:
    if self._enabled:
      self._tb.close()


def read_json(path: str, default=None):
  """The JSON value in the file `path`, or `default` when there is none."""
  if not os.path.exists(path):
    return default
  with open(path) as fh:
    return json.load(fh)


def read_metrics(workdir: str) -> list[dict]:
  """The records of metrics.jsonl (empty list when absent)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as fh:
    return [json.loads(line) for line in fh if line.strip()]


def truncate_metrics(workdir: str, last_step: int) -> None:
  """Drops records after `last_step` (a resumed run rewrites them)."""
  records = [r for r in read_metrics(workdir) if r["step"] <= last_step]
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path, "w") as fh:
      fh.writelines(json.dumps(r) + "\n" for r in records)


def pyplot():
  """matplotlib's pyplot on the file-only Agg backend (imported on first
  use: the estimators never load matplotlib)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_curves(records: list[dict], path: str, key: str = "train_objective",
                eval_key: str = "valid_log_likelihood",
                gap_key: str = "valid_chain_gap") -> None:
  """Objective vs steps and vs wall-clock time, one PNG with two panels;
  a third when the records carry the persistent chains' energy gap
  (`gap_key`, with its `_stderr`: an RBM prior's chain health), so that a
  lagging negative phase shows without opening the code."""
  plt = pyplot()
  gaps = [r for r in records if r.get(gap_key) is not None]
  fig, axes = plt.subplots(1, 3 if gaps else 2,
                           figsize=(15 if gaps else 10, 4))
  for k, style in ((key, "-"), (eval_key, "o-")):
    rows = [r for r in records if k in r and r[k] is not None]
    if not rows:
      continue
    steps = [r["step"] for r in rows]
    times = [r.get("wall_time_s", np.nan) for r in rows]
    values = [r[k] for r in rows]
    axes[0].plot(steps, values, style, label=k, markersize=3)
    axes[1].plot(times, values, style, label=k, markersize=3)
  axes[0].set_xlabel("step")
  axes[1].set_xlabel("wall-clock time (s)")
  for ax in axes[:2]:
    ax.set_ylabel("nats")
  if gaps:
    axes[2].errorbar([r["step"] for r in gaps], [r[gap_key] for r in gaps],
                     yerr=[r.get(f"{gap_key}_stderr", 0.0) for r in gaps],
                     fmt="o-", markersize=3, label=gap_key)
    axes[2].axhline(0.0, color="grey", linewidth=0.8)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("chain energy - energy after more sweeps (nats)")
  for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_gradients(records: list[dict], path: str) -> bool:
  """gradients.png: the gradient diagnostics (`grad/<group>/<statistic>`,
  `training.gradient_diagnostics`) vs steps, one panel per statistic
  (variance, SNR, and the bias against its floor when measured), one line
  per parameter group. Returns False (and writes nothing) when the records
  carry none."""
  rows = [r for r in records if any(k.startswith("grad/") for k in r)]
  if not rows:
    return False
  plt = pyplot()
  keys = sorted({k for r in rows for k in r if k.startswith("grad/")})
  groups = sorted({k.split("/")[1] for k in keys if k.count("/") == 2})
  panels = [s for s in ("variance", "snr", "bias_norm")
            if any(k.endswith("/" + s) for k in keys)]
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4),
                           squeeze=False)
  steps = [r["step"] for r in rows]
  for ax, statistic in zip(axes[0], panels):
    for group in groups:
      values = [r.get(f"grad/{group}/{statistic}", np.nan) for r in rows]
      line, = ax.plot(steps, values, "o-", markersize=3, label=group)
      if statistic == "bias_norm":
        floor = [r.get(f"grad/{group}/bias_floor", np.nan) for r in rows]
        ax.plot(steps, floor, ":", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title({"variance": "summed per-coordinate variance",
                  "snr": "SNR = |mean| / sqrt(variance)",
                  "bias_norm": "bias norm (dotted: its noise floor)"
                  }[statistic])
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


GRID_COLUMNS = 10  # images per row of a sample grid
COLOUR_CHANNELS = (1, 3)  # grayscale or RGB


def as_images(images: np.ndarray, image_shape=None) -> np.ndarray:
  """`[N, H, W, C]` float32 views of a batch of images.

  Args:
    images: `[N, H, W]`, `[N, H, W, C]`, or flattened `[N, D]` (then
      `image_shape`, or square grayscale when `image_shape` is None).
    image_shape: `(H, W, C)` of one flattened image, C in {1, 3}.

  Raises:
    ValueError: naming the shapes when they do not fit.
  """
  images = np.asarray(images)
  if images.ndim == 2:
    if image_shape is None:
      side = int(round(math.sqrt(images.shape[1])))
      image_shape = (side, side, 1)
    if int(np.prod(image_shape)) != images.shape[1]:
      raise ValueError(f"images of shape {images.shape} do not flatten "
                       f"image_shape={tuple(image_shape)}.")
    images = images.reshape((images.shape[0],) + tuple(image_shape))
  elif images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in COLOUR_CHANNELS:
    raise ValueError(f"images must be [N, D], [N, H, W] or [N, H, W, C] with "
                     f"C in {COLOUR_CHANNELS}; got shape {images.shape}.")
  return images


def to_unit_range(images: np.ndarray, max_value: float = 1.0) -> np.ndarray:
  """float32 intensities in [0, 1]: uint8 / 255, or floats / `max_value`.

  Raises:
    ValueError: when a float value lies outside [0, max_value] (or is NaN).
  """
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  images = np.asarray(images, np.float32)
  if not np.all((images >= 0.0) & (images <= max_value)):
    raise ValueError(f"image values must lie in [0, {max_value}]; got min "
                     f"{np.nanmin(images)}, max {np.nanmax(images)}"
                     f"{' and NaN' if np.isnan(images).any() else ''}.")
  return images / max_value


def image_grid(images: np.ndarray, columns: int = GRID_COLUMNS) -> np.ndarray:
  """Tiles `[N, H, W, C]` images row-major, image k at row k // columns and
  column k % columns, with 1-pixel white borders: `[R (H + 1) + 1,
  columns (W + 1) + 1, C]` (unfilled cells white)."""
  if int(columns) != columns or columns < 1:
    raise ValueError(f"columns must be an int >= 1; got {columns!r}.")
  n, height, width, channels = images.shape
  rows = int(math.ceil(n / columns))
  grid = np.ones((rows * (height + 1) + 1, columns * (width + 1) + 1,
                  channels), np.float32)
  for k, image in enumerate(images):
    r, c = divmod(k, columns)
    grid[1 + r * (height + 1):(r + 1) * (height + 1),
         1 + c * (width + 1):(c + 1) * (width + 1)] = image
  return grid


def save_image_grid(images: np.ndarray, path: str, columns: int = GRID_COLUMNS,
                    *, image_shape=None, max_value: float = 1.0) -> None:
  """Saves a batch of grayscale or RGB images as one PNG grid (`image_grid`).

  Args:
    images: `[N, H, W]`, `[N, H, W, C]` or flattened `[N, D]` (`as_images`),
      C in {1, 3}; uint8, or floats in [0, max_value].
    path: the PNG file.
    columns: images per row.
    image_shape: `(H, W, C)` of flattened images (default: square
      grayscale).
    max_value: the float value shown white (1 for probabilities, 255 for
      8-bit values held as floats).
  """
  plt = pyplot()
  grid = image_grid(to_unit_range(as_images(images, image_shape), max_value),
                    columns)
  if grid.shape[-1] == 1:
    plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
  else:
    plt.imsave(path, grid)
