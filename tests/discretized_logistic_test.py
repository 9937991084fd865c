"""Tests of discrete_vi.distributions.discretized_logistic: normalisation
over the 256 values (edge bins included) for random and extreme parameters,
agreement with a float64 reference, finite values and gradients at
extremes, the sampler against the probabilities (chi-squared and moments,
fixed key), parameter unpacking and bits per dimension.

Compilation dominates: every check evaluates one jitted function on a whole
[values, parameter sets] grid."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special
from scipy import stats

from discrete_vi.distributions import discretized_logistic as dl

VALUES = np.arange(256, dtype=np.float32)
EXTREME_MEANS = (-1e6, -1e4, -300., -0.5, 0., 0.5, 127.5, 254.5, 255., 255.5,
                 600., 1e4, 1e6)
EXTREME_LOG_SCALES = (-100., -30., -20., -7., -2., 0., 3., 7., 7.999, 8.,
                      8.001, 12., 30., 100.)


def _all_values_log_prob(logits, means, log_scales):
  """`[256, ...]` log P(x) of every value x for parameters `[..., C, M]`."""
  x = jnp.broadcast_to(
      jnp.reshape(jnp.asarray(VALUES), (256,) + (1,) * (logits.ndim - 1)),
      (256,) + logits.shape[:-1])
  return dl.log_prob(logits[None], means[None], log_scales[None], x)


_ALL_VALUES = jax.jit(_all_values_log_prob)


def _random_params(seed, num_sets, channels, components):
  rng = np.random.default_rng(seed)
  shape = (num_sets, channels, components)
  logits = rng.normal(size=shape) * 4.
  means = rng.uniform(-400., 650., shape)
  log_scales = rng.uniform(-9., 10., shape)
  return tuple(a.astype(np.float32) for a in (logits, means, log_scales))


def _extreme_params(components=3):
  """Every (mean, log-scale) pair of the extremes, in peaked mixtures."""
  means, log_scales = np.meshgrid(EXTREME_MEANS, EXTREME_LOG_SCALES,
                                  indexing="ij")
  means, log_scales = means.ravel(), log_scales.ravel()  # [P]
  rng = np.random.default_rng(7)
  # Component 0 carries the extreme pair; the others are shuffled extremes;
  # the weights range from one-hot (logits +-100) to uniform.
  other = rng.permutation(len(means))
  peaks = rng.choice([100., 20., 0., -20., -100.], (len(means), components))
  stacked_means = np.stack([means, means[other], rng.uniform(0, 255,
                                                             len(means))], -1)
  stacked_scales = np.stack([log_scales, log_scales[other],
                             rng.uniform(-3, 3, len(means))], -1)
  # [P, 1, M]: one channel per parameter set.
  return tuple(a[:, None, :components].astype(np.float32)
               for a in (peaks, stacked_means, stacked_scales))


def _float64_reference(means, log_scales):
  """`[256, P]` log P(x) of single components, from stable float64 CDFs."""
  x = VALUES.astype(np.float64)[:, None]
  mean = means.astype(np.float64)[None]
  scale = np.exp(log_scales.astype(np.float64))[None]
  upper, lower = (x + 0.5 - mean) / scale, (x - 0.5 - mean) / scale
  # Right of the mean, difference the survival functions: no cancellation.
  mass = np.where(x > mean, special.expit(-lower) - special.expit(-upper),
                  special.expit(upper) - special.expit(lower))
  mass[0], mass[-1] = special.expit(upper[0]), special.expit(-lower[-1])
  with np.errstate(divide="ignore"):
    return np.log(mass)


def _float64_mixture(logits, means, log_scales):
  """`[C, 256]` mixture probabilities of `[C, M]` parameters, in float64."""
  logits, means, log_scales = (np.asarray(a, np.float32) for a in (
      logits, means, log_scales))
  weights = special.softmax(logits.astype(np.float64), axis=-1)  # [C, M]
  components = np.exp(_float64_reference(means.ravel(), log_scales.ravel()))
  components = components.reshape(256, *means.shape)  # [256, C, M]
  return np.einsum("xcm,cm->cx", components, weights)


# -------------------------------------------------------------- normalisation


def test_random_and_extreme_mixtures_sum_to_one_over_256_values():
  # One [P, 1, 3] grid (one compilation): random mixtures, then peaked
  # mixtures of every extreme (mean, log-scale) pair.
  random = [a.reshape(-1, 1, 3) for a in _random_params(0, 600, 1, 3)]
  grid = [np.concatenate(pair) for pair in zip(random, _extreme_params())]
  log_probs = _ALL_VALUES(*grid)  # [256, P, 1] float32
  assert log_probs.dtype == jnp.float32
  assert np.all(np.isfinite(log_probs))
  assert_sums_to_one_in_float32(log_probs)


# A float32 sum of 256 probabilities rounds ~8 times on its way to 1 (a
# pairwise sum's depth); measured worst case 4 ulps (4.8e-7) on this grid.
FLOAT32_SUM_TOLERANCE = 8 * float(np.finfo(np.float32).eps)


def assert_sums_to_one_in_float32(log_probs):
  """The 256 probabilities (axis 0) sum to 1 in float32 up to the sum's
  rounding, and exactly so in float64 up to the terms' own rounding."""
  total = np.asarray(jnp.sum(jnp.exp(log_probs), axis=0))  # float32
  assert total.dtype == np.float32
  assert np.max(np.abs(total - 1.0)) <= FLOAT32_SUM_TOLERANCE
  exact = special.logsumexp(np.asarray(log_probs, np.float64), axis=0)
  assert np.max(np.abs(exact)) < 5e-7


