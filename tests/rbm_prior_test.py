"""Tests of discrete_vi.stochastic.rbm_prior (the RBM prior of DVAE++,
Vahdat et al. 2018, Sec. 5) against float64 enumeration of tiny RBMs (3 + 3
or 3 + 4 units): the persistent chains, log p(z) with the exact log Z, the
exact and AIS log Z of `prepare_evaluation`, the training surrogate's
gradient against the exact grad log Z (and a wrong sampler that fails the
same check), the mean-field KL of Eq. (7), sampling, and validation."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.distributions import rbm
from discrete_vi.distributions import rbm_tempering
from discrete_vi.stochastic import rbm_prior

import stats

N1, N2 = 3, 3


def random_params(seed, n1=N1, n2=N2, scale=1.0):
  """Biases and couplings ~ N(0, scale^2), float32 (drawn with numpy)."""
  rng = np.random.default_rng(seed)
  return rbm.RBMParams(
      jnp.asarray(rng.standard_normal(n1), jnp.float32),
      jnp.asarray(rng.standard_normal(n2), jnp.float32),
      jnp.asarray(scale * rng.standard_normal((n1, n2)), jnp.float32))


def states(n):
  """All 2^n binary vectors, `[2^n, n]` float64."""
  return np.array(list(itertools.product([0., 1.], repeat=n)))


def every_pair(n1, n2):
  """(z1, z2) `[2^(n1 + n2), n1]`, `[2^(n1 + n2), n2]`: every joint state."""
  z = states(n1 + n2)
  return z[:, :n1], z[:, n1:]


def brute_log_z(params):
  """log Z by enumerating both halves, float64."""
  a1, a2, w = (np.asarray(p, np.float64) for p in params)
  z1, z2 = every_pair(a1.size, a2.size)
  neg_energy = z1 @ a1 + z2 @ a2 + np.sum((z1 @ w) * z2, -1)
  top = np.max(neg_energy)
  return float(top + np.log(np.sum(np.exp(neg_energy - top))))


def exact_log_z_grad(params):
  """grad log Z (a1, a2, w) by enumeration (jax, float32), flattened."""
  n1, n2 = rbm.num_units(params)
  z1, z2 = (jnp.asarray(z, jnp.float32) for z in every_pair(n1, n2))
  log_z = lambda p: jax.nn.logsumexp(-rbm.energy(p, z1, z2))
  return np.concatenate([np.ravel(g) for g in jax.grad(log_z)(params)])


def exact_chains(key, params, num_chains):
  """`rbm.Chains` of exact draws from p (by enumeration)."""
  n1, n2 = rbm.num_units(params)
  z1, z2 = (jnp.asarray(z, jnp.float32) for z in every_pair(n1, n2))
  index = jax.random.categorical(key, -rbm.energy(params, z1, z2),
                                 shape=(num_chains,))
  return rbm.Chains(z1[index], z2[index])


# -- the persistent chains ----------------------------------------------------


def test_chains_keep_their_shapes_and_move():
  prior = rbm_prior.RBMPrior(gibbs_chains=64, gibbs_sweeps=2)
  params = random_params(0)
  chains = prior.init_state(jax.random.PRNGKey(0), params)
  assert chains.z1.shape == (64, N1) and chains.z2.shape == (64, N2)
  moved, diagnostics = prior.update_state(jax.random.PRNGKey(1), params,
                                         chains)
  assert diagnostics == {}  # plain block Gibbs
  for before, after in zip(chains, moved):
    assert after.shape == before.shape and after.dtype == before.dtype
    assert set(np.unique(after)) <= {0.0, 1.0}
  assert not (np.array_equal(moved.z1, chains.z1) and
              np.array_equal(moved.z2, chains.z2))
  fresh, _ = prior.update_state(jax.random.PRNGKey(1), params, None)
  assert fresh.z1.shape == (64, N1) and fresh.z2.shape == (64, N2)


@pytest.mark.parametrize("decay_on", ["couplings", "all"])
def test_training_terms_are_the_sweeps_a_weighted_log_z_and_the_decay(
    decay_on):
  prior = rbm_prior.RBMPrior(gibbs_chains=16, gibbs_sweeps=3,
                             weight_decay=0.2, weight_decay_on=decay_on)
  params = random_params(1)
  decayed = [decay_on == "all", decay_on == "all", True]  # a1, a2, W
  chains = prior.init_state(jax.random.PRNGKey(2), params)
  key, kl_weight = jax.random.PRNGKey(3), 0.25
  terms = prior.training_terms(key, params, chains, kl_weight)
  expected, _ = prior.update_state(key, params, chains)
  np.testing.assert_array_equal(terms.chains.z1, expected.z1)
  np.testing.assert_array_equal(terms.chains.z2, expected.z2)
  # Value: the weight decay only (log Z is unknown while training).
  squares = sum(float(jnp.sum(jnp.square(p)))
                for p, on in zip(params, decayed) if on)
  np.testing.assert_allclose(terms.loss, 0.1 * squares, rtol=1e-6)
  # Gradient: kl_weight * the chains' mean of -grad E, + rate * params.
  grad = jax.grad(lambda p: prior.training_terms(key, p, chains,
                                                 kl_weight).loss)(params)
  z1, z2 = (np.asarray(z, np.float64) for z in expected)
  neg_energy_grad = (z1.mean(0), z2.mean(0), z1.T @ z2 / len(z1))
  for g, e, p, on in zip(grad, neg_energy_grad, params, decayed):
    np.testing.assert_allclose(g, kl_weight * e + 0.2 * on * np.asarray(p),
                               rtol=1e-5, atol=1e-6)
  assert sorted(terms.diagnostics) == ["chains_mean_z1", "chains_mean_z2",
                                       "rbm_weight_decay_loss"]
  np.testing.assert_allclose(terms.diagnostics["chains_mean_z1"],
                             np.mean(expected.z1))


def test_tempered_chains_feed_the_surrogate_from_their_beta_one_replicas():
  prior = rbm_prior.RBMPrior(gibbs_chains=16, gibbs_sweeps=3,
                             tempering_temperatures=4, weight_decay=0.0)
  params = random_params(1, scale=2.0)
  state = prior.init_state(jax.random.PRNGKey(2), params)
  assert isinstance(state, rbm_tempering.TemperedChains)
  assert state.z1.shape == (4, 16, N1) and state.z2.shape == (4, 16, N2)
  np.testing.assert_allclose(np.asarray(prior.betas())[[0, -1]], [0.1, 1.0],
                             rtol=1e-6)
  key = jax.random.PRNGKey(3)
  terms = jax.jit(lambda p, s: prior.training_terms(key, p, s, 1.0))(
      params, state)
  assert isinstance(terms.chains, rbm_tempering.TemperedChains)
  assert int(terms.chains.sweeps_done) == 3
  swap = float(terms.diagnostics["tempering_min_swap"])
  assert 0.0 <= swap <= 1.0
  # The surrogate's gradient is that of the beta = 1 replicas after the
  # sweeps (the hotter replicas never reach grad log Z).
  grad = jax.grad(lambda p: prior.training_terms(key, p, state, 1.0).loss)(
      params)
  target = rbm_tempering.target_chains(terms.chains)
  expected = jax.grad(prior.log_z_surrogate)(params, target)
  for g, e in zip(grad, expected):
    np.testing.assert_allclose(g, e, rtol=1e-6)
  np.testing.assert_allclose(terms.diagnostics["chains_mean_z1"],
                             np.mean(target.z1))


def test_chain_health_is_reported_with_the_evaluation():
  """`prepare_evaluation` with the state reports the chains' energy gap:
  about 0 for exact samples, large for chains stuck far from the RBM."""
  prior = rbm_prior.RBMPrior(log_z="exact", chain_gap_sweeps=20)
  params = random_params(5, scale=1.0)
  params = params._replace(a1=params.a1 + 3.0, a2=params.a2 + 3.0)
  _, info = prior.prepare_evaluation(jax.random.PRNGKey(0), params)
  assert "chain_gap" not in info  # no state, no check
  exact = exact_chains(jax.random.PRNGKey(1), params, 4000)
  _, info = prior.prepare_evaluation(jax.random.PRNGKey(2), params, exact)
  assert {"chain_energy", "chain_energy_after", "chain_gap",
          "chain_gap_stderr"} <= set(info)
  assert abs(info["chain_gap"]) < 4 * info["chain_gap_stderr"] + 1e-3, info
  stuck = rbm.Chains(jnp.zeros((4000, N1)), jnp.zeros((4000, N2)))
  _, info = prior.prepare_evaluation(jax.random.PRNGKey(2), params, stuck)
  assert info["chain_gap"] > 5.0 and info["chain_gap"] > 20 * info[
      "chain_gap_stderr"], info
  assert np.isclose(info["chain_energy"], 0.0)  # E(0, 0) = 0


# -- the training surrogate of log Z (Appendix E) -------------------------------


def surrogate_gradient_draws(prior, params, chain_sets):
  """`[D, n1 + n2 + n1 n2]` grad of the surrogate for each set of chains."""
  grad = jax.grad(prior.log_z_surrogate)
  flat = lambda g: jnp.concatenate([jnp.ravel(x) for x in g])
  return np.asarray(jax.jit(jax.vmap(lambda c: flat(grad(params, c))))(
      chain_sets))


def test_surrogate_gradient_is_grad_log_z_for_exact_chains():
  prior = rbm_prior.RBMPrior(gibbs_chains=4)
  params = random_params(2, scale=1.5)
  exact = exact_log_z_grad(params)
  num_draws = 4000
  keys = jax.random.split(jax.random.PRNGKey(4), num_draws)
  chain_sets = jax.vmap(lambda k: exact_chains(k, params, 4))(keys)
  stats.assert_unbiased(surrogate_gradient_draws(prior, params, chain_sets),
                        exact)
  # Chains from the factorial base (no sweeps) miss the couplings' effect:
  # the same check fails.
  base = jax.vmap(lambda k: prior.init_state(k, params))(keys)
  wrong = surrogate_gradient_draws(prior, params, base)
  assert np.max(np.abs(stats.z_scores(wrong, exact))) > 4


# -- log Z and log p(z) for evaluation -------------------------------------------


def test_exact_log_z_and_log_prob_normalise_by_enumeration():
  prior = rbm_prior.RBMPrior(log_z="exact")
  params = random_params(3, scale=1.5)
  log_z, info = prior.prepare_evaluation(jax.random.PRNGKey(0), params)
  assert info["log_z_method"] == "exact" and info["log_z_stderr"] == 0.0
  assert isinstance(log_z, rbm_prior.LogZ) and float(log_z.stderr) == 0.0
  assert isinstance(info["log_z"], float) and info["log_z"] == float(
      log_z.value)
  np.testing.assert_allclose(info["log_z"], brute_log_z(params), rtol=1e-6)
  z1, z2 = every_pair(N1, N2)
  log_p = np.asarray(prior.log_prob(params, z1, z2, log_z), np.float64)
  np.testing.assert_allclose(np.sum(np.exp(log_p)), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match="prepare_evaluation"):
    prior.log_prob(params, z1, z2, None)


def test_ais_log_z_agrees_with_enumeration_within_its_error():
  prior = rbm_prior.RBMPrior(log_z="ais", ais_num_chains=256,
                             ais_num_temperatures=100)
  params = random_params(4, n2=4, scale=1.5)
  exact = brute_log_z(params)
  uncoupled = float(np.sum(np.logaddexp(0.0, np.concatenate(params[:2]))))
  assert abs(exact - uncoupled) > 0.5  # the couplings matter
  _, info = prior.prepare_evaluation(jax.random.PRNGKey(5), params)
  assert info["log_z_method"] == "ais"
  assert 0.0 < info["log_z_stderr"] < 0.05, info
  assert abs(info["log_z"] - exact) < max(4 * info["log_z_stderr"], 0.01), (
      info, exact)


def test_auto_log_z_is_exact_for_a_small_half_else_ais():
  prior = rbm_prior.RBMPrior()
  assert prior.log_z_method_for((20, 500)) == "exact"
  assert prior.log_z_method_for((21, 21)) == "ais"
  with pytest.raises(ValueError, match="log_z='exact'"):
    rbm_prior.RBMPrior(log_z="exact").log_z_method_for((21, 25))


# -- the KL of Eq. (7) and sampling ------------------------------------------------


def test_mean_field_kl_plus_log_z_is_the_kl_by_enumeration():
  """With nu1 = mu1, Eq. (7) is KL(q1 q2 || p) of a factorial q."""
  params = random_params(5)
  logits1 = jnp.array([0.5, -1.0, 2.0])
  logits2 = jnp.array([-0.3, 1.2, 0.0])
  kl = rbm_prior.RBMPrior.kl_without_log_z(
      params, logits1, jax.nn.sigmoid(logits1), logits2)
  z1, z2 = every_pair(N1, N2)
  q1, q2 = (np.asarray(jax.nn.sigmoid(l), np.float64)
            for l in (logits1, logits2))
  log_q = (np.sum(z1 * np.log(q1) + (1 - z1) * np.log1p(-q1), -1) +
           np.sum(z2 * np.log(q2) + (1 - z2) * np.log1p(-q2), -1))
  a1, a2, w = (np.asarray(p, np.float64) for p in params)
  log_p = (z1 @ a1 + z2 @ a2 + np.sum((z1 @ w) * z2, -1) -
           brute_log_z(params))
  brute = np.sum(np.exp(log_q) * (log_q - log_p))
  np.testing.assert_allclose(float(kl) + brute_log_z(params), brute,
                             rtol=1e-5)


def test_samples_have_the_exact_marginals():
  prior = rbm_prior.RBMPrior(sample_sweeps=20)
  params = random_params(6)
  z1, z2 = prior.sample(jax.random.PRNGKey(7), params, 4000)
  assert z1.shape == (4000, N1) and z2.shape == (4000, N2)
  a, b = every_pair(N1, N2)
  log_p = -np.asarray(rbm.energy(params, a, b), np.float64)
  p = np.exp(log_p - np.max(log_p))
  p /= p.sum()
  exact = np.concatenate([p @ a, p @ b])  # [n1 + n2] marginals
  stats.assert_unbiased(np.concatenate([z1, z2], -1), exact)


def test_parameters_start_at_zero():
  for module, shapes in ((rbm_prior.RBMParameters(3), (3, 3)),
                         (rbm_prior.RBMParameters(2, 5), (2, 5))):
    params = module.init(jax.random.PRNGKey(0))["params"]
    assert params["a1"].shape == shapes[:1] and params["a2"].shape == (
        shapes[1],) and params["w"].shape == shapes
    assert all(np.all(np.asarray(p) == 0) for p in params.values())


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(gibbs_chains=0), "gibbs_chains=0"),
    (dict(gibbs_chains=True), "gibbs_chains=True"),
    (dict(gibbs_sweeps=1.5), "gibbs_sweeps=1.5"),
    (dict(sample_sweeps=0), "sample_sweeps=0"),
    (dict(log_z="magic"), "log_z='magic'"),
    (dict(ais_num_chains=1), "ais_num_chains=1"),
    (dict(ais_num_temperatures=1), "ais_num_temperatures=1"),
    (dict(weight_decay=-1.0), "weight_decay=-1.0"),
])
def test_bad_settings_raise_naming_the_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    rbm_prior.RBMPrior(**kwargs)
