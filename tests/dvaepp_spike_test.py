r"""The RBM prior's KL under spike-and-exp smoothing, hierarchical encoder.

DVAE++ (Vahdat et al., 2018, Sec. 5, Eqs. 6-7) writes the KL of the
hierarchical posterior q(z_1|x) r(\zeta_1|z_1) q(z_2|x, \zeta_1) against
an RBM prior p(z_1, z_2) \propto e^{a_1^T z_1 + a_2^T z_2 + z_1^T W z_2} as

  \log Z - H(q(z_1|x)) - E[H(q(z_2|x, \zeta_1))] - a_1^T \mu_1
    - E_{q(\zeta_1|x)}[a_2^T \mu_2(\zeta_1)
                        + \nu_1(\zeta_1)^T W \mu_2(\zeta_1)],

\nu_1 = q(z_1 = 1 | x, \zeta_1). The overlapping smoothings pass the exact
\nu_1; spike-and-exp (DVAE; Rolfe, 2017), whose exact posterior is the step
\nu_1 = 1[\zeta_1 > 0] = z_1, passes its mean \nu_1 = \mu_1 instead
(`estimators.smoothing`). With \mu_2 depending on \zeta_1 the expected
training KL then differs from Eq. (6)'s by

  E[(z_1 - \mu_1)^T W \mu_2(\zeta_1)] = \sum_{ij} W_{ij} Cov_q(z_{1i}, \mu_{2j})

(the training objective is lower than Eq. (6)'s bound by as much), and its
W-gradient by Cov_q(z_1, \mu_2(\zeta_1)): the training gradient of W sees
E_q[z_1 z_2^T] - Cov_q(z_1, \mu_2), the posterior's z_1-z_2 correlation
under-counted. The sign of the bias is that of W's alignment with the
encoder's dependence of z_2 on \zeta_1: positive when q(z_2|x, \zeta_1)
mimics the prior's coupling ("aligned" here: encoder 2's weights on
\zeta_1 set to W).

The expectations are computed by Gauss-Legendre quadrature over \zeta_1 on
small linear models (3 pixels; 2 + 2 and 4 + 4 units), in the uniform \rho
of the inverse CDF \zeta_1 = F^{-1}(\rho) split per unit at the spike's
boundary \rho = 1 - \mu_1 (\zeta_1 = 0 below it, smooth above): the
model's KL (`DVAEPP.kl`) at every node, the Eq. (6) KL by enumerating
(z_1, z_2) given \zeta_1, their W-gradients by autodiff through the
quadrature, and the KL of the discrete model (\beta = \infty) for
reference; 16 + 16 units by Monte Carlo. Monte Carlo of the model's KL at
the estimator's own draws checks the quadrature; the overlapping
exponential smoothing, whose \nu_1 is exact, shows no bias under the same
comparison. The exact \nu_1 = z_1 of spike-and-exp has Eq. (6)'s
expectation, but it jumps at \rho = 1 - \mu_1, so its pathwise gradient
w.r.t. the logits of q(z_1|x) misses a boundary term, which is checked
here too. The measured numbers are printed (`pytest -s`).

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Rolfe (2017), Discrete variational autoencoders. ICLR.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from discrete_vi import estimators
from discrete_vi.distributions import overlapping
from discrete_vi.estimators import smoothing
from discrete_vi.models import dvaepp
from discrete_vi.stochastic import latents

import stats

SPIKE, EXPONENTIAL = "spike_and_exp", "overlapping_exponential"
BETA = smoothing.DEFAULT_BETA  # spike-and-exp 4 (Rolfe's), exponential 10
PIXELS = 3
MEAN = np.array([0.3, 0.6, 0.5], np.float32)
X = jnp.array([1., 0., 1.])  # the one input
FIELD = 2.0  # W ~ N(0, FIELD^2 / n): an O(1) field on every unit
SEED = 3
NUM_DRAWS = 200_000


# -- the models ---------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def build(units: int) -> dvaepp.DVAEPP:
  """A linear RBM-prior DVAE++ on 3 pixels with a hierarchical encoder."""
  return dvaepp.DVAEPP(MEAN, data_dim=PIXELS, latent_dim=units,
                       prior="rbm", num_groups=2, hierarchical=True)


def coupled_params(units: int, seed: int, aligned: bool) -> dict:
  r"""Parameters of `build(units)`: every entry ~ N(0, 0.8^2) but
  W ~ N(0, FIELD^2 / n); `aligned`: encoder 2's weights on \zeta_1 set to
  W, as in the exact posterior q(z_2|x, z_1) of an RBM-coupled model
  (logits carrying W^T z_1); otherwise independent of W."""
  model = build(units)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(seed), X[None])
  flat, unravel = ravel_pytree(jax.tree_util.tree_map(
      lambda a: jnp.zeros(a.shape, a.dtype), shapes))  # traced, not compiled
  params = unravel(0.8 * jax.random.normal(jax.random.PRNGKey(seed + 1),
                                           flat.shape))
  w = (FIELD / np.sqrt(units)) * jax.random.normal(
      jax.random.PRNGKey(seed + 2), (units, units))
  params["rbm"] = dict(params["rbm"], w=w)
  if aligned:
    out = params["encoders_1"]["out"]
    kernel = out["kernel"].at[PIXELS:].set(w)  # [3 + n, n]: rows of zeta1
    params["encoders_1"] = dict(params["encoders_1"], out=dict(out,
                                                               kernel=kernel))
  return params


def linear(p, h):
  """The affine map of a linear `layers.Link`."""
  return h @ p["out"]["kernel"] + p["out"]["bias"]


def encode1(params, x):
  """Logits of q(z_1 | x), `[n]` (independent of the model's code)."""
  return linear(params["encoders_0"], x - MEAN)


def encode2(params, x, zeta1):
  r"""Logits of q(z_2 | x, \zeta_1), `[..., n]` (independent of the
  model's code)."""
  h = jnp.concatenate([jnp.broadcast_to(x - MEAN, zeta1.shape[:-1] + x.shape),
                       zeta1], -1)
  return linear(params["encoders_1"], h)


def log_bernoulli(logits, z):
  """log Bernoulli(z; sigmoid(logits)) summed over the last axis."""
  return jnp.sum(z * jax.nn.log_sigmoid(logits) +
                 (1 - z) * jax.nn.log_sigmoid(-logits), -1)


def states(n: int):
  """All 2^n binary vectors, `[2^n, n]`, in lexicographic order."""
  bits = (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1
  return jnp.asarray(bits, jnp.float32)


def log_z_of(params):
  """log Z of the RBM, enumerating z_1 and summing z_2 out analytically."""
  a1, a2, w = (params["rbm"][k] for k in ("a1", "a2", "w"))
  z1 = states(a1.shape[0])  # [S, n]
  return jax.scipy.special.logsumexp(
      z1 @ a1 + jnp.sum(jax.nn.softplus(a2 + z1 @ w), -1))


def bernoulli_mass(probs, z):
  """prod_i probs_i^z_i (1 - probs_i)^(1 - z_i), exact at probs in {0, 1}."""
  return jnp.prod(jnp.where(z > 0.5, probs, 1.0 - probs), -1)


# -- quadrature over zeta_1 ---------------------------------------------------

def legendre(k: int):
  """Gauss-Legendre nodes and weights on [0, 1], float64 numpy."""
  nodes, weights = np.polynomial.legendre.leggauss(k)
  return (nodes + 1) / 2, weights / 2


def spike_nodes(logits1, k: int):
  r"""Nodes \rho `[N, n]` and weights `[N]` of E_{\rho ~ U(0,1)^n}.

  Per unit, one node on the atom's piece (0, 1 - \mu_1] (where \zeta = 0,
  the integrand constant) and k Gauss-Legendre nodes on (1 - \mu_1, 1)
  (where \zeta = R(.|1)^{-1}((\rho - 1 + \mu_1) / \mu_1) is smooth); the
  tensor product over the n units, (1 + k)^n nodes. The weights carry
  \mu_1, so autodiff through them sees the moving boundary.
  """
  mu = jax.nn.sigmoid(logits1)[:, None]  # [n, 1]
  atom, atom_w = legendre(1)
  smooth, smooth_w = legendre(k)
  rho = jnp.concatenate([(1 - mu) * atom, 1 - mu + mu * smooth], 1)
  weight = jnp.concatenate([(1 - mu) * atom_w, mu * smooth_w], 1)  # [n, 1+k]
  index = np.array(list(itertools.product(range(1 + k),
                                          repeat=mu.shape[0])))  # [N, n]
  units = np.arange(mu.shape[0])
  return rho[units, index], jnp.prod(weight[units, index], -1)


def exponential_nodes(logits1, beta, k: int):
  r"""Nodes \zeta `[N, n]` and weights `[N]` of E_{q(\zeta_1|x)} for the
  overlapping exponentials: k Gauss-Legendre nodes on [0, 1] per unit
  weighted by the mixture density, tensor product over units."""
  nodes, weights = legendre(k)
  zeta = jnp.broadcast_to(jnp.asarray(nodes, jnp.float32),
                          logits1.shape + (k,))  # [n, k]
  weight = weights * jnp.exp(overlapping.log_prob(
      overlapping.EXPONENTIAL, logits1[:, None], zeta, beta))
  index = np.array(list(itertools.product(range(k),
                                          repeat=logits1.shape[0])))
  units = np.arange(logits1.shape[0])
  return zeta[units, index], jnp.prod(weight[units, index], -1)


# -- the two KLs at given zeta_1 ----------------------------------------------

def model_draw(name: str, logits1, zeta1, z1, beta) -> latents.Draw:
  r"""The draw of \zeta_1 as `smoothing.smoothing_sample` makes it: logit
  q(z_1 = 1 | \zeta_1) for the overlapping families, the logits of q itself
  for spike-and-exp."""
  family = smoothing.FAMILY_OF_ESTIMATOR[name]
  posterior = logits1
  if family.name in smoothing.POSTERIOR_FAMILIES:
    posterior = overlapping.posterior_logits(family, logits1, zeta1, beta)
  return latents.Draw(zeta1, z1, posterior_logits=posterior)


def model_kl(model, params, x, logits1, draw1):
  r"""The model's KL term (log Z excluded) at the draw \zeta_1, `[...]`."""
  logits2 = encode2(params, x, draw1.z)
  draw2 = latents.hard_draw(jnp.zeros_like(logits2))  # unused by the KL
  logits1 = jnp.broadcast_to(logits1, logits2.shape[:-1] + logits1.shape[-1:])
  return model.kl(params, ((draw1, logits1), (draw2, logits2)))


def eq6_kl(params, x, logits1, zeta1, nu1):
  r"""E_{q(z_1|x,\zeta_1) q(z_2|x,\zeta_1)}[\log q(z_1|x) + \log q(z_2|x,
  \zeta_1) + E(z_1, z_2)]: Eq. (6)'s KL minus log Z at \zeta_1, by
  enumerating (z_1, z_2), with \nu_1 = q(z_1 = 1|x, \zeta_1) `[..., n]`."""
  logits2 = encode2(params, x, zeta1)  # [..., n]
  n = logits1.shape[-1]
  z = states(n)  # [S, n]
  post1 = bernoulli_mass(nu1[..., None, :], z)  # [..., S]
  q2 = bernoulli_mass(jax.nn.sigmoid(logits2)[..., None, :], z)  # [..., S]
  log_q1 = log_bernoulli(logits1, z)  # [S]
  log_q2 = log_bernoulli(logits2[..., None, :], z)  # [..., S]
  a1, a2, w = (params["rbm"][k] for k in ("a1", "a2", "w"))
  energy = -((z @ a1)[:, None] + (z @ a2)[None] + z @ w @ z.T)  # [S, S]
  joint = post1[..., :, None] * q2[..., None, :]  # [..., S, S]
  integrand = log_q1[:, None] + log_q2[..., None, :] + energy
  return jnp.sum(joint * integrand, (-2, -1))


def exponential_posterior(logits1, zeta1, beta):
  r"""q(z_1 = 1|\zeta_1) of the overlapping exponentials by Bayes' rule:
  r(\zeta|z) \propto e^{-\beta|\zeta - z|} on [0, 1] (Sec. 3), so the
  log-ratio r(\zeta|1) / r(\zeta|0) is \beta (2\zeta - 1)."""
  return jax.nn.sigmoid(logits1 + beta * (2 * zeta1 - 1))


def discrete_kl(params, x):
  r"""KL(q(z_1|x) q(z_2|x, z_1) || p(z_1, z_2)) of the discrete model
  (\beta = \infty: \zeta_1 = z_1), by enumeration, log Z included."""
  logits1 = encode1(params, x)  # [n]
  z = states(logits1.shape[-1])
  log_q1 = log_bernoulli(logits1, z)  # [S]
  kl_given_z1 = eq6_kl(params, x, logits1, z, z)  # [S] (nu1 = z1)
  # eq6_kl at nu1 = z1 sums the posterior over z1 to a point mass at z1.
  return jnp.sum(jnp.exp(log_q1) * kl_given_z1) + log_z_of(params)


# -- expectations over zeta_1 -------------------------------------------------

def exact_posterior_draw(draw: latents.Draw) -> latents.Draw:
  r"""The draw with \nu_1 = 1[\zeta_1 > 0] = z_1 (logits +-inf) for the
  model's KL: spike-and-exp's exact posterior, the alternative to \mu_1."""
  return draw._replace(posterior_logits=jnp.where(draw.hard > 0.5, jnp.inf,
                                                  -jnp.inf))


def spike_terms(model, params, x, logits1, k: int, beta,
                pathwise: bool = False) -> dict:
  r"""Spike-and-exp integrands at the nodes of `spike_nodes`, each `[N]`.

  Args:
    model, params, x: the model, its parameters and one input `[3]`.
    logits1: `[n]` logits of q(z_1|x) (an argument, to differentiate).
    k: nodes per unit on the smooth piece.
    beta: inverse temperature.
    pathwise: False: the nodes and weights move with logits1 and \zeta_1
      is fixed at fixed conditional uniform (autodiff gives the gradient
      of the expectation); True: \rho is fixed and \zeta_1 = F^{-1}(\rho)
      carries the estimator's implicit gradient (autodiff gives the mean
      of the pathwise gradient).

  Returns:
    weight; train: the model's KL (\nu_1 = \mu_1); exact: Eq. (6) by
    enumeration (\nu_1 = z_1); alternative: the model's KL at \nu_1 = z_1;
    boundary: `[N, n]` -\mu_1 (1 - z_1) (W \mu_2(\zeta_1)), whose mean is
    the alternative's gradient w.r.t. logits1 that the pathwise
    derivative misses (the jump of \nu_1 at the spike's boundary);
    cov: `[N, n, n]` (z_1 - \mu_1) \mu_2(\zeta_1)^T, whose mean is
    Cov_q(z_1, \mu_2).
  """
  rho, weight = spike_nodes(logits1, k)
  fixed_logits, fixed_rho = map(jax.lax.stop_gradient, (logits1, rho))
  if pathwise:
    weight = jax.lax.stop_gradient(weight)
    zeta1 = overlapping.sample_inverse_cdf(overlapping.SPIKE_AND_EXP,
                                           logits1, fixed_rho, beta)
  else:
    zeta1 = overlapping.spike_and_exp_inverse_cdf(fixed_logits, fixed_rho,
                                                  beta)  # [N, n]
  z1 = overlapping.hard_limit(fixed_logits, fixed_rho)
  draw = model_draw(SPIKE, logits1, zeta1, z1, beta)
  mu2 = jax.nn.sigmoid(encode2(params, x, zeta1))  # [N, n]
  boundary = (-jax.nn.sigmoid(logits1) * (1 - z1) *
              (mu2 @ params["rbm"]["w"].T))
  return dict(weight=weight,
              train=model_kl(model, params, x, logits1, draw),
              exact=eq6_kl(params, x, logits1, zeta1, z1),
              alternative=model_kl(model, params, x, logits1,
                                   exact_posterior_draw(draw)),
              boundary=boundary,
              cov=((z1 - jax.nn.sigmoid(logits1))[:, :, None] *
                   mu2[:, None, :]))


def expect(terms: dict, name: str):
  """The quadrature of `terms[name]` (weights `terms["weight"]`)."""
  weight = terms["weight"].reshape(terms["weight"].shape +
                                   (1,) * (terms[name].ndim - 1))
  return jnp.sum(weight * terms[name], 0)


KL_NAMES = ("train", "exact", "alternative")


def spike_report(model, params, x, k: int, beta) -> dict:
  r"""E over \zeta_1 of the three KLs (log Z excluded) and their gradients
  w.r.t. W, log Z and its gradient, the discrete model's KL."""
  def value(p, name):
    return expect(spike_terms(model, p, x, encode1(p, x), k, beta), name)
  report = {name: value(params, name) for name in KL_NAMES + ("cov",)}
  for name in KL_NAMES:
    report[f"grad_{name}"] = jax.grad(value)(params, name)["rbm"]["w"]
  report["log_z"], grad_log_z = jax.value_and_grad(log_z_of)(params)
  report["grad_log_z"] = grad_log_z["rbm"]["w"]
  report["discrete"] = discrete_kl(params, x)
  return report


def exponential_report(model, params, x, k: int, beta) -> dict:
  r"""The same comparison for the overlapping exponentials: E over
  \zeta_1 of the model's KL and of Eq. (6)'s with Bayes' \nu_1 (log Z
  excluded), and their gradients w.r.t. W."""
  def terms(p):
    logits1 = encode1(p, x)  # [n]
    zeta1, weight = exponential_nodes(logits1, beta, k)  # [N, n], [N]
    draw = model_draw(EXPONENTIAL, logits1, zeta1, jnp.zeros_like(zeta1),
                      beta)  # the hard partner is unused by the KL
    nu1 = exponential_posterior(logits1, zeta1, beta)
    return dict(weight=weight,
                train=model_kl(model, p, x, logits1, draw),
                exact=eq6_kl(p, x, logits1, zeta1, nu1))
  value = lambda p, name: expect(terms(p), name)
  report = {name: value(params, name) for name in ("train", "exact")}
  for name in ("train", "exact"):
    report[f"grad_{name}"] = jax.grad(value)(params, name)["rbm"]["w"]
  report["total_weight"] = jnp.sum(terms(params)["weight"])
  return report


# -- Monte Carlo at the estimator's own draws ---------------------------------

def monte_carlo(model, params, x, name: str, beta, num: int, seed: int = 0
                ) -> dict:
  r"""Per-draw `[num]` KLs (log Z excluded) at \zeta_1 drawn by the
  estimator `name` (`Estimator.sample`, as in training): the model's
  (`train`), Eq. (6)'s with the exact \nu_1 (`exact`, by enumeration) and
  for spike-and-exp the model's at \nu_1 = z_1 (`alternative`); and the
  model's per-draw gradient w.r.t. W, `[num, n, n]`."""
  estimator = estimators.make(name, beta=beta)
  logits1 = encode1(params, x)  # [n]
  draws = model.part.pathwise(estimator, jax.random.PRNGKey(seed),
                              jnp.broadcast_to(logits1,
                                               (num,) + logits1.shape))
  if name == SPIKE:
    nu1 = draws.hard
  else:
    nu1 = exponential_posterior(logits1, draws.z, beta)

  def train(p, draw):
    return model_kl(model, p, x, logits1, draw)
  grad = jax.vmap(jax.grad(train), in_axes=(None, 0))(params, draws)
  out = dict(train=train(params, draws),
             exact=eq6_kl(params, x, logits1, draws.z, nu1),
             grad_train=grad["rbm"]["w"])
  if name == SPIKE:
    out["alternative"] = train(params, exact_posterior_draw(draws))
  return out


def logit_gradients(model, params, x, k: int, beta) -> dict:
  r"""Gradients w.r.t. the logits of q(z_1|x) of the expected KLs
  (`true_<name>`) and means of their pathwise gradients at fixed \rho
  (`pathwise_<name>`), and the mean of `spike_terms`' boundary term."""
  logits1 = encode1(params, x)  # [n]

  def value(l, name, pathwise):
    return expect(spike_terms(model, params, x, l, k, beta, pathwise), name)
  out = {}
  for name in KL_NAMES:
    out[f"true_{name}"] = jax.grad(value)(logits1, name, False)
    out[f"pathwise_{name}"] = jax.grad(value)(logits1, name, True)
  out["boundary"] = expect(spike_terms(model, params, x, logits1, k, beta,
                                       True), "boundary")
  return out


def paired_draws(model, params, x, beta, num: int, seed: int = 0) -> dict:
  r"""The model's KL (log Z excluded) at `num` spike-and-exp draws of
  \zeta_1, for models too large to enumerate: per draw `[num]` with
  \nu_1 = \mu_1 (`train`) and \nu_1 = z_1 (`alternative`, whose mean is
  Eq. (6)'s), and the gradients w.r.t. W of their means (`grad_<name>`)."""
  estimator = estimators.make(SPIKE, beta=beta)
  logits1 = encode1(params, x)  # [n]
  draws = model.part.pathwise(estimator, jax.random.PRNGKey(seed),
                              jnp.broadcast_to(logits1,
                                               (num,) + logits1.shape))

  def kls(p):
    return dict(train=model_kl(model, p, x, logits1, draws),
                alternative=model_kl(model, p, x, logits1,
                                     exact_posterior_draw(draws)))
  out = kls(params)
  for name in ("train", "alternative"):
    out[f"grad_{name}"] = jax.grad(
        lambda p, name=name: jnp.mean(kls(p)[name]))(params)["rbm"]["w"]
  out["log_z"], grad_log_z = jax.value_and_grad(log_z_of)(params)
  out["grad_log_z"] = grad_log_z["rbm"]["w"]
  return out


# -- the tests ----------------------------------------------------------------

NODES = {2: 24, 4: 8}  # Gauss-Legendre nodes per unit on the smooth piece
EXPONENTIAL_NODES = 40  # per unit on [0, 1] (beta = 10)

spike_report_jit = jax.jit(spike_report, static_argnums=(0, 3, 4))
monte_carlo_jit = jax.jit(monte_carlo, static_argnums=(0, 3, 4, 5))
paired_draws_jit = jax.jit(paired_draws, static_argnums=(0, 3, 4))


def summarise(report: dict) -> dict:
  """Value and W-gradient biases of the model's KL against Eq. (6)'s."""
  r = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), report)
  exact_grad = r["grad_exact"] + r["grad_log_z"]  # of Eq. (6)'s KL
  grad_bias = r["grad_train"] - r["grad_exact"]
  kl = r["exact"] + r["log_z"]
  return dict(kl=kl, bias=r["train"] - r["exact"],
              relative=(r["train"] - r["exact"]) / kl,
              discrete=r.get("discrete", np.nan), grad_bias=grad_bias,
              exact_grad=exact_grad,
              relative_grad=(np.linalg.norm(grad_bias) /
                             np.linalg.norm(exact_grad)))


