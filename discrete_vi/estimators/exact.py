"""Exact expectation by enumerating the support of q (small problems only)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.estimators import _common
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

DEFAULT_MAX_SUPPORT = 2**16


def support(num_units: int, num_classes: int | None = None) -> np.ndarray:
  """Every configuration of D binary (or K-way one-hot) variables.

  Returns:
    `[2^D, D]` binary vectors, or `[K^D, D, K]` one-hot arrays, in
    lexicographic order.
  """
  if num_classes is None:
    return np.array(list(itertools.product([0., 1.], repeat=num_units)),
                    np.float32).reshape(-1, num_units)
  index = np.array(list(itertools.product(range(num_classes), repeat=num_units)))
  return np.eye(num_classes, dtype=np.float32)[index.reshape(-1, num_units)]


def enumerate_expectation(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                          state=None, distribution: str = "bernoulli",
                          max_support: int = DEFAULT_MAX_SUPPORT
                          ) -> tuple[Array, EstimatorAux]:
  r"""The exact objective E_q[f(z)] = \sum_z q(z) f(z) and its gradient.

  Differentiating the sum gives the exact gradient
  \nabla E_q[f] = \sum_z (f(z) \nabla q(z) + q(z) \nabla f(z)), the reference
  every stochastic estimator is tested against.

  Args:
    key: unused (kept for the common signature).
    logits: `[..., D]` or `[..., D, K]`.
    f: objective, per example `[...]`.
    state: unused.
    distribution: "bernoulli" or "categorical".
    max_support: integer >= 2, the largest number of configurations (2^D or
      K^D) that may be enumerated.

  Returns:
    `(loss, aux)` with loss = -E_q[f] per example, `aux.samples` the support
    `[S, D]` / `[S, D, K]`.

  Raises:
    ValueError: if the support has more than `max_support` configurations.

  References:
    Exact enumeration is the usual reference for estimator variance and
    bias on toy problems, e.g. the toy problem of Tucker et al. (2017),
    REBAR.
  """
  del key, state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="enumerate")
  _common.check_logits(logits, distribution)
  checks.check_int("max_support", max_support, 2)
  d = _common.num_units(logits, distribution)
  k = 2 if distribution == "bernoulli" else logits.shape[-1]
  size = k**d
  if size > max_support:
    raise ValueError(f"enumerate: the support has {k}^{d} = {size} "
                     f"configurations, more than max_support={max_support}.")
  configs = jnp.asarray(support(d, None if distribution == "bernoulli" else k))
  batch = _common.batch_shape(logits, distribution)
  event = configs.shape[1:]
  # z  # [S, ..., D] or [S, ..., D, K]
  z = jnp.broadcast_to(configs.reshape((size,) + (1,) * len(batch) + event),
                       (size,) + batch + event)
  values = _common.call_objective_samples(f, z, logits, distribution,
                                          "enumerate")  # [S, ...]
  log_q = jnp.sum(_common.log_prob_units(logits, z, distribution), -1)
  expectation = jnp.sum(jnp.exp(log_q) * values, 0)  # [...]
  aux = EstimatorAux(objective=expectation, samples=configs, state=None,
                     diagnostics={})
  return -expectation, aux
