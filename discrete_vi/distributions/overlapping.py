r"""Smoothing transformations of binary variables (DVAE, DVAE++, DVAE#).

A binary unit z ~ Bernoulli(q), q = sigmoid(logits), is paired with a
continuous zeta ~ r(zeta|z). The marginal

  q(\zeta) = (1 - q)\, r(\zeta|0) + q\, r(\zeta|1)

is a continuous relaxation of z that tends to z as the inverse temperature
beta -> infinity, and E_{q(zeta)}[f(zeta)] can be differentiated by
reparameterisation (Rolfe, 2017, Eq. 2 of Vahdat et al., 2018a).

Families (all parameterised by logits, so that q and 1 - q are exact at
extreme logits; beta > 0):

* exponential (DVAE++, Vahdat et al., 2018a, Sec. 3): on [0, 1],
  r(\zeta|0) = \beta e^{-\beta\zeta} / (1 - e^{-\beta}),
  r(\zeta|1) = r(1-\zeta|0).
  Closed-form inverse CDF of the mixture (below).
* logistic (DVAE++, Appendix B; our copy lacks it, so this is our own
  derivation): logistic densities centred at 0 and 1 with scale 1/beta, on R,
  r(\zeta|z) = \beta \sigma(\beta(\zeta - z)) \sigma(-\beta(\zeta - z)),
  R(\zeta|z) = \sigma(\beta(\zeta - z)), so that
  \log r(\zeta|1) - \log r(\zeta|0) = \log\sigma(\beta(\zeta-1)) +
  \log\sigma(\beta(1-\zeta)) - \log\sigma(\beta\zeta) - \log\sigma(-\beta\zeta)
  (= \beta(2\zeta - 1) + O(e^{-\beta\min(\zeta, 1-\zeta)}) on [0, 1]), and,
  from \sigma(a) - \sigma(b) = \sigma(a)\sigma(-b)(1 - e^{b-a}),
  R(\zeta|0) - R(\zeta|1) =
  \sigma(\beta\zeta)\sigma(\beta(1-\zeta))(1 - e^{-\beta}).
  Sampled ancestrally: \zeta = z + logit(u)/\beta. (The mixture CDF is in fact
  a quadratic in e^{\beta\zeta}, so a closed-form inverse exists too; it is
  not needed: see "Implicit gradient".)
* spike-and-exp (DVAE, Rolfe, 2017): r(\zeta|0) = \delta(\zeta),
  r(\zeta|1) = \beta e^{\beta(\zeta - 1)} / (1 - e^{-\beta}) on [0, 1].
  Densities are taken w.r.t. the base measure \delta_0 + Lebesgue, so
  log q(0) = log(1 - q) (the atom) and log q(\zeta) = log q + log r(\zeta|1)
  for \zeta > 0; q(z=1|\zeta) = 1[\zeta > 0] (logits -inf / +inf).
* power-function (DVAE#, Vahdat et al., 2018b): \lambda = 1/\beta,
  r(\zeta|0) = \lambda \zeta^{\lambda - 1}, R(\zeta|0) = \zeta^\lambda (sample
  u^{1/\lambda} = u^\beta), r(\zeta|1) = r(1 - \zeta|0). Sampled ancestrally.
  In float32 the component samples u^beta and 1 - u^beta round to exactly 0
  or 1 for a large share of u at beta ~ 30 (where r(.|0) and r(.|1) are
  infinite); samples are therefore clipped to [tiny, 1 - 2^-24], which moves
  them by less than 6e-8.

Exponential inverse CDF (stable form). With m = e^{-\beta\zeta}, the mixture
CDF F(\zeta) = \rho is the quadratic (1-q) m^2 + B m - q e^{-\beta} = 0,
B = \rho + e^{-\beta}(q - \rho) - (1 - q) (Eq. 3 of Vahdat et al., 2018a,
multiplied through by 1 - q). Its positive root is
m = (|B| + D) / (2(1 - q)) if B < 0 and m = 2 q e^{-\beta} / (B + D) if B >= 0,
D = \sqrt{B^2 + c^2}, c = 2\sqrt{q(1-q)} e^{-\beta/2}; since
\log((|B| + D)/c) = |\operatorname{asinh}(B/c)| and
\log c = \log 2 + (\log q + \log(1-q) - \beta)/2, both branches reduce to the
single smooth expression
\zeta = 1/2 + (\operatorname{asinh}(B/c) - \mathrm{logits}/2)/\beta,
evaluated without forming e^{-\beta} (which flushes to zero in float32 at
beta = 100) or B^2 (see `exponential_inverse_cdf` for the tails).

Implicit gradient (Figurnov et al., 2018). For any mixture, differentiating
F(\zeta; q) = \rho at fixed \rho gives
\partial\zeta/\partial q = (R(\zeta|0) - R(\zeta|1)) / q(\zeta), hence
\partial\zeta/\partial\,\mathrm{logits} =
q(1-q) (R(\zeta|0) - R(\zeta|1)) / q(\zeta), computed in log space.
`sample_ancestral` draws z ~ Bernoulli(q), \zeta ~ r(.|z) and attaches this
derivative with `jax.custom_jvp`; `sample_inverse_cdf` takes its value from
the closed form and attaches the same derivative (autodiff of the closed form
loses it to cancellation where it is small). The per-sample gradient is a
function of \zeta alone and equals d F^{-1}(\rho)/d logits at
\rho = F(\zeta), so ancestral and inverse-CDF samplers give identically
distributed pathwise gradients; they differ only in which hard z
accompanies \zeta.

Hard limit. The inverse-CDF samplers tend, as beta -> infinity, to
z = 1[\rho > 1 - q] at the same \rho (`hard_limit`); the ancestral samplers
tend to their own z. `sample` returns this z with \zeta, so that f(z) is an
exact sample of the discrete objective. For the exponential family this z
is the comonotone partner of \zeta (z = 1[\zeta > F^{-1}(1 - q)]), not a
draw from q(z|\zeta): its marginal is Bernoulli(q) but (z, \zeta) is not
distributed as q(z) r(\zeta|z); for spike-and-exp it is exactly the z
underlying \zeta.

References:
  Rolfe, 2017. Discrete variational autoencoders. ICLR.
  Vahdat, Macready, Bian, Khoshaman, Andriyash, 2018a. DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Vahdat, Andriyash, Macready, 2018b. DVAE#: Discrete variational
    autoencoders with relaxed Boltzmann priors. NeurIPS.
  Figurnov, Mohamed, Mnih, 2018. Implicit reparameterization gradients.
    NeurIPS.
"""

