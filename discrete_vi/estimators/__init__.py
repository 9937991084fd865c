"""Gradient estimators for expectations over discrete variables.

Every estimator follows one contract:

    loss, aux = estimator(key, logits, f, *, state=None, **options)

whose gradient estimates -grad E_q[f] (see `discrete_vi.types`).
`ESTIMATORS` maps each name to its estimator function; `make(name, **options)`
binds the options and returns `Estimator(init, estimate, name, options)`.
`option_specs()` gives the type of every option a configuration can carry and
`check_options(name, **options)` validates option values without data.
`baselines` is the public learning-signal processing (baselines, running
standardisation, score terms) of the score-function family, for models that
compute their own learning signals.
"""

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp

from discrete_vi.estimators import arm as _arm
from discrete_vi.estimators import baselines
from discrete_vi.estimators import control_variates as _cv
from discrete_vi.estimators import exact as _exact
from discrete_vi.estimators import indecater as _indecater
from discrete_vi.estimators import muprop as _muprop
from discrete_vi.estimators import relaxed as _relaxed
from discrete_vi.estimators import score_function as _sf
from discrete_vi.estimators import smoothing as _smoothing
from discrete_vi.estimators import unordered_set as _unordered_set
from discrete_vi.types import Estimator, EstimatorAux, FrozenOptions

