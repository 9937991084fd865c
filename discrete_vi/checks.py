"""Argument checks shared by the whole package.

Each check raises a `ValueError` whose message names the bad value
(`name=value`), and skips traced values (inside `jit` a value such as an
annealed temperature cannot be inspected; its producer keeps it valid).
Concrete values are inspected with numpy: inside `jit` any `jnp` operation,
even on a constant, is traced.
"""

import numbers
from typing import Any, Iterable

import jax
import numpy as np


def is_traced(value: Any) -> bool:
  """Whether `value` is a JAX tracer (its value unknown until run time)."""
  return isinstance(value, jax.core.Tracer)


def is_int(value: Any) -> bool:
  """Whether `value` is an integer (Python or numpy), not a bool."""
  return (isinstance(value, (numbers.Integral, np.integer)) and
          not isinstance(value, (bool, np.bool_)))


def check_int(name: str, value: Any, minimum: int = 1) -> None:
  """Raises ValueError unless `value` is an integer (not a bool) >= minimum."""
  if not is_int(value) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}; got "
                     f"{name}={value!r}.")


def check_ints(name: str, values: Iterable[Any], minimum: int = 1) -> None:
  """Raises ValueError unless every entry is an integer >= minimum."""
  values = tuple(values)
  if not all(is_int(v) and v >= minimum for v in values):
    raise ValueError(f"{name} must be integers >= {minimum}; got "
                     f"{name}={values!r}.")


def _as_float_array(name: str, value: Any) -> np.ndarray:
  try:
    return np.asarray(value, np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a number; got {name}={value!r}."
                     ) from None


def check_finite(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is a finite number (array)."""
  if is_traced(value):
    return
  if isinstance(value, (bool, np.bool_, str)) or value is None:
    raise ValueError(f"{name} must be a finite number; got {name}={value!r}.")
  if not np.all(np.isfinite(_as_float_array(name, value))):
    raise ValueError(f"{name} must be finite; got {name}={value!r}.")


def check_positive(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is finite and > 0."""
  if is_traced(value):
    return
  check_finite(name, value)
  if not np.all(_as_float_array(name, value) > 0):
    raise ValueError(f"{name} must be finite and > 0; got {name}={value!r}.")


def check_nonnegative(name: str, value: Any) -> None:
  """Raises ValueError unless a concrete `value` is finite and >= 0."""
  if is_traced(value):
    return
  check_finite(name, value)
  if not np.all(_as_float_array(name, value) >= 0):
    raise ValueError(f"{name} must be finite and >= 0; got {name}={value!r}.")


def check_in_range(name: str, value: Any, low: float, high: float, *,
                   low_open: bool = False, high_open: bool = False) -> None:
  """Raises ValueError unless a concrete `value` lies in the given interval.

  Args:
    name: the name to report.
    value: a number or array (every entry is checked).
    low: lower end.
    high: upper end.
    low_open: exclude `low`.
    high_open: exclude `high`.
  """
  if is_traced(value):
    return
  check_finite(name, value)
  array = _as_float_array(name, value)
  above = array > low if low_open else array >= low
  below = array < high if high_open else array <= high
  if not np.all(above & below):
    interval = (f"{'(' if low_open else '['}{low}, {high}"
                f"{')' if high_open else ']'}")
    raise ValueError(f"{name} must be in {interval}; got {name}={value!r}.")


def check_one_of(name: str, value: Any, choices: Iterable[Any]) -> None:
  """Raises ValueError unless `value` is one of `choices`."""
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{name}={value!r} is not one of {choices}.")


def check_bool(name: str, value: Any) -> None:
  """Raises ValueError unless `value` is a bool."""
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False; got {name}={value!r}.")