import functools
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.types import Array, ArrayLike, PRNGKey

_LOG2 = math.log(2.0)
SAMPLING_METHODS = ("auto", "inverse_cdf", "ancestral")


class Smoothing(NamedTuple):
  """The conditionals r(zeta|z), z in {0, 1}, of one smoothing family.

  Every function works elementwise and broadcasts `zeta` against `beta`.

  Attributes:
    name: family name.
    log_pdfs: `(zeta, beta) -> (log r(zeta|0), log r(zeta|1))`.
    cdfs: `(zeta, beta) -> (R(zeta|0), R(zeta|1))`.
    log_cdf_gap: `(zeta, beta) -> log(R(zeta|0) - R(zeta|1))`, the numerator
      of the implicit gradient.
    sample_given: `(z, u, beta) -> zeta ~ r(.|z)` from uniforms u, increasing
      in u.
    inverse_cdf: `(logits, rho, beta) -> F^{-1}(rho)`, the closed-form
      inverse CDF of the mixture, or None.
  """
  name: str
  log_pdfs: Callable[[Array, ArrayLike], tuple[Array, Array]]
  cdfs: Callable[[Array, ArrayLike], tuple[Array, Array]]
  log_cdf_gap: Callable[[Array, ArrayLike], Array]
  sample_given: Callable[[Array, Array, ArrayLike], Array]
  inverse_cdf: Optional[Callable[[Array, Array, ArrayLike], Array]] = None


# ------------------------------------------------------------------ helpers


def check_beta(beta: ArrayLike) -> None:
  """Raises ValueError unless a concrete `beta` is finite and > 0.

  Traced values (inside `jit`) cannot be inspected and are accepted.
  """
  checks.check_positive("beta", beta)


