"""Tests of `indecater` (De Smet et al., 2023): unbiasedness against exact
enumeration (logits and a parameter f closes over), exactness for one
variable, lower variance than REINFORCE / RLOO at a stated cost, the class
substitutions it evaluates f at, and its errors. (The registry contract and
bad option values are tests/registry_test.py's and
tests/estimator_options_test.py's.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.estimators import indecater as ic
import stats

NUM_DRAWS = 20_000
LOGITS = stats.SMALL_LOGITS["categorical"]  # [2, 2, 3]: N = 2, K = 3
W = stats.CATEGORICAL_W  # [N, K]
make_objective = stats.categorical_objective
exact_gradient = stats.jitted_exact_gradient
estimate_fn = stats.categorical_estimate_fn


@pytest.mark.parametrize("num_samples", [1, 3])
def test_logits_gradient_unbiased(num_samples):
  f = make_objective(W)
  draws = stats.gradient_draws(estimate_fn("indecater", f,
                                           num_samples=num_samples),
                               LOGITS, NUM_DRAWS, chunk=NUM_DRAWS)
  stats.assert_unbiased(draws, exact_gradient(LOGITS, f, "categorical"))


def test_binary_classes_unbiased():
  """K = 2 with N = 3 variables (a pairwise f)."""
  logits = jnp.array([[[0.3, -0.4], [1.2, 0.1], [-0.8, 0.5]]])  # [1, 3, 2]

  def f(z):
    on = z[..., 1]  # [..., 3]
    return 2.0 * on[..., 0] * on[..., 1] - 1.5 * on[..., 2] + on[..., 1] * (
        1.0 - on[..., 2])

  draws = stats.gradient_draws(estimate_fn("indecater", f), logits, NUM_DRAWS,
                               chunk=NUM_DRAWS)
  stats.assert_unbiased(draws, exact_gradient(logits, f, "categorical"))


def test_objective_parameter_gradient_unbiased():
  stats.assert_categorical_parameter_gradient_unbiased(
      estimators.make("indecater", distribution="categorical",
                      num_samples=2), NUM_DRAWS)


@pytest.mark.parametrize("num_classes", [2, 5])
def test_one_variable_is_exact(num_classes):
  """N = 1: nothing is left to sample, every draw is the exact gradient."""
  logits = jax.random.normal(jax.random.PRNGKey(0), (3, 1, num_classes))
  values = jnp.linspace(-1.0, 2.0, num_classes) ** 2
  f = lambda z: jnp.sum(values * z[..., 0, :], -1)
  draws = stats.gradient_draws(estimate_fn("indecater", f), logits, 50)
  exact = exact_gradient(logits, f, "categorical")
  np.testing.assert_allclose(draws, np.broadcast_to(exact, draws.shape),
                             atol=1e-6)


def test_value_and_samples():
  """loss = -mean_m f(z_m) in value, aux.objective its negative, samples
  `[M, B, N, K]` one-hot draws."""
  f = make_objective(W)
  est = estimators.make("indecater", distribution="categorical",
                        num_samples=3)
  loss, aux = jax.jit(lambda key: est.estimate(key, LOGITS, f))(
      jax.random.PRNGKey(1))
  assert aux.samples.shape == (3,) + LOGITS.shape
  np.testing.assert_array_equal(jnp.sum(aux.samples, -1), 1.0)
  expected = jnp.mean(jax.vmap(f)(aux.samples), 0)
  np.testing.assert_allclose(aux.objective, expected, rtol=1e-6)
  np.testing.assert_allclose(loss, -expected, rtol=1e-6)


def test_class_substitutions():
  """Entry (n, j) of the substitutions is z with variable n set to class
  (z_n + j) mod K; j = 0 is z itself, and f is evaluated at the K - 1
  others of every variable."""
  z = jax.nn.one_hot(jnp.array([[2, 0], [1, 1]]), 3)  # [B=2, N=2, K=3]
  classes = ic.rotated_classes(z)  # [2, 2, 3]
  np.testing.assert_array_equal(classes[0], [[2, 0, 1], [0, 1, 2]])
  changed = np.asarray(ic.substitute_classes(z, classes))  # [N, K, B, N, K]
  z, classes = np.asarray(z), np.asarray(classes)
  for n in range(2):
    for j in range(3):
      for b in range(2):
        expected = z[b].copy()
        expected[n] = np.eye(3)[int(classes[b, n, j])]
        np.testing.assert_array_equal(changed[n, j, b], expected)
  np.testing.assert_array_equal(changed[:, 0], np.broadcast_to(z, (2,) +
                                                               z.shape))
  others = ic.other_class_values(make_objective(W), jnp.asarray(z)[None],
                                 jnp.asarray(classes)[None], jnp.asarray(z))
  assert others.shape == (1, 2, 2, 2)  # [M, N, K - 1, B]


def test_lower_variance_than_reinforce_and_rloo():
  """Total variance of the logits gradient (summed over coordinates).

  indecater with M = 1 evaluates f N (K - 1) + 1 = 5 times per example: it
  is compared with RLOO at the same 5 evaluations, and with single-sample
  REINFORCE. Measured: indecater / RLOO(5) ~ 0.56, indecater / REINFORCE ~
  0.11."""
  f = make_objective(W)

  def total_variance(name, **options):
    draws = stats.gradient_draws(estimate_fn(name, f, **options), LOGITS,
                                 NUM_DRAWS, seed=5, chunk=NUM_DRAWS)
    return float(np.sum(np.var(draws, 0)))

  ours = total_variance("indecater")
  rloo = total_variance("rloo", num_samples=5)
  reinforce = total_variance("reinforce")
  assert ours < 0.75 * rloo, (ours, rloo)
  assert ours < 0.25 * reinforce, (ours, reinforce)


def test_rejects_bad_objectives_and_options():
  est = estimators.make("indecater", distribution="categorical")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"f must return shape \(2,\)"):
    est.estimate(key, LOGITS, jnp.sum)
  with pytest.raises(ValueError,
                     match="indecater needs f to return one value per example"):
    est.estimate(key, LOGITS, lambda z: jnp.sum(z, -1))  # [B, N]
  with pytest.raises(ValueError, match="num_samples=0"):
    estimators.make("indecater", num_samples=0).estimate(
        key, LOGITS, make_objective(W))
  with pytest.raises(ValueError, match="indecater supports"):
    estimators.make("indecater", distribution="bernoulli").estimate(
        key, jnp.zeros((2, 3)), lambda z: jnp.sum(z, -1))
