"""Tests of discrete_vi.models.dvaepp (DVAE++, Vahdat et al. 2018, Secs. 4-5).

The exactness tests use tiny linear models (3 pixels, two groups of 2 units)
whose bounds are computed here independently of the model's code: by
enumeration over z and Gauss-Legendre quadrature over zeta (4-D, at a
moderate beta = 3 where the smoothed densities are smooth enough for
12 nodes per axis to be exact to ~1e-6).
"""

import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from configs import dvaepp as dvaepp_config
from discrete_vi import estimators
from discrete_vi import training
from discrete_vi.distributions import overlapping
from discrete_vi.distributions import rbm
from discrete_vi.distributions import rbm_tempering
from discrete_vi.models import dvaepp
from discrete_vi.models import dvaepp_bounds as bounds
from discrete_vi.stochastic import rbm_prior

import stats
import budgets

PIXELS, UNITS, BETA = 3, 2, 3.0
MEAN = np.array([0.3, 0.6, 0.5], np.float32)
X = jnp.array([[1., 0., 1.], [0., 1., 1.]])
NODES, WEIGHTS = np.polynomial.legendre.leggauss(12)
NODES, WEIGHTS = (NODES + 1) / 2, WEIGHTS / 2  # on [0, 1]
NUM_DRAWS = 10_000


def tiny(prior, hierarchical=True, elbo_kind="joint", num_groups=2,
         kl_warmup_steps=0, **rbm_settings):
  """A tiny model; `rbm_settings` are `rbm_prior.RBMPrior` fields."""
  return dvaepp.DVAEPP(MEAN, data_dim=PIXELS, latent_dim=UNITS, prior=prior,
                       num_groups=num_groups, hierarchical=hierarchical,
                       elbo_kind=elbo_kind, kl_warmup_steps=kl_warmup_steps,
                       rbm=rbm_prior.RBMPrior(**rbm_settings))


def random_params(model, seed=0, scale=0.8):
  params = model.init(jax.random.PRNGKey(seed), X)
  flat, unravel = ravel_pytree(params)
  return unravel(scale * jax.random.normal(jax.random.PRNGKey(seed + 1),
                                           flat.shape))


# -- an independent implementation of the tiny linear models ----------------

def lin(p, h):
  return h @ p["out"]["kernel"] + p["out"]["bias"]


def log_bern(logits, z):
  return jnp.sum(z * jax.nn.log_sigmoid(logits) +
                 (1 - z) * jax.nn.log_sigmoid(-logits), -1)


def kl_bern(lq, lp):
  q = jax.nn.sigmoid(lq)
  return jnp.sum(q * (jax.nn.log_sigmoid(lq) - jax.nn.log_sigmoid(lp)) +
                 (1 - q) * (jax.nn.log_sigmoid(-lq) - jax.nn.log_sigmoid(-lp)),
                 -1)


def log_r(zeta, z, beta):
  """Exponential smoothing log r(zeta|z) (Sec. 3), per unit."""
  d = jnp.where(z == 1, 1 - zeta, zeta)
  return jnp.log(beta) - beta * d - jnp.log1p(-jnp.exp(-beta))


def log_mix(logits, zeta, beta):
  """log q(zeta) = log((1-q) r(zeta|0) + q r(zeta|1)) summed over units."""
  return jnp.sum(jnp.logaddexp(jax.nn.log_sigmoid(-logits) + log_r(zeta, 0, beta),
                               jax.nn.log_sigmoid(logits) + log_r(zeta, 1, beta)),
                 -1)


def grid():
  """Gauss-Legendre points `[S, 2]` and log weights `[S]` on [0, 1]^2."""
  points = np.array(list(itertools.product(NODES, repeat=UNITS)), np.float32)
  weights = np.array([np.prod(w) for w in itertools.product(WEIGHTS,
                                                            repeat=UNITS)])
  return jnp.asarray(points), jnp.asarray(np.log(weights), jnp.float32)


def support():
  return jnp.asarray(list(itertools.product([0., 1.], repeat=UNITS)))


