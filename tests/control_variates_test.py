"""Tests of REBAR and RELAX (discrete_vi/estimators/control_variates.py)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.estimators import control_variates as cv
from discrete_vi.estimators import exact
import stats

NUM_DRAWS = 100_000
W = jnp.array([1.0, -0.5, 2.0])
T = jnp.array([0.3, 0.8, 0.5])
LOGITS = jnp.array([[0.3, -1.0, 1.2], [-0.4, 0.8, 0.1]])  # [B=2, D=3]


def objective(z, w=W):
  """A nonlinear f defined on [0, 1]^3: linear - squared error + interaction."""
  return (jnp.sum(w * z, -1) - jnp.sum((z - T)**2, -1) +
          1.5 * z[..., 0] * z[..., 1])


def toy_objective(z):
  """-(b - 0.499)^2 summed over units: the hard toy problem of RELAX."""
  return -jnp.sum((z - 0.499)**2, -1)


def learn_state(estimate, state, logits, f, steps, seed=1):
  """Carries the control-variate state through `steps` calls (lax.scan)."""
  def step(state, key):
    return estimate(key, logits, f, state=state)[1].state, None
  keys = jax.random.split(jax.random.PRNGKey(seed), steps)
  return jax.jit(lambda s: jax.lax.scan(step, s, keys)[0])(state)


@functools.lru_cache(maxsize=None)
def _compiled_gradients(name, f):
  """jit(vmap over keys) of the logits gradient, with the state an argument.

  Cached, so that tests sharing an estimator and f compile it once.
  """
  fn = estimators.ESTIMATORS[name]
  def one(key, logits, state):
    return jax.grad(lambda l: -jnp.sum(fn(key, l, f, state=state)[0]))(logits)
  return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def draws_with_state(name, state, f=objective, logits=LOGITS,
                     num_draws=NUM_DRAWS, seed=0, chunk=10_000):
  """Like `stats.gradient_draws`, for a given estimator state."""
  grad_fn = _compiled_gradients(name, f)
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  return np.concatenate([np.asarray(grad_fn(keys[i:i + chunk], logits, state))
                         for i in range(0, num_draws, chunk)], 0)


def logits_variance(name, state, logits, f, num_draws=2000, seed=7):
  """Total variance of the logits-gradient estimate on fixed keys."""
  draws = draws_with_state(name, state, f, logits, num_draws, seed)
  return float(np.sum(np.var(draws, 0)))


def reinforce_draws(logits, f, num_draws, seed=7):
  """Plain REINFORCE f(b) grad log q(b), computed locally for comparison."""
  def one(key):
    noise = jax.random.logistic(key, logits.shape)
    b = (noise + logits > 0).astype(jnp.float32)
    return f(b)[..., None] * (b - jax.nn.sigmoid(logits))
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  return np.asarray(jax.jit(jax.vmap(one))(keys))


def perturbed_relax_state(seed=3):
  """A RELAX state with a clearly non-zero, random surrogate r_phi."""
  state = cv.init_relax(jax.random.PRNGKey(seed), LOGITS, temperature=0.3,
                        eta=0.7)
  leaves, treedef = jax.tree_util.tree_flatten(state.params["surrogate"])
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  leaves = [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)]
  params = dict(state.params,
                surrogate=jax.tree_util.tree_unflatten(treedef, leaves))
  return cv.ControlVariateState(params, state.opt_state)


def surrogate_output(state, logits=LOGITS):
  """r_phi at a fixed relaxed sample, `[B]`."""
  relaxed = jax.nn.sigmoid(logits)
  return cv.Surrogate(32).apply(state.params["surrogate"], relaxed, relaxed)


# ---------------------------------------------------------------- unbiased


def test_rebar_unbiased_fixed_control_variate():
  state = cv.init_rebar(None, LOGITS, temperature=0.5, eta=0.8)
  draws = draws_with_state("rebar", state)
  stats.assert_unbiased(draws, stats.exact_gradient(LOGITS, objective))


def test_rebar_unbiased_after_learning_steps():
  state = cv.init_rebar(None, LOGITS, cv_learning_rate=5e-2)
  rebar = functools.partial(cv.rebar, learn_control_variate=True,
                            cv_learning_rate=5e-2)
  state = learn_state(rebar, state, LOGITS, objective, steps=20)
  assert abs(float(state.params["eta"]) - 1.0) > 0.1
  assert abs(float(state.params["log_temperature"]) - np.log(0.5)) > 0.1
  draws = draws_with_state("rebar", state)
  stats.assert_unbiased(draws, stats.exact_gradient(LOGITS, objective))


def test_relax_unbiased_after_adam_steps():
  state = cv.init_relax(jax.random.PRNGKey(0), LOGITS, cv_learning_rate=5e-2)
  relax = functools.partial(cv.relax, cv_learning_rate=5e-2)
  state = learn_state(relax, state, LOGITS, objective, steps=20)
  assert float(jnp.max(jnp.abs(surrogate_output(state)))) > 0.05
  draws = draws_with_state("relax", state)
  stats.assert_unbiased(draws, stats.exact_gradient(LOGITS, objective))


def test_relax_unbiased_with_random_surrogate():
  state = perturbed_relax_state()
  assert float(jnp.max(jnp.abs(surrogate_output(state)))) > 0.5
  draws = draws_with_state("relax", state)
  stats.assert_unbiased(draws, stats.exact_gradient(LOGITS, objective))


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_unbiased_when_f_closes_over_logits(name):
  """An ELBO-like f(z) = g(z) - log q(z; l): the pathwise part through l."""
  def f_of(logits):
    def f(z):
      log_q = (z * jax.nn.log_sigmoid(logits) +
               (1 - z) * jax.nn.log_sigmoid(-logits))
      return objective(z) - jnp.sum(log_q, -1)
    return f
  state = perturbed_relax_state() if name == "relax" else None
  fn = estimators.ESTIMATORS[name]
  draws = stats.gradient_draws(lambda k, l: fn(k, l, f_of(l), state=state),
                               LOGITS, NUM_DRAWS // 2)
  exact_grad = jax.grad(lambda l: -jnp.sum(exact.enumerate_expectation(
      None, l, f_of(l))[0]))(LOGITS)
  stats.assert_unbiased(draws, exact_grad)


def theta_draws(estimate, theta, num_draws, seed=0):
  """Gradient estimates wrt a parameter `theta` that f closes over."""
  grad_fn = jax.jit(jax.vmap(jax.grad(
      lambda th, key: -jnp.sum(estimate(key, th)[0])), in_axes=(None, 0)))
  return np.asarray(grad_fn(theta, jax.random.split(jax.random.PRNGKey(seed),
                                                    num_draws)))


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_unbiased_for_parameters_f_closes_over(name):
  state = perturbed_relax_state() if name == "relax" else None
  fn = estimators.ESTIMATORS[name]
  estimate = lambda key, th: fn(key, LOGITS, lambda z: objective(z, th),
                                state=state)
  draws = theta_draws(estimate, W, NUM_DRAWS // 2)
  exact_grad = jax.grad(lambda th: -jnp.sum(exact.enumerate_expectation(
      None, LOGITS, lambda z: objective(z, th))[0]))(W)
  stats.assert_unbiased(draws, exact_grad)


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_no_control_variate_gradient_leaks_into_model_parameters(name):
  state = perturbed_relax_state() if name == "relax" else None
  fn = estimators.ESTIMATORS[name]

  def grads(key):
    def total(th):
      loss, aux = fn(key, LOGITS, lambda z: objective(z, th), state=state)
      return jnp.sum(loss), aux.samples
    grad_theta, samples = jax.grad(total, has_aux=True)(W)
    expected = jax.grad(lambda th: -jnp.sum(objective(samples, th)))(W)
    return grad_theta, expected
  keys = jax.random.split(jax.random.PRNGKey(0), 8)
  grad_theta, expected = jax.jit(jax.vmap(grads))(keys)
  np.testing.assert_allclose(grad_theta, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- variance


def test_rebar_variance_below_reinforce():
  rebar_var = logits_variance("rebar", cv.init_rebar(None, LOGITS), LOGITS,
                              objective, num_draws=20_000)
  reinforce_var = float(np.sum(np.var(
      reinforce_draws(LOGITS, objective, 20_000), 0)))
  assert rebar_var < 0.7 * reinforce_var, (rebar_var, reinforce_var)


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_learning_the_control_variate_reduces_variance(name):
  logits = jnp.zeros((1,))
  batch = jnp.zeros((16, 1))
  if name == "rebar":
    estimate = functools.partial(cv.rebar, learn_control_variate=True,
                                 cv_learning_rate=1e-2)
    state = cv.init_rebar(None, logits, cv_learning_rate=1e-2)
  else:
    estimate = functools.partial(cv.relax, cv_learning_rate=1e-2)
    state = cv.init_relax(jax.random.PRNGKey(0), logits, cv_learning_rate=1e-2)
  before = logits_variance(name, state, logits, toy_objective)
  state = learn_state(estimate, state, batch, toy_objective, steps=150)
  after = logits_variance(name, state, logits, toy_objective)
  factor = 0.85 if name == "rebar" else 0.1
  assert after < factor * before, (before, after)


# ------------------------------------------------------- values and state


@pytest.mark.parametrize("name", ["rebar", "relax"])
def test_value_shapes_and_aux(name):
  """loss = -f(b) and aux.objective = f(b) at the hard sample b in {0, 1},
  the state a ControlVariateState, the diagnostics scalars."""
  fn = estimators.ESTIMATORS[name]
  loss, aux = jax.jit(lambda k: fn(k, LOGITS, objective))(
      jax.random.PRNGKey(0))
  chex.assert_shape(loss, (2,))
  chex.assert_shape(aux.samples, (2, 3))
  np.testing.assert_allclose(loss, -objective(aux.samples), rtol=1e-6)
  np.testing.assert_allclose(aux.objective, objective(aux.samples), rtol=1e-6)
  assert set(np.asarray(aux.samples).ravel().tolist()) <= {0.0, 1.0}
  assert isinstance(aux.state, cv.ControlVariateState)
  for value in aux.diagnostics.values():
    chex.assert_shape(value, ())


def test_state_updates_rebar_only_when_learning_relax_every_call():
  """REBAR returns its state unchanged unless learn_control_variate (then one
  Adam step: eta moves, count 1); RELAX takes one Adam step of its control
  variate per call, from the state it is given (count 1, then 2)."""
  rebar_state = cv.init_rebar(None, LOGITS, temperature=0.3, eta=0.5)
  relax_state = cv.init_relax(jax.random.PRNGKey(1), LOGITS)

  @jax.jit
  def new_states(key, rebar_state, relax_state):
    fixed = cv.rebar(key, LOGITS, objective, state=rebar_state)[1].state
    learned = cv.rebar(key, LOGITS, objective, state=rebar_state,
                       learn_control_variate=True)[1].state
    relaxed = cv.relax(key, LOGITS, objective, state=relax_state)[1].state
    return fixed, learned, relaxed
  fixed, learned, relax_once = new_states(jax.random.PRNGKey(0), rebar_state,
                                          relax_state)
  chex.assert_trees_all_equal(fixed, rebar_state)
  assert float(learned.params["eta"]) != 0.5
  assert int(learned.opt_state[0].count) == 1
  assert int(relax_once.opt_state[0].count) == 1
  assert float(relax_once.params["eta"]) != float(relax_state.params["eta"])
  relax_twice = new_states(jax.random.PRNGKey(1), rebar_state, relax_once)[2]
  assert int(relax_twice.opt_state[0].count) == 2


def test_rebar_with_zero_eta_is_reinforce():
  state = cv.init_rebar(None, LOGITS, eta=0.0)
  def grad_and_samples(key):
    return jax.grad(lambda l: -jnp.sum(cv.rebar(key, l, objective,
                                                state=state)[0]))(LOGITS), \
        cv.rebar(key, LOGITS, objective, state=state)[1].samples
  g, b = jax.jit(grad_and_samples)(jax.random.PRNGKey(4))
  np.testing.assert_allclose(
      g, objective(b)[..., None] * (b - jax.nn.sigmoid(LOGITS)), rtol=1e-5)


def test_rebar_learning_step_at_extreme_temperatures():
  """REBAR with learn_control_variate (one Adam step of eta and the
  temperature) at extreme logits and temperatures: gradient, aux and new
  state finite, and the reported temperature within 5% of the initial one.
  (Default options, RELAX's learning step included: the registry's
  test_relaxation_parameter_traced_and_extreme.)"""
  logits = jnp.array([[50., -50., 0., 3.], [-50., 50., 1., -2.]])
  t = jnp.array([0.2, 0.9, 0.5, 0.1])
  f = lambda z: (jnp.sum(z * t, -1) - jnp.sum((z - t)**2, -1) +
                 z[..., 0] * z[..., 2])

  def total(l, key, state):
    loss, aux = cv.rebar(key, l, f, state=state, learn_control_variate=True)
    return jnp.sum(loss), aux
  grad_fn = jax.jit(jax.grad(total, has_aux=True))
  for temperature in [1e-3, 0.1, 10.0]:
    state = cv.init_rebar(jax.random.PRNGKey(0), logits,
                          temperature=temperature)
    for seed in range(3):
      grad, aux = grad_fn(logits, jax.random.PRNGKey(seed), state)
      chex.assert_tree_all_finite((grad, aux))
      np.testing.assert_allclose(aux.diagnostics["temperature"], temperature,
                                 rtol=0.05)


def test_relax_rejects_a_rebar_state():
  state = cv.init_rebar(None, LOGITS)
  with pytest.raises(ValueError, match="surrogate"):
    cv.relax(jax.random.PRNGKey(0), LOGITS, objective, state=state)
