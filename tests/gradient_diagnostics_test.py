"""Tests of discrete_vi/training/gradient_diagnostics.py: the moments, the
group statistics and the bias against a reference, checked against exact
values (a Gaussian toy gradient, and REINFORCE / Gumbel-softmax on an
enumerable categorical problem) within Monte Carlo error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.training import gradient_diagnostics as gd
import stats

PARAMS = {"encoders_0": {"kernel": jnp.zeros((2, 3))},
          "encoders_1": {"kernel": jnp.zeros(4)},
          "prior_logits": jnp.zeros(5)}
MU = jax.tree_util.tree_map(lambda p: jnp.linspace(-1.0, 2.0, p.size)
                            .reshape(p.shape), PARAMS)
SIGMA = jax.tree_util.tree_map(lambda p: jnp.linspace(0.5, 1.5, p.size)
                               .reshape(p.shape), PARAMS)


def gaussian_grad(params, key):
  """g = MU + SIGMA * eps, eps ~ N(0, I): known mean and variance."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(key, len(leaves))
  eps = treedef.unflatten([jax.random.normal(k, p.shape)
                           for k, p in zip(keys, leaves)])
  return jax.tree_util.tree_map(lambda m, s, e: m + s * e, MU, SIGMA, eps)


def _sum_sq(tree):
  return float(sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(tree)))


def test_default_groups_strip_the_layer_index():
  labels = gd.group_labels(PARAMS)
  assert labels["encoders_0"]["kernel"] == "encoders"
  assert labels["encoders_1"]["kernel"] == "encoders"
  assert gd.group_names(labels) == ["encoders", "prior_logits", "all"]


def test_named_groups_and_their_errors():
  labels = gd.group_labels(PARAMS, ("encoders_1",))
  assert labels["encoders_1"]["kernel"] == "encoders_1"
  assert labels["prior_logits"] == "other"
  with pytest.raises(ValueError, match=r"\['decoder'\] match no parameter"):
    gd.group_labels(PARAMS, ("decoder",))
  with pytest.raises(ValueError, match="several diagnostic groups"):
    gd.group_labels({"a": {"b": jnp.zeros(1)}}, ("a", "b"))


