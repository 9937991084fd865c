"""HD-VAE (Lievin et al., 2019): architectures, objectives, evaluation,
training through the loop, configs; and the residual blocks.

The default run keeps the main claims on models without residual blocks
(`NO_BLOCKS`: the relaxed-ELBO bound, two loop steps); the per-architecture,
gradient, bound and residual-block checks, each a few more compilations,
are `slow`.
"""

import dataclasses
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import hdvae as hdvae_config
from discrete_vi import estimators
from discrete_vi import training
from discrete_vi.distributions import concrete
from discrete_vi.models import hdvae
from discrete_vi.models import residual
from discrete_vi.objectives import relaxed as relaxed_objectives
from discrete_vi.stochastic import chain
import budgets

MEAN = np.full(784, 0.2, np.float32)
X = (np.random.RandomState(0).rand(4, 784) < 0.2).astype(np.float32)
TINY = dict(filters=4, num_blocks=1, dropout=0.1)
NO_BLOCKS = dict(TINY, num_blocks=0)  # stems, embeddings, decoder only
GUMBEL = estimators.make("gumbel_softmax", distribution="categorical",
                         temperature=0.5)


def _collect(path, h, xs):
  del h, xs
  return path


# -- the conditional structure of Eqs. 17-20 --------------------------------


def _structure(architecture):
  model = hdvae.HDVAE(MEAN, num_variables=(2, 2, 2), num_classes=(4, 4, 4),
                      architecture=architecture, **TINY)
  params = model.init(jax.random.PRNGKey(0), X)
  zs = [jax.nn.one_hot(jnp.zeros((4, 2), jnp.int32), 4)] * 3
  zs_top = zs[:2] + [jax.nn.one_hot(jnp.ones((4, 2), jnp.int32), 4)]
  path = jax.jit(lambda p, x, z: model._path(p, x, chain.fixed_sampler(z),
                                              _collect))
  base = path(params, X, zs)
  top_changed = path(params, X, zs_top)
  x_changed = path(params, 1 - X, zs)
  changed = lambda a, b: float(jnp.max(jnp.abs(a - b))) > 1e-6
  return {
      # p(z_1 | .) after changing z_3 only (z_2 fixed)
      "p1_sees_z3": changed(base[0][2], top_changed[0][2]),
      # q(z_1 | .) after changing z_3 only
      "q1_sees_z3": changed(base[0][1], top_changed[0][1]),
      # q(z_2 | .) after changing x only (z_1 fixed)
      "q2_sees_x": changed(base[1][1], x_changed[1][1]),
      # q(z_3 | .) after changing x only
      "q3_sees_x": changed(base[2][1], x_changed[2][1]),
  }


@pytest.mark.slow
@pytest.mark.parametrize("architecture,expected", [
    # Eq. 17: p Markov; q(z_i | z_{i-1}) blind to x given z_{i-1}.
    ("vae", dict(p1_sees_z3=False, q1_sees_z3=False, q2_sees_x=False,
                 q3_sees_x=False)),
    # Eq. 18: p(z_i | z_{>i}); q(z_i | z_{<i}, x).
    ("skip_vae", dict(p1_sees_z3=True, q1_sees_z3=False, q2_sees_x=True,
                      q3_sees_x=True)),
    # Eq. 19: p(z_i | z_{i+1}); q(z_i | z_{i+1}, x).
    ("lvae", dict(p1_sees_z3=False, q1_sees_z3=False, q2_sees_x=True,
                  q3_sees_x=True)),
    # Eq. 20: p(z_i | z_{>i}); q(z_i | z_{>i}, x).
    ("skip_lvae", dict(p1_sees_z3=True, q1_sees_z3=True, q2_sees_x=True,
                       q3_sees_x=True)),
])
def test_conditionals_follow_their_equation(architecture, expected):
  assert _structure(architecture) == expected


# -- one small model per latent type ----------------------------------------


@pytest.fixture(scope="module")
def discrete():
  model = hdvae.HDVAE(MEAN, num_variables=(3, 2), num_classes=(4, 4),
                      freebits=0.0, **TINY)
  return model, model.init(jax.random.PRNGKey(0), X)