def encode2(params, x, zeta1, hierarchical):
  lead = jnp.broadcast_shapes(x.shape[:-1], zeta1.shape[:-1])
  h = jnp.broadcast_to(x - MEAN, lead + (PIXELS,))
  if hierarchical:
    h = jnp.concatenate([h, jnp.broadcast_to(zeta1, lead + (UNITS,))], -1)
  return lin(params["encoders_1"], h)


def decode(params, zeta1, zeta2):
  zeta1, zeta2 = jnp.broadcast_arrays(zeta1, zeta2)
  return lin(params["decoder"], jnp.concatenate([zeta1, zeta2], -1))


def prior2(params, prior, zeta1):
  if prior == "directed":
    return lin(params["prior_link"], zeta1)
  return params["prior_logits_2"]


def rbm_of(params):
  return rbm.RBMParams(params["rbm"]["a1"], params["rbm"]["a2"],
                       params["rbm"]["w"])


def rbm_log_prob(params):
  """log p(z1, z2) `[4, 4]` of the RBM over the support and log Z."""
  r = rbm_of(params)
  z = support()
  neg_energy = (z @ r.a1)[:, None] + (z @ r.a2)[None] + (z @ r.w) @ z.T
  log_z = jax.scipy.special.logsumexp(neg_energy)
  return neg_energy - log_z, log_z


def quadrature(params, x, hierarchical):
  """Shared pieces at grid points: axes [S (zeta1), T (zeta2), B]."""
  points, log_w = grid()
  zeta1 = points[:, None, None, :]  # [S, 1, 1, 2]
  zeta2 = points[None, :, None, :]  # [1, T, 1, 2]
  l1 = lin(params["encoders_0"], x - MEAN)  # [B, 2]
  l2 = encode2(params, x, zeta1[:, 0], hierarchical)[:, None]  # [S, 1, B, 2]
  log_q1 = log_mix(l1, zeta1, BETA)  # [S, 1, B]
  log_q2 = log_mix(l2, zeta2, BETA)  # [S, T, B]
  log_px = log_bern(decode(params, zeta1, zeta2), x)  # [S, T, B]
  log_w = log_w[:, None, None] + log_w[None, :, None]  # [S, T, 1]
  return dict(zeta1=zeta1, zeta2=zeta2, l1=l1, l2=l2, log_q1=log_q1,
              log_q2=log_q2, log_px=log_px, log_w=log_w)


def expect(terms, value):
  """E_{q(zeta1, zeta2 | x)}[value] by quadrature, `[B]`."""
  weight = jnp.exp(terms["log_w"] + terms["log_q1"] + terms["log_q2"])
  return jnp.sum(weight * value, (0, 1))


def exact_directed(params, x, prior, hierarchical):
  """(joint ELBO, marginal ELBO, log p(x) of the relaxed model), `[B]`."""
  t = quadrature(params, x, hierarchical)
  a1 = params["prior_logits_1"]
  p2 = prior2(params, prior, t["zeta1"])  # [S, 1, 1, 2] or [2]
  kl2 = kl_bern(t["l2"], p2)  # [S, 1, B]
  joint = (expect(t, t["log_px"]) - kl_bern(t["l1"], a1) -
           expect(t, jnp.broadcast_to(kl2, t["log_px"].shape)))
  log_p1 = log_mix(a1, t["zeta1"], BETA)  # [S, 1, 1]
  log_p2 = log_mix(p2, t["zeta2"], BETA)  # [S, T, 1]
  marginal = expect(t, t["log_px"] + log_p1 + log_p2 - t["log_q1"] -
                    t["log_q2"])
  log_px = jax.scipy.special.logsumexp(
      t["log_w"] + log_p1 + log_p2 + t["log_px"], (0, 1))
  return joint, marginal, log_px


def nu1_of(t):
  """q(z1 = 1 | x, zeta1) of exponential smoothing: logit + beta(2 zeta - 1)."""
  return jax.nn.sigmoid(t["l1"] + BETA * (2 * t["zeta1"] - 1))  # [S, 1, B, 2]


