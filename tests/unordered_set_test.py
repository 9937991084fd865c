"""Tests of `unordered_set` (Kool, van Hoof & Welling, 2020): exact
unbiasedness by summing the estimator over every ordered sample, the same
through the sampler (mean within 4 standard errors), the Gumbel-top-k
sampler's inclusion probabilities, exactness when the set is the whole
space, lower variance than REINFORCE / RLOO at equal evaluations, saturated
logits, and its errors. (The registry contract and bad option values are
tests/registry_test.py's and tests/estimator_options_test.py's.)"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.estimators import exact
from discrete_vi.estimators import unordered_set as us
import stats

NUM_DRAWS = 20_000
LOGITS = stats.SMALL_LOGITS["categorical"]  # [2, 2, 3]: N = 2, K = 3
W = stats.CATEGORICAL_W  # [N, K]
make_objective = stats.categorical_objective
exact_gradient = stats.jitted_exact_gradient
estimate_fn = stats.categorical_estimate_fn


def ordered_samples(p, k):
  """Every ordered draw of k without replacement from p, `[P, k]`, and its
  probability \\prod_i p(s_i) / (1 - \\sum_{j<i} p(s_j)), `[P]` (float64)."""
  sequences = np.array(list(itertools.permutations(range(len(p)), k)))
  chosen = p[sequences]  # [P, k]
  before = np.cumsum(chosen, 1) - chosen
  return sequences, np.prod(chosen / (1.0 - before), 1)


def test_joint_log_probs_follow_the_support_order():
  configs = exact.support(2, 3)  # [9, 2, 3]
  expected = jnp.sum(jax.nn.log_softmax(LOGITS)[:, None] * configs, (-2, -1))
  np.testing.assert_allclose(us.joint_log_probs(LOGITS), expected, rtol=1e-6)
  np.testing.assert_array_equal(
      jax.nn.one_hot(us.configuration_classes(jnp.arange(9), 2, 3), 3),
      configs)


@pytest.mark.parametrize("shape,k", [((2, 3), 2), ((2, 3), 3), ((2, 3), 4),
                                     ((1, 4), 2), ((1, 4), 3)])
def test_exactly_unbiased_over_every_ordered_sample(shape, k):
  """Sum over every ordered draw S of P(S) x (logits gradient, f-parameter
  gradient, objective) = the exact gradients and E[f], to float precision:
  Theorems 1 and 2 of Kool et al. (2020) with these leave-one-out ratios."""
  logits = jax.random.normal(jax.random.PRNGKey(sum(shape) + k), shape)
  w = jax.random.normal(jax.random.PRNGKey(9), shape)
  make_f = lambda w: (lambda z: jnp.sum(w * z, (-2, -1)) + 2.0 * jnp.prod(
      z[..., :, 1], -1) - jnp.sum(z[..., :, 0], -1) ** 2)
  p = np.exp(np.asarray(us.joint_log_probs(logits), np.float64))
  sequences, probs = ordered_samples(p / p.sum(), k)  # [P, k], [P]

  def expectation(l, w):
    batch = jnp.broadcast_to(l, (len(probs),) + shape)
    loss, aux = us.set_estimate(batch, make_f(w), jnp.asarray(sequences))
    return jnp.sum(probs * -loss), jnp.sum(probs * aux.objective)

  (_, value), grads = jax.jit(jax.value_and_grad(
      expectation, (0, 1), has_aux=True))(logits, w)

  def exact_expectation(l, w):
    return -exact.enumerate_expectation(None, l[None], make_f(w),
                                        distribution="categorical")[0][0]

  exact_value, exact_grads = jax.jit(jax.value_and_grad(
      exact_expectation, (0, 1)))(logits, w)
  np.testing.assert_allclose(np.sum(probs), 1.0, rtol=1e-9)
  np.testing.assert_allclose(value, exact_value, rtol=1e-5, atol=1e-5)
  for grad, exact_grad in zip(grads, exact_grads):
    np.testing.assert_allclose(grad, exact_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_samples", [2, 4])
def test_sampled_logits_gradient_unbiased(num_samples):
  f = make_objective(W)
  draws = stats.gradient_draws(estimate_fn("unordered_set", f,
                                           num_samples=num_samples),
                               LOGITS, NUM_DRAWS, chunk=NUM_DRAWS)
  stats.assert_unbiased(draws, exact_gradient(LOGITS, f, "categorical"))


def test_objective_parameter_gradient_unbiased():
  stats.assert_categorical_parameter_gradient_unbiased(
      estimators.make("unordered_set", distribution="categorical",
                      num_samples=3), NUM_DRAWS)


def test_gumbel_top_k_inclusion_probabilities():
  """P(s in S) of the sampler matches the enumeration of ordered draws
  (within 4 binomial standard errors); the first draw is distributed as p."""
  log_p = jax.nn.log_softmax(jnp.array([1.0, 0.2, -0.5, -1.5, 0.7]))
  k = 3
  keys = jax.random.split(jax.random.PRNGKey(2), NUM_DRAWS)
  index = jax.vmap(lambda key: us.sample_without_replacement(key, log_p, k))(
      keys)  # [draws, k]
  assert np.all(np.sort(np.asarray(index), 1)[:, 1:] !=
                np.sort(np.asarray(index), 1)[:, :-1])  # distinct
  p = np.exp(np.asarray(log_p, np.float64))
  sequences, probs = ordered_samples(p, k)
  included = np.array([probs[np.any(sequences == s, 1)].sum()
                       for s in range(5)])
  members = np.asarray(index)[:, :, None] == np.arange(5)  # [draws, k, 5]
  for observed, expected in ((np.mean(np.any(members, 1), 0), included),
                             (np.mean(members[:, 0], 0), p)):
    se = np.sqrt(expected * (1 - expected) / NUM_DRAWS)
    assert np.all(np.abs(observed - expected) < 4 * se), (observed, expected)


@pytest.mark.parametrize("shape", [(3, 1, 2), (3, 2, 2)])
def test_whole_space_gives_the_exact_gradient(shape):
  """k >= K^N (k = 4 taken as K^N = 2, or equal to K^N = 4): S is the whole
  space, and every draw is the exact gradient."""
  logits = jax.random.normal(jax.random.PRNGKey(0), shape)
  f = lambda z: jnp.sum(z[..., 0, :] * jnp.array([0.5, -1.0]), -1) + 3.0 * (
      z[..., -1, 0] * z[..., 0, 1])
  draws = stats.gradient_draws(
      estimate_fn("unordered_set", f, num_samples=4), logits, 20)
  exact_grad = exact_gradient(logits, f, "categorical")
  np.testing.assert_allclose(draws, np.broadcast_to(exact_grad, draws.shape),
                             atol=2e-6)
  est = estimators.make("unordered_set", num_samples=4)
  samples = jax.eval_shape(lambda key, l: est.estimate(key, l, f),
                           jax.random.PRNGKey(0), logits)[1].samples
  assert samples.shape == (2 ** shape[1],) + shape


def test_lower_variance_than_reinforce_and_rloo():
  """Total variance of the logits gradient (summed over coordinates) at the
  same k = 4 evaluations of f: unordered_set / RLOO(4) measured ~ 0.49,
  unordered_set / REINFORCE(1 evaluation) ~ 0.13."""
  f = make_objective(W)

  def total_variance(name, **options):
    draws = stats.gradient_draws(estimate_fn(name, f, **options), LOGITS,
                                 NUM_DRAWS, seed=5, chunk=NUM_DRAWS)
    return float(np.sum(np.var(draws, 0)))

  ours = total_variance("unordered_set", num_samples=4)
  rloo = total_variance("rloo", num_samples=4)
  reinforce = total_variance("reinforce")
  assert ours < 0.7 * rloo, (ours, rloo)
  assert ours < 0.25 * reinforce, (ours, reinforce)


def test_saturated_logits():
  """Saturated logits (p of the set's other members ~ e^-100): weights sum to
  one, the objective is f at the mode, and the gradient is the (tiny) exact
  one: no 1 - sum(p) cancellation."""
  logits = jnp.array([[[50.0, -50.0, -50.0, 0.0]]])  # [1, 1, 4]
  values = jnp.array([1.0, -2.0, 3.0, 0.5])
  f = lambda z: jnp.sum(values * z[..., 0, :], -1)
  est = estimators.make("unordered_set", num_samples=3)
  (_, (loss, aux)), grad = jax.jit(jax.value_and_grad(
      lambda l: (lambda out: (jnp.sum(out[0]), out))(
          est.estimate(jax.random.PRNGKey(0), l, f)), has_aux=True))(logits)
  np.testing.assert_allclose(jnp.sum(aux.diagnostics["sample_weights"], 0),
                             1.0, rtol=1e-6)
  np.testing.assert_allclose(loss, -1.0, rtol=1e-6)
  exact_grad = -exact_gradient(logits, f, "categorical")
  np.testing.assert_allclose(grad, exact_grad, atol=1e-12)
  assert np.all(np.isfinite(grad))


def test_rejects_bad_objectives_options_and_sizes():
  est = estimators.make("unordered_set", distribution="categorical")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"f must return shape \(2,\)"):
    est.estimate(key, LOGITS, jnp.sum)
  with pytest.raises(ValueError, match="unordered_set needs f to return one "
                     "value per example"):
    est.estimate(key, LOGITS, lambda z: jnp.sum(z, -1))  # [B, N]
  with pytest.raises(ValueError, match="num_samples=1"):
    estimators.check_options("unordered_set", num_samples=1)
  with pytest.raises(ValueError, match=r"4\^3 = 64 of them, more than "
                     "max_support=32"):
    estimators.make("unordered_set", max_support=32).estimate(
        key, jnp.zeros((2, 3, 4)), lambda z: jnp.sum(z, (-2, -1)))
  with pytest.raises(ValueError, match="at most 10 samples.*num_samples=11"):
    estimators.make("unordered_set", num_samples=11).estimate(
        key, jnp.zeros((2, 3, 4)), lambda z: jnp.sum(z, (-2, -1)))
  with pytest.raises(ValueError, match="unordered_set supports"):
    estimators.make("unordered_set", distribution="bernoulli").estimate(
        key, jnp.zeros((2, 3)), lambda z: jnp.sum(z, -1))
