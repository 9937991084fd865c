"""Helpers shared by every estimator: validation, sampling, objective calls.

Nothing here is an estimator; each helper does one small thing that several
estimator modules need, so that the estimators themselves read like their
papers' equations.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

from discrete_vi.distributions import bernoulli, categorical
from discrete_vi.types import Array, ObjectiveFn, PRNGKey

DISTRIBUTIONS = ("bernoulli", "categorical")
_MODULES = {"bernoulli": bernoulli, "categorical": categorical}


def check_distribution(distribution: str,
                       supported: Sequence[str] = DISTRIBUTIONS,
                       estimator: str = "this estimator") -> None:
  """Raises ValueError unless `distribution` is one `estimator` supports."""
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f"distribution={distribution!r} is unknown; expected one "
                     f"of {DISTRIBUTIONS}.")
  if distribution not in supported:
    raise ValueError(f"{estimator} supports distribution in {tuple(supported)}, "
                     f"not distribution={distribution!r}.")


def check_logits(logits: Array, distribution: str) -> None:
  """Raises ValueError when logits cannot parameterise `distribution`."""
  if distribution == "bernoulli" and logits.ndim < 1:
    raise ValueError(f"Bernoulli logits need shape [..., D]; got shape "
                     f"{logits.shape}.")
  if distribution == "categorical":
    if logits.ndim < 2:
      raise ValueError(f"categorical logits need shape [..., D, K]; got shape "
                       f"{logits.shape}.")
    if logits.shape[-1] < 2:
      raise ValueError(f"categorical logits need K >= 2 classes; got K="
                       f"{logits.shape[-1]} (shape {logits.shape}).")


def batch_shape(logits: Array, distribution: str) -> tuple[int, ...]:
  """The batch shape `[...]` of logits `[..., D]` or `[..., D, K]`."""
  return logits.shape[:-1] if distribution == "bernoulli" else logits.shape[:-2]


def num_units(logits: Array, distribution: str) -> int:
  """D, the number of latent variables per example."""
  return logits.shape[-1] if distribution == "bernoulli" else logits.shape[-2]


def sample_hard(key: PRNGKey, logits: Array, distribution: str,
                sample_shape=()) -> Array:
  """Exact samples from q: {0,1}^D, or one-hot `[..., D, K]`."""
  return _MODULES[distribution].sample(key, logits, sample_shape)


def log_prob_units(logits: Array, z: Array, distribution: str) -> Array:
  """log q(z) per unit, `[..., D]`."""
  return _MODULES[distribution].log_prob(logits, z)


def mode(logits: Array, distribution: str) -> Array:
  """The most probable configuration of q."""
  return _MODULES[distribution].mode(logits)


def probs(logits: Array, distribution: str) -> Array:
  """Mean of z under q: sigmoid(logits), or softmax over K."""
  return _MODULES[distribution].probs(logits)


def call_objective(f: ObjectiveFn, z: Array, logits: Array,
                   distribution: str) -> tuple[Array, bool]:
  """Evaluates f(z) and checks its shape.

  Returns:
    `(value, per_unit)`: value of shape `[...]` (per example) or `[..., D]`
    (per-unit learning signals, then `per_unit` is True).

  Raises:
    ValueError: when f returns any other shape.
  """
  value = jnp.asarray(f(z))
  batch = batch_shape(logits, distribution)
  per_unit_shape = batch + (num_units(logits, distribution),)
  if value.shape == batch:
    return value, False
  if value.shape == per_unit_shape:
    return value, True
  raise ValueError(f"f must return shape {batch} (per example) or "
                   f"{per_unit_shape} (per unit); got {value.shape}.")


def call_objective_per_example(f: ObjectiveFn, z: Array, logits: Array,
                               distribution: str, estimator: str) -> Array:
  """Evaluates f(z), raising ValueError if f returns per-unit signals."""
  value, per_unit = call_objective(f, z, logits, distribution)
  if per_unit:
    raise ValueError(f"{estimator} needs f to return one value per example "
                     f"(shape {batch_shape(logits, distribution)}); got "
                     f"per-unit shape {value.shape}.")
  return value


def call_objective_samples(f: ObjectiveFn, zs: Array, logits: Array,
                           distribution: str, estimator: str) -> Array:
  """f at each of K samples `zs  # [K, ...]`, vmapped: returns `[K, ...]`."""
  return jax.vmap(lambda z: call_objective_per_example(
      f, z, logits, distribution, estimator))(zs)


def pathwise_objective(value: Array, per_unit: bool) -> Array:
  """The part of -loss through which f's own parameters get their gradient.

  Per-example objectives enter as they are. Per-unit learning signals are
  credit-assignment devices that may count one term several times, so they
  do not define a pathwise objective: the caller adds its pathwise terms
  itself (e.g. the gradient of its per-example objective), and this returns
  zeros.
  """
  if per_unit:
    return jnp.zeros(value.shape[:-1], value.dtype)
  return value
