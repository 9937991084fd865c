"""Evaluation-side tests of the convolutional DVAE++ (`models.dvaepp_conv`).

Vahdat et al. (2018), Sec. 6: the RBM prior's log Z for the final bound
(exact enumeration or AIS, and which one the configs of Table 3 resolve
to: AIS for CIFAR-10, exact for MNIST), the hierarchical global posterior
q(z | x) = prod_g q(z_g | x, zeta_<g) with 1, 2 or 4 groups (Sec. 6.2),
every parameter's gradient of the training loss, and the local part of the
discrete model's importance weight, log p(x | zeta, h) + log p(h | zeta) -
log q(h | x, zeta), recomputed by hand from the sub-networks' outputs.

Tiny models (8 x 8 binary images, 8 global units so that each RBM half of
4 units is enumerable, one local group, a factorial Bernoulli decoder, no
squeeze-and-excitation) with fixed keys. Compilation dominates the time:
two models are initialised once per module (fixtures), and each test jits
at most one function of them.
"""

import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dvaepp_conv as config_lib
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi.models import dvaepp_conv
from discrete_vi.models import dvaepp_conv_net as net_lib
from discrete_vi.models import registry
import dvaepp_conv_test as base

SHAPE = base.SHAPE  # (8, 8, 1)
NUM_GLOBAL = 8  # RBM halves of 4: log Z by enumerating 2^8 configurations
TINY = dict(num_global=NUM_GLOBAL, num_local_groups=1, local_channels=2,
            local_level=1, channels=8, num_blocks=1, global_hidden=16,
            squeeze_excitation=None, decoder="factorial")
AIS_CHAINS, AIS_TEMPERATURES = 512, 500
ESTIMATOR = "overlapping_exponential"  # the "mixed" row's


SPEC = data_lib.DataSpec(base.binary_data(64).mean(0), SHAPE, "binary")


def make_tiny_config(global_groups: int):
  """The "mixed" row (RBM + normal local) at the tiny sizes, KL weight 1,
  log Z by AIS."""
  config = config_lib.get_config("mixed")
  config.model.update(global_groups=global_groups, **TINY)
  config.train.kl_warmup_steps = 0  # KL weight 1: every parameter matters
  config.model.rbm.update(gibbs_chains=8, gibbs_sweeps=2, log_z="ais",
                          ais_num_chains=AIS_CHAINS,
                          ais_num_temperatures=AIS_TEMPERATURES)
  return config


def build_tiny_model(global_groups: int) -> dvaepp_conv.DVAEPPConv:
  """A tiny model through the registry (config -> constructor)."""
  return registry.build_model(make_tiny_config(global_groups), SPEC)


def trace_param_shapes(model, key):
  """The parameters' `ShapeDtypeStruct`s: `model.init` traced by
  `jax.eval_shape`, neither compiled nor run."""
  x = np.zeros((1, model.data_dim), np.float32)
  return jax.eval_shape(lambda k: model.init(k, x), key)


def fill_random_params(model, seed: int, scale: float = 0.3) -> dict:
  """Parameters of `model`'s shapes, every entry ~ N(0, scale^2), without
  compiling the initialiser (numpy draws: no XLA program per shape)."""
  shapes = trace_param_shapes(model, jax.random.PRNGKey(seed))
  rng = np.random.RandomState(seed)
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(scale * rng.randn(*s.shape), s.dtype), shapes)


@pytest.fixture(scope="module")
def hier_model():
  """The tiny model with 4 hierarchical global groups and its initial
  parameters (built from a config with `model.rbm.log_z = "ais"`)."""
  model = build_tiny_model(4)
  return model, model.init(jax.random.PRNGKey(0), base.binary_data(2))


@pytest.fixture(scope="module")
def flat_model():
  """The tiny model with one factorial global group and its parameters."""
  model = build_tiny_model(1)
  return model, model.init(jax.random.PRNGKey(1), base.binary_data(2))


# -- 1. log Z of the RBM prior -------------------------------------------------


