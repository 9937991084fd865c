"""Contract tests run over every entry of the estimator registry.

A new estimator added to `ESTIMATORS` is tested here for free, on every
distribution it declares in `DISTRIBUTIONS`: shapes, finiteness and state;
jit / vmap / grad / lax.scan composition; gradients reaching f's parameters
(exactly, and without bias); finiteness at extreme logits and at extreme
values of its relaxation parameter, traced under jit; and validation
(unknown options, names and distributions; undeclared distributions; bad
logits shapes; objectives of the wrong shape; per-unit objectives). Which
check applies to which estimator is derived from the registry
(`DISTRIBUTIONS`, `STATE_INITS`, `options_of`, `option_specs`), so the
per-estimator test files hold only estimator-specific behaviour and
statistics. (Bad option VALUES, for every option of every estimator, are
tested in estimator_options_test.py.)
"""

import functools
import inspect
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.estimators import _common
import stats

NAMES = sorted(estimators.ESTIMATORS)
# Options that make multi-sample estimators exercise their sample axis.
OPTIONS = {"rloo": {"num_samples": 3}, "vimco": {"num_samples": 3},
           "gumbel_rao": {"num_samples": 4}, "indecater": {"num_samples": 2}}
BATCH, D, K = 5, 3, 4

# Every (estimator, distribution) the registry declares, and every
# distribution some estimator supports but this one does not.
CASES = [(n, d) for n in NAMES for d in estimators.DISTRIBUTIONS[n]]
ALL_DISTRIBUTIONS = sorted({d for ds in estimators.DISTRIBUTIONS.values()
                            for d in ds})
UNSUPPORTED = [(n, d) for n in NAMES for d in ALL_DISTRIBUTIONS
               if d not in estimators.DISTRIBUTIONS[n]]


def objective(theta, z):
  """A nonlinear objective defined on relaxed inputs too, linear in theta:
  d f / d theta = z. theta is `[D]` / `[D, K]`, or per example `[N, D]` /
  `[N, D, K]` (broadcast against z `[..., N, D(, K)]`)."""
  if theta.shape[-1] == K:  # categorical one-hot z [..., D, K]
    lin = jnp.sum(theta * z, (-2, -1))
    return lin - jnp.sum(z[..., 0] ** 2, -1) + z[..., 0, 1] * z[..., 1, 2]
  return (jnp.sum(theta * z, -1) - jnp.sum((z - 0.3) ** 2, -1) +
          z[..., 0] * z[..., 1])


def logits_shape(distribution, batch=BATCH):
  return (batch, D) if distribution == "bernoulli" else (batch, D, K)


def make_estimator(name, distribution, **options):
  return estimators.make(name, distribution=distribution,
                         **OPTIONS.get(name, {}), **options)


def setup_case(name, distribution):
  """(estimator, moderate logits `[BATCH, D(, K)]`, theta `[D(, K)]`)."""
  shape = logits_shape(distribution)
  logits = jax.random.normal(jax.random.PRNGKey(1), shape)
  theta = jax.random.normal(jax.random.PRNGKey(2), shape[1:])
  return make_estimator(name, distribution), logits, theta


def run(est, key, logits, theta, state=None):
  return est.estimate(key, logits, functools.partial(objective, theta), state)


def values_and_grads(est, key, logits, theta, state):
  """(loss, aux, d sum(loss) / d logits, d sum(loss) / d theta) of a call."""
  def total(l, t):
    loss, aux = run(est, key, l, t, state)
    return jnp.sum(loss), (loss, aux)
  (_, (loss, aux)), (g_logits, g_theta) = jax.value_and_grad(
      total, argnums=(0, 1), has_aux=True)(logits, theta)
  return loss, aux, g_logits, g_theta


def trace(est, logits, f):
  """Traces init and estimate abstractly (jax.eval_shape: nothing runs)."""
  def call(key, l):
    return est.estimate(key, l, f, est.init(key, l))
  return jax.eval_shape(call, jax.random.PRNGKey(0), logits)


