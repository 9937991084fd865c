"""Statistical helpers for estimator tests: exact gradients and z-scores."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import estimators
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


# A small categorical problem shared by the categorical estimators' tests:
# N = 2 variables, K = 3 classes, and a per-example f with interactions,
# linear in a parameter w `[2, K]`.
CATEGORICAL_W = jnp.array([[1.0, -0.5, 2.0], [0.3, -1.5, 0.7]])  # [N, K]


def categorical_objective(w):
  """f(z `[..., 2, K]`) -> `[...]`, linear in w, with interactions."""
  def f(z):
    same = jnp.sum(z[..., 0, :] * z[..., 1, :], -1)
    return (jnp.sum(w * z, (-2, -1)) + 1.5 * same -
            2.0 * z[..., 0, -1] * z[..., 1, 0])
  return f


def jitted_exact_gradient(logits, f, distribution):
  """`exact_gradient`, jitted (the enumeration traced once)."""
  return jax.jit(lambda l: exact_gradient(l, f, distribution))(logits)


def categorical_estimate_fn(name, f, **options):
  """`(key, logits) -> (loss, aux)` of registry estimator `name` bound to
  categorical variables and f."""
  est = estimators.make(name, distribution="categorical", **options)
  return lambda key, logits: est.estimate(key, logits, f)


def assert_categorical_parameter_gradient_unbiased(est, num_draws: int,
                                                   state=None) -> None:
  """On the shared categorical problem (SMALL_LOGITS, CATEGORICAL_W): the
  gradient estimator `est` (an `estimators.Estimator` on categorical
  variables, with its `state`) gives the parameters w that f closes over
  an unbiased gradient of E_q[f_w] (exact by enumeration)."""
  logits = SMALL_LOGITS["categorical"]

  def w_grad(key):
    return jax.grad(lambda w: -jnp.sum(est.estimate(
        key, logits, categorical_objective(w), state=state)[0]))(
            CATEGORICAL_W)

  keys = jax.random.split(jax.random.PRNGKey(3), num_draws)
  draws = np.asarray(jax.jit(jax.vmap(w_grad))(keys))
  assert_unbiased(draws, exact_parameter_gradient(
      logits, categorical_objective, CATEGORICAL_W, "categorical"))


def all_one_hot(num_vars: int, num_classes: int):
  """Every joint class of `num_vars` categorical variables, one-hot:
  `[num_classes ** num_vars, num_vars, num_classes]`."""
  grid = jnp.stack(jnp.meshgrid(*[jnp.arange(num_classes)] * num_vars,
                                indexing="ij"), -1).reshape(-1, num_vars)
  return jax.nn.one_hot(grid, num_classes)
