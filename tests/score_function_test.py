"""Tests of the score-function estimators: reinforce (all baselines), rloo,
vimco. Unbiasedness against exact enumeration, variance orderings, errors
specific to them, and stateful reinforce under jit / vmap / grad / scan.
(The contract with default options, and bad option values, are
tests/registry_test.py's and tests/estimator_options_test.py's.)"""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.estimators import exact
from discrete_vi.estimators import score_function as sf
import stats

NUM_DRAWS = 100_000

LOGITS = stats.SMALL_LOGITS
W_BERN = jnp.array([1.0, -2.0, 0.5])
W_CAT = jnp.array([[1.0, -0.5, 2.0], [0.3, -1.5, 0.7]])


def objective(distribution, offset=0.0):
  """A nonlinear per-example objective with interactions between units."""
  if distribution == "bernoulli":
    def f(z):  # [..., 3] -> [...]
      return (jnp.sum(W_BERN * z, -1) + 2.0 * z[..., 0] * z[..., 1] -
              1.5 * z[..., 1] * z[..., 2] * z[..., 0] + 0.7 *
              jnp.square(z[..., 2] - z[..., 1] - 0.3) + offset)
  else:
    def f(z):  # [..., 2, 3] -> [...]
      same = jnp.sum(z[..., 0, :] * z[..., 1, :], -1)
      return (jnp.sum(W_CAT * z, (-2, -1)) + 1.5 * same -
              2.0 * z[..., 0, 2] * z[..., 1, 0] + offset)
  return f


def additive_units(distribution):
  """Per-unit terms h_d(z_d), `[..., D]`, of an additive objective."""
  if distribution == "bernoulli":
    return lambda z: W_BERN * z + jnp.square(z - 0.3)
  return lambda z: jnp.sum(W_CAT * z, -1) + 2.0 * jnp.square(z[..., 1])


def check_unbiased(estimate, distribution, target_f, scale=1.0, seed=0,
                   num_draws=NUM_DRAWS):
  logits = LOGITS[distribution]
  draws = stats.gradient_draws(estimate, logits, num_draws, seed=seed,
                               chunk=num_draws)
  target = stats.exact_gradient(logits, target_f, distribution)
  stats.assert_unbiased(draws * np.asarray(scale), target)


def warm_state(distribution, f, baseline, steps=4, decay=0.9):
  """A non-trivial state: a few reinforce updates on a large batch."""
  logits = jnp.broadcast_to(LOGITS[distribution],
                            (16,) + LOGITS[distribution].shape)
  state = sf.init_reinforce(None, logits, distribution=distribution,
                            baseline=baseline)
  for i in range(steps):
    _, aux = sf.reinforce(jax.random.PRNGKey(100 + i), logits, f, state=state,
                          distribution=distribution, baseline=baseline,
                          decay=decay)
    state = aux.state
  return state


DISTRIBUTIONS = ["bernoulli", "categorical"]


# ----------------------------------------------------------------- reinforce


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("baseline,greedy", [("none", False),
                                             ("self_critic", False),
                                             ("self_critic", True)])
def test_reinforce_stateless_unbiased(distribution, baseline, greedy):
  f = objective(distribution)
  estimate = functools.partial(sf.reinforce, f=f, distribution=distribution,
                               baseline=baseline, greedy=greedy)
  check_unbiased(estimate, distribution, f)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_reinforce_moving_average_unbiased(distribution):
  f = objective(distribution)
  state = warm_state(distribution, objective(distribution, offset=3.0),
                     "moving_average")
  mean, _ = baselines.corrected_stats(state, 0.9)
  assert float(jnp.min(mean)) > 2.0  # the baseline is far from zero.
  estimate = functools.partial(sf.reinforce, f=f, state=state, decay=0.9,
                               distribution=distribution,
                               baseline="moving_average")
  check_unbiased(estimate, distribution, f)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_reinforce_standardize_unbiased_up_to_scale(distribution):
  f = objective(distribution)
  state = warm_state(distribution, lambda z: 4.0 * f(z) + 1.0, "standardize")
  estimate = functools.partial(sf.reinforce, f=f, state=state, decay=0.9,
                               distribution=distribution,
                               baseline="standardize")
  _, aux = estimate(jax.random.PRNGKey(0), LOGITS[distribution])
  scale = float(aux.diagnostics["scale"])
  assert scale > 2.0  # a real rescaling, so a missing division would fail.
  check_unbiased(estimate, distribution, f, scale=scale)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("greedy", [False, True])