def print_summary(label: str, s: dict) -> None:
  """Prints `summarise`'s numbers (seen with `pytest -s`)."""
  print(f"\n{label}: Eq. (6) KL {s['kl']:.4f} nats (discrete model "
        f"{s['discrete']:.4f}); model's KL - Eq. (6)'s = {s['bias']:+.4f} "
        f"nats ({100 * s['relative']:+.1f} % of the KL); "
        f"|grad_W bias| / |grad_W| = {s['relative_grad']:.3f}\n"
        f"  grad_W of Eq. (6)'s KL:\n{np.round(s['exact_grad'], 4)}\n"
        f"  model's grad_W - Eq. (6)'s (= Cov_q(z1, mu2)):\n"
        f"{np.round(s['grad_bias'], 4)}")


# (aligned, model's KL - Eq. (6)'s in nats, |grad_W bias| / |grad_W| of
# Eq. (6)'s KL), measured 0.2693, 0.149 (aligned) and -0.0404, 0.063 (not).
SPIKE_CASES = {"aligned": (True, (0.24, 0.30), (0.12, 0.18)),
               "unaligned": (False, (-0.05, -0.03), (0.05, 0.08))}


def test_independent_encoders_are_the_models():
  model, params = build(2), coupled_params(2, SEED, True)
  zeta1 = jnp.array([[0., 0.7], [0.2, 0.]])
  encode = lambda *args: model.module.apply(
      {"params": params}, *args, method=dvaepp.DVAEPPModule.encode)
  np.testing.assert_allclose(encode1(params, X), encode(0, X, None),
                             rtol=1e-6)
  np.testing.assert_allclose(encode2(params, X, zeta1),
                             encode(1, jnp.broadcast_to(X, (2, PIXELS)),
                                    zeta1), rtol=1e-6)