@pytest.fixture(scope="module")
def normal():
  model = hdvae.HDVAE(MEAN, num_variables=(3, 2), num_classes=(4, 4),
                      latent="normal", freebits=0.0, **TINY)
  return model, model.init(jax.random.PRNGKey(0), X)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["discrete", "normal"])
def test_loss_gradient_reaches_every_parameter_and_matches_differences(
    which, request):
  model, params = request.getfixturevalue(which)
  key = jax.random.PRNGKey(3)
  loss_fn = jax.jit(lambda p: model.loss(p, key, X, estimator=GUMBEL)[0])
  grads = jax.jit(jax.grad(lambda p: model.loss(p, key, X,
                                                estimator=GUMBEL)[0]))(params)
  flat = jax.tree_util.tree_leaves_with_path(grads)
  dead = [jax.tree_util.keystr(k) for k, g in flat
          if float(jnp.max(jnp.abs(g))) == 0]
  assert not dead, dead
  # The same noise and dropout masks for a fixed key: central differences.
  for path in (("pixel_bias",), ("top",), ("latent_1", "query_posterior",
                                           "bias")):
    leaf = params
    for part in path:
      leaf = leaf[part]
    eps = 1e-2
    def bumped(delta, path=path):
      new = jax.tree_util.tree_map(lambda a: a, params)
      node = new
      for part in path[:-1]:
        node[part] = dict(node[part])
        node = node[part]
      node[path[-1]] = node[path[-1]].at[(0,) * leaf.ndim].add(delta)
      return loss_fn(new)
    fd = (bumped(eps) - bumped(-eps)) / (2 * eps)
    g = grads
    for part in path:
      g = g[part]
    np.testing.assert_allclose(fd, g[(0,) * leaf.ndim], rtol=0.05, atol=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["discrete", "normal"])
def test_bounds_shapes_and_orderings(which, request):
  model, params = request.getfixturevalue(which)
  key = jax.random.PRNGKey(5)
  weights = jax.jit(lambda p: model.log_weights(p, key, X, 8))(params)
  assert weights.shape == (8, 4)
  # L_1 at one sample is that sample's log weight (chunk 0's key).
  one = jax.jit(lambda p: model.log_likelihood(p, key, X, num_samples=1,
                                               chunk_size=1))(params)
  np.testing.assert_allclose(
      one, model.log_weights(params, jax.random.fold_in(key, 0), X, 1)[0],
      rtol=1e-5)
  # log mean exp >= mean for the same 8 weights; the chunked bound is it.
  bound = jax.jit(lambda p: model.log_likelihood(
      p, key, X, num_samples=8, chunk_size=8))(params)
  np.testing.assert_allclose(
      bound, jax.nn.logsumexp(model.log_weights(
          params, jax.random.fold_in(key, 0), X, 8), 0) - math.log(8),
      rtol=1e-5)
  kl = jax.jit(lambda p: model.kl(p, key, X))(params)
  assert kl.shape == (4,)
  assert model.sample(params, key, 3).shape == (3, 784)
  names = set(model.extra_evaluations())
  assert names == ({"kl", "relaxation_bias"} if which == "discrete"
                   else {"kl"})


@pytest.mark.slow
def test_relaxation_bias_is_the_common_noise_gap(discrete):
  model, params = discrete
  key = jax.random.PRNGKey(8)
  relaxed, hard = model.relaxed_terms(params, key, X, 0.1)
  gap = model.relaxation_bias(params, key, X)
  np.testing.assert_allclose(gap, hdvae._log_weight(relaxed) -
                             hdvae._log_weight(hard), rtol=1e-5, atol=1e-4)
  # H of the relaxed path's top layer is the hard path's top sample.
  assert float(jnp.max(relaxed.distance)) > 0
  assert float(jnp.max(hard.distance)) == 0


# -- freebits ---------------------------------------------------------------