def _log1mexp(x: Array) -> Array:
  """log(1 - e^{-x}) for x >= 0, accurate for small and large x."""
  x = jnp.asarray(x)
  small = x < _LOG2
  x_small = jnp.where(small, x, 1.0)
  x_large = jnp.where(small, 1.0, x)
  return jnp.where(small, jnp.log(-jnp.expm1(-x_small)),
                   jnp.log1p(-jnp.exp(-x_large)))


def _logaddexp(a: Array, b: Array) -> Array:
  """log(e^a + e^b) whose value and gradient are safe when a, b are +-inf."""
  both_neg = (a == -jnp.inf) & (b == -jnp.inf)
  any_pos = (a == jnp.inf) | (b == jnp.inf)
  special = both_neg | any_pos
  a_safe = jnp.where(special, 0.0, a)
  b_safe = jnp.where(special, 0.0, b)
  out = jnp.logaddexp(a_safe, b_safe)
  return jnp.where(both_neg, -jnp.inf, jnp.where(any_pos, jnp.inf, out))


def _open_unit(x: Array) -> Array:
  """Clips to [tiny, 1 - 2^-24]: the float32 interior of [0, 1]."""
  dtype = jnp.result_type(x)
  return jnp.clip(x, jnp.finfo(dtype).tiny,
                  jnp.nextafter(jnp.ones((), dtype), jnp.zeros((), dtype)))


def _mirror_sample(inverse_cdf0: Callable[[Array, ArrayLike], Array],
                   z: Array, u: Array, beta: ArrayLike) -> Array:
  """zeta ~ r(.|z) for r(zeta|1) = r(1-zeta|0): increasing in u for both z."""
  return jnp.where(z > 0.5, 1.0 - inverse_cdf0(1.0 - u, beta),
                   inverse_cdf0(u, beta))


def _in_unit(zeta: Array) -> Array:
  return (zeta >= 0.0) & (zeta <= 1.0)


# ----------------------------------------------------- exponential (DVAE++)


def _exponential_log_pdfs(zeta, beta):
  """log r(zeta|z) for the overlapping exponentials, -inf outside [0, 1]."""
  log_norm = jnp.log(beta) - _log1mexp(beta)
  log_r0 = log_norm - beta * zeta
  log_r1 = log_norm - beta * (1.0 - zeta)
  inside = _in_unit(zeta)
  return (jnp.where(inside, log_r0, -jnp.inf),
          jnp.where(inside, log_r1, -jnp.inf))


def _exponential_cdfs(zeta, beta):
  """R(zeta|0) = (1 - e^{-beta zeta}) / (1 - e^{-beta}); R(zeta|1) mirrored."""
  zeta = jnp.clip(zeta, 0.0, 1.0)
  r0 = jnp.expm1(-beta * zeta) / jnp.expm1(-beta)
  r1 = jnp.exp(-beta * (1.0 - zeta)) * r0
  return r0, r1


def _exponential_log_cdf_gap(zeta, beta):
  r"""R(\zeta|0) - R(\zeta|1), factorised.

  (1 - e^{-\beta\zeta})(1 - e^{-\beta(1-\zeta)}) / (1 - e^{-\beta}).
  """
  zeta = jnp.clip(zeta, 0.0, 1.0)
  return (_log1mexp(beta * zeta) + _log1mexp(beta * (1.0 - zeta)) -
          _log1mexp(beta))


def _exponential_inverse_cdf0(u, beta):
  """R(.|0)^{-1}(u) = -log(1 - u (1 - e^{-beta})) / beta."""
  return -jnp.log1p(u * jnp.expm1(-beta)) / beta


def _exponential_sample_given(z, u, beta):
  return _mirror_sample(_exponential_inverse_cdf0, z, u, beta)