def brute_force_rbm_kl(params, t):
  r"""KL(q(z, zeta|x) || p(z, zeta)) = E_q[log q(z1|x) + log q(z2|x, zeta1)
  - log p(z1, z2)] (the r's cancel), enumerating z and integrating zeta1,
  `[B]`."""
  z = support()  # [4, 2]
  log_p, _ = rbm_log_prob(params)  # [4, 4]
  log_q1 = log_bern(t["l1"][:, None], z)  # [B, 4]
  l2 = t["l2"][:, 0]  # [S, B, 2]
  log_q2 = log_bern(l2[:, :, None], z)  # [S, B, 4]
  # q(z1 | x, zeta1) = q(z1|x) r(zeta1|z1) / q(zeta1|x).
  zeta1 = t["zeta1"][:, 0]  # [S, 1, 2]
  log_r1 = jnp.sum(log_r(zeta1[:, :, None], z, BETA), -1)  # [S, 1, 4]
  log_q_zeta1 = log_mix(t["l1"], zeta1, BETA)  # [S, B]
  log_post1 = log_q1 + log_r1 - log_q_zeta1[..., None]  # [S, B, 4]
  joint = (log_post1[..., :, None] + log_q2[..., None, :])  # [S, B, 4, 4]
  integrand = jnp.exp(joint) * (log_q1[..., :, None] + log_q2[..., None, :] -
                                log_p)
  weight = jnp.exp(grid()[1][:, None] + log_q_zeta1)  # [S, B]
  return jnp.sum(weight * jnp.sum(integrand, (-2, -1)), 0)


def analytic_rbm_kl(params, t, hierarchical):
  """Eq. (7) through `RBMPrior.kl_without_log_z`, integrated over zeta1."""
  _, log_z = rbm_log_prob(params)
  l2 = t["l2"][:, 0]  # [S, B, 2]
  nu1 = nu1_of(t)[:, 0] if hierarchical else jax.nn.sigmoid(t["l1"])
  kl = rbm_prior.RBMPrior.kl_without_log_z(rbm_of(params), t["l1"], nu1,
                                           l2)  # [S, B]
  weight = jnp.exp(grid()[1][:, None] + t["log_q1"][:, 0])
  return jnp.sum(weight * kl, 0) + log_z


def exact_rbm(params, x, hierarchical):
  """(joint ELBO with the KL of Eq. 7, log p(x) of the relaxed model), `[B]`."""
  t = quadrature(params, x, hierarchical)
  joint = expect(t, t["log_px"]) - brute_force_rbm_kl(params, t)
  log_p, _ = rbm_log_prob(params)  # [4, 4]
  z = support()
  log_r_1 = jnp.sum(log_r(t["zeta1"][..., None, :], z, BETA), -1)  # [S,1,1,4]
  log_r_2 = jnp.sum(log_r(t["zeta2"][..., None, :], z, BETA), -1)  # [1,T,1,4]
  log_p_zeta = jax.scipy.special.logsumexp(
      log_p + log_r_1[..., :, None] + log_r_2[..., None, :], (-2, -1))
  log_px = jax.scipy.special.logsumexp(t["log_w"] + log_p_zeta + t["log_px"],
                                       (0, 1))
  return joint, log_px


# -- Monte Carlo draws of the model's objective and gradients ---------------

def objective_draws(model, params, estimator, state=None, num=NUM_DRAWS):
  def one(key):
    return model.loss(params, key, X, step=0, estimator=estimator,
                      state=state)[1].objective
  keys = jax.random.split(jax.random.PRNGKey(7), num)
  return np.asarray(jax.jit(jax.vmap(one))(keys))


CASES = [("directed", True, "joint"), ("directed", True, "marginal"),
         pytest.param("factorial", False, "marginal", marks=pytest.mark.slow)]


@pytest.mark.parametrize("prior,hierarchical,elbo_kind", CASES)
def test_directed_bounds_are_unbiased_and_ordered(prior, hierarchical,
                                                  elbo_kind):
  model = tiny(prior, hierarchical, elbo_kind)
  params = random_params(model)
  joint, marginal, log_px = jax.jit(exact_directed, static_argnums=(2, 3))(
      params, X, prior, hierarchical)
  # Appendix D: the marginal bound is the tighter; both bound log p(x).
  assert np.all(np.asarray(marginal) >= np.asarray(joint) + 1e-4)
  assert np.all(np.asarray(log_px) >= np.asarray(marginal) + 1e-4)
  estimator = estimators.make("overlapping_exponential", beta=BETA)
  draws = objective_draws(model, params, estimator)
  stats.assert_unbiased(draws, joint if elbo_kind == "joint" else marginal)
  # ... and the test can tell the two bounds apart.
  other = marginal if elbo_kind == "joint" else joint
  assert np.max(np.abs(stats.z_scores(draws, other))) > 4


