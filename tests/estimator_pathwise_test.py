"""Unbiasedness of the gradient of the parameters f closes over.

(1) f_theta(z) with parameters theta: for every `reinforce` baseline the
gradient wrt theta is unbiased for grad_theta E_q[f_theta] (exact
enumeration). (2) f(z) = g(z, logits) closes over the logits themselves: the
TOTAL gradient wrt the logits (score part + pathwise part) of reinforce,
rloo, vimco (for the K-sample bound) and muprop is unbiased; for the
standardising baselines it is the pathwise part plus the score part divided
by the scale, and that is tested too. Mean within 4 standard errors.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.estimators import exact
from discrete_vi.estimators import muprop as mp
from discrete_vi.estimators import score_function as sf
import stats

NUM_DRAWS = 100_000
LOGITS = stats.SMALL_LOGITS
THETA = jnp.array([0.5, -1.0, 2.0])


def theta_objective(theta, offset=0.0):
  """Bernoulli objective, nonlinear in theta and with unit interactions."""
  def f(z):
    return (jnp.sum(theta * z, -1) + jnp.sin(theta[1]) * z[..., 0] * z[..., 2]
            + jnp.square(theta[0] - z[..., 1]) + 2.0 * z[..., 0] * z[..., 1]
            + offset)
  return f


def exact_theta_gradient():
  return stats.exact_parameter_gradient(LOGITS["bernoulli"], theta_objective,
                                        THETA)


def warm_state(baseline, steps=4):
  """A state with a far-from-zero running mean and a std well above 1."""
  logits = jnp.broadcast_to(LOGITS["bernoulli"], (16, 2, 3))
  f = lambda z: 4.0 * theta_objective(THETA, offset=3.0)(z)
  state = sf.init_reinforce(None, logits, baseline=baseline)
  for i in range(steps):
    _, aux = sf.reinforce(jax.random.PRNGKey(100 + i), logits, f, state=state,
                          baseline=baseline, decay=0.9)
    state = aux.state
  return state


REINFORCE_OPTIONS = {
    "none": {},
    "moving_average": {"baseline": "moving_average"},
    "self_critic": {"baseline": "self_critic"},
    "self_critic_greedy": {"baseline": "self_critic", "greedy": True},
    "standardize": {"baseline": "standardize"},
    "self_critic_standardize": {"baseline": "self_critic_standardize"},
    "self_critic_standardize_greedy": {"baseline": "self_critic_standardize",
                                       "greedy": True},
    "baseline_value": {"baseline": "standardize",
                       "baseline_value": jnp.array([2.5, -1.0])},
}


@pytest.mark.parametrize("case", sorted(REINFORCE_OPTIONS))
def test_reinforce_theta_gradient_unbiased(case):
  options = dict(REINFORCE_OPTIONS[case])
  baseline = options.get("baseline", "none")
  if baseline in ("moving_average", "standardize",
                  "self_critic_standardize"):
    options["state"] = warm_state(baseline)
    options["decay"] = 0.9
    mean, var = baselines.corrected_stats(options["state"], 0.9)
    if baseline == "self_critic_standardize":  # critic-centred: mean ~ 0
      assert float(jnp.min(jnp.sqrt(var))) > 2.0  # a real rescaling
    else:
      assert float(jnp.min(jnp.abs(mean))) > 1.0  # a real, nonzero baseline
  logits = LOGITS["bernoulli"]

  def minus_loss(key, theta):
    loss, _ = sf.reinforce(key, logits, theta_objective(theta), **options)
    return -jnp.sum(loss)

  grad_fn = jax.jit(jax.vmap(jax.grad(minus_loss, 1), in_axes=(0, None)))
  draws = np.asarray(grad_fn(jax.random.split(jax.random.PRNGKey(7),
                                              NUM_DRAWS), THETA))
  stats.assert_unbiased(draws, exact_theta_gradient())


# ------------------------------------------- f closes over the logits


def logits_objective(distribution):
  """g(z, logits): depends on the logits directly as well as through q."""
  if distribution == "bernoulli":
    def g(z, l):  # z [..., 3], l [..., 3] -> [...]
      return (jnp.sum(jnp.tanh(l) * z, -1) + 2.0 * z[..., 0] * z[..., 1] -
              jnp.sum(jnp.square(l), -1) * z[..., 2] +
              jax.nn.sigmoid(l[..., 1]) * z[..., 0] * z[..., 2])
  else:
    def g(z, l):  # z [..., 2, 3], l [..., 2, 3] -> [...]
      same = jnp.sum(z[..., 0, :] * z[..., 1, :], -1)
      return (jnp.sum(jnp.tanh(l) * z, (-2, -1)) + 1.5 * same -
              jnp.sum(jnp.square(l), (-2, -1)) * z[..., 0, 2])
  return g


def exact_total_gradient(distribution):
  """d/dl sum_z q_l(z) g(z, l), both paths."""
  g = logits_objective(distribution)

  def expectation(l):
    loss, _ = exact.enumerate_expectation(None, l, lambda z: g(z, l),
                                          distribution=distribution)
    return -jnp.sum(loss)
  return jax.grad(expectation)(LOGITS[distribution])


def exact_parts(distribution):
  """The score part d/dl sum_z q_l(z) g(z, l0) and the pathwise part."""
  g = logits_objective(distribution)
  l0 = LOGITS[distribution]

  def expectation(l_q, l_g):
    loss, _ = exact.enumerate_expectation(None, l_q, lambda z: g(z, l_g),
                                          distribution=distribution)
    return -jnp.sum(loss)
  return jax.grad(expectation, (0, 1))(l0, l0)


def total_gradient_draws(estimator, distribution, num_draws=NUM_DRAWS,
                         **options):
  g = logits_objective(distribution)

  def minus_loss(key, l):
    loss, _ = estimator(key, l, lambda z: g(z, l), distribution=distribution,
                        **options)
    return -jnp.sum(loss)

  grad_fn = jax.jit(jax.vmap(jax.grad(minus_loss, 1), in_axes=(0, None)))
  keys = jax.random.split(jax.random.PRNGKey(3), num_draws)
  return np.asarray(grad_fn(keys, LOGITS[distribution]))


@pytest.mark.parametrize("distribution", ["bernoulli", "categorical"])
@pytest.mark.parametrize("estimator,options", [
    (sf.reinforce, {}),
    (sf.reinforce, {"baseline": "self_critic", "greedy": True}),
    (sf.rloo, {"num_samples": 3}),
    (mp.muprop, {}),
], ids=["reinforce", "reinforce_greedy_critic", "rloo", "muprop"])
def test_total_logits_gradient_unbiased_when_f_uses_logits(
    distribution, estimator, options):
  draws = total_gradient_draws(estimator, distribution, **options)
  stats.assert_unbiased(draws, exact_total_gradient(distribution))


def test_standardize_scales_only_the_score_part_when_f_uses_logits():
  """Documented behaviour: pathwise + score / s, not the total / s."""
  distribution = "bernoulli"
  state = warm_state("standardize")
  options = {"baseline": "standardize", "state": state, "decay": 0.9}
  g = logits_objective(distribution)
  _, aux = sf.reinforce(jax.random.PRNGKey(0), LOGITS[distribution],
                        lambda z: g(z, LOGITS[distribution]), **options)
  scale = float(aux.diagnostics["scale"])
  assert scale > 2.0
  draws = total_gradient_draws(sf.reinforce, distribution, **options)
  score, pathwise = exact_parts(distribution)
  stats.assert_unbiased(draws, pathwise + score / scale)


def exact_vimco_total_gradient(logits, g, num_samples):
  """d/dl E[log mean_k exp g(z_k, l)] over every K-tuple, both paths."""
  d = logits.shape[-1]
  configs = jnp.asarray(exact.support(d))  # [S, D]
  index = np.array(list(itertools.product(range(configs.shape[0]),
                                          repeat=num_samples)))  # [T, K]
  zs = configs[index][:, :, None, :]  # [T, K, 1, D]
  zs = jnp.broadcast_to(zs, zs.shape[:2] + logits.shape)  # [T, K, B, D]

  def expectation(l):
    log_q = jnp.sum(_common.log_prob_units(l, zs, "bernoulli"), (1, 3))
    return jnp.sum(jnp.exp(log_q) * sf.log_mean_exp(g(zs, l), 1))
  return jax.grad(expectation)(logits)


def test_vimco_total_logits_gradient_unbiased_when_f_uses_logits():
  logits = LOGITS["bernoulli"][:, :2]  # D = 2, K = 3: 4^3 tuples
  g = lambda z, l: 1.5 * (jnp.tanh(l[..., 0]) * z[..., 0] - z[..., 1] +
                          1.5 * z[..., 0] * z[..., 1] -
                          jnp.square(l[..., 1]) * z[..., 1]) - 3.0

  def minus_loss(key, l):
    loss, _ = sf.vimco(key, l, lambda z: g(z, l), num_samples=3)
    return -jnp.sum(loss)

  grad_fn = jax.jit(jax.vmap(jax.grad(minus_loss, 1), in_axes=(0, None)))
  draws = np.asarray(grad_fn(jax.random.split(jax.random.PRNGKey(4),
                                              NUM_DRAWS), logits))
  stats.assert_unbiased(draws, exact_vimco_total_gradient(logits, g, 3))