def exponential_inverse_cdf(logits: ArrayLike, rho: ArrayLike,
                            beta: ArrayLike) -> Array:
  r"""Inverse CDF of the overlapping-exponential mixture, stable in float32.

  The positive root m = e^{-\beta\zeta} of (1-q) m^2 + B m - q e^{-\beta} = 0
  (module docstring) gives, for either sign of B,

    \zeta = 1/2 + (\operatorname{asinh}(B / c) - \mathrm{logits}/2) / \beta,
    c = 2\sqrt{q(1-q)}\, e^{-\beta/2},

  which is smooth in B and needs neither e^{-\beta} (it flushes to zero in
  float32 at beta = 100) nor B^2. Where |B/c| > e^{20} (zeta within
  ~e^{-20}-relative distance of the exponential tails) the equivalent
  \zeta = 1 + \log(B/q)/\beta (B > 0) or \zeta = \log((1-q)/|B|)/\beta
  (B < 0) is used instead: it keeps the relative precision of 1 - zeta and
  zeta, and differs from the exact root by O((c/B)^2).

  Args:
    logits: `[..., D]` logits of q(z = 1).
    rho: uniforms in [0, 1), broadcastable to logits.
    beta: inverse temperature > 0.

  Returns:
    zeta in [0, 1], differentiable in logits (and beta).

  References:
    Vahdat et al., 2018a, Eq. 3 (rearranged).
  """
  logits = jnp.asarray(logits)
  rho = jnp.asarray(rho, logits.dtype)
  log_q, log_p = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
  b = (rho - jax.nn.sigmoid(-logits) +
       jnp.exp(-beta) * (jax.nn.sigmoid(logits) - rho))   # B, [..., D]
  log_c = _LOG2 + 0.5 * (log_q + log_p) - 0.5 * beta
  a = jnp.where(b >= 0, b, -b)
  positive = a > 0
  log_a = jnp.log(jnp.where(positive, a, 1.0))
  log_x = jnp.where(positive, log_a - log_c, -jnp.inf)     # log|B / c|
  tail = log_x > 20.0
  # |B/c| <= e^20: asinh of B/c itself (at B = 0, of B e^{-log c} for the slope)
  x = jnp.where(positive, jnp.sign(b) * jnp.exp(jnp.where(tail, 0.0, log_x)),
                b * jnp.exp(-jnp.maximum(log_c, -80.0)))
  central = 0.5 + (jnp.arcsinh(x) - 0.5 * logits) / beta
  tails = jnp.where(b > 0, 1.0 + (log_a - log_q) / beta, (log_p - log_a) / beta)
  return jnp.clip(jnp.where(tail, tails, central), 0.0, 1.0)


# ------------------------------------------------------- logistic (DVAE++)


def _logistic_log_pdfs(zeta, beta):
  """log of beta sigma(beta(zeta - z)) sigma(-beta(zeta - z)), z = 0, 1."""
  def log_pdf(x):
    return (jnp.log(beta) + jax.nn.log_sigmoid(beta * x) +
            jax.nn.log_sigmoid(-beta * x))
  return log_pdf(zeta), log_pdf(zeta - 1.0)


def _logistic_cdfs(zeta, beta):
  return jax.nn.sigmoid(beta * zeta), jax.nn.sigmoid(beta * (zeta - 1.0))


def _logistic_log_cdf_gap(zeta, beta):
  r"""R(\zeta|0) - R(\zeta|1) without cancellation.

  \sigma(\beta\zeta) - \sigma(\beta(\zeta-1)) =
  \sigma(\beta\zeta)\sigma(\beta(1-\zeta))(1-e^{-\beta}).
  """
  return (jax.nn.log_sigmoid(beta * zeta) +
          jax.nn.log_sigmoid(beta * (1.0 - zeta)) + _log1mexp(beta))


def _logistic_sample_given(z, u, beta):
  """zeta = z + logit(u) / beta."""
  return z + (jnp.log(u) - jnp.log1p(-u)) / beta


# ------------------------------------------------------ spike-and-exp (DVAE)


def _spike_log_pdfs(zeta, beta):
  """Densities w.r.t. delta_0 + Lebesgue: r(.|0) is the atom at 0."""
  log_r0 = jnp.where(zeta == 0.0, 0.0, -jnp.inf)
  log_r1 = jnp.log(beta) + beta * (zeta - 1.0) - _log1mexp(beta)
  log_r1 = jnp.where((zeta > 0.0) & (zeta <= 1.0), log_r1, -jnp.inf)
  return log_r0, log_r1


def _spike_cdfs(zeta, beta):
  """R(.|0) = 1[zeta >= 0]; R(.|1) = (e^{b(zeta-1)} - e^{-b}) / (1 - e^{-b})."""
  r0 = (zeta >= 0.0).astype(jnp.result_type(zeta))
  zeta = jnp.clip(zeta, 0.0, 1.0)
  r1 = jnp.exp(beta * (zeta - 1.0)) * jnp.expm1(-beta * zeta) / jnp.expm1(-beta)
  return r0, r1


