"""Tests of discrete_vi.distributions.overlapping: densities, CDFs, inverse
CDFs, implicit gradients and posteriors against float64 formulas,
normalisation by quadrature, samplers against the CDF, closed-form vs
ancestral (implicit-gradient) sampling, extremes, the hard limit, and
validation.

Compilation dominates the runtime, so each family is evaluated by a few
jitted functions over a [beta, logits, points] grid (beta is traced)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from discrete_vi.distributions import overlapping as ov

FAMILIES = sorted(ov.FAMILIES)
CLOSED_FORM = ["exponential", "spike_and_exp"]
BETAS = np.array([1.0, 10.0, 40.0, 100.0])
# q in [1e-6, 1 - 1e-6] (+-13.8) and beyond (+-50)
LOGITS = np.array([-50.0, -13.8, -2.0, 0.0, 1.5, 13.8, 50.0])
SAMPLE_BETA = 6.0
SAMPLE_LOGITS = np.array([-1.5, 0.3, 2.0])
# Every probe below is called with the same shapes, so that each family
# compiles once: points [4 betas, 1, NUM_POINTS] x logits [7, 1], and draws
# [NUM_DRAWS, 36 columns], each column with its own (logit, beta).
NUM_POINTS = 20_001
NUM_DRAWS = 8192


def sample_methods():
  for name in FAMILIES:
    yield name, "ancestral"
    if name in CLOSED_FORM:
      yield name, "inverse_cdf"


# ------------------------------------------------------- float64 references


def reference_components(name, zeta, beta):
  """r(zeta|0), r(zeta|1), R(zeta|0), R(zeta|1) in float64, from definitions."""
  zeta = np.asarray(zeta, np.float64)
  with np.errstate(all="ignore"):
    if name == "exponential":
      norm = beta / -np.expm1(-beta)
      return (norm * np.exp(-beta * zeta), norm * np.exp(-beta * (1 - zeta)),
              np.expm1(-beta * zeta) / np.expm1(-beta),
              (np.exp(-beta * (1 - zeta)) - np.exp(-beta)) / -np.expm1(-beta))
    if name == "logistic":
      def pdf(x):
        return beta * special.expit(beta * x) * special.expit(-beta * x)
      return (pdf(zeta), pdf(zeta - 1), special.expit(beta * zeta),
              special.expit(beta * (zeta - 1)))
    if name == "power_function":
      lam = 1.0 / beta
      return (lam * zeta**(lam - 1), lam * (1 - zeta)**(lam - 1), zeta**lam,
              1 - (1 - zeta)**lam)
    if name == "spike_and_exp":  # continuous part (zeta > 0)
      norm = beta / -np.expm1(-beta)
      return (np.zeros_like(zeta), norm * np.exp(beta * (zeta - 1)),
              np.ones_like(zeta),
              (np.exp(beta * (zeta - 1)) - np.exp(-beta)) / -np.expm1(-beta))
  raise ValueError(name)


def reference_mean(name, logits, beta):
  """E[zeta] = (1 - q) E_r0[zeta] + q E_r1[zeta], closed forms."""
  q = special.expit(np.asarray(logits, np.float64))
  if name == "exponential":
    m0 = 1 / beta - 1 / np.expm1(beta)
    return (1 - q) * m0 + q * (1 - m0)
  if name == "logistic":
    return q
  if name == "power_function":
    m0 = 1 / (1 + beta)
    return (1 - q) * m0 + q * (1 - m0)
  if name == "spike_and_exp":
    return q * (1 - 1 / beta + 1 / np.expm1(beta))
  raise ValueError(name)


def reference_quantile(name, z, u, beta):
  """Inverse of R(.|z), float64."""
  u = np.asarray(u, np.float64)
  if name == "exponential":
    q0 = lambda v: -np.log1p(v * np.expm1(-beta)) / beta
    return q0(u) if z == 0 else 1 - q0(1 - u)
  if name == "logistic":
    return z + special.logit(u) / beta
  if name == "power_function":
    return u**beta if z == 0 else 1 - (1 - u)**beta
  if name == "spike_and_exp":
    if z == 0:
      return np.zeros_like(u)
    return 1 + np.log(u + (1 - u) * np.exp(-beta)) / beta
  raise ValueError(name)


def g_smooth(zeta, xp=jnp):
  """A smooth, bounded test function of zeta."""
  return xp.sin(3.0 * zeta) + 0.5 * xp.tanh(2.0 * zeta - 1.0)


def reference_mean_gradient(name, logits, beta, num_nodes=20_000):
  """d E_{q(zeta)}[g(zeta)] / d logits = q(1-q)(E[g|z=1] - E[g|z=0]).

  The conditional expectations use the midpoint rule in probability space
  (nodes R(.|z)^{-1}((k + 1/2)/M)), in float64.
  """
  u = (np.arange(num_nodes) + 0.5) / num_nodes
  def cond(z):
    return np.mean(g_smooth(reference_quantile(name, z, u, beta), np))
  q = special.expit(np.asarray(logits, np.float64))
  return q * (1 - q) * (cond(1) - cond(0))


def point_grid(name, beta):
  """[4, 1, NUM_POINTS] points covering the support for each beta."""
  u = np.linspace(0.0, 1.0, NUM_POINTS)
  if name == "logistic":  # support R: [-40/beta, 1 + 40/beta]
    return -40 / beta + (1 + 80 / beta) * u
  return np.broadcast_to(u, (len(beta), 1, NUM_POINTS))


@functools.partial(jax.jit, static_argnums=0)
def evaluate(name, logits, zeta, beta):
  """log q, F, dF/dzeta, dzeta/dlogits (implicit), posterior logits."""
  family = ov.FAMILIES[name]
  shape = jnp.broadcast_shapes(logits.shape, zeta.shape, beta.shape)
  logits, zeta = jnp.broadcast_to(logits, shape), jnp.broadcast_to(zeta, shape)
  dcdf = jax.grad(lambda x: jnp.sum(ov.cdf(family, logits, x, beta)))(zeta)
  return dict(log_prob=ov.log_prob(family, logits, zeta, beta),
              cdf=ov.cdf(family, logits, zeta, beta), dcdf=dcdf,
              implicit=ov.implicit_logit_gradient(family, logits, zeta, beta),
              posterior=ov.posterior_logits(family, logits, zeta, beta))


def evaluate64(name, zeta, beta=BETAS[:, None, None], logits=LOGITS[:, None]):
  """`evaluate` on the standard shapes, as float64 numpy arrays."""
  out = evaluate(name, jnp.asarray(logits, jnp.float32),
                 jnp.asarray(zeta, jnp.float32), jnp.asarray(beta, jnp.float32))
  return {k: np.asarray(v, np.float64) for k, v in out.items()}


@functools.partial(jax.jit, static_argnums=0)
def invert(name, logits, rho, beta):
  """F^{-1}(rho), its autodiff and attached (implicit) logit derivatives."""
  family = ov.FAMILIES[name]
  shape = jnp.broadcast_shapes(logits.shape, rho.shape, beta.shape)
  logits, rho = jnp.broadcast_to(logits, shape), jnp.broadcast_to(rho, shape)
  zeta = family.inverse_cdf(logits, rho, beta)
  def total(fn):
    return jax.grad(lambda l: jnp.sum(fn(family, l, rho, beta)))(logits)
  return dict(
      zeta=zeta,
      autodiff=total(lambda fam, l, r, b: fam.inverse_cdf(l, r, b)),
      attached=total(ov.sample_inverse_cdf),
      implicit=ov.implicit_logit_gradient(family, logits, zeta, beta))


def invert64(name, rho, beta=BETAS[:, None, None], logits=LOGITS[:, None]):
  """`invert` on the standard shapes (rho broadcast to [4, 1, NUM_POINTS])."""
  rho = np.broadcast_to(rho, (4, 1, NUM_POINTS))
  out = invert(name, jnp.asarray(logits, jnp.float32),
               jnp.asarray(rho, jnp.float32),
               jnp.asarray(np.broadcast_to(beta, (4, 1, 1)), jnp.float32))
  return {k: np.asarray(v, np.float64) for k, v in out.items()}


def uniforms(shape, seed):
  """Float32 uniforms on the grid of `ov.sample`: (k + 1/2) 2^-23."""
  k = np.random.default_rng(seed).integers(0, 2**23, size=(2,) + shape)
  return jnp.asarray((k + 0.5) / 2.0**23, jnp.float32)


@functools.partial(jax.jit, static_argnums=(0, 1))
def draw(name, method, logits, rho, u, beta):
  """Samples as `ov.sample` draws them from uniforms (rho, u), per-sample
  d g(zeta)/d (logits, beta), log q with its gradient, posterior logits.

  Taking the uniforms as inputs keeps the PRNG (slow to compile) out of
  this probe; `test_sample` covers `ov.sample` itself.
  """
  family = ov.FAMILIES[name]
  def total(l, b):
    z = ov.hard_limit(l, rho)
    if method == "inverse_cdf":
      zeta = ov.sample_inverse_cdf(family, l, rho, b)
    else:
      zeta = ov.sample_ancestral(family, l, z, u, b)
    return jnp.sum(g_smooth(zeta)), (zeta, z)
  (_, (zeta, z)), (dlogits, dbeta) = jax.value_and_grad(
      total, argnums=(0, 1), has_aux=True)(logits, beta)
  log_q = lambda l: ov.log_prob(family, l, zeta, beta)
  dlog_q = jax.grad(lambda l: jnp.sum(log_q(l)))(logits)
  return dict(zeta=zeta, z=z, dlogits=dlogits, dbeta=dbeta,
              log_q=log_q(logits), dlog_q=dlog_q,
              posterior=ov.posterior_logits(family, logits, zeta, beta))


def draw64(name, method, logits, beta, seed=0):
  """`draw` at [NUM_DRAWS, 36]: `logits`, `beta` are the 36 columns."""
  logits = jnp.broadcast_to(jnp.asarray(logits, jnp.float32), (NUM_DRAWS, 36))
  rho, u = uniforms(logits.shape, seed)
  out = draw(name, method, logits, rho, u, jnp.asarray(beta, jnp.float32))
  out = {k: np.asarray(v, np.float64) for k, v in out.items()}
  out["rho"] = np.asarray(rho, np.float64)
  return out


def sample_draws(name, method, seed=7):
  """~1e5 draws for each of SAMPLE_LOGITS at SAMPLE_BETA: [NUM_DRAWS*12, 3]."""
  out = draw64(name, method, np.tile(SAMPLE_LOGITS, 12),
               np.full(36, SAMPLE_BETA), seed)
  return {k: v.reshape(-1, 3) for k, v in out.items() if k != "dbeta"}


# ------------------------------------------------- densities and CDFs


@pytest.mark.parametrize("name", FAMILIES)
def test_density_cdf_gradient_posterior_match_float64(name):
  beta = BETAS[:, None, None]
  zeta = point_grid(name, beta)
  if name != "logistic":  # keep inside (0, 1): endpoints are tested below
    zeta = 1e-3 + (1 - 2e-3) * zeta
  if name == "spike_and_exp":  # below 0.2 dzeta/dlogits overflows float32
    zeta = 0.2 + 0.8 * zeta    # at beta = 100 (it is ~1e41 at 0.001)
  out = evaluate64(name, zeta)
  z64 = np.asarray(np.float32(zeta), np.float64)
  r0, r1, big_r0, big_r1 = reference_components(name, z64, beta)  # [4,1,N]
  q, p = special.expit(LOGITS[:, None]), special.expit(-LOGITS[:, None])
  density = p * r0 + q * r1  # [4, 7, N]
  ok = density > 1e-300
  np.testing.assert_allclose(out["log_prob"][ok], np.log(density[ok]),
                             rtol=2e-6, atol=2e-5)
  np.testing.assert_allclose(out["cdf"], p * big_r0 + q * big_r1, atol=2e-6)
  np.testing.assert_allclose(out["dcdf"][ok], density[ok], rtol=2e-3,
                             atol=1e-5)
  with np.errstate(all="ignore"):
    np.testing.assert_allclose(special.expit(out["posterior"]),
                               q * r1 / density, rtol=1e-5, atol=1e-6)
  # R0 - R1 cancels in float64 in the logistic tails: compare where it keeps
  # 8 digits.
  gap = big_r0 - big_r1
  ok &= gap > 1e-8
  want = (q * p * gap / density)[ok]
  np.testing.assert_allclose(out["implicit"][ok], want, rtol=1e-4, atol=1e-30)


@pytest.mark.parametrize("name", ["exponential", "logistic", "power_function"])
def test_symmetric_families_mirror(name):
  """q(1 - zeta; logits) = q(zeta; -logits) when r(zeta|1) = r(1 - zeta|0)."""
  beta = BETAS[:, None, None]
  zeta = np.float32(0.05 + 0.9 * np.linspace(0, 1, NUM_POINTS))
  mirrored = evaluate64(name, 1 - zeta)["log_prob"]
  flipped = evaluate64(name, zeta, logits=-LOGITS[:, None])["log_prob"]
  np.testing.assert_allclose(mirrored, flipped, rtol=1e-5, atol=1e-4)


def _trapezoid(values, points):
  return np.sum(0.5 * (values[..., 1:] + values[..., :-1]) *
                np.diff(points), -1)


@pytest.mark.parametrize("name", ["exponential", "logistic", "spike_and_exp"])
def test_density_integrates_to_one(name):
  beta = BETAS[:, None, None]
  zeta = np.asarray(np.float32(point_grid(name, beta)), np.float64)
  density = np.exp(evaluate64(name, zeta)["log_prob"])  # [4, 7, N]
  if name == "spike_and_exp":  # the atom at 0 plus the density on (0, 1]
    np.testing.assert_allclose(density[..., 0], np.broadcast_to(
        special.expit(-LOGITS), (4, 7)), rtol=1e-6)
    total = density[..., 0] + _trapezoid(density[..., 1:], zeta[..., 1:])
  else:
    total = _trapezoid(density, zeta)
  np.testing.assert_allclose(total, 1.0, atol=1e-4)


def test_power_function_density_integrates_to_one():
  """int_0^1 q = int_0^{1/2} [q(zeta; l) + q(zeta; -l)], zeta = s^beta.

  The substitution removes the singularity at 0; the mirror (tested above)
  keeps every evaluation near 0, where float32 resolves zeta. beta <= 4 keeps
  the mass below float32's smallest normal number negligible.
  """
  beta = np.array([1.0, 2.0, 3.0, 4.0])[:, None, None]
  s = 1e-6 + (0.5**(1 / beta) - 1e-6) * np.linspace(0, 1, NUM_POINTS)
  zeta = s**beta
  density = (np.exp(evaluate64("power_function", zeta, beta)["log_prob"]) +
             np.exp(evaluate64("power_function", zeta, beta,
                               -LOGITS[:, None])["log_prob"]))
  total = _trapezoid(density * beta * s**(beta - 1), s)
  np.testing.assert_allclose(total, 1.0, atol=1e-4)


# ------------------------------------------------------------- inverse CDFs


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_cdf_of_inverse_cdf_is_identity(name):
  rho = np.float32(np.linspace(1e-4, 1 - 1e-4, NUM_POINTS))
  beta = BETAS[:, None, None]
  zeta = invert64(name, rho)["zeta"]  # [4, 7, N]
  assert np.all((zeta >= 0) & (zeta <= 1))
  q, p = special.expit(LOGITS[:, None]), special.expit(-LOGITS[:, None])
  _, _, big_r0, big_r1 = reference_components(name, zeta, beta)
  cdf = p * big_r0 + q * big_r1
  keep = np.ones(zeta.shape, bool)
  if name == "spike_and_exp":  # rho <= 1 - q is the atom at 0
    keep = np.broadcast_to(rho > p, zeta.shape)
    assert np.all(zeta[~keep] == 0) and np.all(zeta[keep] > 0)
  np.testing.assert_allclose(cdf[keep], np.broadcast_to(rho, cdf.shape)[keep],
                             atol=1e-5)


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_inverse_cdf_of_cdf_is_identity(name):
  zeta = np.float32(np.linspace(0.002, 0.998, NUM_POINTS))
  forward = evaluate64(name, zeta)
  back = invert(name, jnp.asarray(LOGITS[:, None], jnp.float32),
                jnp.asarray(forward["cdf"], jnp.float32),
                jnp.asarray(BETAS[:, None, None], jnp.float32))["zeta"]
  # An error of one float32 ulp in rho moves zeta by ulp / density.
  density = np.exp(forward["log_prob"])
  tolerance = 1e-5 + 2e-7 / np.maximum(density, 1e-30)
  well_posed = tolerance < 0.01
  error = np.abs(np.asarray(back) - zeta)
  assert np.all(error[well_posed] < tolerance[well_posed])
  assert np.mean(well_posed) > 0.3


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_closed_form_autodiff_equals_implicit_gradient(name):
  """d F^{-1}(rho)/d logits (autodiff) = q(1-q)(R0 - R1)/q(zeta) pointwise.

  Where the two are well conditioned (moderate logits); sample_inverse_cdf
  attaches the implicit form everywhere.
  """
  rho = np.linspace(0.0105, 0.99, NUM_POINTS)  # no rho = 1 - q = 0.5 exactly
  logits = np.array([-2.0, -1.0, -0.3, 0.0, 0.4, 1.1, 2.0])[:, None]
  out = invert64(name, rho, np.array([1.0, 4.0, 10.0, 20.0])[:, None, None],
                 logits)
  np.testing.assert_allclose(out["autodiff"], out["implicit"], rtol=2e-3,
                             atol=1e-6)
  np.testing.assert_allclose(out["attached"], out["implicit"], rtol=1e-6)


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("name,method", list(sample_methods()))
def test_sampler_matches_cdf_mean_and_gradient(name, method):
  out = sample_draws(name, method)
  zeta, z = out["zeta"], out["z"]
  n = len(zeta)
  # histogram against the float64 CDF (the spike's atom is in bin 0)
  lo, hi = (-0.5, 1.5) if name == "logistic" else (0.0, 1.0)
  edges = np.linspace(lo, hi, 21)[1:-1]  # interior edges; tails in end bins
  _, _, big_r0, big_r1 = reference_components(name, edges[:, None],
                                              SAMPLE_BETA)
  q = special.expit(SAMPLE_LOGITS)
  cdf = np.concatenate([np.zeros((1, 3)), (1 - q) * big_r0 + q * big_r1,
                        np.ones((1, 3))])
  probs = np.diff(cdf, axis=0)  # [bins, 3]
  counts = np.stack([np.histogram(zeta[:, d], np.r_[-np.inf, edges, np.inf])[0]
                     for d in range(3)], 1) / n
  se = np.sqrt(probs * (1 - probs) / n) + 1e-12
  assert np.max(np.abs(counts - probs) / se) < 4.5
  # mean
  mean = reference_mean(name, SAMPLE_LOGITS, SAMPLE_BETA)
  assert np.max(np.abs(zeta.mean(0) - mean) / (zeta.std(0) / np.sqrt(n))) < 4
  # the hard partner is Bernoulli(q); for the spike it is 1[zeta > 0]
  assert np.max(np.abs(z.mean(0) - q) / np.sqrt(q * (1 - q) / n)) < 4
  if name == "spike_and_exp":
    np.testing.assert_array_equal(z, (zeta > 0).astype(np.float64))
  # E[g'(zeta) dzeta/dlogits] = d E[g(zeta)] / d logits
  draws = out["dlogits"]
  target = reference_mean_gradient(name, SAMPLE_LOGITS, SAMPLE_BETA)
  se = draws.std(0, ddof=1) / np.sqrt(n)
  assert np.max(np.abs(draws.mean(0) - target) / se) < 4, (draws.mean(0),
                                                            target)
  # E_{q(zeta)}[q(z=1|zeta)] = q (Vahdat et al., 2018a, Sec. 5)
  nu = special.expit(out["posterior"])
  se = nu.std(0) / np.sqrt(n) + 1e-9
  assert np.max(np.abs(nu.mean(0) - q) / se) < 4


def test_the_hard_partner_of_each_sampler():
  """Ancestral: E[zeta | z] is the mean of r(.|z). Inverse CDF: z is the
  comonotone partner, z = 1[zeta > F^{-1}(1 - q)]."""
  for name in FAMILIES:
    out = sample_draws(name, "ancestral")
    m1 = reference_mean(name, np.inf, SAMPLE_BETA)   # E_r1[zeta]
    m0 = reference_mean(name, -np.inf, SAMPLE_BETA)  # E_r0[zeta]
    for d in range(3):
      for z, m in [(0.0, m0), (1.0, m1)]:
        zeta = out["zeta"][out["z"][:, d] == z, d]
        se = zeta.std() / np.sqrt(len(zeta)) + 1e-9
        assert abs(zeta.mean() - m) < 4 * se, (name, d, z)
  out = sample_draws("exponential", "inverse_cdf")
  for d in range(3):
    upper = out["zeta"][out["z"][:, d] == 1, d]
    lower = out["zeta"][out["z"][:, d] == 0, d]
    assert lower.max() <= upper.min()


def test_closed_form_and_ancestral_agree_in_distribution():
  """Two-sample Kolmogorov-Smirnov (alpha ~ 1e-3) per unit."""
  a = sample_draws("exponential", "inverse_cdf")["zeta"]
  b = sample_draws("exponential", "ancestral", seed=8)["zeta"]
  for d in range(3):
    grid = np.sort(np.r_[a[:, d], b[:, d]])[::97]
    ecdf_a = np.searchsorted(np.sort(a[:, d]), grid) / len(a)
    ecdf_b = np.searchsorted(np.sort(b[:, d]), grid) / len(b)
    assert np.max(np.abs(ecdf_a - ecdf_b)) < 1.95 * np.sqrt(2 / len(a))


def test_a_wrong_implicit_gradient_is_detected():
  """The quadrature check fails for a wrong gradient (R0 - R1 halved)."""
  family = ov.EXPONENTIAL._replace(
      log_cdf_gap=lambda zeta, b: ov.EXPONENTIAL.log_cdf_gap(zeta, b) - 0.7)
  logits = jnp.broadcast_to(jnp.asarray(SAMPLE_LOGITS, jnp.float32),
                            (20_000, 3))
  rho, u = uniforms(logits.shape, 3)
  draws = np.asarray(jax.jit(jax.grad(lambda l: jnp.sum(g_smooth(
      ov.sample_ancestral(family, l, ov.hard_limit(l, rho), u,
                          SAMPLE_BETA)))))(logits), np.float64)
  target = reference_mean_gradient("exponential", SAMPLE_LOGITS, SAMPLE_BETA)
  se = draws.std(0, ddof=1) / np.sqrt(draws.shape[0])
  assert np.max(np.abs(draws.mean(0) - target) / se) > 10


# ---------------------------------------------------- extremes and the limit


def grid_draws(name, method, betas, seed=0):
  """NUM_DRAWS draws at each (beta, logit) of betas x LOGITS (+ -0.2, 0.7)."""
  logits = np.r_[LOGITS, -0.2, 0.7]  # 9
  out = draw64(name, method, np.tile(logits, 4), np.repeat(betas, 9), seed)
  return {k: v.reshape(NUM_DRAWS, 4, 9) for k, v in out.items()
          if k != "dbeta"}


@pytest.mark.parametrize("name,method", list(sample_methods()))
def test_finite_at_extreme_logits_and_beta(name, method):
  out = grid_draws(name, method, BETAS)
  chex.assert_tree_all_finite({k: v for k, v in out.items()
                               if k != "posterior"})
  if name != "spike_and_exp":  # its posterior is exactly 0 or 1
    chex.assert_tree_all_finite(out["posterior"])
  if name != "logistic":
    assert np.all((out["zeta"] >= 0) & (out["zeta"] <= 1))
  # z = 1[rho > 1 - q] exactly, also at logits +-50
  p = special.expit(-np.r_[LOGITS, -0.2, 0.7])
  np.testing.assert_array_equal(out["z"], out["rho"] > p)


@pytest.mark.parametrize("name,method", list(sample_methods()))
def test_hard_limit_at_large_beta(name, method):
  out = grid_draws(name, method, np.array([10.0, 100.0, 1000.0, 10000.0]))
  gap = np.mean(np.abs(out["zeta"] - out["z"]), axis=(0, 2))  # per beta
  assert np.all(np.diff(gap) < 0), gap
  assert gap[-1] < 1e-3, gap
  posterior = special.expit(out["posterior"])
  assert np.mean(np.abs(posterior - out["z"])[:, -1]) < 1e-3
  if method == "inverse_cdf":
    rho = np.linspace(0.0105, 0.99, NUM_POINTS)  # avoids rho = 1 - q
    zeta = invert64(name, rho, np.array([300.0, 1000.0, 5000.0, 1e5])[
        :, None, None])["zeta"]
    hard = np.asarray(ov.hard_limit(LOGITS[:, None], rho), np.float64)
    np.testing.assert_allclose(zeta[-1], hard, atol=2e-3)


# ------------------------------------------------------ ov.sample, validation


@jax.jit
def _sample_all(keys, logits):
  """`ov.sample` for every family and method, vmapped over keys."""
  def one(key):
    return {f"{name}/{method}": ov.sample(ov.FAMILIES[name], key, logits,
                                          SAMPLE_BETA, method=method,
                                          sample_shape=(2,))
            for name, method in list(sample_methods()) + [("exponential",
                                                           "auto")]}
  return jax.vmap(one)(keys)


def test_sample():
  """Shapes under vmap, z ~ Bernoulli(q) exactly, zeta's mean, the coupling."""
  logits = jnp.broadcast_to(jnp.asarray(SAMPLE_LOGITS, jnp.float32),
                            (10_000, 3))
  out = _sample_all(jax.random.split(jax.random.PRNGKey(5), 2), logits)
  q = special.expit(SAMPLE_LOGITS)
  for key, (zeta, z) in out.items():
    chex.assert_shape((zeta, z), (2, 2, 10_000, 3))
    zeta = np.asarray(zeta, np.float64).reshape(-1, 3)
    z = np.asarray(z, np.float64).reshape(-1, 3)
    assert set(np.unique(z)) <= {0.0, 1.0}
    se = np.sqrt(q * (1 - q) / len(z))
    assert np.max(np.abs(z.mean(0) - q) / se) < 4, key
    mean = reference_mean(key.split("/")[0], SAMPLE_LOGITS, SAMPLE_BETA)
    se = zeta.std(0) / np.sqrt(len(zeta))
    assert np.max(np.abs(zeta.mean(0) - mean) / se) < 4, key
  # "auto" is the inverse CDF; every method pairs zeta with the same z
  np.testing.assert_array_equal(out["exponential/auto"][0],
                                out["exponential/inverse_cdf"][0])
  np.testing.assert_array_equal(out["exponential/ancestral"][1],
                                out["exponential/inverse_cdf"][1])


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta_raises(beta):
  family = ov.EXPONENTIAL
  logits = jnp.zeros(3)
  calls = [
      lambda: ov.sample(family, jax.random.PRNGKey(0), logits, beta),
      lambda: ov.log_prob(family, logits, logits + 0.5, beta),
      lambda: ov.cdf(family, logits, logits + 0.5, beta),
      lambda: ov.posterior_logits(family, logits, logits + 0.5, beta),
      lambda: ov.sample_ancestral(family, logits, logits, logits + 0.5, beta),
      lambda: ov.sample_inverse_cdf(family, logits, logits + 0.5, beta),
  ]
  for call in calls:
    with pytest.raises(ValueError, match="beta="):
      call()


def test_bad_method_raises():
  with pytest.raises(ValueError, match="method='nope'"):
    ov.sample(ov.EXPONENTIAL, jax.random.PRNGKey(0), jnp.zeros(2), 1.0,
              method="nope")
  with pytest.raises(ValueError, match="method='inverse_cdf'"):
    ov.sample(ov.LOGISTIC, jax.random.PRNGKey(0), jnp.zeros(2), 1.0,
              method="inverse_cdf")
