"""Concrete (Gumbel-softmax) relaxations of Bernoulli and categorical variables.

Two relaxations, each sampled by reparameterisation at temperature tau > 0:

* binary Concrete (relaxed Bernoulli): with logistic noise L = logit(u),
  the *latent* (logit-space) sample is y = (logits + L) / tau and the relaxed
  sample is z = sigmoid(y) in (0, 1); `logits  # [..., D]`.
* Concrete (relaxed one-hot categorical): with Gumbel noise G, the *latent*
  (log-space, "ExpConcrete") sample is y = log_softmax((logits + G) / tau) and
  the relaxed sample is z = exp(y) = softmax((logits + G) / tau) on the
  simplex; `logits  # [..., D, K]`.

The hard sample of the same noise (1[y > 0], or the one-hot arg max of y) is
an exact draw from the discrete distribution (Gumbel-max trick), whatever tau.

Densities are computed from the latent sample, in log space, so they stay
finite at tau = 1e-3 and when z rounds to exactly 0 or 1 in float32 (where
the density of z itself is 0 or infinite in exact arithmetic but y is still
finite). Functions taking z instead of y recover y = logit(z) / log(z) after
clipping z away from {0, 1}: prefer the `*_from_latent` forms whenever the
latent sample is available. Densities are per unit / per variable, `[..., D]`.

This module does not import the estimators (they import it).

References:
  Maddison, Mnih & Teh (2017), "The Concrete distribution: a continuous
  relaxation of discrete random variables", ICLR (Definition 1; the
  ExpConcrete and binary Concrete densities).
  Jang, Gu & Poole (2017), "Categorical reparameterization with
  Gumbel-softmax", ICLR.
  Paulus, Maddison & Krause (2021), "Rao-Blackwellizing the straight-through
  Gumbel-softmax gradient estimator", ICLR (conditional Gumbel sampling).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.types import Array, ArrayLike, PRNGKey

DISTRIBUTIONS = ("bernoulli", "categorical")

# Relaxed values below this are treated as Z_FLOOR when a density is computed
# from z itself (logit -69): d log p / dz ~ 1 / z then stays finite in float32.
Z_FLOOR = 1e-30


class RelaxedSample(NamedTuple):
  """A relaxed sample and what it was computed from.

  Attributes:
    relaxed: z, in (0, 1)^D `[..., D]` or on the simplex `[..., D, K]`.
    latent: y, the logit-space (binary) or log-space (categorical) sample;
      z = sigmoid(y) or z = exp(y). Densities are best computed from y.
    hard: the discrete sample of the same noise, {0, 1}^D or one-hot.
  """
  relaxed: Array
  latent: Array
  hard: Array


def check_temperature(temperature) -> None:
  """Raises ValueError unless a concrete `temperature` is finite and > 0.

  Traced temperatures (learned, inside `jit`) cannot be inspected and pass.
  """
  checks.check_positive("temperature", temperature)


def _check_distribution(distribution: str) -> None:
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f"distribution={distribution!r} is unknown; expected one "
                     f"of {DISTRIBUTIONS}.")


def _as_float(x: ArrayLike) -> Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def uniform_open(key: PRNGKey, shape, dtype) -> Array:
  """Uniform draws in [tiny, 1): never 0, so their logarithm is finite."""
  return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny,
                            maxval=1.)


def _clip(x: Array, lower, upper) -> Array:
  """Clips with `where`: clipped entries get gradient 0, never 0 * inf."""
  return jnp.where(x < lower, lower, jnp.where(x > upper, upper, x))


# ----------------------------------------------------------------------------
# Binary Concrete (relaxed Bernoulli).
# ----------------------------------------------------------------------------


def binary_latent(logits: ArrayLike, noise: ArrayLike, temperature) -> Array:
  r"""The logit-space sample y = (logits + L) / \tau for logistic noise L."""
  return (_as_float(logits) + noise) / temperature


def harden_binary(latent: ArrayLike) -> Array:
  """The hard sample 1[y > 0] of a logit-space sample (ties go to 0)."""
  latent = jnp.asarray(latent)
  return (latent > 0).astype(latent.dtype)


def relax_binary(logits: ArrayLike, noise: ArrayLike,
                 temperature) -> RelaxedSample:
  r"""Relaxed, latent and hard samples of Bernoulli logits from noise L.

  z = \sigma((logits + L) / \tau) (Maddison et al., 2017).

  Args:
    logits: `[..., D]`.
    noise: standard logistic noise broadcastable against logits.
    temperature: tau > 0 (not checked here: use `check_temperature`).

  Returns:
    `RelaxedSample(relaxed, latent, hard)`, each `[..., D]`.
  """
  latent = binary_latent(logits, noise, temperature)
  return RelaxedSample(jax.nn.sigmoid(latent), latent, harden_binary(latent))


def sample_binary(key: PRNGKey, logits: ArrayLike, temperature,
                  sample_shape=()) -> RelaxedSample:
  """Draws binary Concrete samples `[*sample_shape, ..., D]`.

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    temperature: tau > 0.
    sample_shape: leading shape of independent draws.

  Returns:
    `RelaxedSample`; `hard` ~ Bernoulli(sigmoid(logits)) exactly.
  """
  check_temperature(temperature)
  logits = _as_float(logits)
  noise = jax.random.logistic(key, tuple(sample_shape) + logits.shape,
                              logits.dtype)
  return relax_binary(logits, noise, temperature)


def log_prob_binary_latent(logits: ArrayLike, latent: ArrayLike,
                           temperature) -> Array:
  r"""log density of the logit-space sample y, per unit `[..., D]`.

  \tau y - logits is standard logistic, so
  \log p(y) = \log\tau + \log\sigma(\tau y - l) + \log\sigma(l - \tau y),
  finite for every finite y (Maddison et al., 2017).
  """
  check_temperature(temperature)
  logits = _as_float(logits)
  x = temperature * jnp.asarray(latent, logits.dtype) - logits
  return (jnp.log(temperature) + jax.nn.log_sigmoid(x) +
          jax.nn.log_sigmoid(-x))


def log_prob_binary_from_latent(logits: ArrayLike, latent: ArrayLike,
                                temperature) -> Array:
  r"""log density of z = sigmoid(y), computed from y, per unit `[..., D]`.

  Change of variables in log space:
  \log p(z) = \log p(y) - \log\sigma(y) - \log\sigma(-y). Finite even where
  sigmoid(y) rounds to 0 or 1, i.e. it equals the binary Concrete density
  \tau \alpha z^{-\tau-1}(1-z)^{-\tau-1} / (\alpha z^{-\tau} + (1-z)^{-\tau})^2
  (Maddison et al., 2017; alpha = e^l) at the exact (unrounded) z.
  """
  latent = jnp.asarray(latent)
  return (log_prob_binary_latent(logits, latent, temperature) -
          jax.nn.log_sigmoid(latent) - jax.nn.log_sigmoid(-latent))


def binary_logit_of(z: ArrayLike) -> Array:
  """y = logit(z), z clipped to [Z_FLOOR, 1 - eps/2]: finite for z in [0, 1].

  The clipping uses `jnp.where`, so clipped entries get a zero (not NaN)
  gradient; the floor keeps d log p / dz finite in float32.
  """
  z = _as_float(z)
  z = _clip(z, Z_FLOOR, 1. - jnp.finfo(z.dtype).epsneg)
  return jnp.log(z) - jnp.log1p(-z)


def log_prob_binary(logits: ArrayLike, z: ArrayLike, temperature) -> Array:
  """log density of a relaxed Bernoulli z in [0, 1], per unit `[..., D]`.

  Recovers y = logit(z) with z clipped to [Z_FLOOR, 1 - 2^-24] (so z = 0 or
  1 gives the finite density at the clipped point) and applies
  `log_prob_binary_from_latent`. Prefer that function when y is known.
  """
  return log_prob_binary_from_latent(logits, binary_logit_of(z), temperature)


def conditional_logistic(key: PRNGKey, logits: ArrayLike, hard: ArrayLike,
                         sample_shape=()) -> Array:
  r"""Logistic noise L drawn given the hard sample b = 1[logits + L > 0].

  Draws v ~ U(0, 1) and applies `conditional_logistic_given_uniform`.

  Args:
    key: PRNG key.
    logits: `[..., D]`.
    hard: `[..., D]` in {0, 1}.
    sample_shape: leading shape of independent draws.

  Returns:
    `[*sample_shape, ..., D]` noise with 1[logits + L > 0] = hard.
  """
  logits = _as_float(logits)
  hard = jnp.asarray(hard, logits.dtype)
  shape = tuple(sample_shape) + jnp.broadcast_shapes(logits.shape, hard.shape)
  return conditional_logistic_given_uniform(
      logits, hard, uniform_open(key, shape, logits.dtype))


def conditional_logistic_given_uniform(logits: ArrayLike, hard: ArrayLike,
                                       v: ArrayLike) -> Array:
  r"""Logistic noise given the hard sample, reparameterised by v ~ U(0, 1).

  For b = 1, L = logit(u) with u ~ U(1 - p, 1), p = \sigma(l): writing
  u = 1 - p v,
  L = \log((1 - p) + p (1 - v)) - \log p - \log v, all in log space (no
  overflow at logits +-50). For b = 0 the symmetry L -> -L, l -> -l applies.
  With v held fixed this is differentiable in the logits: REBAR's
  conditional sample z~ = l + L ~ p(z | b) and its pathwise derivative.

  Args:
    logits: `[..., D]`.
    hard: `[..., D]` in {0, 1}.
    v: uniform noise in (0, 1), broadcastable against logits and hard
      (e.g. from `uniform_open`), independent of b.

  Returns:
    Noise of the broadcast shape with 1[logits + L > 0] = hard.

  References:
    Paulus, Maddison & Krause (2021); Tucker et al. (2017), "REBAR"
    (conditional sampling of the noise given the hard sample).
  """
  logits = _as_float(logits)
  hard = jnp.asarray(hard, logits.dtype)
  sign = 2. * hard - 1.
  signed = sign * logits  # b = 1 problem for -logits when b = 0.
  log_p = jax.nn.log_sigmoid(signed)
  log_one_minus_u = log_p + jnp.log(v)
  log_u = jnp.logaddexp(jax.nn.log_sigmoid(-signed), log_p + jnp.log1p(-v))
  return sign * (log_u - log_one_minus_u)


# ----------------------------------------------------------------------------
# Concrete / ExpConcrete (relaxed one-hot categorical).
# ----------------------------------------------------------------------------


def categorical_latent(logits: ArrayLike, gumbel: ArrayLike,
                       temperature) -> Array:
  r"""The log-space sample y = log_softmax((logits + G) / \tau)."""
  return jax.nn.log_softmax((_as_float(logits) + gumbel) / temperature, -1)


def harden_categorical(latent: ArrayLike) -> Array:
  """The one-hot arg max of a log-space (or any pre-softmax) sample."""
  latent = jnp.asarray(latent)
  return jax.nn.one_hot(jnp.argmax(latent, -1), latent.shape[-1],
                        dtype=latent.dtype)


def relax_categorical(logits: ArrayLike, gumbel: ArrayLike,
                      temperature) -> RelaxedSample:
  r"""Relaxed, latent and hard samples of categorical logits from noise G.

  z = softmax((logits + G) / \tau) (Jang et al., 2017; Maddison et al.,
  2017); hard = one-hot arg max (logits + G) is exact.

  Args:
    logits: `[..., D, K]`.
    gumbel: standard Gumbel noise broadcastable against logits.
    temperature: tau > 0 (not checked here).

  Returns:
    `RelaxedSample(relaxed, latent, hard)`, each `[..., D, K]`.
  """
  latent = categorical_latent(logits, gumbel, temperature)
  return RelaxedSample(jnp.exp(latent), latent, harden_categorical(latent))


def sample_categorical(key: PRNGKey, logits: ArrayLike, temperature,
                       sample_shape=()) -> RelaxedSample:
  """Draws Concrete samples `[*sample_shape, ..., D, K]`.

  Args:
    key: PRNG key.
    logits: `[..., D, K]` unnormalised log-probabilities.
    temperature: tau > 0.
    sample_shape: leading shape of independent draws.

  Returns:
    `RelaxedSample`; `hard` ~ Categorical(softmax(logits)) exactly.
  """
  check_temperature(temperature)
  logits = _as_float(logits)
  gumbel = jax.random.gumbel(key, tuple(sample_shape) + logits.shape,
                             logits.dtype)
  return relax_categorical(logits, gumbel, temperature)


def log_prob_categorical_latent(logits: ArrayLike, latent: ArrayLike,
                                temperature) -> Array:
  r"""ExpConcrete log density of a log-space sample y, per variable `[..., D]`.

  \log p(y) = \log((K-1)!) + (K-1)\log\tau + \sum_k (l_k - \tau y_k)
              - K \,\mathrm{logsumexp}_k(l_k - \tau y_k)
  (Maddison et al., 2017, ExpConcrete). This is the Lebesgue density of the
  K - 1 log-ratios y_k - y_K (any reference class gives the same value), and
  it is invariant to shifting y by a constant. Finite for finite y.
  """
  check_temperature(temperature)
  logits = _as_float(logits)
  k = logits.shape[-1]
  a = logits - temperature * jnp.asarray(latent, logits.dtype)  # [..., D, K]
  return (math.lgamma(k) + (k - 1) * jnp.log(temperature) + jnp.sum(a, -1) -
          k * jax.nn.logsumexp(a, -1))


def log_prob_categorical_from_latent(logits: ArrayLike, latent: ArrayLike,
                                     temperature) -> Array:
  r"""Concrete log density of z = exp(y), computed from y, `[..., D]`.

  \log p(z) = \log p_{Exp}(y) - \sum_k y_k: the change of variables from the
  log-ratios to K - 1 free coordinates of the simplex has Jacobian
  \prod_k z_k. Equals Maddison et al. (2017, Definition 1)
  (K-1)! \tau^{K-1} \prod_k \alpha_k z_k^{-\tau-1} /
  (\sum_i \alpha_i z_i^{-\tau})^K, finite where z_k rounds to 0.
  """
  latent = jnp.asarray(latent)
  latent = latent - jax.nn.logsumexp(latent, -1, keepdims=True)
  return (log_prob_categorical_latent(logits, latent, temperature) -
          jnp.sum(latent, -1))


def categorical_log_of(z: ArrayLike) -> Array:
  """y = log(z), z floored at Z_FLOOR, renormalised onto the log-simplex."""
  z = _as_float(z)
  log_z = jnp.log(_clip(z, Z_FLOOR, 1.))
  return log_z - jax.nn.logsumexp(log_z, -1, keepdims=True)


def log_prob_categorical(logits: ArrayLike, z: ArrayLike, temperature) -> Array:
  """Concrete log density of a relaxed one-hot z on the simplex, `[..., D]`.

  Recovers y = log(z) with z floored at Z_FLOOR (so vertices give finite
  values: the density at the floored point) and applies
  `log_prob_categorical_from_latent`. Prefer that function when y is known.
  """
  return log_prob_categorical_from_latent(logits, categorical_log_of(z),
                                          temperature)


def conditional_gumbel(key: PRNGKey, logits: ArrayLike, hard: ArrayLike,
                       sample_shape=()) -> Array:
  r"""Gumbel noise G drawn given the arg max: argmax(logits + G) = hard.

  The maximum of logits + G is Gumbel with location
  Z = logsumexp(logits), independent of the arg max b; the other perturbed
  logits are Gumbels with locations l_k truncated above at that maximum:
    v_b = Z + g_b,   v_k = -\mathrm{logaddexp}(-v_b, -(l_k + g_k)),
  with g standard Gumbel. Everything is max-shifted (logsumexp, logaddexp),
  so nothing overflows at logits +-50. Returns G = v - logits.

  Args:
    key: PRNG key.
    logits: `[..., D, K]`.
    hard: one-hot `[..., D, K]`.
    sample_shape: leading shape of independent draws.

  Returns:
    `[*sample_shape, ..., D, K]` noise.

  References:
    Maddison, Tarlow & Minka (2014), "A* sampling" (truncated Gumbels);
    Paulus, Maddison & Krause (2021), conditional Gumbel sampling.
  """
  logits = _as_float(logits)
  hard = jnp.asarray(hard, logits.dtype)
  shape = tuple(sample_shape) + jnp.broadcast_shapes(logits.shape, hard.shape)
  return conditional_gumbel_given_noise(
      logits, hard, jax.random.gumbel(key, shape, logits.dtype))


def conditional_gumbel_given_noise(logits: ArrayLike, hard: ArrayLike,
                                   g: ArrayLike) -> Array:
  r"""Gumbel noise given the arg max, reparameterised by standard Gumbels g.

  The construction of `conditional_gumbel` with the noise g supplied: with
  g held fixed the perturbed logits v = logits + G are differentiable in
  the logits, which is the pathwise derivative of REBAR's and RELAX's
  conditional sample z~ ~ p(z | b) for categorical variables (Tucker et al.,
  2017, Appendix C; Grathwohl et al., 2018, Appendix B).

  Args:
    logits: `[..., D, K]`.
    hard: one-hot `[..., D, K]`.
    g: standard Gumbel noise, broadcastable against logits and hard,
      independent of the arg max.

  Returns:
    Noise G of the broadcast shape with argmax(logits + G) = hard.
  """
  logits = _as_float(logits)
  hard = jnp.asarray(hard, logits.dtype)
  top = jax.nn.logsumexp(logits, -1, keepdims=True) + jnp.sum(
      hard * g, -1, keepdims=True)  # [..., D, 1]
  truncated = -jnp.logaddexp(-top, -(logits + g))
  perturbed = jnp.where(hard > 0, top, truncated)
  return perturbed - logits


# ----------------------------------------------------------------------------
# Dispatch on the distribution name ("bernoulli" or "categorical").
# ----------------------------------------------------------------------------


def sample_noise(key: PRNGKey, shape, distribution: str, dtype=jnp.float32
                 ) -> Array:
  """Standard logistic (bernoulli) or Gumbel (categorical) noise."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return jax.random.logistic(key, shape, dtype)
  return jax.random.gumbel(key, shape, dtype)


