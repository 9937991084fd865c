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


def plot_curves(records: list[dict], path: str, key: str = "train_objective",
                eval_key: str = "valid_log_likelihood") -> None:
  """Objective vs steps and vs wall-clock time, one PNG with two panels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
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
  for ax in axes:
    ax.set_ylabel("nats")
    ax.legend()
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def save_image_grid(images: np.ndarray, path: str, columns: int = 10) -> None:
  """Saves `[N, 784]` (or `[N, 28, 28]`) values in [0, 1] as a PNG grid."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  images = np.asarray(images, np.float32)
  n = images.shape[0]
  side = int(round(math.sqrt(images.shape[-1]))) if images.ndim == 2 else images.shape[-1]
  images = images.reshape(n, side, side)
  rows = int(math.ceil(n / columns))
  grid = np.ones((rows * (side + 1) + 1, columns * (side + 1) + 1), np.float32)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    grid[1 + r * (side + 1):1 + r * (side + 1) + side,
         1 + c * (side + 1):1 + c * (side + 1) + side] = image
  plt.imsave(path, grid, cmap="gray", vmin=0.0, vmax=1.0)