def test_reinforce_self_critic_standardize_unbiased_up_to_scale(distribution,
                                                                greedy):
  """Self-critic, then running standardisation (Hesselink & Aziz, Sec. 5)."""
  f = objective(distribution)
  state = warm_state(distribution, lambda z: 5.0 * f(z) + 1.0,
                     "self_critic_standardize")
  estimate = functools.partial(sf.reinforce, f=f, state=state, decay=0.9,
                               distribution=distribution, greedy=greedy,
                               baseline="self_critic_standardize")
  _, aux = estimate(jax.random.PRNGKey(0), LOGITS[distribution])
  scale = float(aux.diagnostics["scale"])
  assert scale > 2.0  # a real rescaling, so a missing division would fail.
  check_unbiased(estimate, distribution, f, scale=scale)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_reinforce_nvil_with_baseline_value_unbiased(distribution):
  f = objective(distribution)
  state = warm_state(distribution, f, "standardize")
  baseline_value = jnp.array([0.8, -1.3])
  estimate = functools.partial(sf.reinforce, f=f, state=state, decay=0.9,
                               distribution=distribution,
                               baseline="standardize",
                               baseline_value=baseline_value)
  _, aux = estimate(jax.random.PRNGKey(0), LOGITS[distribution])
  check_unbiased(estimate, distribution, f,
                 scale=float(aux.diagnostics["scale"]))


def test_baseline_value_gets_no_score_gradient_and_its_own_loss():
  logits = LOGITS["bernoulli"]
  f = objective("bernoulli", offset=2.0)
  key = jax.random.PRNGKey(3)

  def run(c):
    return sf.reinforce(key, logits, f, baseline="self_critic",
                        baseline_value=c)

  c = jnp.array([0.5, -0.5])
  loss_grad = jax.grad(lambda c: jnp.sum(run(c)[0]))(c)
  np.testing.assert_array_equal(loss_grad, jnp.zeros(2))
  _, aux = run(c)
  chex.assert_shape(aux.diagnostics["baseline_loss"], (2,))
  # d/dc (s - c)^2 = -2 (s - c), with s the signal before subtracting c.
  bl_grad = jax.grad(
      lambda c: jnp.sum(run(c)[1].diagnostics["baseline_loss"]))(c)
  z = aux.samples
  critic = f(_common.sample_hard(jax.random.split(key)[1], logits,
                                 "bernoulli"))
  s = f(z) - critic
  np.testing.assert_allclose(bl_grad, -2.0 * (s - c), rtol=1e-5)


@pytest.mark.parametrize("distribution,baseline", [
    ("bernoulli", "none"), ("categorical", "moving_average"),
    pytest.param("bernoulli", "self_critic", marks=pytest.mark.slow)])
def test_reinforce_per_unit_repeated_signal_unbiased(distribution, baseline):
  g = objective(distribution)
  d = _common.num_units(LOGITS[distribution], distribution)
  f_units = lambda z: jnp.repeat(g(z)[..., None], d, -1)  # f_d = g for all d
  state = None
  if baseline == "moving_average":
    state = warm_state(distribution, lambda z: f_units(z) + 2.0,
                       "moving_average")
  estimate = functools.partial(sf.reinforce, f=f_units, state=state,
                               decay=0.9, distribution=distribution,
                               baseline=baseline)
  check_unbiased(estimate, distribution, g)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_reinforce_per_unit_local_signals_unbiased(distribution):
  h = additive_units(distribution)
  state = warm_state(distribution, h, "moving_average")
  # Different units see different baselines: the state is per unit.
  assert float(jnp.std(state.mean)) > 0.1
  estimate = functools.partial(sf.reinforce, f=h, state=state, decay=0.9,
                               distribution=distribution,
                               baseline="moving_average")
  check_unbiased(estimate, distribution, lambda z: jnp.sum(h(z), -1))


def test_per_unit_loss_has_no_pathwise_value():
  h = additive_units("bernoulli")
  loss, aux = sf.reinforce(jax.random.PRNGKey(0), LOGITS["bernoulli"], h)
  chex.assert_shape(loss, (2,))
  chex.assert_shape(aux.objective, (2, 3))
  np.testing.assert_array_equal(loss, jnp.zeros(2))


# ------------------------------------------------- pathwise gradient (theta)


THETA = jnp.array([0.5, -1.0, 2.0])