def _spike_log_cdf_gap(zeta, beta):
  """log(1 - R(zeta|1)) for zeta > 0; -inf at the atom (q does not move it)."""
  gap = _log1mexp(beta * (1.0 - jnp.clip(zeta, 0.0, 1.0))) - _log1mexp(beta)
  return jnp.where(zeta > 0.0, gap, -jnp.inf)


def _spike_exponential(log_u, log_1mu, beta):
  r"""R(.|1)^{-1}(u) = 1 + \log(u + (1 - u) e^{-\beta}) / \beta, clipped > 0."""
  zeta = 1.0 + jnp.logaddexp(log_u, log_1mu - beta) / beta
  return jnp.clip(zeta, jnp.finfo(jnp.result_type(zeta)).tiny, 1.0)


def _spike_sample_given(z, u, beta):
  return jnp.where(z > 0.5, _spike_exponential(jnp.log(u), jnp.log1p(-u), beta),
                   0.0)


def spike_and_exp_inverse_cdf(logits: ArrayLike, rho: ArrayLike,
                              beta: ArrayLike) -> Array:
  r"""Inverse CDF of the spike-and-exponential mixture.

  \zeta = 0 if \rho <= 1 - q, else R(.|1)^{-1}(v) with the conditional
  uniform v = 1 - (1 - \rho)/q, evaluated from \log v and \log(1 - v) so that
  e^\beta never appears (Rolfe, 2017; the printed form
  \log((e^\beta - 1)v + 1)/\beta overflows for beta > 88).

  Args:
    logits: `[..., D]` logits of q(z = 1).
    rho: uniforms in [0, 1), broadcastable to logits.
    beta: inverse temperature > 0.

  Returns:
    zeta in [0, 1], differentiable in logits (and beta).

  References:
    Rolfe, 2017, Sec. 2.1 (spike-and-exponential smoothing).
  """
  logits = jnp.asarray(logits)
  rho = jnp.asarray(rho, logits.dtype)
  active = hard_limit(logits, rho) > 0.5
  # log(1 - v), kept <= log(1 - eps/2) so that rounding never gives v = 0.
  log_1mv = jnp.log1p(-rho) - jax.nn.log_sigmoid(logits)
  log_1mv = jnp.minimum(log_1mv, -0.5 * jnp.finfo(logits.dtype).eps)
  log_1mv = jnp.where(active, log_1mv, -1.0)
  log_v = jnp.log(-jnp.expm1(log_1mv))
  return jnp.where(active, _spike_exponential(log_v, log_1mv, beta), 0.0)


# --------------------------------------------------- power-function (DVAE#)


def _power_log_pdfs(zeta, beta):
  r"""\log r(\zeta|0) = \log\lambda + (\lambda-1)\log\zeta, mirrored for z=1."""
  lam = 1.0 / beta
  inside = _in_unit(zeta)
  zeta = jnp.clip(zeta, 0.0, 1.0)
  log_r0 = jnp.log(lam) + (lam - 1.0) * jnp.log(zeta)
  log_r1 = jnp.log(lam) + (lam - 1.0) * jnp.log1p(-zeta)
  return (jnp.where(inside, log_r0, -jnp.inf),
          jnp.where(inside, log_r1, -jnp.inf))


def _power_cdfs(zeta, beta):
  r"""R(\zeta|0) = \zeta^\lambda, R(\zeta|1) = 1 - (1-\zeta)^\lambda."""
  lam = 1.0 / beta
  zeta = jnp.clip(zeta, 0.0, 1.0)
  return jnp.exp(lam * jnp.log(zeta)), -jnp.expm1(lam * jnp.log1p(-zeta))