def test_ais_log_z_of_the_conv_model_matches_enumeration(hier_model):
  """`prepare_evaluation` with log_z="ais" runs AIS, within 4 standard
  errors of the enumerated log Z of a random, coupled RBM."""
  model, params = hier_model
  prior = model.rbm_prior
  assert (prior.log_z, prior.ais_num_chains, prior.ais_num_temperatures) == (
      "ais", AIS_CHAINS, AIS_TEMPERATURES)
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
  half = NUM_GLOBAL // 2
  rbm_params = {"a1": jax.random.normal(k1, (half,)),
                "a2": jax.random.normal(k2, (half,)),
                "w": 2.0 * jax.random.normal(k3, (half, half))}
  params = {**params, "rbm": rbm_params}
  context, info = model.prepare_evaluation(params, jax.random.PRNGKey(4))
  exact = base.rbm_log_z_by_hand(
      (rbm_params["a1"], rbm_params["a2"], rbm_params["w"]))
  uncoupled = float(np.sum(np.logaddexp(0.0, np.concatenate(
      [rbm_params["a1"], rbm_params["a2"]]))))
  assert info["log_z_method"] == "ais"
  assert np.isclose(float(context.value), info["log_z"])
  assert np.isclose(float(context.stderr), info["log_z_stderr"])
  # Not trivial: the coupling moves log Z by nats, far beyond the tolerance.
  assert abs(exact - uncoupled) > 1.0, (exact, uncoupled)
  # An AIS estimate has a positive standard error (0 would mean exact).
  # 512 chains x 500 temperatures on 4 x 4 units give stderr ~7e-3 nats;
  # the 4-sigma band (floor 0.01 nats, for the delta method's own error at
  # a tiny stderr) is still ~200 times smaller than the coupling's 6 nats.
  assert 0.0 < info["log_z_stderr"] < 0.02, info
  tolerance = max(4.0 * info["log_z_stderr"], 0.01)
  assert abs(info["log_z"] - exact) < tolerance, (info, exact)


def make_spec_of(config) -> data_lib.DataSpec:
  """A `DataSpec` of the config's data set (mean 0.5 or 127.5)."""
  source = data_lib.DATASETS[config.data.name]
  shape = tuple(source.image_shape)
  value_type = source.value_type
  mean = 0.5 if value_type == "binary" else 127.5
  return data_lib.DataSpec(np.full(int(np.prod(shape)), mean, np.float32),
                           shape, value_type)


def make_zero_params(model) -> dict:
  """All-zero parameters of a (paper-size) model, without compiling its
  initialiser: only the RBM's are used by `prepare_evaluation`."""
  shapes = trace_param_shapes(model, jax.random.PRNGKey(0))
  return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def test_cifar10_paper_config_resolves_log_z_to_ais():
  """CIFAR-10: halves of 64 units, so "auto" is AIS with 1024 chains x 1000
  temperatures; the built model's `prepare_evaluation` runs it (zero RBM:
  log Z = 128 log 2 exactly, whatever the chains do). That AIS costs 30 s
  at the tests' XLA optimisation level, so it runs here with 2 chains x 2
  temperatures once the paper's values are checked."""
  config = config_lib.get_config("mixed,protocol=paper,data=cifar10")
  assert config.model.rbm.log_z == "auto"
  assert config.eval.final_num_samples == 4000
  assert (config.model.rbm.ais_num_chains,
          config.model.rbm.ais_num_temperatures) == (1024, 1000)
  config.model.rbm.ais_num_chains = config.model.rbm.ais_num_temperatures = 2
  model = registry.build_model(config, make_spec_of(config))
  assert model.num_global == 128
  assert model.rbm_prior.log_z_method_for((64, 64)) == "ais"
  params = make_zero_params(model)  # the RBM's too (as at init)
  _, info = model.prepare_evaluation(params, jax.random.PRNGKey(5))
  assert info["log_z_method"] == "ais"
  np.testing.assert_allclose(info["log_z"], 128 * math.log(2), rtol=1e-5)


def test_mnist_paper_config_resolves_log_z_to_exact():
  config = config_lib.get_config("mixed,protocol=paper")
  assert config.eval.final_num_samples == 4000
  assert config.model.rbm.log_z == "auto" and config.model.num_global == 16
  model = registry.build_model(config, make_spec_of(config))
  assert model.rbm_prior.log_z_method_for((8, 8)) == "exact"
  _, info = model.prepare_evaluation(make_zero_params(model),
                                     jax.random.PRNGKey(5))
  assert info["log_z_method"] == "exact" and info["log_z_stderr"] == 0.0
  np.testing.assert_allclose(info["log_z"], 16 * math.log(2), rtol=1e-6)


# -- 2. hierarchical global groups (Sec. 6.2) ----------------------------------


def group_slices(model) -> list:
  """The columns of each global group in z `[B, num_global]`."""
  size = model.num_global // model.global_groups
  return [slice(g * size, (g + 1) * size) for g in range(model.global_groups)]


