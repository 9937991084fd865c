"""`estimators.option_specs` and `estimators.check_options`: option types for
the config schema, and bad option values rejected without data, by
check_options and by the state `init` of the estimators that have one."""

import inspect
import re

import jax
import jax.numpy as jnp
import pytest

from discrete_vi import estimators

NAMES = sorted(estimators.ESTIMATORS)

# Bad values per option, for every estimator that takes the option.
BAD_VALUES = {
    "distribution": ["x", "gaussian", 3],
    "baseline": ["mean", "x", None],
    "decay": [1.0, 1.5, -0.1, float("nan"), "0.9"],
    "greedy": ["yes", 1, None],
    "std_floor": [0.0, -1.0, float("inf"), "1"],
    "std_warmup": [-1, 2.5, True, "10"],
    "num_samples": [0, -1, -3, 2.0, 2.5, True, "4"],
    "variant": ["greedy", "", None],
    "temperature": [0, 0.0, -0.5, -1.0, float("nan"), float("inf"), "1"],
    "beta": [-1, -1.0, 0.0, float("nan"), float("inf"), "10"],
    "eta": [float("nan"), float("inf"), "1"],
    "learn_control_variate": ["yes", 1],
    "cv_learning_rate": [0.0, -1e-3, float("nan")],
    "hidden_size": [0, -1, 3.5, True],
    "max_support": [0, 1, 2.5, True],
}
# vimco and rloo need at least two samples.
EXTRA_BAD = {"vimco": {"num_samples": [1]}, "rloo": {"num_samples": [1]}}


def bad_cases():
  cases = []
  for name in NAMES:
    for option in sorted(estimators.options_of(name) -
                         estimators.ARRAY_OPTIONS):
      values = BAD_VALUES[option] + EXTRA_BAD.get(name, {}).get(option, [])
      cases += [(name, option, value) for value in values]
  return cases


def test_option_specs_cover_every_configurable_option():
  specs = estimators.option_specs()
  assert set(specs) == set(BAD_VALUES)  # every option has bad values here
  for name, fn in estimators.ESTIMATORS.items():
    params = inspect.signature(fn).parameters
    for option in estimators.options_of(name) - estimators.ARRAY_OPTIONS:
      assert specs[option] is params[option].annotation
      default = params[option].default
      assert isinstance(default, specs[option]), (name, option, default)
  assert specs["num_samples"] is int and specs["greedy"] is bool
  assert specs["temperature"] is float and specs["baseline"] is str
  assert "baseline_value" not in specs and "state" not in specs


def init_options(name):
  """The options the state `init` of estimator `name` takes (none if it is
  stateless)."""
  init = estimators.STATE_INITS.get(name)
  if init is None:
    return set()
  return {p.name for p in inspect.signature(init).parameters.values()
          if p.kind == inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("name,option,value", bad_cases())
def test_check_options_names_the_bad_value(name, option, value):
  """check_options (tracing init and estimate, as jit does) raises naming
  `option=value`; so does the state `init` alone when it takes the option."""
  pattern = re.escape(f"{option}={value!r}")
  with pytest.raises(ValueError, match=pattern):
    estimators.check_options(name, **{option: value})
  if option in init_options(name):
    init = estimators.make(name, **{option: value}).init
    with pytest.raises(ValueError, match=pattern):
      jax.eval_shape(lambda key: init(key, jnp.zeros((2, 1))),
                     jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", NAMES)
def test_check_options_accepts_defaults_and_good_values(name):
  """Defaults, good values and every declared distribution pass."""
  estimators.check_options(name)
  if "num_samples" in estimators.options_of(name):
    estimators.check_options(name, num_samples=5)
  if "temperature" in estimators.options_of(name):
    estimators.check_options(name, temperature=0.3)
  for distribution in estimators.DISTRIBUTIONS[name]:
    estimators.check_options(name, distribution=distribution)


def test_check_options_good_reinforce_combinations():
  estimators.check_options("reinforce", baseline="self_critic_standardize",
                           greedy=True, decay=0.5, std_floor=0.1,
                           std_warmup=0, distribution="categorical")


def test_check_options_unknown_name_and_option():
  with pytest.raises(ValueError, match="not_an_estimator"):
    estimators.check_options("not_an_estimator")
  with pytest.raises(ValueError, match="eps"):
    estimators.check_options("reinforce", eps=1e-6)  # renamed std_floor
