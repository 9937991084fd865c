"""Shared types of `discrete_vi`: the estimator contract.

An estimator is a pure function

    loss, aux = estimator(key, logits, f, *, state=None, **options)

whose gradient with respect to `logits` (and to whatever `f` closes over)
estimates -grad E_q[f(z)], with q the Bernoulli (logits `[..., D]`) or
categorical (logits `[..., D, K]`) distribution the logits parameterise.
"""

import types
from typing import Any, Callable, Mapping, NamedTuple

import jax

PRNGKey = jax.Array
Array = jax.Array
ArrayLike = jax.typing.ArrayLike
EstimatorState = Any  # a pytree of arrays, or None for stateless estimators.

# f(z) -> objective to maximise: shape [...] (per example) or [..., D] (per
# unit learning signals, score-function family only).
ObjectiveFn = Callable[[Array], Array]


class EstimatorAux(NamedTuple):
  """What every estimator returns beside its surrogate loss.

  Attributes:
    objective: f at the hard sample(s): the honest Monte Carlo estimate of
      E_q[f] (for multi-sample estimators, the mean over samples, or the
      K-sample bound for VIMCO). Shape [...] or [..., D] (per-unit signals).
    samples: the sample(s) f was evaluated at, [..., D] / [..., D, K], with a
      leading sample axis for multi-sample estimators.
    state: the new estimator state (None for stateless estimators).
    diagnostics: dict of arrays (baselines, learning-signal statistics, and
      for learned baselines the `baseline_loss` that the caller must add to
      its own loss).
  """
  objective: Array
  samples: Array
  state: EstimatorState
  diagnostics: dict


class Estimator(NamedTuple):
  """An estimator with its options bound, as returned by `estimators.make`.

  Attributes:
    init: `init(key, logits) -> state`.
    estimate: `estimate(key, logits, f, state=None) -> (loss, aux)`.
    name: the registry name of the estimator (e.g. "reinforce").
    options: the options bound by `make` (a read-only mapping).
  """
  init: Callable[[PRNGKey, Array], EstimatorState]
  estimate: Callable[..., tuple[Array, EstimatorAux]]
  name: str = ""
  options: Mapping[str, Any] = types.MappingProxyType({})