def relax(logits: ArrayLike, noise: ArrayLike, temperature,
          distribution: str) -> RelaxedSample:
  """`relax_binary` or `relax_categorical` by name."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return relax_binary(logits, noise, temperature)
  return relax_categorical(logits, noise, temperature)


def sample(key: PRNGKey, logits: ArrayLike, temperature,
           distribution: str = "bernoulli", sample_shape=()) -> RelaxedSample:
  """`sample_binary` or `sample_categorical` by name."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return sample_binary(key, logits, temperature, sample_shape)
  return sample_categorical(key, logits, temperature, sample_shape)


def conditional_noise(key: PRNGKey, logits: ArrayLike, hard: ArrayLike,
                      distribution: str, sample_shape=()) -> Array:
  """`conditional_logistic` or `conditional_gumbel` by name."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return conditional_logistic(key, logits, hard, sample_shape)
  return conditional_gumbel(key, logits, hard, sample_shape)


def log_prob_latent(logits: ArrayLike, latent: ArrayLike, temperature,
                    distribution: str = "bernoulli") -> Array:
  """Log density of the latent (logit- or log-space) sample, `[..., D]`."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return log_prob_binary_latent(logits, latent, temperature)
  return log_prob_categorical_latent(logits, latent, temperature)


def log_prob_from_latent(logits: ArrayLike, latent: ArrayLike, temperature,
                         distribution: str = "bernoulli") -> Array:
  """Log density of the relaxed z, computed from its latent y, `[..., D]`."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return log_prob_binary_from_latent(logits, latent, temperature)
  return log_prob_categorical_from_latent(logits, latent, temperature)


def log_prob(logits: ArrayLike, z: ArrayLike, temperature,
             distribution: str = "bernoulli") -> Array:
  """Log density of a relaxed z, computed from z itself, `[..., D]`."""
  _check_distribution(distribution)
  if distribution == "bernoulli":
    return log_prob_binary(logits, z, temperature)
  return log_prob_categorical(logits, z, temperature)
