r"""Importance-weighted bounds on log p(x), computed in chunks of samples.

The k-sample importance-weighted bound (Burda, Grosse & Salakhutdinov, 2016,
"Importance Weighted Autoencoders", Eq. 8)

  L_k = E_{z_1..z_k ~ q}[\log \frac{1}{k} \sum_{i=1}^k w_i],
  w_i = p(x, z_i) / q(z_i | x),

satisfies ELBO = L_1 <= L_k <= L_{k+1} <= log p(x) and L_k -> log p(x) as
k -> infinity. Evaluation protocols use k = 100 to 5000 (DVAE++ final test:
4000), so the log weights are produced and reduced chunk by chunk with a
running max-shifted log-sum-exp: memory grows with the chunk size, not k.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.types import Array, ArrayLike, PRNGKey

# log_weights_fn(key, n) -> [n, ...]: n independent log importance weights.
LogWeightsFn = Callable[[PRNGKey, int], Array]


def log_mean_exp(x: ArrayLike, axis: int = 0, keepdims: bool = False) -> Array:
  r"""\log \frac{1}{n} \sum_i \exp(x_i) along `axis`, shifted by the maximum.

  Exact for any finite inputs (no overflow, no underflow of the largest
  term); returns -inf (not NaN) when every x_i is -inf.

  Args:
    x: log values, e.g. `[k, ...]` log importance weights.
    axis: the axis to reduce.
    keepdims: keep the reduced axis with size 1.

  Returns:
    The log-mean-exp, `x.shape` without `axis` (unless keepdims).
  """
  x = jnp.asarray(x)
  shift = _finite_shift(jnp.max(x, axis, keepdims=True))
  total = jnp.sum(jnp.exp(x - shift), axis, keepdims=True)
  out = shift + jnp.log(total) - jnp.log(float(x.shape[axis]))
  return out if keepdims else jnp.squeeze(out, axis)


def _finite_shift(maximum: Array) -> Array:
  """The max-shift, replaced by 0 where it is +-inf; no gradient (exact)."""
  return jax.lax.stop_gradient(
      jnp.where(jnp.isfinite(maximum), maximum, jnp.zeros_like(maximum)))


def _accumulate(carry: tuple[Array, Array], log_weights: Array
                ) -> tuple[Array, Array]:
  r"""Folds a chunk `[n, ...]` into a running (maximum m, scaled sum s) pair.

  Invariant: \sum_{seen} \exp(\log w_i) = \exp(\hat m) \cdot s, where
  \hat m is m made finite (`_finite_shift`); m = -inf while every weight seen
  is zero (then s = 0).
  """
  maximum, total = carry
  new_maximum = jnp.maximum(maximum, jnp.max(log_weights, 0))
  new_shift = _finite_shift(new_maximum)
  # m <= new m, so this never overflows; an empty sum (m = -inf) rescales to 0.
  rescale = jnp.where(jnp.isfinite(maximum),
                      jnp.exp(_finite_shift(maximum) - new_shift), 0.)
  total = total * rescale + jnp.sum(jnp.exp(log_weights - new_shift), 0)
  return new_maximum, total


def _chunk(log_weights_fn: LogWeightsFn, key: PRNGKey, index, size: int
           ) -> Array:
  """The log weights of chunk `index` (key `fold_in(key, index)`), `[size, ...]`."""
  log_weights = log_weights_fn(jax.random.fold_in(key, index), size)
  if log_weights.shape[:1] != (size,):
    raise ValueError(f"log_weights_fn(key, {size}) must return shape "
                     f"[{size}, ...]; got {log_weights.shape}.")
  return log_weights


def iwae_bound(log_weights_fn: LogWeightsFn, key: PRNGKey, num_samples: int,
               chunk_size: int = 100) -> Array:
  r"""A Monte Carlo estimate of the k-sample bound \log \frac1k \sum_i w_i.

  The k = `num_samples` log weights are drawn in chunks of `chunk_size`
  (a `lax.scan` over full chunks, then one smaller chunk for the remainder
  when k is not a multiple of the chunk size: every weight counted once).
  Chunk i is drawn as `log_weights_fn(jax.random.fold_in(key, i), size_i)`,
  so the result equals `log_mean_exp` of the concatenated chunks.

  Args:
    log_weights_fn: `log_weights_fn(key, n) -> [n, ...]` returns n independent
      log importance weights log p(x, z) - log q(z|x) per example.
    key: PRNG key.
    num_samples: k >= 1 (static).
    chunk_size: samples per chunk (static); memory is O(chunk_size).

  Returns:
    `[...]` the bound per example (float, -inf if every weight is zero).

  Raises:
    ValueError: for a non-integer or non-positive `num_samples` or
      `chunk_size`, or log weights of the wrong leading shape.

  References:
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
  """
  checks.check_int("num_samples", num_samples, 1)
  checks.check_int("chunk_size", chunk_size, 1)
  chunk_size = min(chunk_size, num_samples)
  num_full, remainder = divmod(num_samples, chunk_size)
  spec = jax.eval_shape(lambda k: _chunk(log_weights_fn, k, 0, chunk_size), key)
  init = (jnp.full(spec.shape[1:], -jnp.inf, spec.dtype),  # m: no weights yet
          jnp.zeros(spec.shape[1:], spec.dtype))  # s: empty sum

  def step(carry, index):
    return _accumulate(carry, _chunk(log_weights_fn, key, index,
                                     chunk_size)), None

  carry, _ = jax.lax.scan(step, init, jnp.arange(num_full))
  if remainder:
    carry = _accumulate(carry, _chunk(log_weights_fn, key, num_full,
                                      remainder))
  maximum, total = carry
  return _finite_shift(maximum) + jnp.log(total) - np.log(num_samples).astype(spec.dtype)
