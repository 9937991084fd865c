"""Statistical helpers for estimator tests: exact gradients and z-scores."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi.estimators import exact

# Small problems every score-function test enumerates: batch 2 of D = 3
# Bernoulli units, or of D = 2 categorical units with K = 3 classes.
SMALL_LOGITS = {
    "bernoulli": jnp.array([[0.4, -0.7, 1.1], [-1.2, 0.3, 0.0]]),  # [2, 3]
    "categorical": jnp.array([[[0.5, -0.3, 0.1], [-1.0, 0.4, 0.8]],
                              [[0.0, 1.2, -0.6], [0.3, 0.3, -0.9]]]),  # [2,2,3]
}


def exact_gradient(logits, f, distribution="bernoulli"):
  """d E_q[f] / d logits by enumeration (sum over the batch of losses)."""
  def objective(l):
    loss, _ = exact.enumerate_expectation(None, l, f, distribution=distribution)
    return -jnp.sum(loss)
  return jax.grad(objective)(logits)


def exact_parameter_gradient(logits, make_objective, theta,
                             distribution="bernoulli"):
  """d E_q[f_theta] / d theta by enumeration, f_theta = make_objective(theta)
  (summed over the batch)."""
  def expectation(t):
    loss, _ = exact.enumerate_expectation(None, logits, make_objective(t),
                                          distribution=distribution)
    return -jnp.sum(loss)
  return jax.grad(expectation)(theta)


def gradient_draws(estimate, logits, num_draws, seed=0, chunk=10_000):
  """`num_draws` independent gradient estimates of -loss wrt logits.

  Args:
    estimate: `estimate(key, logits) -> (loss, aux)` (options bound).
    logits: parameters.
    num_draws: number of independent keys.
    seed: base seed.
    chunk: draws per vmapped call (bounds memory).

  Returns:
    `[num_draws, *logits.shape]` numpy array of gradient estimates of
    +grad E_q[f].
  """
  grad_fn = jax.jit(jax.vmap(jax.grad(
      lambda key, l: -jnp.sum(estimate(key, l)[0]), argnums=1),
      in_axes=(0, None)))
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  out = [np.asarray(grad_fn(keys[i:i + chunk], logits))
         for i in range(0, num_draws, chunk)]
  return np.concatenate(out, 0)


def z_scores(draws, target):
  """(mean(draws) - target) / standard error, elementwise."""
  draws = np.asarray(draws, np.float64)
  mean = draws.mean(0)
  se = draws.std(0, ddof=1) / np.sqrt(draws.shape[0])
  floor = 1e-6 * (1.0 + np.abs(np.asarray(target, np.float64)))
  return (mean - np.asarray(target, np.float64)) / np.maximum(se, floor)


def assert_unbiased(draws, target, threshold=4.0):
  """Asserts |mean - target| < threshold standard errors everywhere."""
  z = z_scores(draws, target)
  worst = float(np.max(np.abs(z)))
  assert worst < threshold, (
      f"max |z| = {worst:.2f} >= {threshold}: mean {np.mean(draws, 0)} vs "
      f"exact {np.asarray(target)}")
