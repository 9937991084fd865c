r"""Factorial mixtures of discretised logistics for 8-bit data.

The likelihood of PixelCNN++ (Salimans et al., 2017, Sec. 2.1, Eq. 2) for
integer values x in {0, ..., 255}: each value is a mixture of M logistics
discretised to unit-width bins, with the two edge bins taking the tails,

  P(x) = \sum_m \pi_m [\sigma((x + 1/2 - \mu_m) / s_m)
                       - \sigma((x - 1/2 - \mu_m) / s_m)],

where the first CDF is replaced by 1 at x = 255 and the second by 0 at
x = 0, so that the 256 probabilities sum to one. "Factorial": every value
of every pixel and channel has its own mixture, independent of the others
given the parameters (no coupling between channels, unlike PixelCNN++'s
autoregressive channel means).

Units and layout. Means and scales are in pixel units (0..255; a bin is
[x - 1/2, x + 1/2]), not rescaled to [-1, 1]. For data `x  # [..., C]`
(e.g. `[B, H, W, C]`) the parameters are three arrays `[..., C, M]`:
mixture logits (unnormalised log pi), means mu and log-scales log s;
`unpack_params` cuts them from a network output `[..., C, 3 M]` laid out as
`[logits | means | log_scales]` on the last axis.

Numerics. A middle bin's mass is never formed as a difference of CDFs
(which loses all precision where both are near 1, or both near 0). With
u, l the standardised bin edges and \Delta = u - l = 1 / s,

  \sigma(u) - \sigma(l) = \sigma(u) \sigma(-l) (1 - e^{-\Delta}),

so log P = log sigma(u) + log sigma(-l) + log(1 - e^{-Delta}), a sum of
log-sigmoids and a stable log(1 - e^{-Delta}), finite for any edges. The one
remaining underflow is of \Delta itself for very wide components; there
(log s > `MIDPOINT_LOG_SCALE`) the bin mass is the mid-bin density times the
bin width, \Delta \sigma(m) \sigma(-m) with m the standardised centre, as
PixelCNN++ falls back to where its CDF difference underflows; its relative
error, about \Delta^2 / 24, is below float32 rounding there. Log-scales are
clipped below at `MIN_LOG_SCALE` (PixelCNN++ clips at -7 in its [-1, 1]
units), where a component is already a point mass at float32 resolution.

References:
  Salimans, Karpathy, Chen & Kingma (2017). PixelCNN++: Improving the
  PixelCNN with discretized logistic mixture likelihood and other
  modifications. ICLR.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.types import Array, ArrayLike, PRNGKey

NUM_VALUES = 256
MAX_VALUE = NUM_VALUES - 1
MIN_LOG_SCALE = -20.0  # s = 2e-9 pixel: a point mass in float32
MAX_SAMPLE_LOG_SCALE = 30.0  # s = 1e13 pixel: every draw in an edge bin
MIDPOINT_LOG_SCALE = 8.0  # Delta = e^-8 = 3.4e-4: midpoint error < 1e-8


class MixtureParams(NamedTuple):
  """Parameters of a discretised logistic mixture, each `[..., C, M]`."""
  logits: Array  # unnormalised log mixture weights
  means: Array  # mu, pixel units
  log_scales: Array  # log s, pixel units


def unpack_params(outputs: ArrayLike, num_components: int) -> MixtureParams:
  """Cuts `[..., C, 3 M]` network outputs into logits, means, log-scales.

  Args:
    outputs: `[..., C, 3 M]`, laid out `[logits | means | log_scales]`.
    num_components: M.

  Returns:
    `MixtureParams` of three `[..., C, M]` arrays.
  """
  checks.check_int("num_components", num_components, 1)
  outputs = jnp.asarray(outputs)
  if outputs.ndim < 2 or outputs.shape[-1] != 3 * num_components:
    raise ValueError(f"outputs must have shape [..., C, {3 * num_components}]"
                     f" for num_components={num_components}; got shape "
                     f"{outputs.shape}.")
  return MixtureParams(*jnp.split(outputs, 3, axis=-1))


def _log_sigmoid(a: Array) -> Array:
  return -bernoulli.softplus(-a)


def _log1mexp(delta: Array) -> Array:
  """log(1 - e^{-delta}) for delta > 0, accurate at both ends."""
  return jnp.where(delta < math.log(2.), jnp.log(-jnp.expm1(-delta)),
                   jnp.log1p(-jnp.exp(-delta)))


def component_log_probs(means: ArrayLike, log_scales: ArrayLike,
                        x: ArrayLike) -> Array:
  r"""log P(x | mu, s) of each discretised logistic component.

  Args:
    means: `[..., C, M]` mu.
    log_scales: `[..., C, M]` log s.
    x: `[..., C]` integers 0..255 (any float or integer dtype).

  Returns:
    `[..., C, M]` log-probabilities; for each component they sum (in
    probability) to 1 over x = 0..255.
  """
  means = jnp.asarray(means, jnp.float32)
  log_scales = jnp.maximum(jnp.asarray(log_scales, jnp.float32),
                           MIN_LOG_SCALE)
  x = jnp.asarray(x, jnp.float32)[..., None]  # [..., C, 1]
  inv_scale = jnp.exp(-log_scales)  # 1 / s = Delta, the standardised width
  # Edges as (x +- 1/2) - mu, so that bin x's upper edge is bit for bit bin
  # x + 1's lower edge (x +- 1/2 is exact) and the bins tile the line.
  upper = inv_scale * ((x + 0.5) - means)  # [..., C, M]
  lower = inv_scale * ((x - 0.5) - means)
  use_midpoint = log_scales > MIDPOINT_LOG_SCALE
  delta = jnp.where(use_midpoint, 1., inv_scale)  # no underflow below
  exact = _log_sigmoid(upper) + _log_sigmoid(-lower) + _log1mexp(delta)
  centre = inv_scale * (x - means)
  midpoint = -log_scales + _log_sigmoid(centre) + _log_sigmoid(-centre)
  middle = jnp.where(use_midpoint, midpoint, exact)
  return jnp.where(x <= 0., _log_sigmoid(upper),  # CDF(1/2)
                   jnp.where(x >= MAX_VALUE, _log_sigmoid(-lower),  # 1-CDF
                             middle))


def log_prob(logits: ArrayLike, means: ArrayLike, log_scales: ArrayLike,
             x: ArrayLike) -> Array:
  r"""log P(x) of the mixture per value (Salimans et al., 2017, Eq. 2).

  \log \sum_m \pi_m P(x | \mu_m, s_m), with \pi = softmax(logits), in log
  space (log-softmax and log-sum-exp).

  Args:
    logits: `[..., C, M]` mixture logits.
    means: `[..., C, M]` means, pixel units.
    log_scales: `[..., C, M]` log-scales, pixel units.
    x: `[..., C]` integers 0..255.

  Returns:
    `[..., C]` log-probabilities, finite for any finite parameters.
  """
  log_weights = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
  return jax.nn.logsumexp(
      log_weights + component_log_probs(means, log_scales, x), axis=-1)


def log_likelihood(logits: ArrayLike, means: ArrayLike, log_scales: ArrayLike,
                   x: ArrayLike, event_ndims: int = 3) -> Array:
  """log P(x) of whole images: `log_prob` summed over the event axes.

  Args:
    logits, means, log_scales: `[..., H, W, C, M]` (see `log_prob`).
    x: `[..., H, W, C]` integers 0..255.
    event_ndims: how many trailing axes of `x` form one example (3 for
      `[H, W, C]`; 1 for flattened `[D]`).

  Returns:
    `[...]` log-likelihood in nats per example.
  """
  checks.check_int("event_ndims", event_ndims, 1)
  if jnp.ndim(x) < event_ndims:
    raise ValueError(f"x has {jnp.ndim(x)} axes; fewer than event_ndims="
                     f"{event_ndims}.")
  values = log_prob(logits, means, log_scales, x)  # [..., H, W, C]
  return jnp.sum(values, axis=tuple(range(-event_ndims, 0)))


def sample(key: PRNGKey, logits: ArrayLike, means: ArrayLike,
           log_scales: ArrayLike) -> Array:
  """Draws x ~ P: a component m ~ pi, then x = round(mu_m + s_m L).

  m is drawn by the Gumbel-max trick and L is standard logistic noise
  log(u / (1 - u)), u ~ U(0, 1); rounding to the nearest integer and clipping
  to [0, 255] is exactly the binning of `log_prob` (the edge bins take the
  tails). Log-scales are clipped to [MIN_LOG_SCALE, MAX_SAMPLE_LOG_SCALE].

  Args:
    key: PRNG key.
    logits, means, log_scales: `[..., C, M]`.

  Returns:
    `[..., C]` float32 integers 0..255.
  """
  logits = jnp.asarray(logits, jnp.float32)
  num_components = logits.shape[-1]
  # One uniform draw per component (Gumbel-max choice of m) and one for
  # the logistic noise: a single call of the generator.
  uniform = jax.random.uniform(  # [..., C, M + 1]
      key, logits.shape[:-1] + (num_components + 1,), jnp.float32,
      minval=jnp.finfo(jnp.float32).tiny, maxval=1.)
  gumbel = -jnp.log(-jnp.log(uniform[..., :num_components]))
  component = jnp.argmax(logits + gumbel, axis=-1)  # [..., C]
  def pick(a):
    a = jnp.broadcast_to(jnp.asarray(a, jnp.float32), logits.shape)
    return jnp.take_along_axis(a, component[..., None], axis=-1)[..., 0]
  mean = pick(means)  # [..., C]
  log_scale = jnp.clip(pick(log_scales), MIN_LOG_SCALE, MAX_SAMPLE_LOG_SCALE)
  u = uniform[..., num_components]
  noise = jnp.log(u) - jnp.log1p(-u)  # standard logistic, [..., C]
  value = jnp.floor(mean + jnp.exp(log_scale) * noise + 0.5)
  return jnp.clip(value, 0., float(MAX_VALUE))


def nats_to_bits_per_dim(log_likelihood_nats: ArrayLike,
                         num_dims: int) -> Array:
  r"""Bits per dimension of a per-example log-likelihood in nats.

  bits/dim = -\log p(x) / (D \ln 2), the unit of PixelCNN++ (Salimans et
  al., 2017, Table 1) for 8-bit data; D = H W C (3072 for CIFAR-10). A
  uniform distribution over 256 values gives 8.

  Args:
    log_likelihood_nats: `[...]` log p(x) in nats (e.g. a bound).
    num_dims: D, the number of values per example.

  Returns:
    `[...]` bits per dimension (lower is better).
  """
  checks.check_int("num_dims", num_dims, 1)
  return -jnp.asarray(log_likelihood_nats) / (num_dims * math.log(2.))


def bits_per_dim_to_nats(bits_per_dim: ArrayLike, num_dims: int) -> Array:
  """The inverse of `nats_to_bits_per_dim`: log p(x) in nats per example."""
  checks.check_int("num_dims", num_dims, 1)
  return -jnp.asarray(bits_per_dim) * (num_dims * math.log(2.))


__all__ = ["MAX_VALUE", "MIDPOINT_LOG_SCALE", "MIN_LOG_SCALE", "NUM_VALUES",
           "MixtureParams", "bits_per_dim_to_nats", "component_log_probs",
           "log_likelihood", "log_prob", "nats_to_bits_per_dim", "sample",
           "unpack_params"]