def _power_log_cdf_gap(zeta, beta):
  r"""\zeta^\lambda + (1-\zeta)^\lambda - 1, summed without cancellation.

  For \zeta <= 1/2 as \zeta^\lambda - (1 - (1-\zeta)^\lambda), both terms
  accurate and the first the larger by a factor >= 1/\lambda; mirrored above.
  """
  lam = 1.0 / beta
  zeta = jnp.clip(zeta, 0.0, 1.0)
  near = jnp.minimum(zeta, 1.0 - zeta)  # distance to the nearer end
  gap = jnp.exp(lam * jnp.log(near)) + jnp.expm1(lam * jnp.log1p(-near))
  return jnp.log(jnp.maximum(gap, 0.0))


def _power_inverse_cdf0(u, beta):
  return jnp.exp(beta * jnp.log(u))  # u^beta


def _power_sample_given(z, u, beta):
  return _open_unit(_mirror_sample(_power_inverse_cdf0, z, u, beta))


# ------------------------------------------------------------------ families


EXPONENTIAL = Smoothing("exponential", _exponential_log_pdfs,
                        _exponential_cdfs, _exponential_log_cdf_gap,
                        _exponential_sample_given, exponential_inverse_cdf)
LOGISTIC = Smoothing("logistic", _logistic_log_pdfs, _logistic_cdfs,
                     _logistic_log_cdf_gap, _logistic_sample_given)
SPIKE_AND_EXP = Smoothing("spike_and_exp", _spike_log_pdfs, _spike_cdfs,
                          _spike_log_cdf_gap, _spike_sample_given,
                          spike_and_exp_inverse_cdf)
POWER_FUNCTION = Smoothing("power_function", _power_log_pdfs, _power_cdfs,
                           _power_log_cdf_gap, _power_sample_given)
FAMILIES = {s.name: s for s in (EXPONENTIAL, LOGISTIC, SPIKE_AND_EXP,
                                POWER_FUNCTION)}


# ---------------------------------------------------------- mixture functions


def log_prob(smoothing: Smoothing, logits: ArrayLike, zeta: ArrayLike,
             beta: ArrayLike) -> Array:
  r"""\log q(\zeta) = \log((1-q) r(\zeta|0) + q\, r(\zeta|1)), per unit.

  Args:
    smoothing: the family (e.g. `EXPONENTIAL`).
    logits: `[..., D]` logits of q(z = 1).
    zeta: `[..., D]` points.
    beta: inverse temperature > 0.

  Returns:
    `[..., D]` log densities (-inf outside the support).

  References:
    Vahdat et al., 2018a, Eq. 2.
  """
  check_beta(beta)
  logits = jnp.asarray(logits)
  zeta = jnp.asarray(zeta, logits.dtype)
  log_r0, log_r1 = smoothing.log_pdfs(zeta, beta)
  return _logaddexp(jax.nn.log_sigmoid(-logits) + log_r0,
                    jax.nn.log_sigmoid(logits) + log_r1)


def cdf(smoothing: Smoothing, logits: ArrayLike, zeta: ArrayLike,
        beta: ArrayLike) -> Array:
  r"""F(\zeta) = (1-q) R(\zeta|0) + q R(\zeta|1), per unit, `[..., D]`."""
  check_beta(beta)
  logits = jnp.asarray(logits)
  zeta = jnp.asarray(zeta, logits.dtype)
  r0, r1 = smoothing.cdfs(zeta, beta)
  return jax.nn.sigmoid(-logits) * r0 + jax.nn.sigmoid(logits) * r1


def posterior_logits(smoothing: Smoothing, logits: ArrayLike,
                     zeta: ArrayLike, beta: ArrayLike) -> Array:
  r"""Logits of q(z = 1 | \zeta) = logit q + \log r(\zeta|1) - \log r(\zeta|0).

  Infinite where \zeta lies in the support of one component only (the
  spike-and-exp posterior is deterministic).

  References:
    Vahdat et al., 2018a, Sec. 5:
    \nu = \sigma(g(\mu) + \log[r(\zeta|1)/r(\zeta|0)]).
  """
  check_beta(beta)
  logits = jnp.asarray(logits)
  zeta = jnp.asarray(zeta, logits.dtype)
  log_r0, log_r1 = smoothing.log_pdfs(zeta, beta)
  finite = jnp.isfinite(log_r0) & jnp.isfinite(log_r1)
  ratio = jnp.where(finite, log_r1, 0.0) - jnp.where(finite, log_r0, 0.0)
  ratio = jnp.where(finite, ratio, jnp.where(log_r1 > log_r0, jnp.inf,
                                             -jnp.inf))
  return logits + ratio


