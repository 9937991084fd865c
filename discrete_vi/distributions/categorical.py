"""Factorised categorical distributions over one-hot vectors.

`logits  # [..., D, K]`: D independent categorical variables with K classes.
Samples are one-hot `[..., D, K]`; densities are per variable, `[..., D]`.
"""

import jax
import jax.numpy as jnp

from discrete_vi.types import Array, ArrayLike, PRNGKey


def sample(key: PRNGKey, logits: ArrayLike, sample_shape=()) -> Array:
  """Draws one-hot z ~ Categorical(softmax(logits)) by the Gumbel-max trick.

  Args:
    key: PRNG key.
    logits: `[..., D, K]` unnormalised log-probabilities.
    sample_shape: leading shape of independent draws.

  Returns:
    `[*sample_shape, ..., D, K]` one-hot samples (float).
  """
  logits = jnp.asarray(logits)
  shape = tuple(sample_shape) + logits.shape
  gumbel = jax.random.gumbel(key, shape, dtype=logits.dtype)
  index = jnp.argmax(logits + gumbel, axis=-1)
  return jax.nn.one_hot(index, logits.shape[-1], dtype=logits.dtype)


def log_prob(logits: ArrayLike, z: ArrayLike) -> Array:
  """log q(z) per variable for one-hot (or any weighting) z, `[..., D]`."""
  logits = jnp.asarray(logits)
  return jnp.sum(jnp.asarray(z, logits.dtype) * jax.nn.log_softmax(logits), -1)


def probs(logits: ArrayLike) -> Array:
  """softmax(logits) over the last axis."""
  return jax.nn.softmax(jnp.asarray(logits), axis=-1)


def mode(logits: ArrayLike) -> Array:
  """One-hot arg max of the logits."""
  logits = jnp.asarray(logits)
  return jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=logits.dtype)


def entropy(logits: ArrayLike) -> Array:
  """Entropy per variable, `[..., D]`."""
  log_p = jax.nn.log_softmax(jnp.asarray(logits))
  return -jnp.sum(jnp.exp(log_p) * log_p, -1)


def kl_divergence(logits_q: ArrayLike, logits_p: ArrayLike) -> Array:
  """KL(q || p) per variable, `[..., D]`."""
  log_q = jax.nn.log_softmax(jnp.asarray(logits_q))
  log_p = jax.nn.log_softmax(jnp.asarray(logits_p))
  return jnp.sum(jnp.exp(log_q) * (log_q - log_p), -1)
