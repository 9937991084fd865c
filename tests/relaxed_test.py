"""Tests for discrete_vi.estimators.relaxed: straight-through, Gumbel family.

Estimator-specific values, hand formulas, bias and variance. The contract
(jit / vmap / scan, gradients to f's parameters, finiteness at extreme logits
and traced extreme temperatures, per-unit f, bad logits and distributions)
is tests/registry_test.py's; bad option values estimator_options_test.py's.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.estimators import exact
from discrete_vi.estimators import relaxed

import stats  # tests/stats.py

RELAXED = ("gumbel_softmax", "st_gumbel_softmax", "gumbel_rao")
ALL = ("straight_through",) + RELAXED
NUM_DRAWS = 100_000

# Binary test problem: D = 2, nonlinear (cross term and squares).
BINARY_LOGITS = jnp.array([0.4, -0.8])
W = jnp.array([1.0, -2.0])
T = jnp.array([0.3, 0.8])


def binary_f(z):
  """sum(w z) + 1.5 z_1 z_2 + sum((z - t)^2): not affine in each z_d."""
  return (jnp.sum(W * z, -1) + 1.5 * z[..., 0] * z[..., 1] +
          jnp.sum((z - T)**2, -1))


def binary_grad_f(z):
  """Hand-written gradient of binary_f wrt z, `[..., 2]`."""
  cross = 1.5 * jnp.stack([z[..., 1], z[..., 0]], -1)
  return W + cross + 2. * (z - T)


# Categorical test problem: D = 2 variables, K = 3 classes.
CATEGORICAL_LOGITS = jnp.array([[0.5, -0.3, 0.1], [-1., 0.4, 0.2]])
V = jnp.array([[1., -0.5, 2.], [0.3, 1.2, -1.]])
TARGET = jnp.array([[0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])


def categorical_f(z):
  """Linear + squared error + an interaction between the two variables."""
  return (jnp.sum(V * z, (-2, -1)) + jnp.sum((z - TARGET)**2, (-2, -1)) +
          2. * z[..., 0, 0] * z[..., 1, 2])


def categorical_grad_f(z):
  cross = jnp.zeros_like(z)
  cross = cross.at[..., 0, 0].set(2. * z[..., 1, 2])
  cross = cross.at[..., 1, 2].set(2. * z[..., 0, 0])
  return V + 2. * (z - TARGET) + cross


def _problem(distribution):
  if distribution == "bernoulli":
    return BINARY_LOGITS, binary_f
  return CATEGORICAL_LOGITS, categorical_f


def _draws(name, logits, f, num_draws=NUM_DRAWS, seed=0, **options):
  estimate = functools.partial(getattr(relaxed, name), f=f, **options)
  return stats.gradient_draws(estimate, logits, num_draws, seed=seed)


def _assert_same_mean(a, b, threshold=4.0):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
  z = np.abs(a.mean(0) - b.mean(0)) / se
  assert np.all(z < threshold), f"{a.mean(0)} vs {b.mean(0)}, |z| = {z}"


# --- forward values -----------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_forward_values_and_aux(name, distribution):
  """Hard one-hot samples, aux.objective = f(hard), no state; the loss is
  -f(relaxed) for gumbel_softmax and -f(hard) for the hard-forward ones."""
  logits, f = _problem(distribution)
  batch = jnp.stack([logits, -logits, 2. * logits])  # [3, ...]
  loss, aux = jax.jit(functools.partial(
      getattr(relaxed, name), f=f, distribution=distribution))(
          jax.random.PRNGKey(1), batch)
  chex.assert_shape(loss, (3,))
  chex.assert_shape(aux.samples, batch.shape)
  hard = np.asarray(aux.samples)
  assert set(np.unique(hard)) <= {0., 1.}
  if distribution == "categorical":
    np.testing.assert_array_equal(hard.sum(-1), 1.)
  np.testing.assert_allclose(aux.objective, f(aux.samples), rtol=1e-6)
  assert aux.state is None
  if name == "gumbel_softmax":
    relaxed_z = aux.diagnostics["relaxed_samples"]
    np.testing.assert_allclose(-loss, f(relaxed_z), rtol=1e-5)
    np.testing.assert_allclose(-loss, aux.diagnostics["relaxed_objective"])
  else:
    # Hard forward: the loss value is -f(hard) (up to XLA fusion rounding).
    np.testing.assert_allclose(-loss, f(aux.samples), rtol=1e-6)


# --- (c) straight-through -----------------------------------------------------


@pytest.mark.parametrize("variant", ["stochastic", "deterministic"])
def test_straight_through_binary_hand_formula(variant):
  """grad_d = df/dz_d (h) * sigmoid'(logits_d), per draw."""
  logits = jnp.array([0.4, -0.8])
  grad_fn = jax.jit(jax.grad(
      lambda l, k: relaxed.straight_through(k, l, binary_f, variant=variant),
      has_aux=True))
  for seed in range(5):
    grad, aux = grad_fn(logits, jax.random.PRNGKey(seed))
    p = jax.nn.sigmoid(logits)
    np.testing.assert_allclose(-grad, binary_grad_f(aux.samples) * p * (1 - p),
                               rtol=1e-5, atol=1e-7)
    if variant == "deterministic":
      np.testing.assert_array_equal(aux.samples, [1., 0.])  # 1[p > 0.5]