def hard_limit(logits: ArrayLike, rho: ArrayLike) -> Array:
  r"""z = 1[\rho > 1 - q], the beta -> infinity limit of the inverse CDFs.

  Computed as logit(\rho) > -logits, exact at extreme logits; z ~
  Bernoulli(q) when \rho ~ U(0, 1).
  """
  logits = jnp.asarray(logits)
  rho = jnp.asarray(rho, logits.dtype)
  return (jnp.log(rho) - jnp.log1p(-rho) > -logits).astype(logits.dtype)


def implicit_logit_gradient(smoothing: Smoothing, logits: ArrayLike,
                            zeta: ArrayLike, beta: ArrayLike) -> Array:
  r"""d zeta / d logits = q(1-q)(R(\zeta|0) - R(\zeta|1)) / q(\zeta).

  The implicit reparameterisation gradient of a sample \zeta of the mixture:
  -(\partial F/\partial\mathrm{logits}) / (\partial F/\partial\zeta) with F
  the mixture CDF, evaluated in log space (0 where \zeta sits on an atom or
  a pole of the density).

  References:
    Figurnov et al., 2018, Eq. 6; Vahdat et al., 2018a, Eq. 2.
  """
  logits = jnp.asarray(logits)
  zeta = jnp.asarray(zeta, logits.dtype)
  log_num = (jax.nn.log_sigmoid(logits) + jax.nn.log_sigmoid(-logits) +
             smoothing.log_cdf_gap(zeta, beta))
  log_den = log_prob(smoothing, logits, zeta, beta)
  ok = jnp.isfinite(log_num) & jnp.isfinite(log_den)
  log_grad = jnp.where(ok, log_num, 0.0) - jnp.where(ok, log_den, 0.0)
  return jnp.where(ok, jnp.exp(log_grad), 0.0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _with_implicit_gradient(smoothing, logits, zeta, beta):
  del logits, beta
  return zeta


@_with_implicit_gradient.defjvp
def _with_implicit_gradient_jvp(smoothing, primals, tangents):
  logits, zeta, beta = primals
  logits_dot, zeta_dot, _ = tangents  # beta enters through zeta (given z)
  grad = implicit_logit_gradient(smoothing, logits, zeta, beta)
  return zeta, zeta_dot + grad * logits_dot


def sample_ancestral(smoothing: Smoothing, logits: ArrayLike, z: ArrayLike,
                     u: ArrayLike, beta: ArrayLike) -> Array:
  r"""\zeta ~ r(.|z) for a given z ~ Bernoulli(q), with the implicit gradient.

  Works for any family: the value is `smoothing.sample_given(z, u, beta)`;
  its derivative w.r.t. logits is `implicit_logit_gradient` (a
  `jax.custom_jvp`; first derivatives only: second derivatives w.r.t. logits
  miss the dependence of zeta on logits inside that gradient); its
  derivative w.r.t. beta is the conditional one at fixed (z, u), which is
  valid since q(z) does not depend on beta.

  Args:
    smoothing: the family.
    logits: `[..., D]` logits of q(z = 1).
    z: `[..., D]` binary samples of Bernoulli(q) (e.g. `hard_limit`).
    u: `[..., D]` uniforms in (0, 1), independent of z.
    beta: inverse temperature > 0.

  Returns:
    `[..., D]` samples of q(\zeta).

  References:
    Figurnov et al., 2018 (implicit reparameterisation).
  """
  check_beta(beta)
  logits = jnp.asarray(logits)
  z = jnp.asarray(z, logits.dtype)
  u = jnp.asarray(u, logits.dtype)
  zeta = smoothing.sample_given(jax.lax.stop_gradient(z), u, beta)
  return _with_implicit_gradient(smoothing, logits, zeta,
                                 jnp.asarray(beta, logits.dtype))


def sample_inverse_cdf(smoothing: Smoothing, logits: ArrayLike,
                       rho: ArrayLike, beta: ArrayLike) -> Array:
  r"""\zeta = F^{-1}(\rho) by the closed form, with the implicit gradient.

  The value is `smoothing.inverse_cdf(logits, rho, beta)`. Its derivative
  w.r.t. logits equals `implicit_logit_gradient` mathematically, but autodiff
  of the closed form loses it to cancellation where it is small (relative
  error ~1e3 at logits -13.8 in float32), so the implicit form is attached
  instead; the derivative w.r.t. beta is autodiff's at fixed (logits, rho).

  Args:
    smoothing: a family with a closed-form `inverse_cdf`.
    logits: `[..., D]` logits of q(z = 1).
    rho: uniforms in [0, 1), broadcastable to logits.
    beta: inverse temperature > 0.

  Returns:
    `[..., D]` samples of q(\zeta).
  """
  check_beta(beta)
  if smoothing.inverse_cdf is None:
    raise ValueError(f"the {smoothing.name} family has no closed-form "
                     f"inverse CDF.")
  logits = jnp.asarray(logits)
  rho = jnp.asarray(rho, logits.dtype)
  zeta = smoothing.inverse_cdf(jax.lax.stop_gradient(logits), rho, beta)
  return _with_implicit_gradient(smoothing, logits, zeta,
                                 jnp.asarray(beta, logits.dtype))


def _uniform(key: PRNGKey, shape, dtype) -> Array:
  """Uniforms on the grid (k + 1/2) eps, symmetric, in [eps/2, 1 - eps/2].

  `jax.random.uniform` returns multiples of eps = 2^-23 in [0, 1 - eps];
  shifting by eps/2 (exact) keeps u and 1 - u away from 0, which bounds the
  samples' tails (|logit u| <= 16.6) and their implicit gradients.
  """
  half_eps = 0.5 * jnp.finfo(dtype).eps
  return jax.random.uniform(key, shape, dtype) + half_eps


def sample(smoothing: Smoothing, key: PRNGKey, logits: ArrayLike,
           beta: ArrayLike, method: str = "auto",
           sample_shape=()) -> tuple[Array, Array]:
  r"""A differentiable sample \zeta ~ q(\zeta) and its hard partner z.

  Args:
    smoothing: the family.
    key: PRNG key.
    logits: `[..., D]` logits of q(z = 1).
    beta: inverse temperature > 0.
    method: "inverse_cdf" (\zeta = F^{-1}(\rho), families with a closed
      form), "ancestral" (z then \zeta ~ r(.|z), implicit gradient), or
      "auto" (inverse CDF when available). Both give identically
      distributed \zeta and pathwise gradients. The inverse CDF uses one
      float32 uniform, so for q < ~1e-5 (or 1 - q) the rare branch sees few
      distinct \rho; "ancestral" keeps full resolution there.
    sample_shape: leading shape of independent draws.

  Returns:
    `(zeta, z)`, each `[*sample_shape, ..., D]`: z = 1[\rho > 1 - q] is an
    exact Bernoulli(q) sample and the beta -> infinity limit of zeta.
  """
  check_beta(beta)
  if method not in SAMPLING_METHODS:
    raise ValueError(f"method={method!r} is unknown; expected one of "
                     f"{SAMPLING_METHODS}.")
  if method == "inverse_cdf" and smoothing.inverse_cdf is None:
    raise ValueError(f"the {smoothing.name} family has no closed-form "
                     f"inverse CDF; use method='ancestral', not "
                     f"method={method!r}.")
  logits = jnp.asarray(logits)
  shape = tuple(sample_shape) + logits.shape
  rho_key, u_key = jax.random.split(key)
  rho = _uniform(rho_key, shape, logits.dtype)
  z = hard_limit(logits, rho)
  if method != "ancestral" and smoothing.inverse_cdf is not None:
    return sample_inverse_cdf(smoothing, logits, rho, beta), z
  u = _uniform(u_key, shape, logits.dtype)
  return sample_ancestral(smoothing, logits, z, u, beta), z


__all__ = ["Smoothing", "EXPONENTIAL", "LOGISTIC", "SPIKE_AND_EXP",
           "POWER_FUNCTION", "FAMILIES", "SAMPLING_METHODS", "check_beta",
           "log_prob", "cdf", "posterior_logits", "hard_limit",
           "implicit_logit_gradient", "sample_ancestral", "sample_inverse_cdf",
           "sample", "exponential_inverse_cdf", "spike_and_exp_inverse_cdf"]
