"""Tests of discrete_vi.objectives: log-mean-exp, chunked IWAE bound, ELBO pieces."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import objectives
from discrete_vi.objectives import iwae

KEY = jax.random.PRNGKey(0)


# -- log_mean_exp ----------------------------------------------------------

def test_log_mean_exp_matches_naive_formula():
  x = jax.random.normal(KEY, (7, 3)) * 3.0
  naive = jnp.log(jnp.mean(jnp.exp(x), 0))
  chex.assert_trees_all_close(objectives.log_mean_exp(x), naive, rtol=1e-5)
  chex.assert_shape(objectives.log_mean_exp(x, axis=1, keepdims=True), (7, 1))


@pytest.mark.parametrize("offset", [-1e4, 1e4, -1e30])
def test_log_mean_exp_is_shift_equivariant_and_finite_at_extremes(offset):
  x = jax.random.normal(KEY, (50, 4))
  out = objectives.log_mean_exp(x + offset)
  chex.assert_tree_all_finite(out)
  np.testing.assert_allclose(out - offset, objectives.log_mean_exp(x),
                             atol=1e-3 * max(1.0, abs(offset) * 1e-4))


def test_log_mean_exp_of_zero_weights_is_minus_inf_not_nan():
  x = jnp.array([[-jnp.inf, 0.0], [-jnp.inf, 1.0]])
  out = objectives.log_mean_exp(x)
  assert out[0] == -jnp.inf
  np.testing.assert_allclose(out[1], np.log((1 + np.e) / 2), rtol=1e-6)


# -- iwae_bound: exact equality with a direct log-mean-exp -----------------

def noisy_log_weights(key, n, batch=3, scale=4.0, offset=0.0):
  return offset + scale * jax.random.normal(key, (n, batch))


def direct_bound(log_weights_fn, key, num_samples, chunk_size):
  """Concatenates the chunks exactly as documented, then log-mean-exp."""
  size = min(chunk_size, num_samples)
  sizes = [size] * (num_samples // size)
  if num_samples % size:
    sizes.append(num_samples % size)
  chunks = [log_weights_fn(jax.random.fold_in(key, i), n)
            for i, n in enumerate(sizes)]
  all_weights = jnp.concatenate(chunks, 0)
  assert all_weights.shape[0] == num_samples
  return objectives.log_mean_exp(all_weights)


# Jitted (static: the log-weight function and the counts), so that each test
# compiles one program instead of dispatching many small eager ops.
bound = jax.jit(objectives.iwae_bound, static_argnums=(0, 2, 3))
direct = jax.jit(direct_bound, static_argnums=(0, 2, 3))


@pytest.mark.parametrize("num_samples,chunk_size",
                         [(1, 4), (7, 3), (12, 5), (30, 7)])
def test_chunked_bound_equals_direct_log_mean_exp(num_samples, chunk_size):
  out = bound(noisy_log_weights, KEY, num_samples, chunk_size)
  expected = direct(noisy_log_weights, KEY, num_samples, chunk_size)
  chex.assert_shape(out, (3,))
  chex.assert_trees_all_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_samples,chunk_size", [(7, 4), (9, 3), (3, 8)])
def test_chunked_bound_counts_every_sample_exactly_once(num_samples,
                                                        chunk_size):
  # Within each chunk, log w alternates 0, a, 0, a, ...: the bound is
  # log((n0 + n_a e^a) / k); dropping, padding or double counting a
  # (remainder) chunk changes the counts n0, n_a.
  a = 5.0
  alternating = lambda key, n: jnp.where(jnp.arange(n)[:, None] % 2 == 0, 0., a)
  size = min(chunk_size, num_samples)
  sizes = [size] * (num_samples // size) + [num_samples % size]
  n_a = sum(n // 2 for n in sizes)
  expected = np.log((num_samples - n_a + n_a * np.exp(a)) / num_samples)
  out = bound(alternating, KEY, num_samples, chunk_size)
  np.testing.assert_allclose(out, [expected], rtol=1e-6)


def extreme_log_weights(key, n):
  return noisy_log_weights(key, n, offset=-1e4, scale=30.0)


def test_chunked_bound_finite_for_extreme_log_weights():
  fn = extreme_log_weights
  out = bound(fn, KEY, 23, 5)
  chex.assert_tree_all_finite(out)
  expected = direct(fn, KEY, 23, 5)
  np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_chunked_bound_first_chunks_tiny_later_chunks_large():
  # The running max must rescale earlier sums without overflow / underflow.
  def tiny_weights(key, n):
    del key
    return jnp.full((n, 2), -1e4)

  def step(key, n):  # depends on the chunk through the key
    return jnp.where(jax.random.uniform(key) < 0.5, -1e4, 0.0) * jnp.ones((n, 2))

  chex.assert_tree_all_finite(bound(tiny_weights, KEY, 10, 3))
  out = bound(step, KEY, 40, 3)
  chex.assert_trees_all_close(out, direct(step, KEY, 40, 3),
                              rtol=1e-6)


def test_chunked_bound_all_zero_weights_gives_minus_inf():
  fn = lambda key, n: jnp.full((n, 2), -jnp.inf)
  assert np.all(bound(fn, KEY, 5, 2) == -np.inf)


def test_chunked_bound_gradient_matches_direct():
  def fn(theta, key, n):
    return theta * jax.random.normal(key, (n, 2)) + theta ** 2

  grad = jax.jit(jax.grad(lambda t: jnp.sum(objectives.iwae_bound(
      functools.partial(fn, t), KEY, 11, 4))))(0.7)
  expected = jax.jit(jax.grad(lambda t: jnp.sum(direct_bound(
      functools.partial(fn, t), KEY, 11, 4))))(0.7)
  np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_chunked_bound_under_vmap():
  keys = jax.random.split(KEY, 3)
  batched = jax.jit(jax.vmap(lambda k: objectives.iwae_bound(
      noisy_log_weights, k, 7, 3)))(keys)
  chex.assert_shape(batched, (3, 3))
  for key, row in zip(keys, batched):
    chex.assert_trees_all_close(row, bound(noisy_log_weights, key, 7, 3),
                                rtol=1e-5)


@pytest.mark.parametrize("num_samples,chunk_size",
                         [(0, 5), (5, 0), (2.5, 1), (5, True), (-3, 2)])
def test_bound_rejects_bad_counts(num_samples, chunk_size):
  with pytest.raises(ValueError, match="num_samples|chunk_size"):
    objectives.iwae_bound(noisy_log_weights, KEY, num_samples, chunk_size)


def test_bound_rejects_log_weights_of_wrong_shape():
  with pytest.raises(ValueError, match=r"must return shape \[4"):
    objectives.iwae_bound(lambda k, n: jnp.zeros((3,)), KEY, 8, 4)


# -- iwae_bound on a tiny model with a known log-likelihood ----------------

class TinyModel:
  """3 binary latents, 4 pixels: p(z) p(x|z) and a (deliberately poor) q(z|x)."""

  def __init__(self):
    rng = np.random.RandomState(3)
    self.prior = jnp.asarray(rng.normal(size=3), jnp.float32)
    self.w = jnp.asarray(2.0 * rng.normal(size=(3, 4)), jnp.float32)
    self.b = jnp.asarray(rng.normal(size=4), jnp.float32)
    self.q = jnp.asarray(rng.normal(size=3), jnp.float32)  # ignores x
    self.x = jnp.array([1., 0., 1., 1.])

  def log_joint(self, z):  # z [..., 3] -> [...]
    log_pz = jnp.sum(z * jax.nn.log_sigmoid(self.prior) +
                     (1 - z) * jax.nn.log_sigmoid(-self.prior), -1)
    logits = z @ self.w + self.b
    log_px = jnp.sum(self.x * jax.nn.log_sigmoid(logits) +
                     (1 - self.x) * jax.nn.log_sigmoid(-logits), -1)
    return log_pz + log_px

  def log_q(self, z):
    return jnp.sum(z * jax.nn.log_sigmoid(self.q) +
                   (1 - z) * jax.nn.log_sigmoid(-self.q), -1)

  def support(self):
    return jnp.asarray(list(itertools.product([0., 1.], repeat=3)))

  def exact_log_px(self):
    return jax.scipy.special.logsumexp(self.log_joint(self.support()))

  def exact_elbo(self):
    z = self.support()
    log_q = self.log_q(z)
    return jnp.sum(jnp.exp(log_q) * (self.log_joint(z) - log_q))

  def log_weights(self, key, n, replicates):
    """`[n, replicates]`: each column an independent estimate of the bound."""
    z = (jax.random.uniform(key, (n, replicates, 3)) <
         jax.nn.sigmoid(self.q)).astype(jnp.float32)
    return self.log_joint(z) - self.log_q(z)


def test_bound_increases_with_k_towards_exact_log_likelihood():
  model = TinyModel()
  exact, elbo = float(model.exact_log_px()), float(model.exact_elbo())
  assert elbo < exact - 0.5  # q is poor: a clear gap to close
  replicates = 2000
  fn = functools.partial(model.log_weights, replicates=replicates)
  means, ses = {}, {}
  for k in (1, 100):
    draws = np.asarray(bound(fn, jax.random.PRNGKey(k), k, 32))
    means[k] = draws.mean()
    ses[k] = draws.std() / np.sqrt(replicates)
  # E[L_1] is the ELBO.
  assert abs(means[1] - elbo) < 4 * ses[1], (means[1], elbo, ses[1])
  assert means[1] + 4 * ses[1] < means[100]
  assert means[100] <= exact + 4 * ses[100] + 1e-3
  fn = functools.partial(model.log_weights, replicates=20)
  big = np.asarray(bound(fn, jax.random.PRNGKey(5), 5000, 256))
  assert abs(big.mean() - exact) < 0.02, (big.mean(), exact)
  assert big.mean() > means[100]


# -- ELBO pieces -----------------------------------------------------------

def test_bernoulli_log_likelihood_matches_formula_and_is_finite():
  logits = jnp.array([[-50., 0., 3., 50.]])
  x = jnp.array([[0., 1., 1., 1.]])
  expected = np.sum(np.log([1 - 1 / (1 + np.exp(50.)), 0.5,
                            1 / (1 + np.exp(-3.)), 1.0]))
  out = objectives.bernoulli_log_likelihood(logits, x)
  chex.assert_shape(out, (1,))
  np.testing.assert_allclose(out, [expected], rtol=1e-5)
  worst = objectives.bernoulli_log_likelihood(jnp.array([50., -50.]),
                                              jnp.array([0., 1.]))
  np.testing.assert_allclose(worst, -100.0, rtol=1e-5)
  grad = jax.grad(lambda l: jnp.sum(objectives.bernoulli_log_likelihood(l, x)))(
      logits)
  chex.assert_tree_all_finite(grad)


def test_elbo_integrand_weights_the_kl_term():
  out = objectives.elbo_integrand(jnp.array([-3.]), jnp.array([-2.]),
                                  jnp.array([-0.5]), kl_weight=0.25)
  np.testing.assert_allclose(out, [-3. + 0.25 * (-1.5)])


def test_kl_warmup_factor():
  steps = jnp.array([0, 150, 300, 1000])
  np.testing.assert_allclose(
      jax.vmap(lambda s: objectives.kl_warmup_factor(s, 300))(steps),
      [0., 0.5, 1., 1.])
  assert float(objectives.kl_warmup_factor(5, 0)) == 1.0
  # DVAE++: min(step / (0.3 * steps), 1).
  np.testing.assert_allclose(objectives.kl_warmup_factor(150, int(0.3 * 1000)),
                             0.5)
  with pytest.raises(ValueError, match="warmup_steps=-1"):
    objectives.kl_warmup_factor(0, -1)


def test_iwae_module_exports():
  assert iwae.iwae_bound is objectives.iwae_bound
