"""Tests of the Bernoulli and categorical distributions against enumeration."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.distributions import bernoulli, categorical

LOGITS_B = jnp.array([-2.0, 0.0, 0.7, 3.0])
LOGITS_C = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])


def test_bernoulli_sample_frequencies_match_probs():
  z = bernoulli.sample(jax.random.PRNGKey(0), LOGITS_B, (100_000,))
  chex.assert_shape(z, (100_000, 4))
  p = np.asarray(jax.nn.sigmoid(LOGITS_B))
  se = np.sqrt(p * (1 - p) / 100_000)
  assert np.all(np.abs(np.asarray(z.mean(0)) - p) < 4 * se)
  assert set(np.unique(np.asarray(z))) <= {0.0, 1.0}


def test_bernoulli_log_prob_entropy_kl_by_enumeration():
  probs = np.asarray(jax.nn.sigmoid(LOGITS_B), np.float64)
  other = jnp.array([1.0, -1.0, 0.0, 2.0])
  probs_p = np.asarray(jax.nn.sigmoid(other), np.float64)
  for z in (0.0, 1.0):
    lp = bernoulli.log_prob(LOGITS_B, jnp.full(4, z))
    np.testing.assert_allclose(np.exp(lp), probs if z else 1 - probs, rtol=1e-5)
  entropy = -(probs * np.log(probs) + (1 - probs) * np.log(1 - probs))
  np.testing.assert_allclose(bernoulli.entropy(LOGITS_B), entropy, rtol=1e-5)
  kl = (probs * np.log(probs / probs_p) +
        (1 - probs) * np.log((1 - probs) / (1 - probs_p)))
  np.testing.assert_allclose(bernoulli.kl_divergence(LOGITS_B, other), kl,
                             rtol=1e-4, atol=1e-7)
  np.testing.assert_array_equal(bernoulli.mode(LOGITS_B), [0, 0, 1, 1])


def test_categorical_sample_frequencies_match_softmax():
  z = categorical.sample(jax.random.PRNGKey(1), LOGITS_C, (100_000,))
  chex.assert_shape(z, (100_000, 2, 3))
  np.testing.assert_array_equal(np.asarray(z.sum(-1)), 1.0)
  p = np.asarray(jax.nn.softmax(LOGITS_C))
  se = np.sqrt(p * (1 - p) / 100_000)
  assert np.all(np.abs(np.asarray(z.mean(0)) - p) < 4 * se)


def test_categorical_log_prob_entropy_kl_by_enumeration():
  other = jnp.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
  p = np.asarray(jax.nn.softmax(LOGITS_C), np.float64)
  r = np.asarray(jax.nn.softmax(other), np.float64)
  total = 0.0
  for i, j in itertools.product(range(3), repeat=2):
    z = jax.nn.one_hot(jnp.array([i, j]), 3)
    total += float(jnp.exp(jnp.sum(categorical.log_prob(LOGITS_C, z))))
  np.testing.assert_allclose(total, 1.0, rtol=1e-5)
  np.testing.assert_allclose(categorical.entropy(LOGITS_C),
                             -(p * np.log(p)).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(categorical.kl_divergence(LOGITS_C, other),
                             (p * np.log(p / r)).sum(-1), rtol=1e-4)
  np.testing.assert_array_equal(categorical.mode(LOGITS_C)[0], [0, 0, 1])


@pytest.mark.parametrize("scale", [50.0, -50.0])
def test_extreme_logits_are_finite(scale):
  logits_b = scale * jnp.ones(3)
  logits_c = jnp.array([[scale, 0.0, -scale]])
  values = (
      bernoulli.log_prob(logits_b, bernoulli.sample(jax.random.PRNGKey(0), logits_b)),
      bernoulli.entropy(logits_b), bernoulli.kl_divergence(logits_b, -logits_b),
      jax.grad(lambda l: jnp.sum(bernoulli.entropy(l)))(logits_b),
      categorical.log_prob(logits_c, categorical.sample(jax.random.PRNGKey(0), logits_c)),
      categorical.entropy(logits_c), categorical.kl_divergence(logits_c, -logits_c),
      jax.grad(lambda l: jnp.sum(categorical.entropy(l)))(logits_c))
  chex.assert_tree_all_finite(values)
  z = bernoulli.sample(jax.random.PRNGKey(2), logits_b, (1000,))
  assert float(z.mean()) == (1.0 if scale > 0 else 0.0)


def test_bernoulli_log_prob_and_entropy_equal_the_two_log_sigmoid_forms():
  """One-softplus forms vs the textbook ones, relaxed z and extreme logits."""
  logits = jnp.array([-80.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0, 80.0])
  for z in (0.0, 0.3, 1.0):
    z = jnp.full_like(logits, z)

    def textbook(l):
      return jnp.sum(z * jax.nn.log_sigmoid(l) + (1 - z) * jax.nn.log_sigmoid(-l))
    np.testing.assert_allclose(bernoulli.log_prob(logits, z),
                               z * jax.nn.log_sigmoid(logits) +
                               (1 - z) * jax.nn.log_sigmoid(-logits),
                               rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(
        jax.grad(lambda l: jnp.sum(bernoulli.log_prob(l, z)))(logits),
        jax.grad(textbook)(logits), rtol=1e-6, atol=1e-6)
  p = jax.nn.sigmoid(logits)
  np.testing.assert_allclose(
      bernoulli.entropy(logits),
      -(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits)),
      rtol=1e-5, atol=1e-6)


def test_softplus_and_its_gradient_match_jax_everywhere():
  logits = jnp.array([-1e30, -1e4, -88.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0,
                      20.0, 88.0, 1e4, 1e30])
  np.testing.assert_allclose(bernoulli.softplus(logits),
                             jax.nn.softplus(logits), rtol=1e-6, atol=0)
  grad = jax.vmap(jax.grad(bernoulli.softplus))(logits)
  np.testing.assert_allclose(grad, jax.nn.sigmoid(logits), rtol=1e-6, atol=0)
  assert float(jax.grad(bernoulli.softplus)(0.0)) == 0.5
  special = bernoulli.softplus(jnp.array([jnp.inf, -jnp.inf, jnp.nan]))
  assert float(special[0]) == np.inf and float(special[1]) == 0.0
  assert np.isnan(float(special[2]))
