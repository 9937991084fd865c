"""Shared types of `discrete_vi`: the estimator contract.

An estimator is a pure function

    loss, aux = estimator(key, logits, f, *, state=None, **options)

whose gradient with respect to `logits` (and to whatever `f` closes over)
estimates -grad E_q[f(z)], with q the Bernoulli (logits `[..., D]`) or
categorical (logits `[..., D, K]`) distribution the logits parameterise.
"""

from typing import Any, Callable, Iterator, Mapping, NamedTuple, Optional

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


class FrozenOptions(Mapping[str, Any]):
  """A read-only, hashable (when its values are) mapping of options."""

  def __init__(self, options: Mapping[str, Any] = ()):
    self._options = dict(options)

  def __getitem__(self, key: str) -> Any:
    return self._options[key]

  def __iter__(self) -> Iterator[str]:
    return iter(self._options)

  def __len__(self) -> int:
    return len(self._options)

  def __hash__(self) -> int:
    return hash(tuple(sorted(self._options.items())))

  def __eq__(self, other: Any) -> bool:
    return isinstance(other, Mapping) and dict(self) == dict(other)

  def __repr__(self) -> str:
    return f"FrozenOptions({self._options!r})"


class Estimator(NamedTuple):
  """An estimator with its options bound, as returned by `estimators.make`.

  Attributes:
    init: `init(key, logits) -> state`.
    estimate: `estimate(key, logits, f, state=None) -> (loss, aux)`.
    name: the registry name of the estimator (e.g. "reinforce").
    options: the options bound by `make` (a read-only `FrozenOptions`).
    sample: for pathwise estimators, `sample(key, logits) -> PathwiseSample`
      (`estimators.relaxed.PathwiseSample`): the value f is evaluated at,
      carrying the estimator's gradient, so a model can evaluate f itself
      through several stochastic layers; None for estimators that need f
      (score-function family, control variates, enumeration).
    relaxed_forward: True when f is evaluated at a relaxed (not hard)
      sample, so f at the hard sample (the honest objective) needs its own
      evaluation.
  """
  init: Callable[[PRNGKey, Array], EstimatorState]
  estimate: Callable[..., tuple[Array, EstimatorAux]]
  name: str = ""
  options: Mapping[str, Any] = FrozenOptions()
  sample: Optional[Callable[[PRNGKey, Array], Any]] = None
  relaxed_forward: bool = False