def theta_objective(theta):
  """Bernoulli objective depending on parameters theta both linearly and not."""
  def f(z):
    return (jnp.sum(theta * z, -1) + jnp.sin(theta[1]) * z[..., 0] * z[..., 2] +
            jnp.square(theta[0] - z[..., 1]) + 2.0 * z[..., 0] * z[..., 1])
  return f


def theta_gradient_draws(estimator, num_draws, **options):
  logits = LOGITS["bernoulli"]

  def minus_loss(key, theta):
    loss, _ = estimator(key, logits, theta_objective(theta), **options)
    return -jnp.sum(loss)

  grad_fn = jax.jit(jax.vmap(jax.grad(minus_loss, 1), in_axes=(0, None)))
  keys = jax.random.split(jax.random.PRNGKey(7), num_draws)
  return np.concatenate([np.asarray(grad_fn(keys[i:i + 20_000], THETA))
                         for i in range(0, num_draws, 20_000)])


def exact_theta_gradient():
  return stats.exact_parameter_gradient(LOGITS["bernoulli"], theta_objective,
                                        THETA)


@pytest.mark.parametrize("estimator,options", [
    (sf.reinforce, {"baseline": "self_critic"}),
    (sf.reinforce, {"baseline": "standardize"}),
    (sf.rloo, {"num_samples": 3}),
])
def test_pathwise_gradient_unbiased(estimator, options):
  draws = theta_gradient_draws(estimator, 40_000, **options)
  stats.assert_unbiased(draws, exact_theta_gradient())


# ---------------------------------------------------------------------- rloo


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_rloo_unbiased(distribution):
  f = objective(distribution)
  estimate = functools.partial(sf.rloo, f=f, distribution=distribution,
                               num_samples=3)
  check_unbiased(estimate, distribution, f)


def test_rloo_value_and_shapes():
  f = objective("categorical")
  loss, aux = jax.jit(functools.partial(
      sf.rloo, f=f, distribution="categorical", num_samples=4))(
          jax.random.PRNGKey(1), LOGITS["categorical"])
  chex.assert_shape(loss, (2,))
  chex.assert_shape(aux.samples, (4, 2, 2, 3))
  np.testing.assert_allclose(loss, -jnp.mean(f(aux.samples), 0), rtol=1e-6)
  np.testing.assert_allclose(aux.objective, -loss, rtol=1e-6)


# --------------------------------------------------------------------- vimco


def exact_bound_gradient(logits, f, distribution, num_samples, theta=None):
  """d E[log mean_k exp f(z_k)] / d logits, summing over all K-tuples."""
  d = _common.num_units(logits, distribution)
  configs = jnp.asarray(exact.support(
      d, None if distribution == "bernoulli" else logits.shape[-1]))
  index = np.array(list(itertools.product(range(configs.shape[0]),
                                          repeat=num_samples)))  # [T, K]
  batch = _common.batch_shape(logits, distribution)
  event = configs.shape[1:]
  zs = configs[index]  # [T, K, *event]
  zs = jnp.broadcast_to(zs.reshape(zs.shape[:2] + (1,) * len(batch) + event),
                        zs.shape[:2] + batch + event)  # [T, K, ..., *event]

  def expectation(logits):
    log_q = jnp.sum(_common.log_prob_units(logits, zs, distribution), -1)
    bound = sf.log_mean_exp(f(zs), 1)  # [T, ...]
    return jnp.sum(jnp.exp(jnp.sum(log_q, 1)) * bound)

  return jax.grad(expectation)(logits)


def log_weight(distribution):
  """A log importance weight with a wide range (exp spreads the samples)."""
  g = objective(distribution)
  return lambda z: 1.5 * g(z) - 3.0


@pytest.mark.parametrize("distribution,num_samples", [("bernoulli", 3),
                                                      ("categorical", 2)])
def test_vimco_unbiased_for_multi_sample_bound(distribution, num_samples):
  logits = LOGITS[distribution]
  if distribution == "bernoulli":
    logits = logits[:, :2]  # D = 2: 4^3 tuples.
    f = lambda z: 1.5 * (z[..., 0] * 2.0 - z[..., 1] +
                         1.5 * z[..., 0] * z[..., 1]) - 3.0
  else:
    f = log_weight(distribution)
  estimate = functools.partial(sf.vimco, f=f, distribution=distribution,
                               num_samples=num_samples)
  draws = stats.gradient_draws(estimate, logits, NUM_DRAWS)
  target = exact_bound_gradient(logits, f, distribution, num_samples)
  stats.assert_unbiased(draws, target)


