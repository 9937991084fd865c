"""Binarisation of grey-level images with pixel intensities in [0, 1].

Three modes (`BINARIZATIONS`):

- "static": every pixel is replaced once, at load time, by a Bernoulli draw
  with its intensity as probability, x_i ~ Bernoulli(p_i), from a fixed seed
  (Salakhutdinov & Murray, 2008, who released MNIST binarised this way; the
  Larochelle `.amat` files are one such draw). The same seed gives the same
  data on every machine (NumPy's PCG64 stream is platform independent).
- "dynamic": the intensities are kept, and a fresh Bernoulli draw is taken
  for every training batch (as in Burda et al., 2016, and the DisARM
  benchmarks); this acts as data augmentation.
- "threshold": x_i = 1[p_i > threshold], deterministic (threshold 0.5 by
  default).

Static and threshold binarisation run once on the host in NumPy; dynamic
binarisation is a pure JAX function of a key, usable under `jit`.
"""


import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.types import Array, ArrayLike, PRNGKey

BINARIZATIONS = ("static", "dynamic", "threshold")


def check_binarization(binarization: str) -> None:
  """Raises ValueError unless `binarization` is one of `BINARIZATIONS`."""
  checks.check_one_of("binarization", binarization, BINARIZATIONS)


def check_seed(seed) -> None:
  """Raises ValueError unless `seed` is a non-negative integer."""
  checks.check_int("seed", seed, 0)


def check_threshold(threshold) -> None:
  """Raises ValueError unless 0 < `threshold` < 1."""
  checks.check_in_range("threshold", threshold, 0.0, 1.0, low_open=True,
                        high_open=True)


def binarize_static(probs: np.ndarray, seed: int,
                    stream: int = 0) -> np.ndarray:
  r"""One fixed Bernoulli draw per pixel: x = 1[u < p], u ~ U[0, 1).

  $P(x = 1) = P(u < p) = p$, and x = p exactly when p is 0 or 1, so already
  binary data pass through unchanged.

  Args:
    probs: `[N, D]` intensities in [0, 1].
    seed: non-negative integer seed.
    stream: an integer that selects an independent stream for the same seed
      (one per split: 0 train, 1 valid, 2 test).

  Returns:
    `[N, D]` float32 array of 0/1.
  """
  rng = np.random.default_rng([seed, stream])
  uniform = rng.random(probs.shape, dtype=np.float32)  # [N, D]
  return (uniform < probs).astype(np.float32)


def binarize_threshold(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
  """Deterministic binarisation x = 1[p > threshold], `[N, D]` float32."""
  return (probs > threshold).astype(np.float32)


def binarize_dynamic(key: PRNGKey, probs: ArrayLike) -> Array:
  """A fresh Bernoulli draw x ~ Bernoulli(p) of a batch, as float32 0/1.

  Pure and jittable: the same key gives the same batch.

  Args:
    key: PRNG key (use a new one per batch).
    probs: `[..., D]` intensities in [0, 1].

  Returns:
    `[..., D]` float32 array of 0/1.
  """
  probs = jnp.asarray(probs, jnp.float32)
  return jax.random.bernoulli(key, probs).astype(jnp.float32)


def binarize_split(probs: np.ndarray, binarization: str, *, seed: int,
                   stream: int, threshold: float = 0.5) -> np.ndarray:
  """Applies the load-time part of `binarization` to one split.

  Args:
    probs: `[N, D]` float32 intensities in [0, 1].
    binarization: one of `BINARIZATIONS`; "dynamic" keeps `probs` as they are
      (the draw happens per batch, see `discrete_vi.data.batching`).
    seed: seed of the static draw.
    stream: independent stream of the static draw (one per split).
    threshold: cut-off of the "threshold" mode.

  Returns:
    `[N, D]` float32: 0/1 for "static" and "threshold", `probs` for "dynamic".
  """
  check_binarization(binarization)
  if binarization == "static":
    return binarize_static(probs, seed, stream)
  if binarization == "threshold":
    return binarize_threshold(probs, threshold)
  return probs