@pytest.mark.parametrize("case", SPIKE_CASES)
def test_spike_and_exp_kl_is_biased_by_cov_of_z1_and_mu2(case):
  aligned, bias_range, grad_range = SPIKE_CASES[case]
  model, params = build(2), coupled_params(2, SEED, aligned)
  beta = BETA[SPIKE]
  report = spike_report_jit(model, params, X, NODES[2], beta)
  r = jax.tree_util.tree_map(np.asarray, report)
  s = summarise(report)
  print_summary(f"spike-and-exp, 2 + 2 units, {case}", s)
  # nu1 = z1 in the model's KL has Eq. (6)'s expectation (enumerated).
  np.testing.assert_allclose(r["alternative"], r["exact"], atol=1e-5)
  np.testing.assert_allclose(r["grad_alternative"], r["grad_exact"],
                             atol=1e-5)
  # nu1 = mu1 shifts the KL by sum_ij W_ij Cov(z1_i, mu2_j), grad_W by Cov.
  w = np.asarray(params["rbm"]["w"])
  np.testing.assert_allclose(s["bias"], np.sum(w * r["cov"]), atol=1e-5)
  np.testing.assert_allclose(s["grad_bias"], r["cov"], atol=1e-5)
  # The quadrature is that of the model's KL at the estimator's draws.
  mc = jax.tree_util.tree_map(np.asarray, monte_carlo_jit(
      model, params, X, SPIKE, beta, NUM_DRAWS))
  stats.assert_unbiased(mc["train"], r["train"])
  stats.assert_unbiased(mc["grad_train"], r["grad_train"])
  stats.assert_unbiased(mc["exact"], r["exact"])
  stats.assert_unbiased(mc["alternative"], r["exact"])
  assert abs(stats.z_scores(mc["train"], r["exact"])) > 4  # resolved
  assert bias_range[0] < s["bias"] < bias_range[1]
  assert grad_range[0] < s["relative_grad"] < grad_range[1]