def test_welford_moments_equal_the_two_pass_ones():
  keys = jax.random.split(jax.random.PRNGKey(0), 50)
  moments = jax.jit(lambda k: gd.gradient_moments(gaussian_grad, PARAMS, k)
                    )(keys)
  draws = jax.vmap(lambda k: gaussian_grad(PARAMS, k))(keys)
  for got, want in [(moments.mean, jax.tree_util.tree_map(
      lambda d: d.mean(0), draws)), (moments.variance, jax.tree_util.tree_map(
          lambda d: d.var(0, ddof=1), draws))]:
    for a, b in zip(jax.tree_util.tree_leaves(got),
                    jax.tree_util.tree_leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_statistics_match_the_exact_values():
  """variance within 4 of its standard errors (sqrt(2 / (M - 1)) sigma^2
  per coordinate), the mean's norm within 4 of the mean's standard error."""
  num_draws = 4000
  labels = gd.group_labels(PARAMS)
  out = jax.jit(lambda k: gd.measure(gaussian_grad, PARAMS, k,
                                     num_draws=num_draws, labels=labels)
                )(jax.random.PRNGKey(1))
  exact_variance = _sum_sq(SIGMA)
  variance_se = np.sqrt(2.0 / (num_draws - 1) *
                        sum(float(jnp.sum(s**4)) for s in
                            jax.tree_util.tree_leaves(SIGMA)))
  assert abs(float(out["grad/all/variance"]) - exact_variance) < (
      4 * variance_se)
  norm = np.sqrt(_sum_sq(MU))
  norm_se = np.sqrt(exact_variance / num_draws)
  assert abs(float(out["grad/all/grad_norm"]) - norm) < 4 * norm_se
  np.testing.assert_allclose(out["grad/all/snr"],
                             out["grad/all/grad_norm"] /
                             np.sqrt(out["grad/all/variance"]), rtol=1e-6)
  prior = float(jnp.sum(SIGMA["prior_logits"]**2))
  assert abs(float(out["grad/prior_logits/variance"]) - prior) < 0.1 * prior
  assert set(out) == {f"grad/{g}/{s}" for g in ("encoders", "prior_logits",
                                                "all")
                      for s in gd.STATISTICS}


def test_bias_is_at_its_floor_without_bias_and_found_with_it():
  labels = gd.group_labels(PARAMS)
  shift = 0.3
  shifted = lambda p, k: jax.tree_util.tree_map(lambda g: g + shift,
                                                gaussian_grad(p, k))
  ratios = []
  for seed in range(8):
    out = gd.measure(gaussian_grad, PARAMS, jax.random.PRNGKey(seed),
                     num_draws=200, labels=labels,
                     reference_fn=gaussian_grad, reference_draws=200)
    ratios.append(float(out["grad/all/bias_norm"] /
                        out["grad/all/bias_floor"]) ** 2)
  # E[bias_norm^2] = floor^2 without bias: the mean of 8 chi^2_15 / 15.
  assert 0.6 < np.mean(ratios) < 1.5
  out = gd.measure(shifted, PARAMS, jax.random.PRNGKey(9), num_draws=2000,
                   labels=labels, reference_fn=gaussian_grad,
                   reference_draws=2000)
  exact = shift * np.sqrt(15)
  assert abs(float(out["grad/all/bias_norm"]) - exact) < (
      4 * float(out["grad/all/bias_floor"]))


def test_needs_two_draws():
  with pytest.raises(ValueError, match="at least 2 draws"):
    gd.gradient_moments(gaussian_grad, PARAMS,
                        jax.random.split(jax.random.PRNGKey(0), 1))


# --------------------------------------------- an enumerable estimator problem

LOGITS = stats.SMALL_LOGITS["categorical"]  # [2, 2, 3]
F = stats.categorical_objective(stats.CATEGORICAL_W)


def estimator_grad(name, **options):
  est = estimators.make(name, distribution="categorical", **options)

  def grad_fn(params, key):
    return jax.grad(lambda p: -jnp.sum(est.estimate(key, p["logits"], F)[0])
                    )(params)
  return grad_fn


def exact_reinforce_variance(logits):
  """sum over coordinates of Var[f(z) d log q(z) / dl] by enumeration."""
  z = stats.all_one_hot(*logits.shape[-2:])[:, None]  # [K^N, 1, N, K]
  z = jnp.broadcast_to(z, (z.shape[0],) + logits.shape)
  probs = jax.nn.softmax(logits, -1)
  q = jnp.prod(jnp.sum(z * probs, -1), -1)  # [K^N, B]
  g = F(z)[..., None, None] * (z - probs)  # [K^N, B, N, K]
  mean = jnp.sum(q[..., None, None] * g, 0)
  second = jnp.sum(q[..., None, None] * g**2, 0)
  return float(jnp.sum(second - mean**2))


def test_logged_variance_of_reinforce_is_the_exact_one():
  num_draws = 20_000
  params = {"logits": LOGITS}
  labels = gd.group_labels(params)
  out = jax.jit(lambda k: gd.measure(estimator_grad("reinforce"), params, k,
                                     num_draws=num_draws, labels=labels)
                )(jax.random.PRNGKey(0))
  exact = exact_reinforce_variance(LOGITS)
  # The sample variance's own spread, from 20 batches of draws.
  draws = stats.gradient_draws(stats.categorical_estimate_fn("reinforce", F),
                               LOGITS, num_draws)
  per_batch = [np.sum(np.var(d, 0, ddof=1))
               for d in np.split(draws, 20)]
  se = np.std(per_batch, ddof=1) / np.sqrt(20)
  assert abs(float(out["grad/logits/variance"]) - exact) < 4 * se


def test_logged_bias_of_gumbel_softmax_against_the_exact_gradient():
  """Against `enumerate` (the exact gradient, no variance): bias_norm is the
  distance of Gumbel-softmax's mean gradient from the exact one, found
  within Monte Carlo error of a 100k-draw measurement."""
  params = {"logits": LOGITS}
  labels = gd.group_labels(params)
  out = jax.jit(lambda k: gd.measure(
      estimator_grad("gumbel_softmax", temperature=1.0), params, k,
      num_draws=5000, labels=labels,
      reference_fn=estimator_grad("enumerate"), reference_draws=2)
  )(jax.random.PRNGKey(0))
  draws = stats.gradient_draws(
      stats.categorical_estimate_fn("gumbel_softmax", F, temperature=1.0),
      LOGITS, 100_000)
  exact = stats.jitted_exact_gradient(LOGITS, F, "categorical")
  bias = np.linalg.norm(draws.mean(0) - np.asarray(exact))
  assert bias > 5 * float(out["grad/all/bias_floor"])  # a resolved bias
  assert abs(float(out["grad/all/bias_norm"]) - bias) < (
      4 * float(out["grad/all/bias_floor"]))


# ------------------------------------------------------------------ config


def _config(**diagnostics):
  from configs import sbn as sbn_config  # pylint: disable=g-import-not-at-top
  config = sbn_config.get_config("linear")
  for field, value in diagnostics.items():
    config.diagnostics[field] = value
  return config


@pytest.mark.parametrize("field,value,match", [
    ("every_steps", -1, "config.diagnostics.every_steps"),
    ("num_draws", 1, "config.diagnostics.num_draws"),
    ("reference", "gumbel_softmax", "config.diagnostics.reference"),
    ("reference", "relax", "config.diagnostics.reference"),
    ("reference", "unordered_set", "accepts"),  # categorical only: not SBN's
    ("groups", ("encoders", 3), "config.diagnostics.groups"),
])
def test_bad_diagnostics_values_are_named(field, value, match):
  from discrete_vi.training import validation  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=match):
    validation.validate_config(_config(**{field: value}))


