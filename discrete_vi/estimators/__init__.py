"""Gradient estimators for expectations over discrete variables.

Every estimator follows one contract (DESIGN.md section 3):

    loss, aux = estimator(key, logits, f, *, state=None, **options)

`ESTIMATORS` maps each name to its estimator function; `make(name, **options)`
binds the options and returns `Estimator(init, estimate)`.
"""

import functools
import inspect
from typing import Any

from discrete_vi.estimators import arm as _arm
from discrete_vi.estimators import control_variates as _cv
from discrete_vi.estimators import exact as _exact
from discrete_vi.estimators import muprop as _muprop
from discrete_vi.estimators import relaxed as _relaxed
from discrete_vi.estimators import score_function as _sf
from discrete_vi.estimators import smoothing as _smoothing
from discrete_vi.types import Estimator, EstimatorAux

ESTIMATORS = {
    "reinforce": _sf.reinforce,
    "rloo": _sf.rloo,
    "vimco": _sf.vimco,
    "straight_through": _relaxed.straight_through,
    "gumbel_softmax": _relaxed.gumbel_softmax,
    "st_gumbel_softmax": _relaxed.st_gumbel_softmax,
    "gumbel_rao": _relaxed.gumbel_rao,
    "overlapping_exponential": _smoothing.overlapping_exponential,
    "overlapping_logistic": _smoothing.overlapping_logistic,
    "spike_and_exp": _smoothing.spike_and_exp,
    "power_function": _smoothing.power_function,
    "muprop": _muprop.muprop,
    "rebar": _cv.rebar,
    "relax": _cv.relax,
    "arm": _arm.arm,
    "disarm": _arm.disarm,
    "enumerate": _exact.enumerate_expectation,
}

# Initial-state functions of the stateful estimators: init(key, logits,
# **options) -> state. Estimators absent here are stateless (state None).
STATE_INITS = {
    "reinforce": _sf.init_reinforce,
    "rebar": _cv.init_rebar,
    "relax": _cv.init_relax,
}


def _keyword_options(fn) -> set[str]:
  params = inspect.signature(fn).parameters.values()
  return {p.name for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY
          and p.name != "state"}


def _bind_state_init(name: str, options: dict[str, Any]):
  init = STATE_INITS.get(name)
  if init is None:
    return lambda key, logits: None
  accepted = _keyword_options(init)
  return functools.partial(
      init, **{k: v for k, v in options.items() if k in accepted})


def make(name: str, **options: Any) -> Estimator:
  """Returns the named estimator with its options bound.

  Args:
    name: a key of `ESTIMATORS`.
    **options: keyword options of that estimator (`distribution`,
      `num_samples`, `temperature`, `beta`, `baseline`, ...).

  Returns:
    `Estimator(init, estimate)`: `state = init(key, logits)` and
    `loss, aux = estimate(key, logits, f, state=None)`.

  Raises:
    ValueError: for an unknown name or an option the estimator does not take.
  """
  if name not in ESTIMATORS:
    raise ValueError(f"unknown estimator {name!r}; expected one of "
                     f"{sorted(ESTIMATORS)}.")
  fn = ESTIMATORS[name]
  unknown = sorted(set(options) - _keyword_options(fn))
  if unknown:
    raise ValueError(f"estimator {name!r} takes no option(s) {unknown}; its "
                     f"options are {sorted(_keyword_options(fn))}.")

  def estimate(key, logits, f, state=None):
    return fn(key, logits, f, state=state, **options)

  return Estimator(init=_bind_state_init(name, options), estimate=estimate)


def options_of(name: str) -> set[str]:
  """The option names that estimator `name` accepts."""
  if name not in ESTIMATORS:
    raise ValueError(f"unknown estimator {name!r}.")
  return _keyword_options(ESTIMATORS[name])


__all__ = ["ESTIMATORS", "STATE_INITS", "Estimator", "EstimatorAux", "make",
           "options_of"]