def test_freebits_per_sample_and_batch():
  kl = jnp.array([0.5, 1.0, 4.0, 6.0])
  np.testing.assert_allclose(hdvae.freebits_kl(kl, 2.0, "sample"),
                             [2.0, 2.0, 4.0, 6.0])
  np.testing.assert_allclose(hdvae.freebits_kl(kl, 0.0, "sample"), kl)
  # batch mean 2.875 > 2: active, the KL itself (and its gradient)
  np.testing.assert_allclose(hdvae.freebits_kl(kl, 2.0, "batch"), kl)
  grad = jax.grad(lambda k: jnp.mean(hdvae.freebits_kl(k, 2.0, "batch")))(kl)
  np.testing.assert_allclose(grad, 0.25 * np.ones(4))
  # batch mean 2.875 < 3: inactive, value max(3, mean) and zero gradient
  np.testing.assert_allclose(jnp.mean(hdvae.freebits_kl(kl, 3.0, "batch")),
                             3.0)
  grad = jax.grad(lambda k: jnp.mean(hdvae.freebits_kl(k, 3.0, "batch")))(kl)
  np.testing.assert_allclose(grad, np.zeros(4))
  grad = jax.grad(lambda k: jnp.sum(hdvae.freebits_kl(k, 2.0, "sample")))(kl)
  np.testing.assert_allclose(grad, [0, 0, 1, 1])


# -- Eqs. 14-16 and the relaxed-ELBO ----------------------------------------


def test_log_mass_forms():
  logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
  hard = jax.nn.one_hot(jnp.array([[0, 3, 1], [2, 2, 0]]), 4)
  z = 0.6 * hard + 0.1  # relaxed (on the simplex), arg max = hard
  log_pi = jax.nn.log_softmax(logits)
  mass = relaxed_objectives.categorical_log_mass
  np.testing.assert_allclose(mass(logits, z, "hard"),
                             jnp.sum(hard * log_pi, (-2, -1)), rtol=1e-6)
  np.testing.assert_allclose(mass(logits, z, "relaxed"),
                             jnp.sum(z * log_pi, (-2, -1)), rtol=1e-6)
  np.testing.assert_allclose(mass(logits, z, "straight_through"),
                             mass(logits, z, "hard"), rtol=1e-6)
  # Gradients in z: none for Eq. 14, log pi for Eq. 15 and straight-through.
  grad_z = lambda form: jax.grad(lambda v: jnp.sum(mass(logits, v, form)))(z)
  np.testing.assert_array_equal(grad_z("hard"), 0.0)
  np.testing.assert_allclose(grad_z("relaxed"), log_pi, rtol=1e-6)
  np.testing.assert_allclose(grad_z("straight_through"), log_pi, rtol=1e-6)
  # Eq. 16, in float64 from its formula; log z shifted by a constant per
  # variable gives the same density.
  tau, pi, zz = 0.5, np.exp(np.asarray(log_pi, np.float64)), np.asarray(z)
  k = 4
  eq16 = (math.lgamma(k) + (k - 1) * np.log(tau) +
          np.sum(np.log(pi) - (tau + 1) * np.log(zz), -1) -
          k * np.log(np.sum(pi * zz ** -tau, -1)))
  np.testing.assert_allclose(
      mass(logits, z, "concrete", tau, jnp.log(z) + 3.0), eq16.sum(-1),
      rtol=1e-4)
  with pytest.raises(ValueError, match="log-space"):
    mass(logits, z, "concrete", tau)


def test_concrete_density_from_the_log_space_sample_at_tau_01_and_k_256():
  """Eq. 16 at tau = 0.1, K = 256 from the sample's own log-space value
  equals the ExpConcrete formula in float64; entries of z underflow to 0,
  so a density rebuilt from z itself would be wrong by far more."""
  logits = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (8, 12, 256))
  sample = concrete.sample_categorical(jax.random.PRNGKey(2), logits, 0.1)
  assert float(jnp.min(sample.relaxed)) == 0.0  # entries underflow
  value, grad = jax.jit(jax.value_and_grad(lambda l: jnp.sum(
      relaxed_objectives.categorical_log_mass(l, sample.relaxed, "concrete",
                                              0.1, sample.latent))))(logits)
  assert np.all(np.isfinite(np.asarray(grad)))
  tau, k = 0.1, 256
  y = np.asarray(sample.latent, np.float64)
  y = y - np.log(np.sum(np.exp(y - y.max(-1, keepdims=True)), -1,
                        keepdims=True)) - y.max(-1, keepdims=True)
  a = np.asarray(jax.nn.log_softmax(logits), np.float64) - tau * y
  a_max = a.max(-1, keepdims=True)
  lse = (a_max + np.log(np.sum(np.exp(a - a_max), -1, keepdims=True)))[..., 0]
  exact = (math.lgamma(k) + (k - 1) * np.log(tau) + np.sum(a, -1) - k * lse
           - np.sum(y, -1))
  np.testing.assert_allclose(float(value), exact.sum(), rtol=1e-4)


