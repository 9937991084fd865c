"""Tests of MuProp: unbiasedness against enumeration, the pathwise part, exact
recovery for linear f, variance against plain REINFORCE, values. (Extreme
logits, vmap and errors: tests/registry_test.py.)"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.estimators import exact
from discrete_vi.estimators import muprop as mp
from discrete_vi.estimators import score_function as sf
import stats

NUM_DRAWS = 100_000
DISTRIBUTIONS = ["bernoulli", "categorical"]

LOGITS = {
    "bernoulli": jnp.array([[0.4, -0.7, 1.1], [-1.2, 0.3, 0.0]]),  # [2, 3]
    "categorical": jnp.array([[[0.5, -0.3, 0.1], [-1.0, 0.4, 0.8]],
                              [[0.0, 1.2, -0.6], [0.3, 0.3, -0.9]]]),  # [2,2,3]
}
THETA = {"bernoulli": jnp.array([0.5, -1.0, 2.0]),
         "categorical": jnp.array([[1.0, -0.5, 2.0], [0.3, -1.5, 0.7]])}


def objective(distribution, theta=None, offset=0.0, curvature=1.0):
  """A smooth nonlinear objective, defined on relaxed inputs too."""
  theta = THETA[distribution] if theta is None else theta
  if distribution == "bernoulli":
    def f(z):  # [..., 3] -> [...]
      return (jnp.sum(theta * z, -1) + curvature * (
          3.0 * z[..., 0] * z[..., 1] - 2.0 * jnp.sin(theta[1]) * z[..., 2] *
          z[..., 1] + jnp.square(z[..., 2] - 0.2 - theta[0] * z[..., 0])) +
              offset)
  else:
    def f(z):  # [..., 2, 3] -> [...]
      same = jnp.sum(z[..., 0, :] * z[..., 1, :], -1)
      return (jnp.sum(theta * z, (-2, -1)) + curvature * (
          2.5 * same - 2.0 * theta[0, 0] * z[..., 0, 2] * z[..., 1, 0] +
          jnp.square(z[..., 1, 1] - 0.5)) + offset)
  return f


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_muprop_unbiased(distribution):
  f = objective(distribution)
  logits = LOGITS[distribution]
  estimate = functools.partial(mp.muprop, f=f, distribution=distribution)
  draws = stats.gradient_draws(estimate, logits, NUM_DRAWS, chunk=NUM_DRAWS)
  stats.assert_unbiased(draws, stats.exact_gradient(logits, f, distribution))


def minus_loss_parts(distribution, key, logits, theta):
  loss, _ = mp.muprop(key, logits, objective(distribution, theta),
                      distribution=distribution)
  return -jnp.sum(loss)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_muprop_pathwise_gradient_is_grad_f_at_sample(distribution):
  """The control variate sends no gradient to theta: d/dtheta = df(z)/dtheta,
  which is unbiased for d E[f] / d theta."""
  logits, theta = LOGITS[distribution], THETA[distribution]
  grad_fn = jax.jit(jax.vmap(
      jax.grad(functools.partial(minus_loss_parts, distribution), 2),
      in_axes=(0, None, None)))
  keys = jax.random.split(jax.random.PRNGKey(4), 40_000)
  draws = np.asarray(grad_fn(keys, logits, theta))

  _, aux = mp.muprop(keys[0], logits, objective(distribution),
                     distribution=distribution)
  direct = jax.grad(lambda t: jnp.sum(objective(distribution, t)(aux.samples)))
  np.testing.assert_allclose(draws[0], direct(theta), rtol=1e-5, atol=1e-6)

  def expectation(t):
    loss, _ = exact.enumerate_expectation(
        None, logits, objective(distribution, t), distribution=distribution)
    return -jnp.sum(loss)

  stats.assert_unbiased(draws, jax.grad(expectation)(theta))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_muprop_is_exact_for_linear_objective(distribution):
  """For linear f the Taylor control variate is f itself: zero variance."""
  f = objective(distribution, curvature=0.0, offset=3.0)
  logits = LOGITS[distribution]
  target = stats.exact_gradient(logits, f, distribution)
  grad_fn = jax.jit(jax.grad(lambda key, l: -jnp.sum(mp.muprop(
      key, l, f, distribution=distribution)[0]), 1))
  for seed in range(3):
    np.testing.assert_allclose(grad_fn(jax.random.PRNGKey(seed), logits),
                               target, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_muprop_lower_variance_than_reinforce(distribution):
  f = objective(distribution, offset=10.0, curvature=0.3)
  logits = LOGITS[distribution]

  def total_variance(estimator):
    estimate = functools.partial(estimator, f=f, distribution=distribution)
    draws = stats.gradient_draws(estimate, logits, 5_000, seed=3)
    return float(np.sum(np.var(draws, 0)))

  assert total_variance(mp.muprop) < 0.2 * total_variance(sf.reinforce)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_muprop_value_shapes_and_diagnostics(distribution):
  """loss = -f(z), aux.objective = f(z) at the sample; no state; the
  baseline and signal statistics are reported."""
  f = objective(distribution)
  logits = LOGITS[distribution]
  loss, aux = jax.jit(functools.partial(mp.muprop, f=f,
                                        distribution=distribution))(
                                            jax.random.PRNGKey(0), logits)
  chex.assert_shape(loss, (2,))
  chex.assert_shape(aux.samples, logits.shape)
  np.testing.assert_allclose(loss, -f(aux.samples), rtol=1e-6)
  np.testing.assert_allclose(aux.objective, f(aux.samples), rtol=1e-6)
  assert aux.state is None
  assert {"baseline", "signal_mean", "signal_std"} <= set(aux.diagnostics)