@pytest.mark.parametrize("variant", ["stochastic", "deterministic"])
def test_straight_through_categorical_hand_formula(variant):
  """grad = p * (g - <p, g>) with g = df/dz(h), the softmax Jacobian."""
  logits = CATEGORICAL_LOGITS
  grad_fn = jax.jit(jax.grad(
      lambda l, k: relaxed.straight_through(k, l, categorical_f,
                                            distribution="categorical",
                                            variant=variant),
      has_aux=True))
  for seed in range(5):
    grad, aux = grad_fn(logits, jax.random.PRNGKey(seed))
    p = jax.nn.softmax(logits)
    g = categorical_grad_f(aux.samples)
    expected = p * (g - jnp.sum(p * g, -1, keepdims=True))
    np.testing.assert_allclose(-grad, expected, rtol=1e-5, atol=1e-7)
    if variant == "deterministic":
      np.testing.assert_array_equal(aux.samples,
                                    jax.nn.one_hot(jnp.argmax(logits, -1), 3))


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_stochastic_straight_through_exact_for_linear_f(distribution):
  """Linear f: every draw equals the exact gradient (zero variance)."""
  logits, _ = _problem(distribution)
  weights = W if distribution == "bernoulli" else V
  f = lambda z: jnp.sum(weights * z, tuple(range(-weights.ndim, 0)))
  draws = _draws("straight_through", logits, f, num_draws=64,
                 distribution=distribution)
  expected = stats.exact_gradient(logits, f, distribution)
  np.testing.assert_allclose(draws, np.broadcast_to(expected, draws.shape),
                             rtol=1e-5, atol=1e-7)


def test_stochastic_straight_through_unbiased_for_multilinear_binary_f():
  """Affine in each unit (w z + c z1 z2): unbiased, but not zero-variance."""
  f = lambda z: jnp.sum(W * z, -1) + 3. * z[..., 0] * z[..., 1]
  draws = _draws("straight_through", BINARY_LOGITS, f)
  assert np.all(draws.std(0) > 0.05)
  stats.assert_unbiased(draws, stats.exact_gradient(BINARY_LOGITS, f))


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_stochastic_straight_through_biased_for_nonlinear_f(distribution):
  logits, f = _problem(distribution)
  draws = _draws("straight_through", logits, f, distribution=distribution)
  z = stats.z_scores(draws, stats.exact_gradient(logits, f, distribution))
  assert np.max(np.abs(z)) > 20., z


# --- (a) Gumbel-softmax is the pathwise gradient of the relaxed objective ----


def _binary_relaxed_objective(logits, temperature, n=2000):
  """E_L[f(sigmoid((logits + L) / tau))] by 2-d midpoint quadrature, float64.

  L_d = logit(u_d), u on a midpoint grid of (0, 1)^2; an implementation in
  NumPy, independent of the library and of autodiff.
  """
  u = (np.arange(n) + 0.5) / n
  noise = np.log(u) - np.log1p(-u)
  logits = np.asarray(logits, np.float64)
  z0 = 1. / (1. + np.exp(-(logits[0] + noise) / temperature))[:, None]
  z1 = 1. / (1. + np.exp(-(logits[1] + noise) / temperature))[None, :]
  w, t = np.asarray(W, np.float64), np.asarray(T, np.float64)
  values = (w[0] * z0 + w[1] * z1 + 1.5 * z0 * z1 + (z0 - t[0])**2 +
            (z1 - t[1])**2)
  return values.mean()


def _central_difference(objective, logits, step=1e-4):
  logits = np.asarray(logits, np.float64)
  grad = np.zeros_like(logits)
  for index in np.ndindex(logits.shape):
    delta = np.zeros_like(logits)
    delta[index] = step
    grad[index] = (objective(logits + delta) -
                   objective(logits - delta)) / (2 * step)
  return grad


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_gumbel_softmax_binary_matches_quadrature_gradient(temperature):
  target = _central_difference(
      lambda l: _binary_relaxed_objective(l, temperature), BINARY_LOGITS)
  draws = _draws("gumbel_softmax", BINARY_LOGITS, binary_f,
                 temperature=temperature)
  stats.assert_unbiased(draws, target)
  # The relaxed gradient is not the discrete one (so the test can tell).
  discrete = stats.exact_gradient(BINARY_LOGITS, binary_f)
  assert np.max(np.abs(stats.z_scores(draws, discrete))) > 10.


