"""Tests of discrete_vi.distributions.rbm against float64 enumeration of both
halves: log Z (chunked, either half enumerated), free energies, conditionals,
multilinearity; Gibbs chains against the exact distribution (chi-squared, and
a wrong sampler that fails the same check); AIS against exact log Z at
several coupling scales; the grad-log-Z surrogate against jax.grad of the
exact log Z within Monte Carlo error; jit / vmap; validation."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from discrete_vi.distributions import rbm

# A chi-squared p-value below this rejects a sampler (fixed keys: the tests
# are deterministic; the wrong sampler's p-value is far below it).
SIGNIFICANCE = 1e-3


def random_params(seed, n1, n2, scale=1.0, bias_scale=1.0):
  """Biases ~ N(0, bias_scale^2), couplings ~ N(0, scale^2), float32.

  Drawn with numpy: every new shape drawn with jax.random would compile.
  """
  rng = np.random.default_rng(seed)
  return rbm.RBMParams(
      jnp.asarray(bias_scale * rng.standard_normal(n1), jnp.float32),
      jnp.asarray(bias_scale * rng.standard_normal(n2), jnp.float32),
      jnp.asarray(scale * rng.standard_normal((n1, n2)), jnp.float32))


def states(n):
  """All 2^n binary vectors, `[2^n, n]` float64 (the first unit varies slowest)."""
  return np.array(list(itertools.product([0., 1.], repeat=n)))


def brute_log_joint(params):
  """-E(z1, z2) for every pair of states, `[2^n1, 2^n2]` float64."""
  a1, a2, w = (np.asarray(p, np.float64) for p in params)
  z1, z2 = states(a1.size), states(a2.size)
  return (z1 @ a1)[:, None] + (z2 @ a2)[None, :] + z1 @ w @ z2.T


def logsumexp(x, axis=None):
  m = np.max(x, axis=axis, keepdims=True)
  out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
  return np.squeeze(out, axis=axis) if axis is not None else out.item()


def brute_probs(params):
  """p(z1, z2) for every pair of states, `[2^n1, 2^n2]` float64."""
  log_joint = brute_log_joint(params)
  return np.exp(log_joint - logsumexp(log_joint))


def state_index(z1, z2):
  """The index of (z1, z2) in `brute_probs(...).ravel()`, `[C]`."""
  bits = np.concatenate([np.asarray(z1), np.asarray(z2)], -1).astype(int)
  return bits @ (2 ** np.arange(bits.shape[-1])[::-1])


# ------------------------------------------------------------------ exact log Z


@pytest.mark.parametrize("n1, n2, chunk_size", [
    (3, 4, 4096), (3, 4, 3),  # z1 enumerated; one chunk / 3 chunks, padded
    (5, 2, 4096), (5, 2, 3),  # z2 enumerated (the smaller half)
    (6, 6, 64), (1, 1, 1), (21, 3, 4096)])  # exact fit; n1 > 20, n2 small
def test_exact_log_z_equals_enumeration_of_both_halves(n1, n2, chunk_size):
  params = random_params(n1 * 100 + n2, n1, n2, scale=1.5)
  expected = logsumexp(brute_log_joint(params)) if n1 <= 10 else None
  if expected is None:  # 2^21 x 8 pairs: enumerate z2, then z1 analytically
    a1, a2, w = (np.asarray(p, np.float64) for p in params)
    z2 = states(n2)
    expected = logsumexp(z2 @ a2 + np.logaddexp(0., a1 + z2 @ w.T).sum(-1))
  log_z = rbm.exact_log_z(params, chunk_size=chunk_size)
  assert log_z.shape == () and log_z.dtype == jnp.float32
  np.testing.assert_allclose(log_z, expected, rtol=1e-6)


def test_exact_log_z_jit_vmap_and_gradient_are_expectations():
  params = random_params(0, 3, 4)
  batch = jax.tree_util.tree_map(lambda *p: jnp.stack(p),
                                 params, random_params(1, 3, 4))
  batched = jax.jit(jax.vmap(lambda p: rbm.exact_log_z(p, chunk_size=5)))(batch)
  for i, seed in enumerate((0, 1)):
    np.testing.assert_allclose(
        batched[i], logsumexp(brute_log_joint(random_params(seed, 3, 4))),
        rtol=1e-6)
  # grad log Z = E_p[-grad E] = (E z1, E z2, E z1 z2^T)
  grad = jax.grad(lambda p: rbm.exact_log_z(p, chunk_size=5))(params)
  probs = brute_probs(params)
  z1, z2 = states(3), states(4)
  np.testing.assert_allclose(grad.a1, probs.sum(1) @ z1, atol=1e-5)
  np.testing.assert_allclose(grad.a2, probs.sum(0) @ z2, atol=1e-5)
  np.testing.assert_allclose(grad.w, z1.T @ probs @ z2, atol=1e-5)


def test_exact_log_z_rejects_two_large_halves():
  params = rbm.RBMParams(jnp.zeros(21), jnp.zeros(22), jnp.zeros((21, 22)))
  with pytest.raises(ValueError, match="n1=21, n2=22"):
    rbm.exact_log_z(params)
  with pytest.raises(ValueError, match="chunk_size=0"):
    rbm.exact_log_z(random_params(0, 2, 2), chunk_size=0)


# ----------------------------------------------- free energies, conditionals


def test_free_energies_and_exact_log_prob_against_enumeration():
  params = random_params(2, 3, 4, scale=2.0)
  log_joint = brute_log_joint(params)
  np.testing.assert_allclose(rbm.free_energy_z1(params, states(3)),
                             logsumexp(log_joint, axis=1), rtol=1e-5)
  np.testing.assert_allclose(rbm.free_energy_z2(params, states(4)),
                             logsumexp(log_joint, axis=0), rtol=1e-5)
  log_z = rbm.exact_log_z(params)
  z1 = np.repeat(states(3), 16, 0)  # [128, 3], all pairs in brute order
  z2 = np.tile(states(4), (8, 1))  # [128, 4]
  log_prob = rbm.exact_log_prob(params, z1, z2, log_z)
  np.testing.assert_allclose(log_prob, np.log(brute_probs(params)).ravel(),
                             atol=1e-5)
  np.testing.assert_allclose(-rbm.energy(params, z1, z2), log_joint.ravel(),
                             rtol=1e-5, atol=1e-5)


def test_conditionals_against_enumeration():
  params = random_params(3, 3, 4, scale=2.0)
  probs = brute_probs(params)  # [8, 16]
  z1, z2 = states(3), states(4)
  given_z1 = probs / probs.sum(1, keepdims=True)  # p(z2 | z1) [8, 16]
  given_z2 = probs / probs.sum(0, keepdims=True)  # p(z1 | z2) [8, 16]
  np.testing.assert_allclose(
      jax.nn.sigmoid(rbm.logits_z2_given_z1(params, z1)), given_z1 @ z2,
      atol=1e-6)
  np.testing.assert_allclose(
      jax.nn.sigmoid(rbm.logits_z1_given_z2(params, z2)), given_z2.T @ z1,
      atol=1e-6)
  # and the conditionals are factorial: p(z2 | z1) = prod_j Bernoulli
  logits = np.asarray(rbm.logits_z2_given_z1(params, z1), np.float64)
  factorial = np.exp(z2 @ logits.T - np.logaddexp(0., logits).sum(1)).T
  np.testing.assert_allclose(factorial, given_z1, atol=1e-6)


def test_energy_is_multilinear_and_broadcasts():
  """E at the means of a factorial q equals E_q[E(z1, z2)] (Eq. 7's term)."""
  params = random_params(4, 3, 2, scale=2.0)
  mu1 = np.array([0.2, 0.7, 0.5])
  mu2 = np.array([0.9, 0.1])
  z1, z2 = states(3), states(2)
  q1 = np.prod(np.where(z1 == 1, mu1, 1 - mu1), 1)  # [8]
  q2 = np.prod(np.where(z2 == 1, mu2, 1 - mu2), 1)  # [4]
  expected = -(q1 @ brute_log_joint(params) @ q2)
  np.testing.assert_allclose(rbm.energy(params, mu1, mu2), expected,
                             rtol=1e-5)
  assert rbm.energy(params, jnp.ones((5, 3)), jnp.ones(2)).shape == (5,)
  assert rbm.energy(params, jnp.ones((5, 1, 3)),
                    jnp.ones((4, 2))).shape == (5, 4)


# ------------------------------------------------------------------ sampling


def chi_squared_p_value(z1, z2, probs):
  counts = np.bincount(state_index(z1, z2), minlength=probs.size)
  expected = probs.ravel() * counts.sum()
  assert expected.min() >= 5, "the chi-squared approximation needs counts >= 5"
  return stats.chisquare(counts, expected).pvalue


GIBBS_PARAMS = random_params(8, 3, 3, scale=1.0, bias_scale=0.5)
NUM_GIBBS_CHAINS = 20_000


def test_gibbs_chains_reach_the_exact_distribution():
  probs = brute_probs(GIBBS_PARAMS)  # [8, 8], 64 states
  z1, z2 = rbm.sample(jax.random.PRNGKey(0), GIBBS_PARAMS, NUM_GIBBS_CHAINS,
                      num_sweeps=30)
  assert z1.shape == (NUM_GIBBS_CHAINS, 3) and z2.dtype == jnp.float32
  assert set(np.unique(np.asarray(z1))) == {0., 1.}
  assert chi_squared_p_value(z1, z2, probs) > SIGNIFICANCE


def test_chi_squared_check_rejects_the_factorial_sampler():
  """beta = 0 sweeps sample the factorial base, not the RBM: must fail."""
  probs = brute_probs(GIBBS_PARAMS)
  key_init, key_sweep = jax.random.split(jax.random.PRNGKey(0))
  chains = rbm.init_chains(key_init, GIBBS_PARAMS, NUM_GIBBS_CHAINS)
  chains = rbm.gibbs_sweeps(key_sweep, GIBBS_PARAMS, chains, 30, beta=0.)
  assert chi_squared_p_value(chains.z1, chains.z2, probs) < SIGNIFICANCE
  # ... and it does sample the factorial base exactly.
  a1, a2, _ = (np.asarray(p, np.float64) for p in GIBBS_PARAMS)
  base = brute_probs(rbm.RBMParams(a1, a2, np.zeros((3, 3))))
  assert chi_squared_p_value(chains.z1, chains.z2, base) > SIGNIFICANCE


def test_init_chains_are_factorial_and_beta_scales_couplings():
  params = GIBBS_PARAMS
  chains = rbm.init_chains(jax.random.PRNGKey(1), params, NUM_GIBBS_CHAINS)
  for z, a in ((chains.z1, params.a1), (chains.z2, params.a2)):
    p = jax.nn.sigmoid(a)
    se = np.sqrt(p * (1 - p) / z.shape[0])
    assert np.all(np.abs(z.mean(0) - p) < 4 * se)
  # beta = 0.5 on W samples the RBM with couplings W / 2.
  halved = params._replace(w=params.w / 2)
  chains = rbm.gibbs_sweeps(jax.random.PRNGKey(2), params, chains, 30,
                            beta=0.5)
  assert chi_squared_p_value(chains.z1, chains.z2,
                             brute_probs(halved)) > SIGNIFICANCE
  assert chi_squared_p_value(chains.z1, chains.z2,
                             brute_probs(params)) < SIGNIFICANCE


# ------------------------------------------------------------------------ AIS

# 500 chains x 500 temperatures: |error| / stderr was at most 1.37 over keys
# 8..13 and the four scales (stderr from 0.0003 at scale 0.1 to 0.015 at 2).
AIS_CHAINS = 500
AIS_TEMPERATURES = 500


@pytest.mark.parametrize("scale", [0.1, 0.5, 1.0, 2.0])
def test_ais_agrees_with_exact_log_z(scale):
  params = random_params(7, 10, 10, scale=scale)
  exact = float(rbm.exact_log_z(params))
  result = rbm.ais_log_z(jax.random.PRNGKey(8), params, num_chains=AIS_CHAINS,
                         num_temperatures=AIS_TEMPERATURES)
  assert result.log_weights.shape == (AIS_CHAINS,)
  assert 0 < float(result.stderr) < 0.02
  assert abs(float(result.log_z) - exact) < 3 * float(result.stderr)
  np.testing.assert_allclose(
      result.log_z,
      jax.nn.logsumexp(result.log_weights) - np.log(AIS_CHAINS), rtol=1e-6)


def test_ais_stderr_shrinks_with_more_chains():
  params = random_params(9, 10, 10, scale=0.5)
  few, many = (rbm.ais_log_z(jax.random.PRNGKey(10), params, num_chains=c,
                             num_temperatures=AIS_TEMPERATURES)
               for c in (AIS_CHAINS // 4, AIS_CHAINS))
  # sqrt(4) = 2
  assert 1.5 < float(few.stderr) / float(many.stderr) < 2.7


# ------------------------------------------------------ grad-log-Z surrogate


def exact_draws(params, num, seed):
  """`num` exact samples of the RBM by enumeration, as `Chains`."""
  probs = brute_probs(params)
  n1, n2 = np.shape(params.w)
  index = np.random.default_rng(seed).choice(probs.size, num, p=probs.ravel())
  z1 = states(n1)[index // 2**n2]
  z2 = states(n2)[index % 2**n2]
  return rbm.Chains(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))


@jax.jit
def per_chain_gradients(params, chains):
  """Gradient of the one-chain surrogate for every chain, leaves `[C, ...]`."""
  def one(z1, z2):
    return jax.grad(rbm.log_z_gradient_surrogate)(
        params, rbm.Chains(z1[None], z2[None]))
  return jax.vmap(one)(chains.z1, chains.z2)


def max_z_score(params, chains):
  """max over coordinates |mean grad - grad exact log Z| / standard error."""
  exact = jax.grad(rbm.exact_log_z)(params)
  draws = per_chain_gradients(params, chains)
  total = jax.jit(jax.grad(rbm.log_z_gradient_surrogate))(params, chains)
  scores = []
  for leaf_exact, leaf_draws, leaf_total in zip(exact, draws, total):
    leaf_draws = np.asarray(leaf_draws, np.float64)
    mean = leaf_draws.mean(0)
    np.testing.assert_allclose(leaf_total, mean, rtol=1e-3)  # float32 sum
    se = leaf_draws.std(0, ddof=1) / np.sqrt(leaf_draws.shape[0])
    scores.append(np.abs(mean - np.asarray(leaf_exact)) / se)
  return max(np.max(s) for s in scores)


@pytest.mark.parametrize("source", ["exact", "gibbs"])
def test_surrogate_gradient_matches_grad_exact_log_z(source):
  if source == "exact":
    chains = exact_draws(GIBBS_PARAMS, NUM_GIBBS_CHAINS, seed=0)
  else:
    chains = rbm.Chains(*rbm.sample(jax.random.PRNGKey(14), GIBBS_PARAMS,
                                    NUM_GIBBS_CHAINS, num_sweeps=30))
  assert max_z_score(GIBBS_PARAMS, chains) < 4


def test_surrogate_gradient_from_the_factorial_base_fails():
  chains = rbm.init_chains(jax.random.PRNGKey(15), GIBBS_PARAMS,
                           NUM_GIBBS_CHAINS)
  assert max_z_score(GIBBS_PARAMS, chains) > 4


def test_surrogate_value_and_the_fixed_value_variant():
  params = GIBBS_PARAMS
  chains = exact_draws(params, 100, seed=1)
  value = rbm.log_z_gradient_surrogate(params, chains)
  np.testing.assert_allclose(value, -np.mean(rbm.energy(params, *chains)),
                             rtol=1e-6)
  chain_grad = jax.grad(rbm.log_z_gradient_surrogate, argnums=1)(params,
                                                                 chains)
  assert not np.any(chain_grad.z1) and not np.any(chain_grad.z2)
  fixed = rbm.log_z_with_surrogate_gradient(params, chains, 3.25)
  np.testing.assert_allclose(fixed, 3.25, rtol=1e-6)
  grads = [jax.grad(f)(params) for f in (
      lambda p: rbm.log_z_with_surrogate_gradient(p, chains, 3.25),
      lambda p: rbm.log_z_gradient_surrogate(p, chains))]
  for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ------------------------------------------------------------- jit and vmap


def test_jit_and_vmap():
  params = random_params(16, 3, 4)
  z1 = jnp.asarray(states(3))
  np.testing.assert_allclose(jax.jit(rbm.free_energy_z1)(params, z1),
                             rbm.free_energy_z1(params, z1), rtol=1e-6)
  per_row = jax.vmap(rbm.energy, in_axes=(None, 0, None))(params, z1,
                                                          jnp.ones(4))
  np.testing.assert_allclose(per_row, rbm.energy(params, z1, jnp.ones(4)),
                             rtol=1e-6)

  @jax.jit
  @functools.partial(jax.vmap, in_axes=(None, 0, 0))
  def sample_at(key, w, beta):  # a batch of couplings and traced betas
    p = params._replace(w=w)
    return rbm.gibbs_sweeps(key, p, rbm.init_chains(key, p, 4), 2, beta=beta)

  ws = jnp.stack([params.w, -params.w, 2 * params.w])
  chains = sample_at(jax.random.PRNGKey(2), ws, jnp.array([0., 0.5, 1.]))
  assert chains.z1.shape == (3, 4, 3) and chains.z2.shape == (3, 4, 4)
  assert set(np.unique(np.asarray(chains.z2))) <= {0., 1.}
  # beta = 0 ignores the couplings: rows 0 and 1 of a beta = 0 batch agree.
  chains = sample_at(jax.random.PRNGKey(2), ws, jnp.zeros(3))
  np.testing.assert_array_equal(chains.z1[0], chains.z1[1])
  np.testing.assert_array_equal(chains.z2[0], chains.z2[2])


# --------------------------------------------------------------- validation


def test_bad_params_raise_naming_the_array():
  good = random_params(0, 3, 4)
  for bad, match in [
      (good._replace(a1=jnp.zeros(2)), r"params\.a1"),
      (good._replace(a2=jnp.zeros((4, 1))), r"params\.a2"),
      (good._replace(w=jnp.zeros(12)), r"params\.w"),
      (rbm.RBMParams(jnp.zeros(0), jnp.zeros(4), jnp.zeros((0, 4))),
       r"params\.w"),
      ((1, 2, 3), "RBMParams")]:
    with pytest.raises(ValueError, match=match):
      rbm.check_params(bad)
  with pytest.raises(ValueError, match=r"params\.a1"):
    rbm.exact_log_z(good._replace(a1=jnp.zeros(2)))
  rbm.check_params(good)


def test_bad_arguments_raise_naming_the_value():
  params = random_params(0, 3, 4)
  key = jax.random.PRNGKey(0)
  chains = rbm.Chains(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
  cases = [
      (lambda: rbm.init_chains(key, params, 0), "num_chains=0"),
      (lambda: rbm.gibbs_sweeps(key, params, chains, 2.5), "num_sweeps=2.5"),
      (lambda: rbm.gibbs_sweeps(key, params, chains, 0), "num_sweeps=0"),
      (lambda: rbm.gibbs_sweeps(key, params, chains, 1, beta=-1.), "beta=-1"),
      (lambda: rbm.gibbs_sweeps(key, params, chains._replace(
          z1=jnp.zeros((2, 4))), 1), r"chains\.z1"),
      (lambda: rbm.gibbs_sweeps(key, params, chains._replace(
          z2=jnp.zeros((3, 4))), 1), r"chains\.z2"),
      (lambda: rbm.sample(key, params, 3, num_sweeps=-1), "num_sweeps=-1"),
      (lambda: rbm.ais_log_z(key, params, num_chains=1), "num_chains=1"),
      (lambda: rbm.ais_log_z(key, params, num_temperatures=1),
       "num_temperatures=1"),
      (lambda: rbm.energy(params, jnp.ones(4), jnp.ones(4)), r"z1\.shape"),
      (lambda: rbm.free_energy_z1(params, jnp.ones((2, 2))), r"z1\.shape"),
      (lambda: rbm.logits_z1_given_z2(params, jnp.ones(3)), r"z2\.shape"),
      (lambda: rbm.log_z_gradient_surrogate(params, chains._replace(
          z1=jnp.ones(3))), r"chains\.z1")]
  for call, match in cases:
    with pytest.raises(ValueError, match=match):
      call()


def test_advance_chains_starts_fresh_chains_or_continues_the_given_ones():
  params = rbm.RBMParams(jnp.array([0.5, -1.0]), jnp.array([1.0, 0.0, -0.5]),
                         0.3 * jnp.ones((2, 3)))
  key = jax.random.PRNGKey(3)
  init_key, sweep_key = jax.random.split(key)
  fresh = rbm.advance_chains(key, params, None, 5, 2)
  expected = rbm.gibbs_sweeps(sweep_key, params,
                              rbm.init_chains(init_key, params, 5), 2)
  np.testing.assert_array_equal(fresh.z1, expected.z1)
  np.testing.assert_array_equal(fresh.z2, expected.z2)
  continued = rbm.advance_chains(key, params, fresh, 5, 2)
  expected = rbm.gibbs_sweeps(sweep_key, params, fresh, 2)
  np.testing.assert_array_equal(continued.z1, expected.z1)