@pytest.mark.parametrize("hierarchical", [True, False])
def test_rbm_kl_of_eq7_equals_brute_force(hierarchical):
  model = tiny("rbm", hierarchical)
  params = random_params(model, seed=3)

  @jax.jit
  def both(params):
    t = quadrature(params, X, hierarchical)
    return analytic_rbm_kl(params, t, hierarchical), brute_force_rbm_kl(params,
                                                                        t)
  analytic, brute_force = both(params)
  np.testing.assert_allclose(analytic, brute_force, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hierarchical", [
    True, pytest.param(False, marks=pytest.mark.slow)])
def test_rbm_objective_is_unbiased_for_the_joint_bound_plus_log_z(hierarchical):
  model = tiny("rbm", hierarchical, gibbs_chains=2, gibbs_sweeps=1)
  params = random_params(model, seed=3)
  joint, log_px = jax.jit(exact_rbm, static_argnums=2)(params, X,
                                                       hierarchical)
  assert np.all(np.asarray(log_px) > np.asarray(joint) + 1e-4)
  _, log_z = rbm_log_prob(params)
  estimator = estimators.make("overlapping_exponential", beta=BETA)
  chains = model.init_state(jax.random.PRNGKey(0), params, X, estimator)
  draws = objective_draws(model, params, estimator, chains)
  stats.assert_unbiased(draws, joint + log_z)