def global_posterior_parts(model, params, key, features, estimator):
  r"""What the global inference path does with each group's logits.

  Returns:
    `(jacobian, z, log_q, hand_logits)`: jacobian `[B, n, B, n]` of the
    logits that `global_relaxed` gets from the heads with respect to shifts
    added to those logits (a shift of group k's logits moves \zeta_k, so
    group g's logits move iff group g is conditioned on \zeta_k); z and
    log q(z | x) from `global_hard`; and the heads' logits of each group
    at z_<g of that z, `[B, n]`.
  """
  slices = group_slices(model)

  def relaxed_logits(shifts):
    raw = []
    def apply(p, method, *args):  # the model's apply, group logits shifted
      out = model.apply(p, method, *args)
      if method != "global_params":
        return out
      raw.append(out)
      return out + shifts[:, slices[args[0]]]
    spy = copy.copy(model)
    spy.apply = apply
    spy.global_relaxed(params, key, features, estimator)
    assert len(raw) == model.global_groups
    return jnp.concatenate(raw, -1)

  jacobian = jax.jacrev(relaxed_logits)(jnp.zeros(
      (features.shape[0], model.num_global)))
  z, log_q = model.global_hard(params, key, features)
  hand_logits = jnp.concatenate([model.apply(
      params, "global_params", g, features, z[:, :s.start] if g else None)
                                 for g, s in enumerate(slices)], -1)
  return jacobian, z, log_q, hand_logits


@pytest.mark.parametrize("global_groups", [1, 2, 4])
def test_global_group_g_is_conditioned_on_exactly_the_groups_before_it(
    global_groups):
  """q(z_g | x, zeta_<g): group g's logits move with zeta_k for every unit
  of every k < g, never with k >= g nor another example's; and the
  evaluation path's log q(z | x) is sum_g log q(z_g | x, z_<g) at the z it
  returns (Bernoulli log-masses by hand)."""
  model = build_tiny_model(global_groups)
  key = jax.random.PRNGKey(10 + global_groups)
  params = fill_random_params(model, global_groups)  # heads' outputs O(1)
  batch = 6
  features = np.random.RandomState(global_groups).randn(
      batch, params["global_heads_0"]["Dense_0"]["kernel"].shape[0]).astype(
          np.float32)
  estimator = estimators.make(ESTIMATOR)
  jacobian, z, log_q, logits = jax.jit(
      lambda p, f: global_posterior_parts(model, p, key, f, estimator))(
          params, features)
  jacobian = np.abs(np.asarray(jacobian))  # [b, out unit, b', in unit]
  same_example = np.einsum("bibj->ij", jacobian)
  assert np.all(jacobian.sum((1, 3)) * (1 - np.eye(batch)) == 0.0)
  slices = group_slices(model)
  for g, out in enumerate(slices):
    for k, src in enumerate(slices):
      block = same_example[out, src]
      if k < g:
        assert np.all(block > 0.0), (g, k, block)
      else:
        assert np.all(block == 0.0), (g, k, block)

  z, logits = np.asarray(z, np.float64), np.asarray(logits, np.float64)
  assert set(np.unique(z)) == {0.0, 1.0}
  by_hand = np.sum(z * logits - np.logaddexp(0.0, logits), -1)
  np.testing.assert_allclose(log_q, by_hand, rtol=1e-5, atol=1e-5)


# `-m slow` (the default run's 10-minute budget): the groups' conditioning
# is checked above and 2 groups train in `dvaepp_conv_rows_test`.
@pytest.mark.parametrize("fixture", [
    pytest.param("flat_model", marks=pytest.mark.slow),
    pytest.param("hier_model", marks=pytest.mark.slow)])
def test_loss_gives_every_parameter_a_gradient(fixture, request):
  """1 and 4 global groups: one jitted value_and_grad of `model.loss` at KL
  weight 1; finite, and no parameter array has an all-zero gradient."""
  model, params = request.getfixturevalue(fixture)
  x = base.binary_data(8)
  key = jax.random.PRNGKey(20)
  estimator = estimators.make(ESTIMATOR)
  state = model.init_state(key, params, x, estimator)
  (loss, aux), grads = jax.jit(jax.value_and_grad(
      lambda p: model.loss(p, key, x, step=0, estimator=estimator,
                           state=state), has_aux=True))(params)
  assert float(aux.diagnostics["kl_weight"]) == 1.0
  assert np.isfinite(float(loss))
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  assert len(flat) == len(jax.tree_util.tree_leaves(params))
  for path, grad in flat:
    name = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(grad)), name
    assert np.any(np.asarray(grad) != 0.0), name


# -- 3. the local part of the importance weight, by hand -----------------------