def test_each_component_sums_to_one_including_the_edge_bins():
  means, log_scales = np.meshgrid(EXTREME_MEANS, EXTREME_LOG_SCALES,
                                  indexing="ij")
  means = means.reshape(-1, 1).astype(np.float32)  # [P, 1]: C = P
  log_scales = log_scales.reshape(-1, 1).astype(np.float32)
  x = np.broadcast_to(VALUES[:, None], (256, means.shape[0]))
  log_probs = jax.jit(dl.component_log_probs)(means, log_scales,
                                               x)[..., 0]  # [256, P] float32
  assert np.all(np.isfinite(log_probs))
  assert_sums_to_one_in_float32(log_probs)
  log_probs = np.asarray(log_probs, np.float64)
  # A component far below 0 puts its mass on x = 0, far above 255 on 255.
  far_low = np.flatnonzero(means[:, 0] <= -1e4)
  far_high = np.flatnonzero(means[:, 0] >= 1e4)
  narrow = log_scales[:, 0] <= 3.
  np.testing.assert_allclose(log_probs[0, far_low[narrow[far_low]]], 0.,
                             atol=1e-6)
  np.testing.assert_allclose(log_probs[255, far_high[narrow[far_high]]], 0.,
                             atol=1e-6)


def test_matches_float64_reference_in_both_branches():
  rng = np.random.default_rng(3)
  means = rng.uniform(-50., 300., 3000).astype(np.float32)
  # Below and above MIDPOINT_LOG_SCALE: exact bins and mid-bin densities.
  log_scales = rng.uniform(-4., 20., 3000).astype(np.float32)
  x = np.broadcast_to(VALUES[:, None], (256, 3000))
  ours = jax.jit(dl.component_log_probs)(means[:, None], log_scales[:, None],
                                         x)[..., 0]
  reference = _float64_reference(means, log_scales)
  significant = reference > -60.
  np.testing.assert_allclose(np.asarray(ours)[significant],
                             reference[significant], rtol=1e-6, atol=2e-5)
  assert np.mean(log_scales > dl.MIDPOINT_LOG_SCALE) > 0.4


# ------------------------------------------------------ extremes, gradients


def test_finite_log_probs_and_gradients_at_extremes():
  logits, means, log_scales = _extreme_params()
  x = np.asarray([0., 1., 127., 254., 255.], np.float32)[:, None, None]

  def total(logits, means, log_scales):
    return jnp.sum(dl.log_prob(logits[None], means[None], log_scales[None],
                               jnp.broadcast_to(x, (5,) + logits.shape[:-1])))

  value, grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))(
      logits, means, log_scales)
  assert np.isfinite(float(value))
  for grad in grads:
    assert np.all(np.isfinite(np.asarray(grad)))
  # Moving a lone narrow component's mean towards the observed value raises
  # the log-probability: the gradient has the right sign far from the data.
  grad_mean = jax.jit(jax.grad(lambda m: dl.log_prob(
      jnp.zeros((1, 1)), m, jnp.full((1, 1), -7.), jnp.asarray([100.]))[0]))(
          np.full((1, 1), 104., np.float32))
  assert float(grad_mean[0, 0]) < 0.


# ------------------------------------------------------------------ sampler


SAMPLER_PARAMS = {  # [C, M]: one mixture per channel
    "logits": [[0., -50., -50.], [0., 0., -1.], [1., 0., -1.],
               [0., 1., 0.], [0., 0.5, -50.], [0., -1., 1.]],
    "means": [[100., 0., 0.], [30., 200., 128.], [-3., 2., 0.],
              [258., 250., 255.], [77.3, 180.6, 0.], [127.5, 20., 240.]],
    "log_scales": [[3., 0., 0.], [1., 2., 0.], [1.5, 0., -2.],
                   [1., 2., 0.], [-5., -7., 0.], [7., 1., 0.]],
}
NUM_DRAWS = 20_000