def exact_rbm_chains(key, params, num_chains):
  """`rbm.Chains` of exact draws from the tiny RBM (by enumeration)."""
  log_p, _ = rbm_log_prob(params)
  index = jax.random.categorical(key, log_p.reshape(-1), shape=(num_chains,))
  z = support()
  return rbm.Chains(z[index // 4], z[index % 4])


def test_rbm_parameter_gradient_is_unbiased():
  # The chains start at exact samples, which the model's Gibbs sweeps keep
  # exact, so grad log Z from them is unbiased.
  model = tiny("rbm", True, gibbs_chains=1, gibbs_sweeps=1,
               weight_decay=0.0)
  params = random_params(model, seed=3)
  estimator = estimators.make("overlapping_exponential", beta=BETA)

  def draw(key):
    chain_key, loss_key = jax.random.split(key)
    chains = exact_rbm_chains(chain_key, params, 1)
    grads = jax.grad(lambda p: model.loss(p, loss_key, X, step=0,
                                          estimator=estimator,
                                          state=chains)[0])(params)
    return ravel_pytree(grads["rbm"])[0]

  def exact_loss(p):
    joint, _ = exact_rbm(p, X, True)
    return -jnp.mean(joint)

  exact = ravel_pytree(jax.jit(jax.grad(exact_loss))(params)["rbm"])[0]
  keys = jax.random.split(jax.random.PRNGKey(11), NUM_DRAWS)
  draws = np.asarray(jax.jit(jax.vmap(draw))(keys))
  stats.assert_unbiased(draws, exact)
  # Without the log Z term the gradient would be visibly wrong.
  log_z_grad = jax.jit(jax.grad(lambda p: rbm_log_prob(p)[1]))(params)
  shift = ravel_pytree(log_z_grad["rbm"])[0]
  assert np.max(np.abs(stats.z_scores(draws, exact - shift))) > 4


def test_weight_decay_is_l2_with_gradient_rate_times_params():
  params = rbm.RBMParams(jnp.array([1., -2.]), jnp.array([0.5, 0.]),
                         jnp.array([[1., 2.], [-3., 0.]]))
  prior = rbm_prior.RBMPrior(weight_decay=0.1, weight_decay_on="all")
  value, grad = jax.value_and_grad(prior.weight_decay_loss)(params)
  np.testing.assert_allclose(value, 0.05 * (5 + 0.25 + 14), rtol=1e-6)
  for g, p in zip(grad, params):
    np.testing.assert_allclose(g, 0.1 * p, rtol=1e-6)
  # The authors' (default): W only.
  prior = rbm_prior.RBMPrior(weight_decay=0.1)
  value, grad = jax.value_and_grad(prior.weight_decay_loss)(params)
  np.testing.assert_allclose(value, 0.05 * 14, rtol=1e-6)
  np.testing.assert_allclose(grad.w, 0.1 * params.w, rtol=1e-6)
  assert not np.any(grad.a1) and not np.any(grad.a2)


# -- evaluation on the discrete model ---------------------------------------

def exact_discrete(params, prior, x):
  """log p(x) of the discrete model (beta = infinity) by enumeration, `[B]`."""
  z = support()
  z1, z2 = z[:, None, None], z[None, :, None]  # [4, 1, 1, 2], [1, 4, 1, 2]
  log_px = log_bern(decode(params, z1, z2), x)  # [4, 4, B]
  if prior == "rbm":
    log_p = rbm_log_prob(params)[0][..., None]
  else:
    log_p = (log_bern(params["prior_logits_1"], z1) +
             log_bern(prior2(params, prior, z1), z2))
  return jax.scipy.special.logsumexp(log_p + log_px, (0, 1))


@pytest.mark.parametrize("prior,hierarchical", [
    ("directed", True), ("rbm", False),
    pytest.param("factorial", False, marks=pytest.mark.slow)])
def test_discrete_evaluation_is_the_exact_marginal_likelihood(prior,
                                                              hierarchical):
  model = tiny(prior, hierarchical, log_z="exact")
  params = random_params(model, seed=5)
  context, info = model.prepare_evaluation(params, jax.random.PRNGKey(0))
  if prior == "rbm":
    assert info["log_z_method"] == "exact" and info["log_z_stderr"] == 0.0
    np.testing.assert_allclose(info["log_z"], rbm_log_prob(params)[1],
                               rtol=1e-5)
  else:
    assert context is None and info == {}
  exact = jax.jit(exact_discrete, static_argnums=1)(params, prior, X)
  # Sum over every hard configuration of q(z|x) w(z) = p(x): the weights
  # (decoder at hard z, prior at hard parents) are exact.

  @jax.jit
  def weighted_sum(params, context):
    z = support()
    z1 = jnp.repeat(z, 4, 0)[:, None, :]  # [16, 1, 2]: every (z1, z2)
    z2 = jnp.tile(z, (4, 1))[:, None, :]
    z1, z2 = (jnp.broadcast_to(z, (16,) + X.shape[:1] + (UNITS,))
              for z in (z1, z2))
    l1 = jnp.broadcast_to(lin(params["encoders_0"], X - MEAN), z1.shape)
    l2 = encode2(params, X, z1, hierarchical)
    log_q = log_bern(l1, z1) + log_bern(l2, z2)  # [16, B]
    log_w = model.log_weight_at(params, X, ((z1, l1), (z2, l2)), context)
    return jax.scipy.special.logsumexp(log_q + log_w, 0)

  np.testing.assert_allclose(weighted_sum(params, context), exact, rtol=1e-5,
                             atol=1e-5)
  bound = jax.jit(lambda p, c, k: model.log_likelihood(
      p, k, X, num_samples=20_000, chunk_size=5_000, context=c))(
          params, context, jax.random.PRNGKey(2))
  np.testing.assert_allclose(bound, exact, atol=0.03)
  assert np.all(np.asarray(bound) <= np.asarray(exact) + 0.01)


def test_log_likelihood_of_the_rbm_needs_the_evaluation_context():
  model = tiny("rbm")
  params = model.init(jax.random.PRNGKey(0), X)
  with pytest.raises(ValueError, match="prepare_evaluation"):
    model.log_likelihood(params, jax.random.PRNGKey(0), X, num_samples=2)


def test_ais_log_z_is_reported_with_its_stderr():
  model = dvaepp.DVAEPP(MEAN, data_dim=PIXELS, latent_dim=24, prior="rbm",
                        num_groups=2, rbm=rbm_prior.RBMPrior(
                            log_z="auto", ais_num_chains=64,
                            ais_num_temperatures=50))
  params = model.init(jax.random.PRNGKey(0), X)
  _, info = model.prepare_evaluation(params, jax.random.PRNGKey(1))
  # All-zero RBM parameters at init: log Z = 48 log 2 exactly, which AIS
  # (every weight equal) reproduces with zero spread.
  assert info["log_z_method"] == "ais"
  np.testing.assert_allclose(info["log_z"], 48 * np.log(2.0), rtol=1e-5)
  assert info["log_z_stderr"] < 1e-4


# -- numerics -----------------------------------------------------------------

@pytest.mark.parametrize("family", ["exponential", "spike_and_exp",
                                    "power_function", "logistic"])
def test_marginal_kl_is_finite_at_the_ends_and_at_large_beta(family):
  smoothing = overlapping.FAMILIES[family]
  zeta = jnp.array([0.0, 1.0, 1e-7, 1 - 1e-7, 0.5])
  if family == "spike_and_exp":
    zeta = jnp.array([0.0, 1.0, 1e-7, 1 - 1e-7, 0.0])  # its atom is at 0
  if family == "power_function":  # poles at 0 and 1: its samples are
    zeta = jnp.clip(zeta, np.finfo(np.float32).tiny, 1 - 2.0**-24)  # inside
  q = jnp.array([-30.0, 30.0, 5.0, -5.0, 0.0])
  p = jnp.array([20.0, -20.0, 0.0, 3.0, -1.0])
  for beta in (1.0, 40.0):
    fn = lambda q, p, zeta: bounds.marginal_kl(smoothing, q, p, zeta, beta)
    value = fn(q, p, zeta)
    grads = jax.grad(fn, argnums=(0, 1, 2))(q, p, zeta)
    assert np.isfinite(value)
    for g in grads[:2]:
      assert np.all(np.isfinite(g))
    if family != "spike_and_exp":  # its density jumps at 0
      assert np.all(np.isfinite(grads[2]))


@pytest.mark.parametrize("name,prior,elbo_kind", [
    ("overlapping_exponential", "directed", "marginal"),
    ("spike_and_exp", "rbm", "joint"),
    pytest.param("spike_and_exp", "directed", "marginal",
                 marks=pytest.mark.slow),
    pytest.param("overlapping_exponential", "rbm", "joint",
                 marks=pytest.mark.slow)])
def test_training_loss_is_finite_at_beta_40_and_extreme_logits(name, prior,
                                                               elbo_kind):
  model = tiny(prior, True, elbo_kind, gibbs_chains=3, gibbs_sweeps=1)
  params = random_params(model, scale=25.0)
  estimator = estimators.make(name, beta=40.0)
  state = model.init_state(jax.random.PRNGKey(0), params, X, estimator)
  (loss, aux), grads = jax.jit(jax.value_and_grad(
      lambda p, k: model.loss(p, k, X, estimator=estimator, state=state),
      has_aux=True))(params, jax.random.PRNGKey(3))
  assert np.isfinite(loss)
  assert np.all(np.isfinite(ravel_pytree(grads)[0]))
  assert np.all(np.isfinite(aux.objective))


def test_persistent_chains_and_kl_warmup():
  model = tiny("rbm", True, gibbs_chains=5, gibbs_sweeps=2,
               kl_warmup_steps=10, weight_decay=0.5)
  params = random_params(model, seed=3)
  estimator = estimators.make("overlapping_exponential")
  chains = model.init_state(jax.random.PRNGKey(0), params, X, estimator)
  assert chains.z1.shape == (5, UNITS) and chains.z2.shape == (5, UNITS)
  _, aux = jax.jit(lambda p, k, s: model.loss(
      p, k, X, step=4, estimator=estimator, state=s))(
          params, jax.random.PRNGKey(1), chains)
  assert aux.state.z1.shape == (5, UNITS)
  assert not np.array_equal(aux.state.z1, chains.z1) or not np.array_equal(
      aux.state.z2, chains.z2)
  np.testing.assert_allclose(aux.diagnostics["kl_weight"], 0.4)
  np.testing.assert_allclose(aux.diagnostics["elbo_plus_log_z"],
                             np.mean(aux.objective))
  np.testing.assert_allclose(
      aux.diagnostics["rbm_weight_decay_loss"],
      rbm_prior.RBMPrior(weight_decay=0.5).weight_decay_loss(rbm_of(params)),
      rtol=1e-6)
  samples = model.sample(params, jax.random.PRNGKey(2), 6)
  assert samples.shape == (6, PIXELS)
  assert np.all((samples >= 0) & (samples <= 1))


def test_non_smoothing_estimator_is_rejected():
  model = tiny("directed")
  params = model.init(jax.random.PRNGKey(0), X)
  with pytest.raises(ValueError, match="'reinforce' is not a smoothing"):
    model.loss(params, jax.random.PRNGKey(0), X,
               estimator=estimators.make("reinforce"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(prior="gaussian"), "prior='gaussian'"),
    (dict(prior="rbm", num_groups=1), "num_groups=1"),
    (dict(num_groups=3), "num_groups=3"),
    (dict(prior="rbm", elbo_kind="marginal"), "elbo_kind='marginal'"),
    (dict(elbo_kind="tight"), "elbo_kind='tight'"),
    (dict(prior="rbm", rbm=rbm_prior.RBMPrior(log_z="exact"),
          latent_dim=21), "log_z='exact'"),
    (dict(prior="rbm", rbm={"gibbs_sweeps": 2}), "rbm must be an"),
])
def test_bad_model_arguments_raise_naming_them(kwargs, match):
  args = dict(data_dim=PIXELS, latent_dim=UNITS, num_groups=2,
              prior="directed")
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    dvaepp.DVAEPP(MEAN, **args)


# -- configs ------------------------------------------------------------------

ROWS = ["factorial", "factorial,elbo=marginal", "factorial,arch=nonlinear",
        "factorial,layers=2", "directed", "directed,layers=2,elbo=marginal",
        "rbm", "rbm,layers=2", "rbm,arch=nonlinear,layers=2",
        "rbm,layers=2,smoothing=spike_and_exp",
        "rbm,arch=nonlinear,layers=2,protocol=paper",
        "factorial,arch=nonlinear,elbo=marginal,protocol=paper",
        "directed,arch=nonlinear,layers=2,protocol=paper"]


@pytest.mark.parametrize("arg", ROWS)
def test_config_rows_validate(arg):
  config = dvaepp_config.get_config(arg)
  training.validate_config(config)
  assert config.model.name == "dvaepp"


def test_table1_rows_anneal_beta_and_table2_rows_do_not():
  table1 = dvaepp_config.get_config("factorial,protocol=paper")
  assert (table1.estimator.beta, table1.estimator.beta_end) == (6.0, 14.0)
  assert table1.estimator.anneal_steps == table1.train.num_steps
  assert table1.eval.final_num_samples == 100
  table2 = dvaepp_config.get_config("rbm,layers=2,protocol=paper")
  # The authors' fixed beta (their two-layer structure's), no annealing.
  assert table2.estimator.beta == 10.0 and table2.estimator.beta_end is None
  assert table2.model.num_latents == 200  # halves of 200 (two layers)
  one_layer = dvaepp_config.get_config("rbm,arch=nonlinear")
  assert one_layer.model.num_latents == 100  # halves of 100 (one layer)
  assert one_layer.estimator.beta == 14.0
  rolfe = dvaepp_config.get_config("rbm,layers=2,smoothing=spike_and_exp")
  assert rolfe.estimator.beta == 4.0
  logistic = dvaepp_config.get_config("rbm,smoothing=overlapping_logistic")
  assert logistic.estimator.beta is None  # not in the authors' table
  assert table2.eval.final_num_samples == 4000
  assert (table2.model.rbm.gibbs_chains,
          table2.model.rbm.gibbs_sweeps) == (1000, 40)
  assert table2.data.name == "binarized_mnist"


BAD_FIELDS = [
    ("model.prior", "gaussian"), ("model.architecture", "deep"),
    ("model.layers", 3), ("model.elbo", "tight"), ("model.num_latents", 0),
    ("model.hidden_size", 0), ("model.activation", "sigmoid"),
    ("model.rbm.gibbs_chains", 0), ("model.rbm.gibbs_sweeps", 0),
    ("model.rbm.sample_sweeps", 0), ("model.rbm.weight_decay", -1.0),
    ("model.rbm.log_z", "magic"), ("model.rbm.ais_num_chains", 1),
    ("model.rbm.ais_num_temperatures", 1), ("estimator.name", "reinforce"),
]


@pytest.mark.parametrize("dotted,value", BAD_FIELDS)
def test_bad_config_fields_fail_naming_them(dotted, value):
  config = dvaepp_config.get_config("rbm,layers=2")
  *sections, field = dotted.split(".")
  target = config
  for name in sections:
    target = target[name]
  with target.ignore_type():
    target[field] = value
  with pytest.raises(ValueError, match=f"config.{dotted}"):
    training.validate_config(config)


def test_rbm_config_combinations_fail_naming_the_field(tmp_path):
  config = dvaepp_config.get_config("rbm")
  config.model.elbo = "marginal"
  with pytest.raises(ValueError, match="config.model.elbo='marginal'"):
    training.validate_config(config)
  config = dvaepp_config.get_config("rbm")
  config.model.rbm.log_z = "exact"  # 200 + 200 units
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match="config.model.rbm.log_z='exact'"):
    training.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()
  with pytest.raises(ValueError, match="layers='3'"):
    dvaepp_config.get_config("rbm,layers=3")