def local_weight_parts(model, params, key, images, z):
  """`model.local_log_weight` and the sub-networks' outputs that define it
  (one local group): the h it draws is rebuilt from the documented keys
  (`scan_groups`: group j uses fold_in(key, j); `normal.sample`: h = mean +
  exp(log_std) eps, eps ~ N(0, I) from that key)."""
  _, local = model.apply(params, "encode", images)
  ours = model.local_log_weight(params, key, images, z, local)
  group = model.group_params(params, 0)
  state = model.apply(params, "top_down_init", z)
  prior = model.apply_group(group, "prior", state)
  posterior = model.apply_group(group, "posterior", state, local)
  eps = jax.random.normal(jax.random.fold_in(key, 0), posterior.shape[:-1])
  log_std_q = jnp.clip(posterior[..., 1], *net_lib.LOG_SCALE_CLIP)
  h = posterior[..., 0] + jnp.exp(log_std_q) * eps
  state = model.apply_group(group, "absorb", state, h)
  (outputs, x, new), = model.apply(params, "data_conditionals", state,
                                   images)
  return ours, dict(prior=prior, posterior=posterior, h=h,
                    logits=outputs[..., 0], x=x, new=new)


def normal_log_density(x, mean, log_std) -> np.ndarray:
  """log N(x; mean, exp(log_std)^2), written out, float64, per element."""
  x, mean, log_std = (np.asarray(a, np.float64) for a in (x, mean, log_std))
  return (-0.5 * np.log(2 * np.pi) - log_std -
          0.5 * ((x - mean) / np.exp(log_std))**2)


def split_clipped(outputs):
  """(mean, log std clipped to `LOG_SCALE_CLIP`) of `[..., 2]` outputs."""
  outputs = np.asarray(outputs, np.float64)
  return outputs[..., 0], np.clip(outputs[..., 1], *net_lib.LOG_SCALE_CLIP)


def scale_heads(params, factor: float) -> dict:
  """The local groups' and the data head's kernels times `factor` (their
  near-zero init makes prior = posterior = N(0, 1) and x independent of
  h, which would hide mix-ups)."""
  groups = dict(params[dvaepp_conv.LOCAL_GROUPS_KEY])
  for name in ("prior_head", "post_head"):
    groups[name] = jax.tree_util.tree_map(lambda a: factor * a, groups[name])
  head = jax.tree_util.tree_map(lambda a: factor * a, params["data_heads_0"])
  return {**params, dvaepp_conv.LOCAL_GROUPS_KEY: groups,
          "data_heads_0": head}


def test_local_log_weight_matches_the_densities_written_out(hier_model):
  """log p(x | zeta, h) + log p(h | zeta) - log q(h | x, zeta) at the h ~ q
  that `local_log_weight` draws = the Bernoulli and normal log densities
  written out in float64 from the sub-networks' outputs (so a wrong local
  or pixel density, h drawn from the prior, or swapped prior and posterior
  would not cancel as in the brute-force test, which uses
  `local_log_weight` on both sides)."""
  model, params = hier_model
  params = scale_heads(params, 30.0)
  n = 8
  x = base.binary_data(n, seed=3)
  z = jnp.asarray(np.random.RandomState(4).rand(n, NUM_GLOBAL) < 0.5,
                  jnp.float32)
  key = jax.random.PRNGKey(30)
  images = model.images(x)
  ours, parts = jax.jit(lambda p: local_weight_parts(
      model, p, key, images, z))(params)

  mean_p, log_std_p = split_clipped(parts["prior"])
  mean_q, log_std_q = split_clipped(parts["posterior"])
  h = np.asarray(parts["h"], np.float64)
  local = np.sum((normal_log_density(h, mean_p, log_std_p) -
                  normal_log_density(h, mean_q, log_std_q)).reshape(n, -1),
                 -1)
  np.testing.assert_array_equal(parts["new"], 1.0)  # factorial: every pixel
  logits = np.asarray(parts["logits"], np.float64)
  pixels = np.asarray(parts["x"], np.float64)
  np.testing.assert_array_equal(pixels, images)
  data = np.sum((pixels * logits - np.logaddexp(0.0, logits)).reshape(n, -1),
                -1)
  # Not trivial: prior and posterior differ, the local term is nats.
  assert np.abs(mean_p - mean_q).max() > 0.3
  assert np.abs(log_std_p - log_std_q).max() > 0.3
  assert np.mean(np.abs(local)) > 1.0, local
  # float32 network outputs summed over 32 latents and 64 pixels: ~1e-6
  # relative; 1e-4 leaves room for reordered sums.
  np.testing.assert_allclose(ours, data + local, rtol=1e-4)