# Entries of the extreme logits: saturated (|l| = 50, beyond float32's
# sigmoid), large (13.8: 1 - p ~ 1e-6) and moderate values; and how many
# such examples the contract draws, for N = 4096 (bernoulli) / 1024
# (categorical) examples in all. Not many more: XLA on CPU in jaxlib 0.10.2
# silently miscomputes some fused reductions of large arrays (jax-ml/jax
# #39103), e.g. jit(lambda z, t: jnp.sum(t * z, -1) + z[..., 0] * z[..., 1])
# on z [2, 16385, 3], t [16385, 3], or on z [24, 2048, 3]; the exact checks
# below catch it.
EXTREME_VALUES = np.array([-50.0, -13.8, -3.0, 0.0, 2.0, 13.8, 50.0],
                          np.float32)
EXTREME_EXAMPLES = {"bernoulli": 4096 - 2 * BATCH,
                    "categorical": 1024 - 2 * BATCH}
INIT_KEY, KEY = jax.random.PRNGKey(3), jax.random.PRNGKey(4)


@functools.lru_cache(maxsize=None)
def contract_problem(distribution):
  """The logits and per-example theta the contract runs on, `[N, D(, K)]`.

  BATCH moderate examples (standard normal), BATCH saturated ones
  (50 * sign(normal): every unit saturated), then EXTREME_EXAMPLES whose
  entries are drawn from EXTREME_VALUES (saturated, large and moderate units
  mixed in one example). Every example draws its own noise, so one call is
  N independent draws; theta per example makes d loss / d theta per example.
  """
  rng = np.random.default_rng(0)
  moderate = rng.standard_normal(logits_shape(distribution))
  saturated = 50.0 * np.sign(rng.standard_normal(logits_shape(distribution)))
  mixed = rng.choice(EXTREME_VALUES, logits_shape(
      distribution, EXTREME_EXAMPLES[distribution]))
  logits = np.concatenate([moderate, saturated, mixed])
  theta = rng.standard_normal(logits.shape)
  return jnp.asarray(logits, jnp.float32), jnp.asarray(theta, jnp.float32)


@functools.lru_cache(maxsize=None)
def compiled(name, distribution):
  """jit(values_and_grads) of the case's estimator: one compilation per
  logits shape, shared by the tests."""
  return jax.jit(functools.partial(values_and_grads,
                                   make_estimator(name, distribution)))


@functools.lru_cache(maxsize=None)
def contract_outputs(name, distribution):
  """`(state, (loss, aux, d loss / d logits, d loss / d theta))` of one call
  on `contract_problem`, the state from `init`: computed once, checked by
  several tests."""
  logits, theta = contract_problem(distribution)
  state = make_estimator(name, distribution).init(INIT_KEY, logits)
  return state, compiled(name, distribution)(KEY, logits, theta, state)


@pytest.mark.parametrize("name,distribution", CASES)
def test_shapes_and_state(name, distribution):
  """Per-example loss and objective; the returned state has the structure,
  shapes and dtypes of `init`'s, and estimators absent from STATE_INITS are
  stateless (init gives None and so does aux.state)."""
  state, (loss, aux, g_logits, _) = contract_outputs(name, distribution)
  logits, _ = contract_problem(distribution)
  chex.assert_shape(loss, logits.shape[:1])
  chex.assert_shape(aux.objective, logits.shape[:1])
  chex.assert_shape(g_logits, logits.shape)
  chex.assert_trees_all_equal_shapes_and_dtypes(state, aux.state)
  if name not in estimators.STATE_INITS:
    assert state is None and aux.state is None, (state, aux.state)


@pytest.mark.parametrize("name,distribution", CASES)
def test_extreme_logits_stay_finite(name, distribution):
  """Loss, aux (objective, samples, diagnostics, state) and both gradients
  are finite on every example of `contract_problem`: moderate, saturated and
  mixed extreme logits."""
  chex.assert_tree_all_finite(contract_outputs(name, distribution))