def _one_layer_lipschitz():
  model = hdvae.HDVAE(MEAN, num_variables=(2,), num_classes=(4,),
                      decoder="lipschitz", lipschitz_scale=2.0, freebits=0.0,
                      **NO_BLOCKS)
  return model, model.init(jax.random.PRNGKey(0), X)


def test_relaxed_elbo_is_below_the_exact_elbo():
  """Eq. 8 on a one-layer model with a kappa-Lipschitz decoder: the exact
  ELBO by enumerating all 4^2 configurations, the relaxed-ELBO by Monte
  Carlo; per sample it is below f at the hard sample of the same noise."""
  model, params = _one_layer_lipschitz()
  x = X[:2]
  configs = jnp.stack(jnp.meshgrid(jnp.arange(4), jnp.arange(4),
                                   indexing="ij"), -1).reshape(-1, 2)

  def log_weight_and_q(c):
    z = jnp.broadcast_to(jax.nn.one_hot(c, 4), (2, 2, 4))
    path = model._path(params, x, chain.fixed_sampler([z]), _collect)
    terms = model._terms(params, x, path, None, "hard", None, None)
    log_q = jnp.sum(jax.nn.log_softmax(path[0][1]) * z, (-2, -1))
    return hdvae._log_weight(terms), log_q

  log_w, log_q = jax.jit(jax.vmap(log_weight_and_q))(configs)  # [16, 2]
  np.testing.assert_allclose(jnp.sum(jnp.exp(log_q), 0), 1.0, rtol=1e-5)
  exact_elbo = jnp.sum(jnp.exp(log_q) * log_w, 0)  # [2]

  def relaxed_and_hard(key):
    relaxed, hard = model.relaxed_terms(params, key, x, 0.1)
    kappa = model.lipschitz_constant(params)
    bound = relaxed_objectives.relaxed_elbo(hdvae._log_weight(relaxed),
                                            relaxed.distance, kappa)
    lip = (jnp.abs(hdvae._log_weight(relaxed) - hdvae._log_weight(hard)) -
           kappa * relaxed.distance)
    return bound, hdvae._log_weight(hard), lip

  keys = jax.random.split(jax.random.PRNGKey(4), 2000)
  bound, hard, lip = jax.jit(jax.vmap(relaxed_and_hard))(keys)
  assert float(jnp.max(lip)) <= 1e-3  # |f(z~) - f(H)| <= kappa |z~ - H|
  assert np.all(np.asarray(bound) <= np.asarray(hard) + 1e-3)
  mean, se = jnp.mean(bound, 0), jnp.std(bound, 0) / math.sqrt(len(keys))
  assert np.all(np.asarray(mean + 4 * se) < np.asarray(exact_elbo))
  # The hard path of the same noise is an exact sample of q.
  np.testing.assert_allclose(jnp.mean(hard, 0), exact_elbo,
                             atol=float(4 * jnp.max(jnp.std(hard, 0)) /
                                        math.sqrt(len(keys))) + 1e-3)
  fn = model.extra_evaluations()["relaxed_elbo"]
  assert fn(params, keys[0], x, context=None).shape == (2,)


# -- training through the loop, configs -------------------------------------


def _tiny_config(latent):
  config = hdvae_config.get_config(latent)
  config.model.filters = 4
  config.model.num_blocks = 0
  config.model.num_variables = (2,)
  config.model.num_classes = (4,)
  return budgets.tiny(config, steps_per_jit=2, image_samples=0)


@pytest.mark.parametrize("latent", [
    "discrete", pytest.param("normal", marks=pytest.mark.slow)])
def test_two_training_steps_through_the_loop(latent, tmp_path):
  results = training.train_and_evaluate(_tiny_config(latent), str(tmp_path))
  assert results["num_steps"] == 2
  assert -600 < results["test_log_likelihood"] < -50
  assert results["test_kl"] > -1 and results["test_kl_stderr"] > 0
  assert ("test_relaxation_bias" in results) == (latent == "discrete")
  if latent == "discrete":
    assert results["test_relaxation_bias_stderr"] > 0


