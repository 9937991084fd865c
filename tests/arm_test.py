"""Tests of ARM and DisARM (discrete_vi/estimators/arm.py)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stats
from discrete_vi import estimators
from discrete_vi.estimators import arm
from discrete_vi.estimators import exact

NUM_DRAWS = 100_000
W = jnp.array([1.0, -0.5, 2.0])
T = jnp.array([0.3, 0.8, 0.5])
LOGITS = jnp.array([[0.3, -1.0, 1.2], [-0.4, 0.8, 0.1]])  # [B=2, D=3]
NAMES = ["arm", "disarm"]


def objective(z, w=W):
  """A nonlinear f on {0, 1}^3: linear - squared error + interaction."""
  return (jnp.sum(w * z, -1) - jnp.sum((z - T)**2, -1) +
          1.5 * z[..., 0] * z[..., 1])


def elbo_like(logits):
  """f(z) = objective(z) - log q(z; logits): f closes over the logits."""
  def f(z):
    log_q = (z * jax.nn.log_sigmoid(logits) +
             (1 - z) * jax.nn.log_sigmoid(-logits))
    return objective(z) - jnp.sum(log_q, -1)
  return f


@pytest.mark.parametrize("name", NAMES)
def test_unbiased_logits_gradient(name):
  estimate = functools.partial(estimators.ESTIMATORS[name], f=objective)
  draws = stats.gradient_draws(estimate, LOGITS, NUM_DRAWS)
  stats.assert_unbiased(draws, stats.exact_gradient(LOGITS, objective))


@pytest.mark.parametrize("name", NAMES)
def test_unbiased_when_f_closes_over_logits(name):
  fn = estimators.ESTIMATORS[name]
  draws = stats.gradient_draws(lambda k, l: fn(k, l, elbo_like(l)), LOGITS,
                               NUM_DRAWS // 2)
  exact_grad = jax.grad(lambda l: -jnp.sum(exact.enumerate_expectation(
      None, l, elbo_like(l))[0]))(LOGITS)
  stats.assert_unbiased(draws, exact_grad)


@pytest.mark.parametrize("name", NAMES)
def test_unbiased_for_parameters_f_closes_over(name):
  fn = estimators.ESTIMATORS[name]
  grad_fn = jax.jit(jax.vmap(jax.grad(lambda th, key: -jnp.sum(
      fn(key, LOGITS, lambda z: objective(z, th))[0])), in_axes=(None, 0)))
  keys = jax.random.split(jax.random.PRNGKey(0), NUM_DRAWS // 2)
  draws = np.asarray(grad_fn(W, keys))
  exact_grad = jax.grad(lambda th: -jnp.sum(exact.enumerate_expectation(
      None, LOGITS, lambda z: objective(z, th))[0]))(W)
  stats.assert_unbiased(draws, exact_grad)


def test_disarm_variance_not_above_arm():
  draws = {name: stats.gradient_draws(
      functools.partial(estimators.ESTIMATORS[name], f=objective), LOGITS,
      20_000, seed=3) for name in NAMES}
  var_arm = np.var(draws["arm"], 0)
  var_disarm = np.var(draws["disarm"], 0)
  assert np.sum(var_disarm) < np.sum(var_arm), (var_disarm, var_arm)
  assert np.all(var_disarm <= 1.05 * var_arm), (var_disarm, var_arm)


def test_single_unit_linear_hand_formula():
  """f(z) = z, D = 1: ARM gives (1[u > 1-p] - 1[u < p]) (u - 1/2)."""
  logits = jnp.array([-0.7])
  f = lambda z: z[..., 0]

  def gradients(key):
    g_arm = jax.grad(lambda l: -jnp.sum(arm.arm(key, l, f)[0]))(logits)
    g_disarm = jax.grad(lambda l: -jnp.sum(arm.disarm(key, l, f)[0]))(logits)
    return g_arm, g_disarm, jax.nn.sigmoid(jax.random.logistic(key, (1,)))
  g_arm, g_disarm, u = jax.jit(jax.vmap(gradients))(
      jax.random.split(jax.random.PRNGKey(5), 64))
  p = jax.nn.sigmoid(logits)
  upper, lower = (u > 1 - p).astype(jnp.float32), (u < p).astype(jnp.float32)
  assert 0 < float(jnp.sum(upper + lower)) < 64
  np.testing.assert_allclose(g_arm, (upper - lower) * (u - 0.5), rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_allclose(
      g_disarm, 0.5 * (upper != lower) * jax.nn.sigmoid(jnp.abs(logits)),
      rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_value_samples_and_pathwise_gradient(name):
  fn = estimators.ESTIMATORS[name]
  key = jax.random.PRNGKey(1)
  loss, aux = fn(key, LOGITS, objective)
  chex.assert_shape(loss, (2,))
  chex.assert_shape(aux.samples, (2, 2, 3))
  assert aux.state is None
  pair = objective(aux.samples)  # [2, B]
  np.testing.assert_allclose(aux.objective, pair.mean(0), rtol=1e-6)
  np.testing.assert_allclose(loss, -pair.mean(0), rtol=1e-6)
  grad_theta = jax.grad(lambda th: jnp.sum(
      fn(key, LOGITS, lambda z: objective(z, th))[0]))(W)
  expected = jax.grad(lambda th: -jnp.sum(objective(aux.samples, th)) / 2)(W)
  np.testing.assert_allclose(grad_theta, expected, rtol=1e-6)


def test_disarm_gives_deterministic_units_no_gradient():
  """At |logits| = 50 a unit's antithetic pair agrees (b = b~), so DisARM's
  gradient for it is exactly zero, whatever the other units draw; finite
  elsewhere. (Finiteness of both estimators at extreme logits is the
  registry's test_extreme_logits_stay_finite.)"""
  logits = jnp.array([[50., -50., 0., 3.], [-50., 50., 1., -2.]])
  t = jnp.array([0.2, 0.9, 0.5, 0.1])
  f = lambda z: (jnp.sum(z * t, -1) - jnp.sum((z - t)**2, -1) +
                 z[..., 0] * z[..., 2])
  grad_fn = jax.jit(jax.vmap(jax.grad(
      lambda l, k: jnp.sum(arm.disarm(k, l, f)[0])), in_axes=(None, 0)))
  grads = grad_fn(logits, jax.random.split(jax.random.PRNGKey(0), 1000))
  chex.assert_tree_all_finite(grads)
  np.testing.assert_array_equal(grads[:, :, :2], 0.)
  assert float(jnp.max(jnp.abs(grads[:, :, 2:]))) > 0  # the others do get one