def test_reference_options_are_checked():
  from discrete_vi.training import validation  # pylint: disable=g-import-not-at-top
  validation.validate_config(_config(reference="rloo",
                                     reference_num_samples=8,
                                     every_steps=10))
  with pytest.raises(ValueError, match="takes no num_samples"):
    validation.validate_config(_config(reference="disarm",
                                       reference_num_samples=8))
  with pytest.raises(ValueError, match="reference_draws"):
    validation.validate_config(_config(reference="rloo", reference_draws=1))


# ------------------------------------------------------- in the training loop


def test_the_loop_logs_diagnostics_without_changing_training(tmp_path):
  """Same seed, with and without diagnostics: the same training metrics and
  results; with them, every measured step logs each group's statistics,
  the bias against RLOO and the cost, and gradients.png is drawn; a
  finished run is the same run whatever its diagnostics settings."""
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import loop  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import writers  # pylint: disable=g-import-not-at-top

  def run(workdir, every):
    config = test_config.get_config("gumbel_softmax")
    config.diagnostics.every_steps = every
    config.diagnostics.num_draws = 4
    config.diagnostics.reference = "rloo"
    config.diagnostics.reference_num_samples = 4
    config.diagnostics.reference_draws = 3
    results = loop.train_and_evaluate(config, str(workdir))
    return config, results, writers.read_metrics(str(workdir))

  _, plain, plain_records = run(tmp_path / "plain", 0)
  config, measured, records = run(tmp_path / "measured", 2)
  assert measured == plain | {"wall_time_s": measured["wall_time_s"]}
  train = lambda rs: [(r["step"], r["train_objective"]) for r in rs
                      if "train_objective" in r]
  assert train(records) == train(plain_records)
  measured_steps = [r["step"] for r in records if "grad/all/variance" in r]
  assert measured_steps == [2, 4, 6]
  last = [r for r in records if "grad/all/variance" in r][-1]
  for group in ("encoders", "decoders", "prior_logits", "all"):
    for stat in gd.STATISTICS + gd.BIAS_STATISTICS:
      assert np.isfinite(last[f"grad/{group}/{stat}"]), (group, stat)
  assert last["grad/all/variance"] > 0 and last["grad/cost_steps"] > 0
  assert (tmp_path / "measured" / "gradients.png").exists()
  assert not (tmp_path / "plain" / "gradients.png").exists()
  config.diagnostics.every_steps = 0
  assert loop.finished_results(config, str(tmp_path / "measured")) == measured