def test_configs_build_the_paper_rows():
  config = hdvae_config.get_config("discrete,layers=3")
  assert config.model.num_variables == (16, 8, 4)
  assert config.model.num_classes == (256, 64, 16)
  assert config.optim.groups["values"]["learning_rate"] == 2e-2
  config = hdvae_config.get_config("discrete,layers=6,units=98")
  assert sum(config.model.num_variables) == 98
  assert config.model.num_classes == (256,) * 6
  config = hdvae_config.get_config("normal,layers=2,protocol=paper")
  assert config.model.num_variables == (16, 8)
  assert config.data.name == "binarized_mnist" and config.model.filters == 64
  assert not config.optim.groups  # no memory values
  spec = training.estimator_spec.resolve(hdvae_config.get_config("discrete"))
  np.testing.assert_allclose(
      [float(spec.at(s).options["temperature"]) for s in (0, 800, 1600)],
      [0.8, 0.3, 0.1], rtol=1e-6)
  with pytest.raises(ValueError, match="units=1"):
    hdvae_config.get_config("discrete,layers=2,units=1")


@pytest.mark.parametrize("field,value", [
    ("latent", "binary"), ("architecture", "biva"), ("num_variables", ()),
    ("num_variables", (16, 0)), ("num_classes", (200,)), ("filters", 0),
    ("num_blocks", -1), ("dropout", 1.0), ("key_dim", 7), ("log_mass", "soft"),
    ("freebits", -1.0), ("freebits_mode", "layer"), ("decoder", "mlp"),
    ("lipschitz_scale", 0.0), ("bias_temperature", 0.0),
    ("query_channels", -1)])
def test_bad_model_values_fail_naming_the_field(field, value):
  config = hdvae_config.get_config("discrete")
  config.model[field] = value
  with pytest.raises(ValueError, match=field):
    training.validate_config(config)


def test_missing_model_field_fails_naming_it():
  config = hdvae_config.get_config("discrete")
  del config.model["freebits_mode"]
  with pytest.raises(ValueError, match="config.model.freebits_mode is "
                     "required"):
    training.validate_config(config)


def test_section_round_trips_the_config_and_is_the_constructor():
  model = hdvae_config.get_config("discrete").model
  section = hdvae.HDVAESection.of(model)
  values = dataclasses.asdict(section)
  assert values == {name: model[name] for name in values}
  assert set(model) - set(values) == {"name"}  # every other field is read
  # `from_config` passes the section as `HDVAE`'s keyword arguments.
  keywords = inspect.signature(hdvae.HDVAE).parameters
  assert set(values) == {k for k, p in keywords.items()
                         if p.kind == p.KEYWORD_ONLY}
  with pytest.raises(ValueError, match="config.model.dropout"):
    section.replace(dropout=1.0)


def _param_shapes(model):
  shapes = jax.eval_shape(model.net.init, jax.random.PRNGKey(0), X[:1])
  shapes = shapes["params"]
  return {jax.tree_util.keystr(k): v.shape
          for k, v in jax.tree_util.tree_leaves_with_path(shapes)}


def _param_count(model):
  return sum(math.prod(s) for s in _param_shapes(model).values())


def test_query_bottleneck_sizes_the_dense_maps():
  # Two layers of (3, 2) variables, d_1 = d_2 = 8, F = 4 filters.
  wide = _param_shapes(hdvae.HDVAE(MEAN, num_variables=(3, 2),
                                   num_classes=(4, 4), query_channels=0,
                                   **TINY))
  # Ladder posterior reads [h, d]: 7 x 7 x 2F; the prior reads h: 7 x 7 x F.
  assert wide["['latent_0']['query_posterior']['kernel']"] == (49 * 8, 24)
  assert wide["['latent_1']['query_prior']['kernel']"] == (49 * 4, 16)
  assert wide["['embed_0']['kernel']"] == (24, 49 * 4)
  assert not any("query_proj" in k or "embed_0_out" in k for k in wide)
  thin = _param_shapes(hdvae.HDVAE(MEAN, num_variables=(3, 2),
                                   num_classes=(4, 4), query_channels=3,
                                   **TINY))
  assert thin["['query_proj_posterior_0']['kernel']"] == (1, 1, 8, 3)
  assert thin["['query_proj_prior_1']['kernel']"] == (1, 1, 4, 3)
  assert thin["['latent_0']['query_posterior']['kernel']"] == (49 * 3, 24)
  assert thin["['embed_0']['kernel']"] == (24, 49 * 3)
  assert thin["['embed_0_out']['kernel']"] == (1, 1, 3, 4)


