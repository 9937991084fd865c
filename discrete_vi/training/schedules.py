"""Schedules: learning rates, temperature and beta annealing.

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


def linear_anneal(step, start: float, end: float | None, num_steps: int):
  """Linear interpolation start -> end over num_steps, then held at end.

  With `end` None (no annealing) returns `start` as a Python float, so that
  estimators see a static option and can validate it.
  """
  if end is None or num_steps <= 0:
    return start
  frac = jnp.minimum(jnp.asarray(step, jnp.float32) / num_steps, 1.0)
  return start + (end - start) * frac
