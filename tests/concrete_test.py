"""Tests for discrete_vi.distributions.concrete (binary Concrete, Concrete)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.distributions import concrete

TEMPERATURES = (1e-3, 0.1, 1.0, 10.0)
EXTREME_BINARY = jnp.array([50., -50., 0., 3.])
EXTREME_CATEGORICAL = jnp.array([[50., -50., 0.], [-50., -50., 50.],
                                 [1., 0., -1.]])
EULER_GAMMA = 0.5772156649015329


def _z_test(mean, target, se, threshold=4.0):
  z = np.abs(np.asarray(mean) - np.asarray(target)) / np.maximum(se, 1e-12)
  assert np.all(z < threshold), f"mean {mean} vs {target}, |z| = {z}"


def _mean_se(draws):
  draws = np.asarray(draws, np.float64)
  return draws.mean(0), draws.std(0, ddof=1) / np.sqrt(draws.shape[0])


def _trapezoid(values, step, axis=-1):
  values = np.asarray(values, np.float64)
  return np.trapezoid(values, dx=step, axis=axis)


# --- validation --------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"),
                                         float("inf")])
def test_bad_temperature_raises_naming_value(temperature):
  key = jax.random.PRNGKey(0)
  calls = [
      lambda: concrete.sample_binary(key, jnp.zeros(3), temperature),
      lambda: concrete.sample_categorical(key, jnp.zeros((2, 3)), temperature),
      lambda: concrete.log_prob_binary_latent(jnp.zeros(3), jnp.zeros(3),
                                              temperature),
      lambda: concrete.log_prob_binary(jnp.zeros(3), 0.5 * jnp.ones(3),
                                       temperature),
      lambda: concrete.log_prob_categorical(
          jnp.zeros((2, 3)), jnp.ones((2, 3)) / 3, temperature),
  ]
  for call in calls:
    with pytest.raises(ValueError, match=f"temperature={temperature!r}"):
      call()


def test_unknown_distribution_raises():
  with pytest.raises(ValueError, match="distribution='gaussian'"):
    concrete.sample(jax.random.PRNGKey(0), jnp.zeros(3), 1.0, "gaussian")


def test_traced_temperature_under_jit():
  logits = jnp.array([0.5, -1.])

  @jax.jit
  def log_density(temperature):
    s = concrete.sample_binary(jax.random.PRNGKey(0), logits, temperature)
    return jnp.sum(concrete.log_prob_binary_from_latent(logits, s.latent,
                                                        temperature))

  chex.assert_tree_all_finite(jax.grad(log_density)(0.7))


# --- shapes and hard samples -------------------------------------------------


@pytest.mark.parametrize("distribution,shape", [("bernoulli", (5, 4)),
                                                ("categorical", (5, 4, 3))])
def test_shapes_and_hard_value(distribution, shape):
  logits = jax.random.normal(jax.random.PRNGKey(1), shape)
  s = jax.jit(functools.partial(concrete.sample, temperature=0.5,
                                distribution=distribution, sample_shape=(7,))
              )(jax.random.PRNGKey(2), logits)
  for x in s:
    chex.assert_shape(x, (7,) + shape)
  log_p = concrete.log_prob_from_latent(logits, s.latent, 0.5, distribution)
  chex.assert_shape(log_p, (7,) + shape[:2])
  if distribution == "bernoulli":
    np.testing.assert_array_equal(s.hard, (s.relaxed > 0.5).astype(np.float32))
  else:
    np.testing.assert_array_equal(np.argmax(s.hard, -1),
                                  np.argmax(s.relaxed, -1))
    np.testing.assert_allclose(np.sum(s.relaxed, -1), 1., atol=1e-5)


def test_hard_binary_frequencies_match_sigmoid():
  logits = jnp.array([-2., 0., 1.5, 4.])
  s = concrete.sample_binary(jax.random.PRNGKey(3), logits, 0.3, (200_000,))
  mean, se = _mean_se(s.hard)
  _z_test(mean, jax.nn.sigmoid(logits), se)


def test_hard_categorical_frequencies_match_softmax():
  logits = jnp.array([[1., 0., -1., 0.5], [3., -2., 0., 0.]])
  s = concrete.sample_categorical(jax.random.PRNGKey(4), logits, 2.0,
                                  (200_000,))
  mean, se = _mean_se(s.hard)
  _z_test(mean, jax.nn.softmax(logits), se)


# --- normalisation of the densities ------------------------------------------


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_binary_latent_density_integrates_to_one(temperature):
  logits = jnp.array([-3., 0., 2.5])
  # y is logistic with location l / tau and scale 1 / tau.
  grid = np.linspace(-45., 45., 40_001)
  y = (np.asarray(logits)[:, None] + grid[None, :]) / temperature  # [3, N]
  density = jnp.exp(concrete.log_prob_binary_latent(
      logits[:, None], jnp.asarray(y, jnp.float32), temperature))
  total = _trapezoid(density, (grid[1] - grid[0]) / temperature)
  np.testing.assert_allclose(total, 1., atol=1e-4)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_binary_density_of_z_integrates_to_one(temperature):
  logits = jnp.array([-1., 0.5, 2.])
  n = 400_000
  z = (np.arange(n) + 0.5) / n  # midpoint rule on (0, 1)
  density = jnp.exp(concrete.log_prob_binary(
      logits[:, None], jnp.asarray(z, jnp.float32)[None, :], temperature))
  total = np.sum(np.asarray(density, np.float64), -1) / n
  np.testing.assert_allclose(total, 1., atol=2e-3)


def test_binary_density_of_z_matches_latent_form_and_closed_form():
  logits = jnp.array([[-1.], [0.5], [2.]])
  y = jnp.linspace(-6., 6., 25)[None, :]
  tau = 0.7
  from_latent = concrete.log_prob_binary_from_latent(logits, y, tau)
  from_z = concrete.log_prob_binary(logits, jax.nn.sigmoid(y), tau)
  np.testing.assert_allclose(from_z, from_latent, rtol=1e-4, atol=1e-4)
  # Maddison et al. (2017): tau a z^{-tau-1} (1-z)^{-tau-1} /
  # (a z^{-tau} + (1-z)^{-tau})^2, a = exp(l), in float64.
  z = 1. / (1. + np.exp(-np.asarray(y, np.float64)))
  a = np.exp(np.asarray(logits, np.float64))
  closed = (tau * a * z**(-tau - 1) * (1 - z)**(-tau - 1) /
            (a * z**(-tau) + (1 - z)**(-tau))**2)
  np.testing.assert_allclose(from_latent, np.log(closed), rtol=1e-4,
                             atol=1e-4)


def _log_ratio_grid(logits, temperature, half_width=40., n=801):
  """Latent samples on a grid of the K-1 = 2 log-ratios u_k = y_k - y_K."""
  logits = np.asarray(logits, np.float64)
  centre = (logits[:2] - logits[2]) / temperature
  axes = [c + np.linspace(-half_width, half_width, n) / temperature
          for c in centre]
  u1, u2 = np.meshgrid(*axes, indexing="ij")
  pre = np.stack([u1, u2, np.zeros_like(u1)], -1)
  latent = pre - np.logaddexp.reduce(pre, -1, keepdims=True)
  step = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
  return latent, step


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_expconcrete_density_integrates_to_one(temperature):
  logits = jnp.array([0.5, -1., 2.])
  latent, step = _log_ratio_grid(logits, temperature)
  density = jnp.exp(concrete.log_prob_categorical_latent(
      logits, jnp.asarray(latent, jnp.float32), temperature))
  total = np.sum(np.asarray(density, np.float64)) * step
  np.testing.assert_allclose(total, 1., atol=2e-3)


def test_concrete_sampler_matches_density_moments():
  """E[z] under the sampler equals the integral of z against the density."""
  logits = jnp.array([0.5, -1., 2.])
  tau = 0.5
  latent, step = _log_ratio_grid(logits, tau)
  density = np.asarray(jnp.exp(concrete.log_prob_categorical_latent(
      logits, jnp.asarray(latent, jnp.float32), tau)), np.float64)
  quadrature_mean = np.einsum("ij,ijk->k", density, np.exp(latent)) * step
  s = concrete.sample_categorical(jax.random.PRNGKey(5), logits, tau,
                                  (200_000,))
  mean, se = _mean_se(s.relaxed)
  _z_test(mean, quadrature_mean, se)


def test_binary_sampler_matches_density_moments():
  logits = jnp.array([-1., 0.5])
  tau = 0.5
  grid = np.linspace(-45., 45., 40_001)
  y = (np.asarray(logits)[:, None] + grid[None, :]) / tau
  density = np.asarray(jnp.exp(concrete.log_prob_binary_latent(
      logits[:, None], jnp.asarray(y, jnp.float32), tau)), np.float64)
  quadrature_mean = _trapezoid(density / (1. + np.exp(-y)),
                               (grid[1] - grid[0]) / tau)
  s = concrete.sample_binary(jax.random.PRNGKey(6), logits, tau, (200_000,))
  mean, se = _mean_se(s.relaxed)
  _z_test(mean, quadrature_mean, se)


@pytest.mark.parametrize("distribution,logits,area", [
    ("bernoulli", jnp.array([0.7]), 1.0),
    ("categorical", jnp.array([[0.5, -1., 2.]]), 0.5),
])
def test_density_of_z_inverse_expectation_is_simplex_volume(
    distribution, logits, area):
  """E_{z~p}[1 / p(z)] = volume of the support (1, or 1/2 for K = 3).

  At tau = 1 / (K - 1) the density of z is bounded below near the faces, so
  1/p(z) has finite variance. This ties the z density to the sampler.
  """
  k = 2 if distribution == "bernoulli" else logits.shape[-1]
  tau = 1. / (k - 1)
  s = concrete.sample(jax.random.PRNGKey(7), logits, tau, distribution,
                      (400_000,))
  log_p = jnp.sum(concrete.log_prob_from_latent(logits, s.latent, tau,
                                                distribution), -1)
  mean, se = _mean_se(jnp.exp(-log_p))
  _z_test(mean, area, se)


# --- numerical stability -----------------------------------------------------


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
def test_finite_log_densities_and_gradients_at_extremes(distribution):
  logits = EXTREME_BINARY if distribution == "bernoulli" else (
      EXTREME_CATEGORICAL)

  @jax.jit
  def check(temperature):  # traced temperature: one compilation
    s = concrete.sample(jax.random.PRNGKey(8), logits, temperature,
                        distribution, (64,))
    out = [s]
    for fn, x in [(concrete.log_prob_latent, s.latent),
                  (concrete.log_prob_from_latent, s.latent),
                  (concrete.log_prob, s.relaxed)]:
      total = lambda l, x, fn=fn: jnp.sum(fn(l, x, temperature, distribution))
      out.append(jax.value_and_grad(total, argnums=(0, 1))(logits, x))
    return out

  for temperature in TEMPERATURES:
    chex.assert_tree_all_finite(check(temperature))


def test_low_temperature_samples_reach_the_boundary_and_stay_finite():
  s = concrete.sample_binary(jax.random.PRNGKey(9), EXTREME_BINARY, 1e-3,
                             (64,))
  assert np.any(s.relaxed == 0.) and np.any(s.relaxed == 1.)
  chex.assert_tree_all_finite(
      concrete.log_prob_binary_from_latent(EXTREME_BINARY, s.latent, 1e-3))
  c = concrete.sample_categorical(jax.random.PRNGKey(9), EXTREME_CATEGORICAL,
                                  1e-3, (64,))
  assert np.any(c.relaxed == 0.) and np.any(c.relaxed == 1.)


def test_log_density_at_boundary_values_is_finite():
  binary_z = jnp.array([0., 1., 0.5, 1e-30])
  categorical_z = jnp.array([[1., 0., 0.], [0., 0., 1.], [0.5, 0.5, 0.]])
  for logits, z, distribution in [
      (EXTREME_BINARY, binary_z, "bernoulli"),
      (EXTREME_CATEGORICAL, categorical_z, "categorical")]:
    total = lambda l, z, t, d=distribution: jnp.sum(
        concrete.log_prob(l, z, t, d))
    value_and_grad = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))
    for temperature in TEMPERATURES:
      chex.assert_tree_all_finite(value_and_grad(logits, z, temperature))


# --- small float32 logits: preferences must be preserved ---------------------


@pytest.mark.parametrize("temperature", [1e-3, 0.5, 1.0])
def test_small_logits_argmax_frequencies_ordered(temperature):
  """With logits [1e-3, 0, -1e-3], class 0 must win more often than class 2.

  P(argmax = 0) - P(argmax = 2) ~ 6.7e-4. Common random numbers: the same
  noise with the reversed logits gives P(argmax = 0 | reversed) =
  P(argmax = 2 | logits), so the paired difference has a tiny variance.
  """
  logits = jnp.array([1e-3, 0., -1e-3], jnp.float32)
  key = jax.random.PRNGKey(10)
  n = 1_000_000
  forward = concrete.sample_categorical(key, logits, temperature, (n,))
  backward = concrete.sample_categorical(key, logits[::-1], temperature, (n,))
  wins = np.argmax(np.asarray(forward.relaxed), -1) == 0
  wins_reversed = np.argmax(np.asarray(backward.relaxed), -1) == 0
  wins, wins_reversed = wins.astype(np.float64), wins_reversed.astype(
      np.float64)
  mean, se = _mean_se(wins - wins_reversed)
  probs = np.exp(np.asarray(logits).astype(np.float64))
  probs /= probs.sum()
  exact = probs[0] - probs[2]
  assert mean > 4 * se, (mean, se)
  _z_test(mean, exact, se)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_small_logits_density_prefers_the_likelier_vertex(temperature):
  logits = jnp.array([1e-3, 0., -1e-3], jnp.float32)
  eps = 0.05
  near_first = jnp.array([1. - 2 * eps, eps, eps])
  near_last = jnp.array([eps, eps, 1. - 2 * eps])
  assert (concrete.log_prob_categorical(logits, near_first, temperature) >
          concrete.log_prob_categorical(logits, near_last, temperature))
  assert (concrete.log_prob_categorical_latent(logits, jnp.log(near_first),
                                               temperature) >
          concrete.log_prob_categorical_latent(logits, jnp.log(near_last),
                                               temperature))
  # Binary: logit 1e-3 favours z near 1 over its mirror image.
  assert (concrete.log_prob_binary(jnp.array(1e-3), 0.9, temperature) >
          concrete.log_prob_binary(jnp.array(1e-3), 0.1, temperature))


# --- conditional noise (for Gumbel-Rao / REBAR-style estimators) -------------


@pytest.mark.parametrize("distribution,logits", [
    ("bernoulli", EXTREME_BINARY), ("categorical", EXTREME_CATEGORICAL)])
def test_conditional_noise_reproduces_the_hard_sample(distribution, logits):
  key_hard, key_noise = jax.random.split(jax.random.PRNGKey(11))
  from discrete_vi.distributions import bernoulli, categorical
  sampler = bernoulli if distribution == "bernoulli" else categorical
  # Also force the unlikely outcomes: flipped / least likely class.
  hard = sampler.sample(key_hard, logits, (256,))
  if distribution == "bernoulli":
    hard = hard.at[:128].set(1. - hard[:128])
  else:
    worst = jax.nn.one_hot(jnp.argmin(logits, -1), logits.shape[-1])
    hard = hard.at[:128].set(worst)
  noise = jax.jit(jax.vmap(lambda k, h: concrete.conditional_noise(
      k, logits, h, distribution)))(jax.random.split(key_noise, 256), hard)
  chex.assert_tree_all_finite(noise)
  relaxed = concrete.relax(logits, noise, 1.0, distribution)
  np.testing.assert_array_equal(relaxed.hard, hard)


@pytest.mark.parametrize("distribution,logits,mean,var", [
    ("bernoulli", jnp.array([2., -1., 0.3]), 0., np.pi**2 / 3),
    ("categorical", jnp.array([[2., -1., 0.3]]), EULER_GAMMA, np.pi**2 / 6),
])
def test_conditional_noise_has_the_right_marginal(distribution, logits, mean,
                                                  var):
  """b ~ q then noise ~ p(noise | b) is marginally standard logistic/Gumbel."""
  n = 200_000
  key_hard, key_noise = jax.random.split(jax.random.PRNGKey(12))
  hard = concrete.sample(key_hard, logits, 1.0, distribution, (n,)).hard
  noise = np.asarray(jax.jit(jax.vmap(lambda k, h: concrete.conditional_noise(
      k, logits, h, distribution)))(jax.random.split(key_noise, n), hard),
                     np.float64)
  m, se = _mean_se(noise)
  _z_test(m, mean, se)
  v, se_v = _mean_se((noise - mean)**2)
  _z_test(v, var, se_v)