def test_exact_posterior_misses_the_boundary_term_of_the_encoder_gradient():
  model, params = build(2), coupled_params(2, SEED, True)
  g = jax.tree_util.tree_map(np.asarray, jax.jit(
      logit_gradients, static_argnums=(0, 3, 4))(model, params, X, NODES[2],
                                                  BETA[SPIKE]))
  truth = g["true_exact"]  # d/d logits1 of Eq. (6)'s expected KL
  error = lambda grad: np.linalg.norm(grad - truth) / np.linalg.norm(truth)
  print(f"\nd KL / d logits of q(z1|x), 2 + 2 aligned: Eq. (6) {truth}; "
        f"model (nu1 = mu1) {g['pathwise_train']} (relative error "
        f"{error(g['pathwise_train']):.3f}); nu1 = 1[zeta1 > 0] pathwise "
        f"{g['pathwise_alternative']} (relative error "
        f"{error(g['pathwise_alternative']):.3f}); + boundary term "
        f"{g['pathwise_alternative'] + g['boundary']}")
  # nu1 = mu1 is continuous in rho: its pathwise gradient is that of its
  # expectation (whose bias against Eq. (6) is small here).
  np.testing.assert_allclose(g["pathwise_train"], g["true_train"], atol=1e-5)
  # nu1 = z1 has Eq. (6)'s expectation but jumps at rho = 1 - mu1: the
  # pathwise gradient misses the jump, which the boundary term restores.
  np.testing.assert_allclose(g["true_alternative"], truth, atol=1e-5)
  np.testing.assert_allclose(g["pathwise_alternative"] + g["boundary"],
                             truth, atol=1e-5)
  assert error(g["pathwise_train"]) < 0.15  # measured 0.087
  assert error(g["pathwise_alternative"]) > 0.4  # measured 0.535