def tiny_config(arg):
  config = dvaepp_config.get_config(arg)
  config.model.num_latents = 3
  config.model.hidden_size = 4
  config.model.rbm.update(gibbs_chains=4, gibbs_sweeps=2, sample_sweeps=3,
                          ais_num_chains=8, ais_num_temperatures=4)
  return budgets.tiny(config)


# The launcher test also runs configs/dvaepp.py's documented commands (one
# per prior) through the loop; here the RBM row runs by default, the others
# are slow (each is a fresh set of compilations).
@pytest.mark.parametrize("arg,log_z", [
    pytest.param("factorial,elbo=marginal", None, marks=pytest.mark.slow),
    pytest.param("directed,layers=2", None, marks=pytest.mark.slow),
    ("rbm,layers=2", "ais"),
    ("rbm,layers=2,tempering=3", "exact")])
def test_two_training_steps_through_the_loop(arg, log_z, tmp_path):
  config = tiny_config(arg)
  if log_z:
    config.model.rbm.log_z = log_z
  results = training.train_and_evaluate(config, str(tmp_path))
  assert results["num_steps"] == 2
  assert np.isfinite(results["test_log_likelihood"])
  assert os.path.exists(tmp_path / "samples.png")
  if arg.startswith("rbm"):
    assert results["test_log_z_method"] == log_z
    assert np.isfinite(results["test_log_z"])
    assert results["test_log_z_stderr"] >= 0
    # The chains' health, at every evaluation and with the final bounds.
    assert np.isfinite(results["test_chain_gap"])
    assert results["test_chain_gap_stderr"] >= 0
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert any("valid_chain_gap" in r for r in records)
  if "tempering" in arg:  # the tempered chains went through a checkpoint
    _, state, _ = training.restore_run(str(tmp_path))
    assert isinstance(state.model_state, rbm_tempering.TemperedChains)
    assert state.model_state.z1.shape[0] == 3
    assert int(state.model_state.sweeps_done) == 2 * 2  # 2 steps x 2 sweeps