ESTIMATORS = {
    "reinforce": _sf.reinforce,
    "rloo": _sf.rloo,
    "vimco": _sf.vimco,
    "indecater": _indecater.indecater,
    "unordered_set": _unordered_set.unordered_set,
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

# The distributions each estimator supports (its `distribution` option).
_BINARY_ONLY = ("arm", "disarm", "overlapping_exponential",
                "overlapping_logistic", "spike_and_exp", "power_function")
_CATEGORICAL_ONLY = ("indecater", "unordered_set")
DISTRIBUTIONS = {name: ("bernoulli",) if name in _BINARY_ONLY
                 else ("categorical",) if name in _CATEGORICAL_ONLY
                 else ("bernoulli", "categorical") for name in ESTIMATORS}

# Pathwise estimators: name -> (sampler, relaxed_forward). The sampler
# `sampler(key, logits, **options) -> relaxed.PathwiseSample` draws the value
# the estimator evaluates f at; relaxed_forward says whether that value is a
# relaxed sample (True) or the hard sample with a surrogate Jacobian.
PATHWISE = {
    "straight_through": (_relaxed.straight_through_sample, False),
    "gumbel_softmax": (_relaxed.gumbel_softmax_sample, True),
    "st_gumbel_softmax": (_relaxed.st_gumbel_softmax_sample, False),
    "gumbel_rao": (_relaxed.gumbel_rao_sample, False),
    **{name: (functools.partial(_smoothing.smoothing_sample, name), True)
       for name in _smoothing.FAMILY_OF_ESTIMATOR},
}

# Estimators whose gradient is biased for grad E_q[f] of the discrete f: the
# pathwise ones (relaxed or surrogate-Jacobian). Every other entry is
# unbiased (tested against enumeration).
BIASED = frozenset(PATHWISE)

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

  Only the option NAMES are checked here; `check_options` also checks their
  values (which the estimator otherwise checks when it is first traced).

  Args:
    name: a key of `ESTIMATORS`.
    **options: keyword options of that estimator (`distribution`,
      `num_samples`, `temperature`, `beta`, `baseline`, ...).

  Returns:
    `Estimator(init, estimate, name, options, sample, relaxed_forward)`:
    `state = init(key, logits)` and `loss, aux = estimate(key, logits, f,
    state=None)`; `options` is a read-only view of the bound options;
    pathwise estimators (`PATHWISE`) also give `sample(key, logits)`, the
    `PathwiseSample` they evaluate f at.

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

  sampler, relaxed_forward = PATHWISE.get(name, (None, False))
  sample = None if sampler is None else functools.partial(sampler, **options)
  return Estimator(init=_bind_state_init(name, options), estimate=estimate,
                   name=name, options=FrozenOptions(options), sample=sample,
                   relaxed_forward=relaxed_forward)


def options_of(name: str) -> set[str]:
  """The option names that estimator `name` accepts."""
  if name not in ESTIMATORS:
    raise ValueError(f"unknown estimator {name!r}.")
  return _keyword_options(ESTIMATORS[name])


# Options that hold arrays (not configuration values).
ARRAY_OPTIONS = frozenset({"baseline_value"})
_OPTION_TYPES = (bool, int, float, str)


def _collect_option_specs() -> dict[str, type]:
  """{option: type} over the registry, from the estimators' annotations.

  Raises:
    TypeError: when an option has no simple annotation, or when two
      estimators annotate one option with different types.
  """
  specs, owners = {}, {}
  for name, fn in ESTIMATORS.items():
    for option in sorted(_keyword_options(fn) - ARRAY_OPTIONS):
      kind = inspect.signature(fn).parameters[option].annotation
      if kind not in _OPTION_TYPES:
        raise TypeError(f"estimator {name!r}: option {option!r} needs one of "
                        f"the annotations {_OPTION_TYPES}; got {kind!r}.")
      if specs.setdefault(option, kind) is not kind:
        raise TypeError(f"option {option!r} is a {kind.__name__} for "
                        f"estimator {name!r} but a {specs[option].__name__} "
                        f"for estimator {owners[option]!r}.")
      owners.setdefault(option, name)
  return specs


_OPTION_SPECS = _collect_option_specs()


def option_specs() -> dict[str, type]:
  """Every option a configuration can carry, mapped to its Python type.

  The union over `ESTIMATORS` of their keyword options, without `state` and
  the array-valued `ARRAY_OPTIONS`; each option has one type (bool, int,
  float or str) across all estimators that take it.
  """
  return dict(_OPTION_SPECS)


def _dummy_logits(name: str, options: dict) -> jax.ShapeDtypeStruct:
  """The smallest logits of the chosen distribution (the estimator's default
  when none is chosen): D = 1 (K = 2)."""
  default = inspect.signature(ESTIMATORS[name]).parameters.get("distribution")
  chosen = options.get("distribution",
                       None if default is None else default.default)
  categorical = chosen == "categorical"
  return jax.ShapeDtypeStruct((2, 1, 2) if categorical else (2, 1),
                              jnp.float32)


def _dummy_objective(z):
  return jnp.sum(z.reshape(z.shape[:1] + (-1,)), -1)  # [2]


def check_options(name: str, **options: Any) -> None:
  """Raises ValueError naming a bad option name or value, without data.

  Binds the options with `make` and traces the estimator once (abstractly,
  with `jax.eval_shape`: nothing is computed) on dummy logits of batch 2
  and D = 1 (K = 2 for categorical, the chosen distribution or the
  estimator's default), with a trivial f and the state from its
  `init`. The estimators check their options while tracing, on the concrete
  Python values, so every check they make runs here.

  Args:
    name: a key of `ESTIMATORS`.
    **options: the options to check.

  Raises:
    ValueError: for an unknown estimator or option, or a bad option value
      (the message names it, e.g. `temperature=0`).
  """
  estimator = make(name, **options)

  def run(key, logits):
    state = estimator.init(key, logits)
    return estimator.estimate(key, logits, _dummy_objective, state)

  try:
    jax.eval_shape(run, jax.random.PRNGKey(0),
                   _dummy_logits(name, options))
  except TypeError as e:
    raise ValueError(f"estimator {name!r}: invalid options {options}: {e}"
                     ) from e


PathwiseSample = _relaxed.PathwiseSample

__all__ = ["BIASED", "DISTRIBUTIONS", "ESTIMATORS", "PATHWISE", "PathwiseSample",
           "STATE_INITS", "Estimator", "EstimatorAux", "baselines",
           "check_options", "make", "option_specs", "options_of"]