def test_overlapping_exponential_kl_has_no_such_bias():
  model, params = build(2), coupled_params(2, SEED, True)
  beta = BETA[EXPONENTIAL]
  r = jax.tree_util.tree_map(np.asarray, jax.jit(
      exponential_report, static_argnums=(0, 3, 4))(
          model, params, X, EXPONENTIAL_NODES, beta))
  print(f"\noverlapping exponential, 2 + 2 aligned: model's KL - Eq. (6)'s "
        f"= {r['train'] - r['exact']:+.2e} nats, grad_W difference "
        f"{np.max(np.abs(r['grad_train'] - r['grad_exact'])):.1e}")
  np.testing.assert_allclose(r["total_weight"], 1.0, atol=1e-5)
  np.testing.assert_allclose(r["train"], r["exact"], atol=1e-5)
  np.testing.assert_allclose(r["grad_train"], r["grad_exact"], atol=1e-5)
  mc = jax.tree_util.tree_map(np.asarray, monte_carlo_jit(
      model, params, X, EXPONENTIAL, beta, NUM_DRAWS))
  stats.assert_unbiased(mc["train"], r["exact"])
  stats.assert_unbiased(mc["exact"], r["exact"])
  stats.assert_unbiased(mc["grad_train"], r["grad_exact"])