def _categorical_relaxed_objective_draws(logits, gumbel, temperature):
  """f(softmax((logits + G) / tau)) per Gumbel draw, NumPy float64."""
  scaled = (np.asarray(logits, np.float64) + gumbel) / temperature
  scaled -= scaled.max(-1, keepdims=True)
  z = np.exp(scaled)
  z /= z.sum(-1, keepdims=True)
  v, t = np.asarray(V, np.float64), np.asarray(TARGET, np.float64)
  return (np.sum(v * z, (-2, -1)) + np.sum((z - t)**2, (-2, -1)) +
          2. * z[..., 0, 0] * z[..., 1, 2])


def test_gumbel_softmax_categorical_matches_finite_differences():
  """Central differences with common random numbers, independent noise."""
  temperature = 0.5
  rng = np.random.default_rng(0)
  gumbel = rng.gumbel(size=(400_000,) + CATEGORICAL_LOGITS.shape)
  logits = np.asarray(CATEGORICAL_LOGITS, np.float64)
  step = 1e-4
  per_draw = np.zeros((len(gumbel),) + logits.shape)
  for index in np.ndindex(logits.shape):
    delta = np.zeros_like(logits)
    delta[index] = step
    plus = _categorical_relaxed_objective_draws(logits + delta, gumbel,
                                                temperature)
    minus = _categorical_relaxed_objective_draws(logits - delta, gumbel,
                                                 temperature)
    per_draw[(slice(None),) + index] = (plus - minus) / (2 * step)
  draws = _draws("gumbel_softmax", CATEGORICAL_LOGITS, categorical_f,
                 distribution="categorical", temperature=temperature)
  _assert_same_mean(draws, per_draw)


# --- (b) the relaxation bias shrinks as tau -> 0 -----------------------------


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_gumbel_softmax_bias_shrinks_with_temperature(distribution):
  logits, f = _problem(distribution)
  exact_value = -float(exact.enumerate_expectation(
      None, logits, f, distribution=distribution)[0])
  exact_grad = np.asarray(stats.exact_gradient(logits, f, distribution))
  keys = jax.random.split(jax.random.PRNGKey(5), NUM_DRAWS)

  @jax.jit
  def mean_value_and_grad(temperature):  # traced: compiled once
    objective = lambda k, l: -jnp.sum(relaxed.gumbel_softmax(
        k, l, f, distribution=distribution, temperature=temperature)[0])
    values, grads = jax.vmap(jax.value_and_grad(objective, argnums=1),
                             in_axes=(0, None))(keys, logits)
    return jnp.mean(values), jnp.mean(grads, 0)

  value_bias, grad_bias = [], []
  for temperature in (2.0, 1.0, 0.5, 0.1):
    value, grad = mean_value_and_grad(temperature)
    value_bias.append(abs(float(value) - exact_value))
    grad_bias.append(float(np.linalg.norm(np.asarray(grad) - exact_grad)))
  assert all(a > b for a, b in zip(value_bias, value_bias[1:])), value_bias
  assert grad_bias[0] > grad_bias[1] > grad_bias[2], grad_bias
  assert value_bias[-1] < 0.15 * value_bias[0], value_bias
  assert grad_bias[-1] < 0.15 * grad_bias[0], grad_bias


# --- (d) Gumbel-Rao: same mean as ST Gumbel-softmax, lower variance ----------


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_gumbel_rao_rao_blackwellizes_st_gumbel_softmax(distribution,
                                                        temperature):
  logits, f = _problem(distribution)
  straight = _draws("st_gumbel_softmax", logits, f, num_draws=50_000, seed=1,
                    distribution=distribution, temperature=temperature)
  rao = _draws("gumbel_rao", logits, f, num_draws=50_000, seed=2,
               distribution=distribution, temperature=temperature,
               num_samples=10)
  _assert_same_mean(rao, straight)
  assert np.all(rao.var(0) < 0.8 * straight.var(0)), (rao.var(0),
                                                      straight.var(0))
  if temperature >= 0.5:  # Both are biased here (so the test can tell).
    exact_grad = stats.exact_gradient(logits, f, distribution)
    assert np.max(np.abs(stats.z_scores(rao, exact_grad))) > 10.


def test_gumbel_rao_single_sample_equals_st_gumbel_softmax_in_law():
  """With M = 1, (H, G | H) has the law of (H(G), G): same mean, same var."""
  straight = _draws("st_gumbel_softmax", BINARY_LOGITS, binary_f, seed=3)
  rao = _draws("gumbel_rao", BINARY_LOGITS, binary_f, seed=4, num_samples=1)
  _assert_same_mean(rao, straight)
  np.testing.assert_allclose(rao.var(0), straight.var(0), rtol=0.05)
