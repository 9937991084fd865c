"""Sums that are fast on XLA's CPU backend, in full precision everywhere.

XLA's CPU backend runs a reduction (`jnp.sum`) over the pixels of a batch,
or over a 784 x 200 gradient, at roughly 0.5 ns per element inside a train
step, several times slower than its matrix-product kernels; the same sum
written as a product with a vector of ones goes through those kernels.
Measured on the SBN train step (BUILD_NOTES.md, Performance): 10-15 % of the
step at batch 100. On other platforms the plain reduction is used
(`jax.lax.platform_dependent` picks the branch when the function is
lowered), and the products ask for `Precision.HIGHEST`, so a
reduced-precision matmul mode (TF32, bf16 passes) never touches a
log-likelihood, whatever backend compiles them.

NaN and inf propagate as in `jnp.sum`: a product with ones adds the same
elements.
"""

import jax
import jax.numpy as jnp

from discrete_vi.types import Array

_HIGHEST = jax.lax.Precision.HIGHEST


def _last_by_product(a: Array) -> Array:
  return jnp.matmul(a, jnp.ones(a.shape[-1], a.dtype), precision=_HIGHEST)


def _last_by_reduction(a: Array) -> Array:
  return jnp.sum(a, axis=-1)


def sum_last(a: Array) -> Array:
  """`jnp.sum(a, -1)`: `[..., D] -> [...]`."""
  a = jnp.asarray(a)
  return jax.lax.platform_dependent(a, cpu=_last_by_product,
                                    default=_last_by_reduction)


def sum_all(a: Array) -> Array:
  """`jnp.sum(a)` over every element, as row sums then a sum of rows."""
  a = jnp.asarray(a)
  rows = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
  return jnp.sum(sum_last(rows))