def test_bias_on_larger_models():
  # 4 + 4 units by quadrature (9^4 nodes), 16 + 16 by Monte Carlo.
  model = build(4)
  relative = {}
  for aligned in (True, False):
    s = summarise(spike_report_jit(model, coupled_params(4, SEED, aligned),
                                   X, NODES[4], BETA[SPIKE]))
    label = "aligned" if aligned else "unaligned"
    print_summary(f"spike-and-exp, 4 + 4 units, {label}", s)
    relative[4, aligned] = s["relative"]
  model = build(16)
  draws = paired_draws_jit(model, coupled_params(16, SEED, True), X,
                           BETA[SPIKE], NUM_DRAWS)
  d = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), draws)
  difference = d["train"] - d["alternative"]
  bias = np.mean(difference)
  stderr = np.std(difference, ddof=1) / np.sqrt(NUM_DRAWS)
  kl = np.mean(d["alternative"]) + d["log_z"]
  grad_bias = d["grad_train"] - d["grad_alternative"]
  exact_grad = d["grad_alternative"] + d["grad_log_z"]
  relative[16, True] = bias / kl
  print(f"\nspike-and-exp, 16 + 16 units, aligned ({NUM_DRAWS} draws): Eq. (6)"
        f" KL {kl:.3f} nats; model's KL - Eq. (6)'s = {bias:+.3f} +- "
        f"{stderr:.3f} nats ({100 * bias / kl:+.1f} % of the KL); "
        f"|grad_W bias| / |grad_W| = "
        f"{np.linalg.norm(grad_bias) / np.linalg.norm(exact_grad):.3f}")
  # Measured 17.8 %, -2.9 % and 27.5 % of the KL.
  assert 0.1 < relative[4, True] < 0.3
  assert abs(relative[4, False]) < 0.1
  assert 0.1 < relative[16, True] < 0.4
