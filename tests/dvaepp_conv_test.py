"""Tests of the convolutional DVAE++ (`models.dvaepp_conv`, Table 3's rows).

Tiny models (8 x 8 images, 2 global units per RBM half, one or three local
groups, 8 filters; squeeze-and-excitation in `dvaepp_conv_rows_test`) with
fixed keys. Compilation dominates: each model is built, initialised and
trained once per module (fixtures), and each test jits one function; the
other rows' training and the 8-bit run are in `dvaepp_conv_rows_test`.
"""

import copy
import dataclasses
import itertools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest

from configs import dvaepp_conv as config_lib
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi.models import dvaepp_conv
from discrete_vi.models import dvaepp_conv_net as net_lib
from discrete_vi.models import registry
from discrete_vi.objectives import iwae
from discrete_vi.stochastic import latents
from discrete_vi.stochastic import rbm_prior
from discrete_vi.training import loop
from discrete_vi.training import validation

SHAPE = (8, 8, 1)
TINY = dict(num_global=4, global_groups=2, num_local_groups=1,
            local_channels=2, local_level=1, channels=8, num_blocks=1,
            global_hidden=16, kl_warmup_steps=0, squeeze_excitation=None,
            rbm=rbm_prior.RBMPrior(gibbs_chains=8, gibbs_sweeps=2,
                                   sample_sweeps=5))