def test_rbm_parameters_take_their_own_optimiser_group():
  """`config.optim.groups.rbm` reaches exactly the RBM's parameters (a
  separate learning rate for the prior, issue of the negative phase)."""
  from discrete_vi.training import optim  # pylint: disable=g-import-not-at-top
  model = tiny("rbm")
  params = model.init(jax.random.PRNGKey(0), X)
  labels = optim.group_labels(params, {"rbm": {"learning_rate": 1.0}})
  flat = jax.tree_util.tree_flatten_with_path(labels)[0]
  for path, label in flat:
    in_rbm = jax.tree_util.keystr(path).startswith("['rbm']")
    assert label == ("rbm" if in_rbm else optim.DEFAULT_GROUP), path
  assert sum(label == "rbm" for _, label in flat) == 3  # a1, a2, w
  tx = optim.make_optimizer({"name": "sgd", "learning_rate": 1e-3,
                             "groups": {"rbm": {"name": "sgd",
                                                "learning_rate": 1.0}}},
                            params, 10)
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  # Plain SGD: each update is -(its group's learning rate) x the gradient 1.
  for k, v in updates.items():
    np.testing.assert_allclose(ravel_pytree(v)[0], -1.0 if k == "rbm" else
                               -1e-3, rtol=1e-6)