def test_sampler_matches_log_prob():
  params = {k: np.asarray(v, np.float32) for k, v in SAMPLER_PARAMS.items()}
  channels = params["means"].shape[0]
  broadcast = {k: np.broadcast_to(v, (NUM_DRAWS,) + v.shape)
               for k, v in params.items()}
  draws = np.asarray(jax.jit(dl.sample)(jax.random.PRNGKey(0), **broadcast))
  chex.assert_shape(draws, (NUM_DRAWS, channels))
  assert draws.dtype == np.float32
  np.testing.assert_array_equal(draws, np.round(draws))
  assert draws.min() >= 0. and draws.max() <= 255.
  probs = _float64_mixture(**SAMPLER_PARAMS)  # [C, 256]
  for channel in range(channels):
    counts = np.bincount(draws[:, channel].astype(int), minlength=256)
    expected = NUM_DRAWS * probs[channel]
    big = expected >= 5.  # pool the rare values into one cell
    observed = np.append(counts[big], counts[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum())
    keep = wanted > 0
    statistic = np.sum((observed[keep] - wanted[keep]) ** 2 / wanted[keep])
    dof = max(int(keep.sum()) - 1, 1)
    assert statistic < stats.chi2.ppf(1 - 1e-4, dof), (channel, statistic,
                                                      dof)
    # Moments: the sample mean within 5 standard errors of sum_x x P(x).
    mean = np.sum(VALUES * probs[channel])
    std = np.sqrt(np.sum((VALUES - mean) ** 2 * probs[channel]))
    assert abs(draws[:, channel].mean() - mean) < 5 * std / np.sqrt(
        NUM_DRAWS) + 1e-6


def test_sampler_is_keyed_and_handles_extremes():
  logits, means, log_scales = _extreme_params()
  sample = jax.jit(dl.sample)
  first = sample(jax.random.PRNGKey(1), logits, means, log_scales)
  np.testing.assert_array_equal(
      first, sample(jax.random.PRNGKey(1), logits, means, log_scales))
  assert not np.array_equal(
      first, sample(jax.random.PRNGKey(2), logits, means, log_scales))
  first = np.asarray(first)
  assert np.all((first >= 0.) & (first <= 255.))
  # Narrow one-hot components far outside [0, 255] sample their edge value
  # (rows 0 and 1 replaced; same shapes, same compilation).
  logits[:2], means[:2], log_scales[:2] = [100., 0., 0.], -1e4, -2.
  means[1] = 1e4
  edges = np.asarray(sample(jax.random.PRNGKey(3), logits, means,
                            log_scales))
  np.testing.assert_array_equal(edges[:2, 0], [0., 255.])


# ----------------------------------------------- layout, images, bits/dim


def test_unpack_params_layout_and_checks():
  outputs = jnp.arange(2 * 3 * 12, dtype=jnp.float32).reshape(2, 3, 12)
  params = dl.unpack_params(outputs, 4)
  chex.assert_shape(list(params), [(2, 3, 4)] * 3)
  np.testing.assert_array_equal(params.means, outputs[..., 4:8])
  with pytest.raises(ValueError, match=r"\[\.\.\., C, 9\].*\(2, 3, 12\)"):
    dl.unpack_params(outputs, 3)
  with pytest.raises(ValueError, match="num_components=0"):
    dl.unpack_params(outputs, 0)


def test_log_likelihood_sums_an_image_and_converts_to_bits_per_dim():
  rng = np.random.default_rng(5)
  shape = (2, 4, 4, 3)  # [B, H, W, C]
  params = [(rng.normal(size=shape + (2,)) * s + o).astype(np.float32)
            for s, o in ((1., 0.), (60., 128.), (0.5, 2.))]
  x = rng.integers(0, 256, shape).astype(np.float32)

  @jax.jit
  def evaluate(params, x):
    image = dl.log_likelihood(*params, x)
    flat = dl.log_likelihood(*(p.reshape(2, -1, 2) for p in params),
                             x.reshape(2, -1), event_ndims=1)
    bits = dl.nats_to_bits_per_dim(image, 48)
    return (dl.log_prob(*params, x), image, flat, bits,
            dl.bits_per_dim_to_nats(bits, 48))

  per_value, image, flat, bits, nats = map(np.asarray, evaluate(params, x))
  chex.assert_shape([per_value, image], [shape, (2,)])
  np.testing.assert_allclose(image, per_value.sum(axis=(1, 2, 3)), rtol=1e-6)
  np.testing.assert_allclose(flat, image, rtol=1e-6)
  np.testing.assert_allclose(bits, -per_value.mean(axis=(1, 2, 3)) / math.log(
      2.), rtol=1e-6)
  np.testing.assert_allclose(nats, image, rtol=1e-6)
  with pytest.raises(ValueError, match="event_ndims=5"):
    dl.log_likelihood(*params, x, event_ndims=5)


def test_bits_per_dim_of_a_uniform_8_bit_image_is_8():
  dims = 32 * 32 * 3
  uniform = -dims * math.log(256.)
  np.testing.assert_allclose(dl.nats_to_bits_per_dim(uniform, dims), 8.,
                             rtol=1e-6)
  np.testing.assert_allclose(dl.bits_per_dim_to_nats(8., dims), uniform,
                             rtol=1e-6)
  with pytest.raises(ValueError, match="num_dims=0"):
    dl.nats_to_bits_per_dim(uniform, 0)