def test_bottleneck_keeps_discrete_layers_near_the_gaussian_size():
  # The benchmark's 6 x 16 model (K = 16^2) at the quick widths: without the
  # bottleneck the query nets and embeddings make the discrete model ~4x
  # the Gaussian one; with it the excess over the Gaussian model (the
  # memories and the N d_1 / N d_2 sides of the dense maps) is 4x smaller.
  def count(latent, channels):
    config = hdvae_config.get_config(f"{latent},layers=6")
    config.model.num_variables, config.model.num_classes = (16,) * 6, (256,) * 6
    config.model.query_channels = channels
    m = config.model
    return _param_count(hdvae.HDVAE(
        MEAN, num_variables=m.num_variables, num_classes=m.num_classes,
        latent=latent, filters=m.filters, num_blocks=m.num_blocks,
        query_channels=channels))
  wide = count("discrete", 0) - count("normal", 0)
  thin = count("discrete", 8) - count("normal", 8)
  assert wide > 2.5 * count("normal", 0)
  assert thin < wide / 4
  values = 6 * 16 * 256 * 8
  assert values < thin < 5 * values


def test_discrete_needs_categorical_estimator():
  config = hdvae_config.get_config("discrete")
  config.estimator.distribution = "bernoulli"
  with pytest.raises(ValueError, match="config.estimator.distribution"):
    training.validate_config(config)
  config = hdvae_config.get_config("discrete,layers=2")
  config.model.decoder = "lipschitz"
  with pytest.raises(ValueError, match="lipschitz"):
    training.validate_config(config)


@pytest.mark.parametrize("name,log_mass,accepted", [
    ("arm", "relaxed", "gumbel_softmax, indecater, muprop"),  # binary only
    ("st_gumbel_softmax", "concrete", "it accepts gumbel_softmax."),  # Eq. 16
])
def test_the_categorical_part_refuses_estimators_before_the_run(
    name, log_mass, accepted):
  """The part's declared estimators, checked by the registry in
  `validate_config`, naming the estimator and what the model accepts."""
  config = hdvae_config.get_config("discrete")
  config.estimator.name = name
  config.model.log_mass = log_mass
  with pytest.raises(ValueError, match="not accepted by the 'hdvae'") as error:
    training.validate_config(config)
  assert f"config.estimator.name={name!r}" in str(error.value)
  assert accepted in str(error.value)


# -- residual blocks --------------------------------------------------------


def test_weight_norm_gives_each_filter_the_norm_g():
  v = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 2, 5))
  g = jnp.arange(1.0, 6.0)
  w = residual.weight_normalize(v, g)
  np.testing.assert_allclose(jnp.sqrt(jnp.sum(w * w, (0, 1, 2))), g,
                             rtol=1e-5)


@pytest.mark.slow
def test_residual_block_is_gated_and_batch_agnostic():
  h = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 5, 5, 4))
  block = residual.ResidualBlock(dropout_rate=0.5, squeeze_excitation=2)
  params = block.init(jax.random.PRNGKey(2), h[0])
  out = jax.jit(block.apply)(params, h)
  assert out.shape == h.shape
  np.testing.assert_allclose(out[1], block.apply(params, h[1]), rtol=1e-5,
                             atol=1e-6)
  # r(h) = a * sigmoid(b) reweighted: zero conv_2 kernels and bias give h.
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  params_id = {"params": {**params["params"], "conv_2": zero["params"]["conv_2"]}}
  np.testing.assert_allclose(block.apply(params_id, h), h, atol=1e-6)
  noisy = block.apply(params, h, deterministic=False,
                      rngs={"dropout": jax.random.PRNGKey(3)})
  assert float(jnp.max(jnp.abs(noisy - out))) > 1e-4