TRAIN_STEPS = 6


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
  """`num_steps` Adam steps on the batch x (one compilation); returns the
  parameters after each step, the final state and the losses."""
  tx = optax.adam(lr)

  @jax.jit
  def step(params, opt_state, state, key):
    (loss, aux), grads = jax.value_and_grad(
        lambda p: model.loss(p, key, x, step=0, estimator=estimator,
                             state=state), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, aux.state, loss

  opt_state, history, losses = tx.init(params), [], []
  for i in range(num_steps):
    params, opt_state, state, loss = step(params, opt_state, state,
                                          jax.random.PRNGKey(100 + i))
    history.append(params)
    losses.append(float(loss))
  return history, state, losses


def tiny_row_config(row: str):
  config = config_lib.get_config(row)
  config.model.update(num_global=4, num_local_groups=1, local_channels=2,
                      local_level=1, channels=8, num_blocks=1,
                      global_hidden=16)
  config.model.rbm.update(gibbs_chains=8, gibbs_sweeps=2)
  config.train.kl_warmup_steps = 0  # KL weight 1: every parameter has a gradient
  return config


SPEC = data_lib.DataSpec(binary_data(64).mean(0), SHAPE, "binary")


def train_row(row: str, config=None, x=None, num_steps: int = 2):
  """A row's tiny model from the registry, trained `num_steps` steps:
  (model, initial params, `train`'s history, state, losses)."""
  config = tiny_row_config(row) if config is None else config
  model = registry.build_model(config, SPEC)
  estimator = estimators.make(config.estimator.name)
  x = binary_data(8) if x is None else x
  key = jax.random.PRNGKey(11)
  params = model.init(key, x)
  state = model.init_state(key, params, x, estimator)
  history, state, losses = train(model, params, state, x, estimator,
                                 num_steps)
  assert np.all(np.isfinite(losses)), losses
  return model, params, history, state, losses


def assert_every_parameter_moved(before, after):
  moved = jax.tree_util.tree_map(lambda a, b: np.any(a != b), before, after)
  assert all(jax.tree_util.tree_leaves(moved))  # every parameter trains


@pytest.fixture(scope="module")
def mixed_run():
  """The mixed row (RBM + normal local, factorial decoder) at the tiny
  sizes, `TRAIN_STEPS` steps on 16 images."""
  config = tiny_row_config("mixed")
  config.model.squeeze_excitation = None  # SE: in the other rows' runs
  x = binary_data(16)
  model, params, history, state, losses = train_row(
      "mixed", config, x, TRAIN_STEPS)
  return dict(model=model, init=params, history=history, state=state,
              losses=losses, x=x)


def rbm_neg_energies_by_hand(rbm_params, zs: np.ndarray) -> np.ndarray:
  """a1 z1 + a2 z2 + z1 W z2 of each row of `zs [N, n1 + n2]`, float64."""
  a1, a2, w = (np.asarray(p, np.float64) for p in rbm_params)
  z1, z2 = zs[:, :len(a1)], zs[:, len(a1):]
  return z1 @ a1 + z2 @ a2 + np.sum((z1 @ w) * z2, -1)


def rbm_log_z_by_hand(rbm_params) -> float:
  """log Z of an RBM by explicit enumeration of all 2^(n1 + n2) states."""
  n = sum(len(a) for a in rbm_params[:2])
  every = np.array(list(itertools.product([0, 1], repeat=n)), np.float64)
  return float(np.logaddexp.reduce(rbm_neg_energies_by_hand(rbm_params,
                                                            every)))


def rbm_log_prior_by_hand(rbm_params, zs: np.ndarray) -> np.ndarray:
  """log p(z) of an RBM by explicit enumeration of all configurations."""
  return (rbm_neg_energies_by_hand(rbm_params, np.asarray(zs, np.float64))
          - rbm_log_z_by_hand(rbm_params))


def test_mixed_row_trains_every_parameter_in_two_steps(mixed_run):
  assert_every_parameter_moved(mixed_run["init"], mixed_run["history"][1])


def test_tiny_model_trains_and_its_bound_matches_brute_force(mixed_run):
  """Eval bound of a trained tiny RBM model = log sum_z p(z) E_h[...]."""
  model, losses, x = mixed_run["model"], mixed_run["losses"], mixed_run["x"]
  params, key = mixed_run["history"][-1], jax.random.PRNGKey(0)
  assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3, losses  # learns
  context, info = model.prepare_evaluation(params, key)
  assert info["log_z_method"] == "exact"
  image = x[:1]  # [1, D]
  bound = float(jax.jit(lambda p, c: model.log_likelihood(
      p, jax.random.PRNGKey(1), image, num_samples=4000, chunk_size=1000,
      context=c))(params, context)[0])

  # Brute force: every z, 400 h ~ q(h | x, z) each (fixed keys).
  zs = np.array(list(itertools.product([0, 1], repeat=4)), np.float32)
  num_h = 400
  images = model.images(image)
  _, local = model.apply(params, "encode", images)
  tile = lambda a, n: jnp.repeat(a, n, axis=0)
  z_all = tile(jnp.asarray(zs), num_h)  # [16 num_h, 4]
  log_w = jax.jit(lambda p: model.local_log_weight(
      p, jax.random.PRNGKey(2), tile(images, len(z_all)), z_all,
      tile(local, len(z_all))))(params)
  log_px_given_z = iwae.log_mean_exp(
      np.asarray(log_w, np.float64).reshape(len(zs), num_h), axis=1)
  log_prior = rbm_log_prior_by_hand(model.rbm_params(params), zs)
  brute = float(np.logaddexp.reduce(log_prior + log_px_given_z))
  # Monte Carlo error of both sides is ~0.01 nats here; a wrong log Z,
  # log q(z | x) or log p(z) shifts the bound by far more.
  assert abs(bound - brute) < 0.05, (bound, brute)


def test_model_log_prior_of_rbm_matches_enumeration(mixed_run):
  model, params = mixed_run["model"], mixed_run["init"]
  key = jax.random.PRNGKey(3)
  rbm_params = jax.tree_util.tree_map(
      lambda p: jax.random.normal(key, p.shape), model.rbm_params(params))
  params = {**params, "rbm": rbm_params._asdict()}
  context, _ = model.prepare_evaluation(params, key)
  zs = np.array(list(itertools.product([0, 1], repeat=4)), np.float32)
  np.testing.assert_allclose(model.global_log_prior(params, zs, context),
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
  model = tiny_model(shape, decoder="multiscale", num_blocks=0)
  x = binary_data(2, shape)
  params = model.init(jax.random.PRNGKey(4), x)
  images = model.images(x)
  state = jax.random.normal(jax.random.PRNGKey(5), (2, 8, 8, 8))
  num_scales = net_lib.num_downsamplings(shape) + 1
  owner = pixel_scale(shape, num_scales)

  def outputs(images, i):
    factors = model.apply(params, "data_conditionals", state, images)
    return jnp.sum(jnp.sin(factors[i][0]))

  grads = jax.jit(lambda images: [jax.grad(outputs)(images, i)
                                  for i in range(num_scales)])(images)
  for i, grad in enumerate(grads):
    g = np.abs(np.asarray(grad)).sum((0, 3))  # [H, W]
    assert np.all(g[owner >= i] == 0.0), i
    if i:
      assert np.all(g[owner < i] > 0.0), i


@pytest.fixture(scope="module")
def normal_model():
  """A tiny all-normal model with 3 local groups, a factorial decoder and
  3 samples per global sample, and its initial parameters."""
  model = tiny_model(global_prior="normal", num_local_groups=3,
                     decoder="factorial", sample_columns=3)
  return model, model.init(jax.random.PRNGKey(6), binary_data(2))


def test_local_posterior_does_not_depend_on_later_groups(normal_model):
  """q(h_j | x, zeta, h_<j) and p(h_j | zeta, h_<j) ignore h_{>=j}."""
  model, params = normal_model
  x = binary_data(2)
  zeta = jnp.full((2, 4), 0.5)
  hs = jax.random.normal(jax.random.PRNGKey(7), (3, 2, 4, 4, 2))

  def conditionals(hs):
    _, local = model.apply(params, "encode", model.images(x))
    state = model.apply(params, "top_down_init", zeta)
    out = []
    for j in range(3):
      group = model.group_params(params, j)
      out.append((model.apply_group(group, "posterior", state, local),
                  model.apply_group(group, "prior", state)))
      state = model.apply_group(group, "absorb", state, hs[j])
    return out

  @jax.jit
  def per_group_gradients(hs):  # [j, which, group]
    return jnp.stack([jnp.stack([jnp.abs(jax.grad(
        lambda h: jnp.sum(jnp.sin(conditionals(h)[j][which])))(hs)).sum(
            (1, 2, 3, 4)) for which in range(2)]) for j in range(3)])

  grads = np.asarray(per_group_gradients(hs))
  for j in range(3):
    for which in range(2):
      per_group = grads[j, which]  # [3]
      assert np.all(per_group[j:] == 0.0), (j, which, per_group)
      assert np.all(per_group[:j] > 0.0), (j, which, per_group)


def test_scan_groups_runs_group_j_on_the_state_of_group_j_minus_1(
    normal_model):
  """`scan_groups` = the loop over groups with group j's parameters and key
  fold_in(key, j), each group's output stacked."""
  model, params = normal_model
  kernels = params[dvaepp_conv.LOCAL_GROUPS_KEY]["absorb_conv"]["kernel"]
  assert kernels.shape[0] == 3 and not np.allclose(kernels[0], kernels[1])
  key = jax.random.PRNGKey(0)
  draw_h = lambda k: jax.random.normal(k, (2, 4, 4, 2))

  def step(group_params, group_key, state):
    return (model.apply_group(group_params, "absorb", state,
                              draw_h(group_key)), jnp.mean(state))

  def by_hand(state):
    means = []
    for j in range(3):
      means.append(jnp.mean(state))
      state = model.apply_group(model.group_params(params, j), "absorb",
                                state, draw_h(jax.random.fold_in(key, j)))
    return state, jnp.stack(means)

  unrolled_model = copy.copy(model)  # the same groups, straight-line code
  unrolled_model.unroll_groups = True
  both = lambda s: (model.scan_groups(params, key, s, step), by_hand(s),
                    unrolled_model.scan_groups(params, key, s, step))
  s0 = jnp.ones((2, 4, 4, 8))
  (scanned, outs), (looped, means), (unrolled, unrolled_outs) = jax.jit(
      both)(s0)
  np.testing.assert_allclose(scanned, looped, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(outs, means, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(unrolled, looped, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(unrolled_outs, means, rtol=1e-5, atol=1e-6)
  def scan_unroll(m):  # the `unroll` of the scan over the groups
    jaxpr = jax.make_jaxpr(lambda s: m.scan_groups(params, key, s, step))(s0)
    return [e.params["unroll"] for e in jaxpr.jaxpr.eqns
            if e.primitive.name == "scan"]
  assert scan_unroll(model) == [1] and scan_unroll(unrolled_model) == [3]


def test_bernoulli_draws_have_the_estimators_value_and_gradient():
  """The model's binary groups are drawn by their part's `pathwise` (the
  estimator's `sample`): f at that draw has the value and gradient of the
  estimator's own loss, and the draw carries logit q(z = 1 | zeta)."""
  logits = jnp.array([[0.3, -1.0, 2.0], [0.0, 0.5, -0.2]])
  f = lambda z: jnp.sum(jnp.sin(3.0 * z) + z**2, -1)
  key = jax.random.PRNGKey(8)
  names = ("overlapping_exponential", "spike_and_exp", "power_function")
  parts = {dvaepp_conv.GLOBAL_PARTS["rbm"], dvaepp_conv.GLOBAL_PARTS[
      "bernoulli"], dvaepp_conv.LOCAL_PARTS["bernoulli"]}
  assert parts == {latents.Bernoulli()}
  part = latents.Bernoulli()

  @jax.jit
  def gradients(logits):  # [estimator, (direct, ours, posterior), B, n]
    out = []
    for name in names:
      estimator = estimators.make(name)
      direct = jax.value_and_grad(
          lambda l: -jnp.sum(estimator.estimate(key, l, f)[0]))
      ours = jax.value_and_grad(lambda l: jnp.sum(
          f(part.pathwise(estimator, key, l).z)))
      out.append((direct(logits), ours(logits),
                  part.pathwise(estimator, key, logits).posterior_logits))
    return out

  for name, ((value, direct), (ours_value, ours), posterior) in zip(
      names, gradients(logits)):
    np.testing.assert_allclose(ours_value, value, rtol=1e-6)
    np.testing.assert_allclose(ours, direct, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(direct)).sum() > 0
    if name == "spike_and_exp":  # the mean of its step-function posterior
      np.testing.assert_array_equal(posterior, logits)
    else:
      assert np.all(np.isfinite(posterior))
      assert not np.allclose(posterior, logits)


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


def test_samples_share_one_global_sample_per_row(normal_model):
  model, params = normal_model  # sample_columns = 3
  z = np.asarray(model.shared_global_samples(params, jax.random.PRNGKey(10),
                                             7))
  assert z.shape == (7, 4)
  for row in (z[0:3], z[3:6], z[6:7]):
    np.testing.assert_array_equal(row, np.broadcast_to(row[0], row.shape))
  assert not np.allclose(z[0], z[3]) and not np.allclose(z[3], z[6])


def tiles_of(png: np.ndarray, n: int, columns: int, side: int) -> list:
  """The n `side` x `side` tiles of a grid PNG, row-major."""
  return [png[1 + r * (side + 1):(r + 1) * (side + 1),
              1 + c * (side + 1):(c + 1) * (side + 1)]
          for r, c in (divmod(k, columns) for k in range(n))]


def test_samples_png_has_one_global_sample_per_row(normal_model, tmp_path):
  """Fig. 4: the training loop's samples.png has `sample_columns` tiles per
  row and one global sample per row. With the local latents' effect removed
  (zero absorb convolutions) a factorial-decoder sample is a function of its
  global sample alone: tiles equal within a row, rows different."""
  model, params = normal_model
  zero = lambda tree: jax.tree_util.tree_map(jnp.zeros_like, tree)
  groups = {**params[dvaepp_conv.LOCAL_GROUPS_KEY]}
  groups["absorb_conv"] = zero(groups["absorb_conv"])
  head = {**params["data_heads_0"]}  # near zero at init: make z visible
  head = jax.tree_util.tree_map(lambda a: 300.0 * a, head)
  params = {**params, dvaepp_conv.LOCAL_GROUPS_KEY: groups,
            "data_heads_0": head}
  images = np.asarray(model.sample(params, jax.random.PRNGKey(9), 7))
  path = str(tmp_path / "samples.png")
  loop.save_samples(images, path, model, SPEC)
  png = plt.imread(path)[..., 0]
  assert png.shape == (3 * 9 + 1, 3 * 9 + 1)  # 3 rows of 3 columns
  tiles = tiles_of(png, 7, 3, 8)
  for row in ((0, 1, 2), (3, 4, 5)):
    for k in row[1:]:
      np.testing.assert_array_equal(tiles[k], tiles[row[0]])
  assert np.abs(tiles[0] - tiles[3]).max() > 0.05
  assert np.abs(tiles[3] - tiles[6]).max() > 0.05


@pytest.mark.parametrize("row", sorted(config_lib.ROWS))
def test_every_row_builds_and_validates(row):
  for protocol in ("quick", "paper"):
    validation.validate_config(config_lib.get_config(
        f"{row},protocol={protocol}"))
  model = registry.build_model(tiny_row_config(row), SPEC)
  global_prior, local_latent, _ = config_lib.ROWS[row]
  assert (model.global_prior, model.local_latent) == (global_prior,
                                                      local_latent)


@pytest.mark.parametrize("data", config_lib.DATA)
def test_every_table_3_column_names_its_data_and_decoder(data):
  """`data=` picks Table 3's column: its data set, and the conditional
  (multi-scale) decoder everywhere but the two MNIST columns."""
  name, binarization, decoder, num_global = config_lib.DATA_SETS[data]
  for protocol in ("quick", "paper"):
    config = config_lib.get_config(f"mixed,protocol={protocol},data={data}")
    expected = ("mnist5k" if (data, protocol) == ("mnist", "quick")
                else name)
    assert config.data.name == expected
    assert (config.model.decoder, config.model.num_global) == (decoder,
                                                               num_global)
    if data == "caltech101":  # a local file: refused without its path
      with pytest.raises(ValueError, match="config.data.path"):
        validation.validate_config(config)
      config.data.path = "/data/caltech101_silhouettes_28_split1.mat"
    validation.validate_config(config)
    assert config.data.binarization == (
        "static" if expected == "mnist5k" else binarization)
  assert (decoder == "factorial") == data.startswith("mnist")


BAD_FIELDS = [
    ("global_prior", "gaussian"), ("local_latent", "categorical"),
    ("global_groups", 3), ("num_global", 7), ("num_local_groups", 0),
    ("local_channels", 0), ("local_level", 9), ("decoder", "pixelcnn"),
    ("channels", 0), ("num_blocks", -1), ("global_hidden", 0),
    ("num_mixtures", 0), ("squeeze_excitation", 0), ("weight_norm", 1),
    ("kl_balancing", "yes"), ("activation", "swish"),
    ("rbm.gibbs_chains", 0), ("rbm.gibbs_sweeps", 0), ("sample_columns", 0),
    ("rbm.weight_decay", -1.0), ("rbm.log_z", "magic"), ("unroll_groups", 1),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_bad_model_values_fail_naming_the_field(field, value):
  config = config_lib.get_config("mixed")
  section, name = (config.model.rbm, field[4:]) if field.startswith(
      "rbm.") else (config.model, field)
  with section.ignore_type():
    section[name] = value
  with pytest.raises(ValueError, match=f"config.model.{field}"):
    validation.validate_config(config)


def test_model_section_round_trips_and_names_missing_fields():
  config = config_lib.get_config("mixed")
  section = dvaepp_conv.ConvSection.of(config.model)
  assert all(getattr(section, name) == config.model[name]
             for name in dataclasses.asdict(section))
  del config.model["channels"]  # a field the section declares
  section = dvaepp_conv.ConvSection.of(config.model)  # its default
  assert section.channels == dvaepp_conv.ConvSection().channels


def test_bad_estimator_and_log_z_fail_naming_the_field():
  config = config_lib.get_config("mixed")
  config.estimator.name = "reinforce"
  with pytest.raises(ValueError, match="config.estimator.name"):
    validation.validate_config(config)
  config = config_lib.get_config("mixed,data=cifar10")
  config.model.rbm.log_z = "exact"  # halves of 64 units
  with pytest.raises(ValueError, match="config.model.rbm.log_z='exact'"):
    validation.validate_config(config)


@pytest.mark.slow
def test_benchmark_table_at_tiny_sizes():
  from experiments.benchmarks import dvaepp_conv as benchmark_lib  # pylint: disable=g-import-not-at-top
  overrides = {"model.channels": 4, "model.num_blocks": 0,
               "model.num_local_groups": 2, "model.local_channels": 2,
               "model.global_hidden": 8, "model.rbm.gibbs_chains": 4,
               "model.rbm.gibbs_sweeps": 1}
  emitted = []
  lines = benchmark_lib.table(("mnist",), batch=2, overrides=overrides,
                              emit=emitted.append)
  assert lines[2].startswith("| mnist |") and "%" in lines[2], lines
  assert emitted == lines[:3]  # printed as measured
  with pytest.raises(ValueError, match="data must be one of"):
    benchmark_lib.paper_config("omniglot")


def test_benchmark_command_names_a_bad_data_set():
  """`python -m experiments.benchmark dvaepp_conv OUT.md omniglot` fails
  before building anything, naming the data set."""
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="omniglot"):
    benchmark.main(["benchmark", "dvaepp_conv", "/nonexistent/out.md",
                    "omniglot"])