def test_vimco_pathwise_gradient_unbiased():
  logits = LOGITS["bernoulli"]

  def minus_loss(key, theta):
    loss, _ = sf.vimco(key, logits, theta_objective(theta), num_samples=2)
    return -jnp.sum(loss)

  grad_fn = jax.jit(jax.vmap(jax.grad(minus_loss, 1), in_axes=(0, None)))
  draws = np.asarray(grad_fn(jax.random.split(jax.random.PRNGKey(5), 40_000),
                             THETA))

  def exact_bound(theta):
    f = theta_objective(theta)
    configs = jnp.asarray(exact.support(3))  # [8, 3]
    index = np.array(list(itertools.product(range(8), repeat=2)))
    zs = jnp.broadcast_to(configs[index][:, :, None],
                          (64, 2, 2, 3))  # [T, K, B, D]
    log_q = jnp.sum(_common.log_prob_units(logits, zs, "bernoulli"), (1, 3))
    return jnp.sum(jnp.exp(log_q) * sf.log_mean_exp(f(zs), 1))

  stats.assert_unbiased(draws, jax.grad(exact_bound)(THETA))


def test_vimco_value_is_minus_bound_and_stable():
  logits = jnp.array([[50.0, -50.0, 0.0]])
  f = lambda z: -1e4 + 300.0 * z[..., 2] - 40.0 * z[..., 0]
  estimate = jax.jit(lambda l: sf.vimco(jax.random.PRNGKey(2), l, f,
                                        num_samples=5))
  loss, aux = estimate(logits)
  fs = np.asarray(f(aux.samples), np.float64)  # [5, 1]
  expected = np.log(np.mean(np.exp(fs - fs.max(0)), 0)) + fs.max(0)
  np.testing.assert_allclose(loss, -expected, rtol=1e-6)
  grad = jax.jit(jax.grad(lambda l: jnp.sum(estimate(l)[0])))(logits)
  chex.assert_tree_all_finite((loss, grad, aux.diagnostics))


def test_vimco_leave_one_out_matches_definition():
  f = jnp.array([[1.0], [-2.0], [0.5]])  # [K=3, 1]
  loo = sf.vimco_leave_one_out(f)
  for k in range(3):
    others = [f[j, 0] for j in range(3) if j != k]
    replaced = list(others) + [sum(others) / 2]
    expected = np.log(np.mean(np.exp(np.array(replaced))))
    np.testing.assert_allclose(loo[k, 0], expected, rtol=1e-6)


# ------------------------------------------------------- variance orderings


def total_variance(estimate, distribution, num_draws=5_000, seed=11):
  draws = stats.gradient_draws(estimate, LOGITS[distribution], num_draws,
                               seed=seed)
  return float(np.sum(np.var(draws, 0)))


@pytest.mark.parametrize("distribution", [
    "bernoulli", pytest.param("categorical", marks=pytest.mark.slow)])
def test_baselines_reduce_variance_under_large_offset(distribution):
  f = objective(distribution, offset=20.0)
  plain = total_variance(functools.partial(
      sf.reinforce, f=f, distribution=distribution), distribution)
  state = warm_state(distribution, f, "moving_average")
  averaged = total_variance(functools.partial(
      sf.reinforce, f=f, distribution=distribution, state=state, decay=0.9,
      baseline="moving_average"), distribution)
  critic = total_variance(functools.partial(
      sf.reinforce, f=f, distribution=distribution, baseline="self_critic"),
      distribution)
  assert averaged < 0.1 * plain
  assert critic < 0.1 * plain


@pytest.mark.parametrize("distribution", [
    pytest.param("bernoulli", marks=pytest.mark.slow), "categorical"])
def test_rloo_beats_averaged_reinforce(distribution):
  f = objective(distribution, offset=5.0)
  k = 4

  def reinforce_mean(key, logits):  # K independent single-sample estimates.
    losses, _ = jax.vmap(lambda key: sf.reinforce(
        key, logits, f, distribution=distribution))(jax.random.split(key, k))
    return jnp.mean(losses, 0), None

  plain = total_variance(reinforce_mean, distribution)
  loo = total_variance(functools.partial(
      sf.rloo, f=f, distribution=distribution, num_samples=k), distribution)
  assert loo < 0.5 * plain


# -------------------------------------------------------------------- errors