def evaluation_point(name, aux, logits, theta, distribution):
  """d f / d theta averaged as the estimator weights its evaluations of f.

  `objective` is linear in theta with d f / d theta = z, so an example's
  theta gradient of -loss is the point(s) where the estimator evaluates f,
  weighted as in its objective: the hard sample for the
  single-sample estimators, the mean over samples (rloo, arm, disarm,
  indecater), the normalised importance weights (vimco), the set's weights
  (unordered_set), q itself (enumerate), the relaxed sample (gumbel_softmax,
  smoothing).
  """
  samples = aux.samples
  if name in ("rloo", "arm", "disarm", "indecater"):
    return jnp.mean(samples, 0)
  if name == "unordered_set":
    weights = aux.diagnostics["sample_weights"]  # [k, B]
    return jnp.sum(weights[..., None, None] * samples, 0)
  if name == "vimco":
    weights = jax.nn.softmax(objective(theta, samples), 0)  # [K, B]
    extra = (1,) * (samples.ndim - weights.ndim)
    return jnp.sum(weights.reshape(weights.shape + extra) * samples, 0)
  if name == "enumerate":
    return _common.probs(logits, distribution)
  if name == "gumbel_softmax":
    return aux.diagnostics["relaxed_samples"]
  return samples  # hard samples, or zeta for the smoothing estimators


# Estimators whose theta gradient is an unbiased estimate of
# grad_theta E_q[f] (f evaluated at exact samples of q); vimco's targets the
# K-sample bound instead (tests/score_function_test.py), the relaxed ones a
# relaxed objective.
THETA_UNBIASED = {"reinforce", "rloo", "muprop", "rebar", "relax", "arm",
                  "disarm", "enumerate", "straight_through",
                  "st_gumbel_softmax", "gumbel_rao", "indecater",
                  "unordered_set"}


@pytest.mark.parametrize("name,distribution", CASES)
def test_grads_reach_logits_and_objective_parameters(name, distribution):
  """For every example, the theta gradient is exactly the pathwise value at
  the estimator's own evaluation points; the logits gradient of the
  moderate examples is nonzero."""
  _, (_, aux, g_logits, g_theta) = contract_outputs(name, distribution)
  logits, theta = contract_problem(distribution)
  assert float(jnp.sum(jnp.abs(g_logits[:BATCH]))) > 0, (
      "no gradient reaches logits")
  expected = -evaluation_point(name, aux, logits, theta, distribution)
  np.testing.assert_allclose(g_theta, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,distribution",
                         [c for c in CASES if c[0] in THETA_UNBIASED])
def test_objective_parameter_gradient_unbiased(name, distribution):
  """Mean theta gradient = -sum_batch E_q[z] (exact), within 4 SE."""
  est, logits, theta = setup_case(name, distribution)
  state = est.init(jax.random.PRNGKey(3), logits)

  def theta_grad(key):
    return jax.grad(lambda t: jnp.sum(run(est, key, logits, t, state)[0]))(
        theta)

  keys = jax.random.split(jax.random.PRNGKey(11), 20_000)
  draws = np.asarray(jax.jit(jax.vmap(theta_grad))(keys))
  exact = -jnp.sum(_common.probs(logits, distribution), 0)
  stats.assert_unbiased(draws, exact)


