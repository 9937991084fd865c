"""Tests of the convolutional DVAE++ (`models.dvaepp_conv`, Table 3's rows).

Tiny models (8 x 8 images, 2 global units per RBM half, one or three local
groups, 8 filters) with fixed keys; the longer ones are marked slow.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

# About 190 s of mostly XLA compilation on 2 cores: outside the default run
# (10-minute CI budget) until the model compiles faster (`pytest -m slow`).
pytestmark = pytest.mark.slow

from configs import dvaepp_conv as config_lib
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi.models import dvaepp_conv
from discrete_vi.models import dvaepp_conv_net as net_lib
from discrete_vi.models import registry
from discrete_vi.objectives import iwae
from discrete_vi.training import validation

SHAPE = (8, 8, 1)
TINY = dict(num_global=4, global_groups=2, num_local_groups=1,
            local_channels=2, local_level=1, channels=8, num_blocks=1,
            global_hidden=16, gibbs_chains=8, gibbs_sweeps=2,
            sample_sweeps=5, kl_warmup_steps=0)


def binary_data(n: int, shape=SHAPE, seed: int = 0) -> np.ndarray:
  """Random binary images with a vertical bar, `[n, D]`."""
  rng = np.random.RandomState(seed)
  x = (rng.rand(n, *shape) < 0.2).astype(np.float32)
  x[: n // 2, :, shape[1] // 2, :] = 1.0
  return x.reshape(n, -1)


def tiny_model(shape=SHAPE, **overrides) -> dvaepp_conv.DVAEPPConv:
  kwargs = {**TINY, **overrides}
  mean = binary_data(64, shape).mean(0)
  return dvaepp_conv.DVAEPPConv(shape, mean, **kwargs)


def train(model, params, state, x, estimator, num_steps, lr=1e-2):
  """`num_steps` Adam steps on the batch x; returns params, state, losses."""
  tx = optax.adam(lr)

  @jax.jit
  def step(params, opt_state, state, key):
    (loss, aux), grads = jax.value_and_grad(
        lambda p: model.loss(p, key, x, step=0, estimator=estimator,
                             state=state), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, aux.state, loss

  opt_state, losses = tx.init(params), []
  for i in range(num_steps):
    params, opt_state, state, loss = step(params, opt_state, state,
                                          jax.random.PRNGKey(100 + i))
    losses.append(float(loss))
  return params, state, losses


def rbm_log_prior_by_hand(rbm_params, zs: np.ndarray) -> np.ndarray:
  """log p(z) of an RBM by explicit enumeration of all configurations."""
  a1, a2, w = (np.asarray(p, np.float64) for p in rbm_params)
  half = len(a1)
  def neg_energy(z):
    return z[:half] @ a1 + z[half:] @ a2 + z[:half] @ w @ z[half:]
  every = np.array(list(itertools.product([0, 1], repeat=2 * half)), float)
  log_z = np.logaddexp.reduce([neg_energy(z) for z in every])
  return np.array([neg_energy(z) for z in zs]) - log_z


def test_tiny_model_trains_and_its_bound_matches_brute_force():
  """Eval bound of a trained tiny RBM model = log sum_z p(z) E_h[...]."""
  model = tiny_model()
  estimator = estimators.make("overlapping_exponential")
  x = binary_data(16)
  key = jax.random.PRNGKey(0)
  params = jax.jit(model.init)(key, x)
  state = model.init_state(key, params, x, estimator)
  params, state, losses = train(model, params, state, x, estimator, 6)
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3, losses  # learns
  eval_params, info = model.prepare_evaluation(params, key)
  assert info["log_z_method"] == "exact"
  image = x[:1]  # [1, D]
  bound = float(jax.jit(lambda p: model.log_likelihood(
      p, jax.random.PRNGKey(1), image, num_samples=4000, chunk_size=1000))(
          eval_params)[0])

  # Brute force: every z, 400 h ~ q(h | x, z) each (fixed keys).
  zs = np.array(list(itertools.product([0, 1], repeat=4)), np.float32)
  num_h = 400
  images = model.images(image)
  _, local = model.apply(eval_params, "encode", images)
  tile = lambda a, n: jnp.repeat(a, n, axis=0)
  z_all = tile(jnp.asarray(zs), num_h)  # [16 num_h, 4]
  log_w = jax.jit(lambda p: model.local_log_weight(
      p, jax.random.PRNGKey(2), tile(images, len(z_all)), z_all,
      tile(local, len(z_all))))(eval_params)
  log_px_given_z = iwae.log_mean_exp(
      np.asarray(log_w, np.float64).reshape(len(zs), num_h), axis=1)
  log_prior = rbm_log_prior_by_hand(model.rbm_params(eval_params), zs)
  brute = float(np.logaddexp.reduce(log_prior + log_px_given_z))
  # Monte Carlo error of both sides is ~0.01 nats here; a wrong log Z,
  # log q(z | x) or log p(z) shifts the bound by far more.
  assert abs(bound - brute) < 0.05, (bound, brute)


def test_model_log_prior_of_rbm_matches_enumeration():
  model = tiny_model()
  key = jax.random.PRNGKey(3)
  params = model.init(key, binary_data(2))
  rbm_params = jax.tree_util.tree_map(
      lambda p: jax.random.normal(key, p.shape), model.rbm_params(params))
  params = {**params, "rbm": rbm_params._asdict()}
  eval_params, _ = model.prepare_evaluation(params, key)
  zs = np.array(list(itertools.product([0, 1], repeat=4)), np.float32)
  np.testing.assert_allclose(model.global_log_prior(eval_params, zs),
                             rbm_log_prior_by_hand(rbm_params, zs),
                             atol=1e-4)


def pixel_scale(shape, num_scales: int) -> np.ndarray:
  """`[H, W]` the first scale i whose subsampled image x_i holds each pixel."""
  out = np.full(shape[:2], num_scales - 1)
  for i in reversed(range(num_scales)):
    stride = 2**(num_scales - 1 - i)
    out[::stride, ::stride] = i
  return out


def test_multiscale_factors_partition_the_pixels():
  shape = (28, 28, 1)
  num_scales = net_lib.num_downsamplings(shape) + 1
  assert [net_lib.level_shape(shape, num_scales - 1 - i)
          for i in range(num_scales)] == [(4, 4), (7, 7), (14, 14), (28, 28)]
  count = np.zeros(shape[:2])
  for i in range(num_scales):
    stride = 2**(num_scales - 1 - i)
    rows, cols = net_lib.level_shape(shape, num_scales - 1 - i)
    new = 1.0 - net_lib.known_mask((rows, cols), i)[..., 0]
    count[::stride, ::stride] += new
  np.testing.assert_array_equal(count, 1.0)  # each pixel modelled once


def test_scale_i_does_not_depend_on_its_own_or_finer_pixels():
  """d outputs_i / d x = 0 at pixels of scale >= i, != 0 at coarser ones."""
  shape = (16, 16, 1)  # scales 4 x 4, 8 x 8, 16 x 16
  model = tiny_model(shape, decoder="multiscale")
  x = binary_data(2, shape)
  params = jax.jit(model.init)(jax.random.PRNGKey(4), x)
  images = model.images(x)
  state = jax.random.normal(jax.random.PRNGKey(5), (2, 8, 8, 8))
  num_scales = net_lib.num_downsamplings(shape) + 1
  owner = pixel_scale(shape, num_scales)

  def outputs(images, i):
    factors = model.apply(params, "data_conditionals", state, images)
    return jnp.sum(jnp.sin(factors[i][0]))

  grad = jax.jit(jax.grad(outputs), static_argnums=1)
  for i in range(num_scales):
    g = np.abs(np.asarray(grad(images, i))).sum((0, 3))  # [H, W]
    assert np.all(g[owner >= i] == 0.0), i
    if i:
      assert np.all(g[owner < i] > 0.0), i


def test_local_posterior_does_not_depend_on_later_groups():
  """q(h_j | x, zeta, h_<j) and p(h_j | zeta, h_<j) ignore h_{>=j}."""
  model = tiny_model(num_local_groups=3)
  x = binary_data(2)
  params = jax.jit(model.init)(jax.random.PRNGKey(6), x)
  _, local = model.apply(params, "encode", model.images(x))
  zeta = jnp.full((2, 4), 0.5)
  hs = jax.random.normal(jax.random.PRNGKey(7), (3, 2, 4, 4, 2))

  def conditionals(hs):
    state = model.apply(params, "top_down_init", zeta)
    out = []
    for j in range(3):
      out.append((model.apply(params, "local_posterior", j, state, local),
                  model.apply(params, "local_prior", j, state)))
      state = model.apply(params, "absorb", j, state, hs[j])
    return out

  for j in range(3):
    for which in range(2):
      grad = jax.grad(lambda h: jnp.sum(jnp.sin(conditionals(h)[j][which])))(
          hs)
      per_group = np.abs(np.asarray(grad)).sum((1, 2, 3, 4))  # [3]
      assert np.all(per_group[j:] == 0.0), (j, which, per_group)
      assert np.all(per_group[:j] > 0.0), (j, which, per_group)


def test_smoothed_sample_has_the_estimators_value_and_gradient():
  logits = jnp.array([[0.3, -1.0, 2.0], [0.0, 0.5, -0.2]])
  f = lambda z: jnp.sum(jnp.sin(3.0 * z) + z**2, -1)
  key = jax.random.PRNGKey(8)
  for name in ("overlapping_exponential", "spike_and_exp", "power_function"):
    estimator = estimators.make(name)
    direct = jax.grad(lambda l: -jnp.sum(estimator.estimate(key, l, f)[0]))(
        logits)
    ours = jax.grad(lambda l: jnp.sum(
        f(dvaepp_conv.smoothed_sample(estimator, key, l)[0])))(logits)
    np.testing.assert_allclose(ours, direct, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(direct)).sum() > 0


def test_kl_balancing_redistributes_the_warm_up_weight():
  kls = jnp.array([[1.0, 3.0, 0.0], [1.0, 5.0, 0.0]])  # means 1, 4, 0
  weights = np.asarray(dvaepp_conv.balanced_kl_weights(kls, 0.5, True))
  np.testing.assert_allclose(weights.sum(), 0.5 * 3, rtol=1e-6)
  assert weights[1] > weights[0] > weights[2]
  np.testing.assert_allclose(
      dvaepp_conv.balanced_kl_weights(kls, 1.0, True), 1.0)
  np.testing.assert_allclose(
      dvaepp_conv.balanced_kl_weights(kls, 0.5, False), 0.5)
  sizes = np.array([1.0, 4.0, 0.0]) + dvaepp_conv.KL_BALANCE_EPS
  np.testing.assert_allclose(
      dvaepp_conv.balanced_kl_weights(kls, 1e-4, True) / 1e-4,
      3 * sizes / sizes.sum(), rtol=1e-3, atol=1e-3)


def test_samples_share_one_global_sample_per_row():
  model = tiny_model(global_prior="normal", sample_columns=3)
  params = model.init(jax.random.PRNGKey(9), binary_data(2))
  z = np.asarray(model.shared_global_samples(params, jax.random.PRNGKey(10),
                                             7))
  assert z.shape == (7, 4)
  for row in (z[0:3], z[3:6], z[6:7]):
    np.testing.assert_array_equal(row, np.broadcast_to(row[0], row.shape))
  assert not np.allclose(z[0], z[3]) and not np.allclose(z[3], z[6])


def tiny_row_config(row: str):
  config = config_lib.get_config(row)
  config.model.update(num_global=4, num_local_groups=1, local_channels=2,
                      local_level=1, channels=8, num_blocks=1,
                      global_hidden=16, gibbs_chains=8, gibbs_sweeps=2)
  config.train.kl_warmup_steps = 0  # KL weight 1: every parameter has a gradient
  return config


SPEC = data_lib.DataSpec(binary_data(64).mean(0), SHAPE, "binary")


@pytest.mark.parametrize("row", sorted(config_lib.ROWS))
def test_every_row_builds_and_validates(row):
  for protocol in ("quick", "paper"):
    validation.validate_config(config_lib.get_config(
        f"{row},protocol={protocol}"))
  model = registry.build_model(tiny_row_config(row), SPEC)
  global_prior, local_latent, _ = config_lib.ROWS[row]
  assert (model.global_prior, model.local_latent) == (global_prior,
                                                      local_latent)


def two_steps(row: str, spec=SPEC, x=None):
  config = tiny_row_config(row)
  model = registry.build_model(config, spec)
  estimator = estimators.make(config.estimator.name)
  x = binary_data(8) if x is None else x
  key = jax.random.PRNGKey(11)
  params = jax.jit(model.init)(key, x)
  state = model.init_state(key, params, x, estimator)
  new_params, _, losses = train(model, params, state, x, estimator, 2)
  assert np.all(np.isfinite(losses)), losses
  moved = jax.tree_util.tree_map(lambda a, b: np.any(a != b), params,
                                 new_params)
  assert all(jax.tree_util.tree_leaves(moved))  # every parameter trains
  return model, new_params


def test_mixed_row_runs_two_training_steps():
  two_steps("mixed")


@pytest.mark.slow
@pytest.mark.parametrize("row", sorted(set(config_lib.ROWS) - {"mixed"}))
def test_every_row_runs_two_training_steps(row):
  two_steps(row)


@pytest.mark.slow
def test_uint8_multiscale_model_trains_and_reports_bits_per_dim():
  shape = (8, 8, 3)
  rng = np.random.RandomState(12)
  x = np.floor(rng.rand(4, 8 * 8 * 3) * 256).astype(np.float32)
  spec = data_lib.DataSpec(x.mean(0), shape, "uint8")
  config = tiny_row_config("mixed")
  config.model.decoder = "multiscale"
  config.model.num_mixtures = 3
  config.eval.final_num_samples, config.eval.chunk_size = 4, 2
  model = registry.build_model(config, spec)
  estimator = estimators.make("overlapping_exponential")
  params = model.init(jax.random.PRNGKey(13), x)
  state = model.init_state(jax.random.PRNGKey(13), params, x, estimator)
  params, _, losses = train(model, params, state, x, estimator, 2)
  assert np.all(np.isfinite(losses))
  eval_params, _ = model.prepare_evaluation(params, jax.random.PRNGKey(14))
  key = jax.random.PRNGKey(15)
  bits = model.extra_evaluations()["bits_per_dim"](eval_params, key, x)
  nats = model.log_likelihood(eval_params, key, x, 4, 2)
  np.testing.assert_allclose(bits, -nats / (192 * math.log(2.0)), rtol=1e-5)
  assert np.all((bits > 0) & (bits < 16))
  samples = np.asarray(model.sample(params, key, 4))
  assert samples.shape == (4, 192)
  assert np.all((samples >= 0) & (samples <= 255))
  assert np.all(samples == np.round(samples))


BAD_FIELDS = [
    ("global_prior", "gaussian"), ("local_latent", "categorical"),
    ("global_groups", 3), ("num_global", 7), ("num_local_groups", 0),
    ("local_channels", 0), ("local_level", 9), ("decoder", "pixelcnn"),
    ("channels", 0), ("num_blocks", -1), ("global_hidden", 0),
    ("num_mixtures", 0), ("squeeze_excitation", 0), ("weight_norm", 1),
    ("kl_balancing", "yes"), ("activation", "swish"), ("gibbs_chains", 0),
    ("gibbs_sweeps", 0), ("sample_columns", 0), ("rbm_weight_decay", -1.0),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_bad_model_values_fail_naming_the_field(field, value):
  config = config_lib.get_config("mixed")
  with config.ignore_type():
    config.model[field] = value
  with pytest.raises(ValueError, match=f"config.model.{field}"):
    validation.validate_config(config)


def test_bad_estimator_and_log_z_fail_naming_the_field():
  config = config_lib.get_config("mixed")
  config.estimator.name = "reinforce"
  with pytest.raises(ValueError, match="config.estimator.name"):
    validation.validate_config(config)
  config = config_lib.get_config("mixed,data=cifar10")
  config.eval.log_z = "exact"  # halves of 64 units
  with pytest.raises(ValueError, match="config.eval.log_z"):
    validation.validate_config(config)