def test_bad_baseline_value_and_state_raise():
  """A baseline_value of the wrong shape and a state for other logits are
  rejected, naming the problem. (Bad option values, too few samples, f of
  the wrong shape and per-unit f for rloo / vimco: estimator_options_test.py
  and registry_test.py.)"""
  logits, f = LOGITS["bernoulli"], objective("bernoulli")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="baseline_value must have shape"):
    sf.reinforce(key, logits, f, baseline_value=jnp.zeros(3))
  with pytest.raises(ValueError, match="state must be RunningStats"):
    sf.reinforce(key, logits, f, baseline="standardize",
                 state=sf.init_reinforce(None, jnp.zeros((2, 5)),
                                         baseline="standardize"))


# ------------------------------------------- state, transformations, values


@pytest.mark.parametrize("baseline", baselines.BASELINES)
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_state_structure_matches_init(baseline, distribution):
  logits = LOGITS[distribution]
  init = sf.init_reinforce(None, logits, distribution=distribution,
                           baseline=baseline)
  loss, aux = sf.reinforce(jax.random.PRNGKey(0), logits,
                           objective(distribution), distribution=distribution,
                           baseline=baseline)
  chex.assert_shape(loss, (2,))
  np.testing.assert_allclose(loss, -objective(distribution)(aux.samples))
  if baseline in baselines.STATEFUL_BASELINES:
    chex.assert_trees_all_equal_shapes_and_dtypes(init, aux.state)
    assert int(aux.state.count) == 1
  else:
    assert init is None and aux.state is None


def test_registry_make_binds_state_init():
  est = estimators.make("reinforce", baseline="standardize", decay=0.5)
  logits, f = LOGITS["bernoulli"], objective("bernoulli")
  state = est.init(jax.random.PRNGKey(0), logits)
  assert isinstance(state, baselines.RunningStats)
  loss, aux = est.estimate(jax.random.PRNGKey(1), logits, f, state=state)
  chex.assert_tree_all_finite((loss, aux.state))


def test_stateful_reinforce_under_jit_vmap_grad_scan():
  distribution = "categorical"
  f = objective(distribution, offset=3.0)
  estimate = jax.jit(functools.partial(
      sf.reinforce, f=f, distribution=distribution, baseline="standardize",
      decay=0.8))

  def step(carry, key):
    logits, state = carry
    def mean_loss(l):
      loss, aux = estimate(key, l, state=state)
      return jnp.mean(loss), aux

    grads, aux = jax.grad(mean_loss, has_aux=True)(logits)
    return (logits - 0.1 * grads, aux.state), aux.diagnostics["scale"]

  logits0 = LOGITS[distribution]
  state0 = sf.init_reinforce(None, logits0, distribution=distribution,
                             baseline="standardize")
  keys = jax.random.split(jax.random.PRNGKey(0), 30)
  (logits, state), scales = jax.lax.scan(step, (logits0, state0), keys)
  assert int(state.count) == 30
  chex.assert_tree_all_finite((logits, state, scales))
  # The learning moves q towards higher f.
  assert float(jnp.mean(f(_common.probs(logits, distribution)))) > float(
      jnp.mean(f(_common.probs(logits0, distribution))))

  # vmap over keys with a shared state: one new state per key.
  losses, aux = jax.vmap(lambda k: estimate(k, logits0, state=state0))(
      jax.random.split(jax.random.PRNGKey(1), 5))
  chex.assert_shape(losses, (5, 2))
  chex.assert_shape(aux.state.mean, (5, 2))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("options", [
    {"baseline": "standardize", "per_unit": True},
    {"baseline": "self_critic", "greedy": True,
     "baseline_value": jnp.array([1e3, -1e3])},
])
def test_extreme_logits_finite(distribution, options):
  """(The registry tests cover every estimator with default options.)"""
  options = dict(options)
  logits = 50.0 * jnp.sign(LOGITS[distribution] + 0.05)
  f = objective(distribution)
  if options.pop("per_unit", False):
    f = additive_units(distribution)
  state = warm_state(distribution, f, "standardize", steps=2)

  @jax.jit
  def grad_and_aux(l):
    def total(l):
      loss, aux = sf.reinforce(jax.random.PRNGKey(0), l, f, state=state,
                               distribution=distribution, **options)
      return jnp.sum(loss), aux
    return jax.grad(total, has_aux=True)(l)

  grad, aux = grad_and_aux(logits)
  chex.assert_tree_all_finite((grad, aux.objective, aux.diagnostics, aux.state))
