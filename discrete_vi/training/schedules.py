"""Schedules: learning rates, temperature and beta annealing (linear, or
piecewise linear through knots).

KL warm-up lives with the ELBO (`objectives.elbo.kl_warmup_factor`).

All schedules are pure functions of the (possibly traced) step, so they live
inside the jitted train step.
"""

import jax.numpy as jnp
import optax

from discrete_vi import checks

# The piecewise learning-rate multipliers of the DVAE++ / DVAE# training
# protocol (Vahdat et al., 2018): over
# fractions of training [0, 2%): /10, [2%, 60%): x1, [60%, 75%): /3,
# [75%, 95%): /10, [95%, 100%]: /33.
DVAE_PIECEWISE = ((0.0, 0.1), (0.02, 1.0), (0.60, 1 / 3), (0.75, 0.1),
                  (0.95, 1 / 33))

LEARNING_RATE_SCHEDULES = ("constant", "dvae_piecewise", "cosine",
                           "exponential")


def dvae_piecewise(base: float, num_steps: int) -> optax.Schedule:
  """The DVAE++ piecewise-constant learning rate (Vahdat et al. 2018)."""
  bounds = jnp.array([int(frac * num_steps) for frac, _ in DVAE_PIECEWISE])
  factors = jnp.array([factor for _, factor in DVAE_PIECEWISE])

  def schedule(step):
    index = jnp.sum(step >= bounds) - 1
    return base * factors[jnp.clip(index, 0, len(DVAE_PIECEWISE) - 1)]
  return schedule


def learning_rate(name: str, base: float, num_steps: int,
                  decay_rate: float = 0.1) -> optax.Schedule:
  """A learning-rate schedule by name.

  Args:
    name: one of `LEARNING_RATE_SCHEDULES`.
    base: the peak / constant learning rate.
    num_steps: total training steps (fixes the piecewise boundaries).
    decay_rate: for "exponential", the factor reached at `num_steps`.

  Raises:
    ValueError: for an unknown name or a non-positive rate.
  """
  checks.check_positive("learning_rate", base)
  if name == "constant":
    return optax.constant_schedule(base)
  if name == "dvae_piecewise":
    return dvae_piecewise(base, num_steps)
  if name == "cosine":
    return optax.cosine_decay_schedule(base, max(num_steps, 1))
  if name == "exponential":
    return optax.exponential_decay(base, max(num_steps, 1), decay_rate)
  raise ValueError(f"unknown learning-rate schedule {name!r}; expected one "
                   f"of {LEARNING_RATE_SCHEDULES}.")


def _as_step(step) -> int | float:
  """A knot's step: an int when integral, else a float (a fraction)."""
  step = float(step)
  return int(step) if step.is_integer() else step


def check_knots(name: str, knots) -> tuple[tuple[int, float], ...]:
  """Checks a piecewise-linear schedule `((step, value), ...)` and returns it.

  Raises:
    ValueError: naming `name` unless there are >= 1 knots, the first at step
      0, steps strictly increasing, values finite.
  """
  try:
    knots = tuple((_as_step(s), float(v)) for s, v in knots)
    steps = [s for s, _ in knots]
  except (TypeError, ValueError):
    raise ValueError(f"{name}={knots!r} must be ((step, value), ...) pairs."
                     ) from None
  if not knots or steps[0] != 0:
    raise ValueError(f"{name}={knots!r} must start with a knot at step 0.")
  if any(b <= a for a, b in zip(steps, steps[1:])):
    raise ValueError(f"{name}={knots!r}: steps must increase strictly.")
  for _, value in knots:
    checks.check_finite(name, value)
  return knots


def piecewise_linear(step, knots):
  """Linear interpolation between knots `((step_0 = 0, v_0), (s_1, v_1),
  ...)`, held at the last value after the last knot (traced step ok).

  E.g. the temperature of Lievin et al. (2019, Appendix A), 0.8 -> 0.3 over
  2e5 steps then 0.3 -> 0.1 over the next 2e5:
  `((0, 0.8), (200_000, 0.3), (400_000, 0.1))`. One knot: a constant
  (returned as a Python float, so that estimators see a static option).
  """
  if len(knots) == 1:
    return float(knots[0][1])
  steps = jnp.asarray([s for s, _ in knots], jnp.float32)
  values = jnp.asarray([v for _, v in knots], jnp.float32)
  return jnp.interp(jnp.asarray(step, jnp.float32), steps, values)


def linear_anneal(step, start: float, end: float | None, num_steps: int):
  """Linear interpolation start -> end over num_steps, then held at end.

  With `end` None (no annealing) returns `start` as a Python float, so that
  estimators see a static option and can validate it.
  """
  if end is None or num_steps <= 0:
    return start
  frac = jnp.minimum(jnp.asarray(step, jnp.float32) / num_steps, 1.0)
  return start + (end - start) * frac