@pytest.mark.parametrize("name,distribution", CASES)
def test_vmap_over_keys_and_logits(name, distribution):
  """jit(vmap) over keys and logits (of `contract_problem`), `init`'s state
  shared, of the loss and its gradients: every slice equals the unbatched
  call (loss, logits gradient, samples, new state), and the new state gains
  the batch axis."""
  state, _ = contract_outputs(name, distribution)
  logits, theta = contract_problem(distribution)
  keys = jax.random.split(jax.random.PRNGKey(6), 3)
  stacked = jnp.stack([logits, -logits, 2 * logits])
  one = compiled(name, distribution)
  loss, aux, grad, _ = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))(
      keys, stacked, theta, state)
  chex.assert_shape(loss, stacked.shape[:2])
  chex.assert_shape(grad, stacked.shape)
  one_loss, one_aux, one_grad, _ = one(keys[1], stacked[1], theta, state)
  np.testing.assert_allclose(loss[1], one_loss, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad[1], one_grad, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(aux.samples[1], one_aux.samples, rtol=1e-5,
                             atol=1e-6)
  chex.assert_trees_all_equal_structs(aux.state, one_aux.state)
  jax.tree_util.tree_map(
      lambda batched, single: np.testing.assert_allclose(
          batched[1], single, rtol=1e-4, atol=1e-6), aux.state, one_aux.state)


@pytest.mark.parametrize("name,distribution", CASES)
def test_lax_scan_carries_state(name, distribution):
  """Gradient steps on the logits under lax.scan, each step's new state fed
  to the next: losses, final logits and final state finite, and the final
  state has `init`'s structure, shapes and dtypes."""
  est, logits, theta = setup_case(name, distribution)
  state = est.init(jax.random.PRNGKey(7), logits)

  def step(carry, key):
    l, s = carry
    loss, aux, g, _ = values_and_grads(est, key, l, theta, s)
    return (l - 0.1 * g, aux.state), jnp.sum(loss)

  (final, final_state), losses = jax.jit(lambda c, k: jax.lax.scan(
      step, c, k))((logits, state), jax.random.split(jax.random.PRNGKey(8), 4))
  chex.assert_shape(losses, (4,))
  chex.assert_tree_all_finite((final, losses, final_state))
  chex.assert_trees_all_equal_shapes_and_dtypes(state, final_state)


# The options that set how sharp a relaxation is (the temperature of the
# Gumbel family and of REBAR / RELAX, the inverse temperature beta of the
# smoothing estimators), with the extreme values every estimator taking one
# must survive; and the other float options, which set no relaxation.
RELAXATION_EXTREMES = {"temperature": (1e-3, 0.1, 1.0, 10.0),
                       "beta": (1.0, 10.0, 40.0, 100.0)}
NOT_RELAXATION = {"decay", "std_floor", "eta", "cv_learning_rate"}
RELAXATION_CASES = [(n, d, option) for n, d in CASES
                    for option in sorted(estimators.options_of(n) &
                                         set(RELAXATION_EXTREMES))]


def test_every_float_option_is_classified():
  """A new float option must be declared a relaxation parameter (and get
  extreme values here) or not: the two sets partition the float options."""
  floats = {o for o, kind in estimators.option_specs().items()
            if kind is float}
  assert not set(RELAXATION_EXTREMES) & NOT_RELAXATION
  assert floats == set(RELAXATION_EXTREMES) | NOT_RELAXATION, floats
  assert RELAXATION_CASES  # some estimators take one


@pytest.mark.parametrize("name,distribution,option", RELAXATION_CASES)
def test_relaxation_parameter_traced_and_extreme(name, distribution, option):
  """The relaxation parameter may be traced under jit (e.g. an annealed
  temperature; one compilation serves every value), `init` included. On
  `contract_problem`: traced at its default it gives what the concrete
  default gives; traced at another value it gives another gradient (it is
  not replaced by the default when traced); at each extreme value loss, aux
  (state included) and gradients are finite, and a diagnostic named after
  the option reports the value (within 5%: one learning step may move it)."""
  logits, theta = contract_problem(distribution)

  @jax.jit
  def traced(value):
    est = make_estimator(name, distribution, **{option: value})
    return values_and_grads(est, KEY, logits, theta,
                            est.init(INIT_KEY, logits))

  default = inspect.signature(
      estimators.ESTIMATORS[name]).parameters[option].default
  at_default = traced(jnp.float32(default))
  chex.assert_trees_all_close(at_default, contract_outputs(name,
                                                           distribution)[1],
                              rtol=1e-3, atol=1e-4)  # l / tau at |l| = 50
  for value in RELAXATION_EXTREMES[option]:
    out = traced(jnp.float32(value))
    chex.assert_tree_all_finite(out)
    diagnostics = out[1].diagnostics
    if option in diagnostics:
      np.testing.assert_allclose(diagnostics[option], value, rtol=0.05)
    if value != default:
      assert not np.allclose(out[2], at_default[2]), (
          f"{option}={value} gives the logits gradient of the default")


# Estimators that take per-unit learning signals f(z) `[..., D]`; every
# other estimator needs one value per example and must say so.
PER_UNIT_SIGNALS = {"reinforce"}


@pytest.mark.parametrize("name,distribution", CASES)
def test_per_unit_objective_rejected_or_taken(name, distribution):
  """A per-unit f (`[B, D]`) raises while tracing, naming the estimator and
  the per-example requirement, unless the estimator is in
  PER_UNIT_SIGNALS; those return a per-example loss and the per-unit
  objective."""
  est, logits, theta = setup_case(name, distribution)
  if distribution == "bernoulli":
    per_unit = lambda z: theta * z  # [B, D]
  else:
    per_unit = lambda z: jnp.sum(theta * z, -1)  # [B, D]
  if name in PER_UNIT_SIGNALS:
    loss, aux = trace(est, logits, per_unit)
    assert loss.shape == (BATCH,) and aux.objective.shape == (BATCH, D)
  else:
    with pytest.raises(ValueError, match=re.escape(
        f"{name} needs f to return one value per example")):
      trace(est, logits, per_unit)


@pytest.mark.parametrize("name,distribution", CASES)
def test_objective_of_wrong_shape_rejected(name, distribution):
  """f returning one scalar for a batch raises, naming the shape it needs."""
  est, logits, _ = setup_case(name, distribution)
  with pytest.raises(ValueError,
                     match=re.escape(f"f must return shape {(BATCH,)}")):
    trace(est, logits, jnp.sum)


BAD_LOGITS = {"bernoulli": [((), "Bernoulli logits need shape [..., D]")],
              "categorical": [((D,), "categorical logits need shape"),
                              ((BATCH, D, 1), "K=1")]}


@pytest.mark.parametrize("name,distribution,shape,message", [
    (n, d, shape, message) for n, d in CASES
    for shape, message in BAD_LOGITS[d]])
def test_bad_logits_shape_rejected(name, distribution, shape, message):
  """Logits that cannot parameterise the distribution (no unit axis; no
  class axis; K = 1 class) raise, naming the problem."""
  est = estimators.make(name, distribution=distribution,
                        **OPTIONS.get(name, {}))
  with pytest.raises(ValueError, match=re.escape(message)):
    trace(est, jnp.zeros(shape), lambda z: jnp.sum(z))


@pytest.mark.parametrize("name,distribution", UNSUPPORTED)
def test_undeclared_distribution_rejected(name, distribution):
  """A distribution outside DISTRIBUTIONS[name] is rejected, naming the
  estimator and the distribution, by the estimator (eagerly) and by
  check_options (without data). With the contract tests above running on
  every declared one, DISTRIBUTIONS is exact."""
  est = estimators.make(name, distribution=distribution)
  theta = jnp.zeros(logits_shape(distribution)[1:])
  with pytest.raises(ValueError, match=re.escape(f"{name} supports") + ".*" +
                     re.escape(f"not distribution={distribution!r}")):
    run(est, jax.random.PRNGKey(0), jnp.zeros(logits_shape(distribution)),
        theta)
  with pytest.raises(ValueError,
                     match=re.escape(f"distribution={distribution!r}")):
    estimators.check_options(name, distribution=distribution)


@pytest.mark.parametrize("name", NAMES)
def test_make_rejects_unknown_option(name):
  """make names an option the estimator does not take."""
  with pytest.raises(ValueError, match="no_such_option"):
    estimators.make(name, no_such_option=1)


def test_make_rejects_unknown_name():
  """make names an estimator the registry does not have."""
  with pytest.raises(ValueError, match="not_an_estimator"):
    estimators.make("not_an_estimator")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_distribution_is_named(name):
  """A distribution no estimator knows is rejected, naming it."""
  with pytest.raises(ValueError, match="distribution='poisson'"):
    estimators.make(name, distribution="poisson").estimate(
        jax.random.PRNGKey(0), jnp.zeros((2, D)), lambda z: jnp.sum(z, -1))


def test_every_estimator_documents_a_reference():
  """Every estimator has a real docstring with Returns and References."""
  for name, fn in estimators.ESTIMATORS.items():
    doc = fn.__doc__ or ""
    assert len(doc) > 200, f"{name} has no real docstring"
    assert "Returns" in doc, f"{name}'s docstring has no Returns section"
    assert "References" in doc, f"{name}'s docstring cites no paper"


def test_enumerate_rejects_large_support():
  """enumerate refuses a support beyond max_support, naming the option."""
  with pytest.raises(ValueError, match="max_support"):
    estimators.make("enumerate").estimate(
        jax.random.PRNGKey(0), jnp.zeros((2, 30)), lambda z: jnp.sum(z, -1))


def test_make_records_name_and_options():
  """make records the name and a read-only, hashable view of the options."""
  est = estimators.make("vimco", num_samples=4, distribution="categorical")
  assert est.name == "vimco"
  assert dict(est.options) == {"num_samples": 4, "distribution": "categorical"}
  with pytest.raises(TypeError):
    est.options["num_samples"] = 5  # read-only
  hash(est)  # usable as a static argument or cache key
  assert estimators.make("disarm").options == {}
