"""Tests of the smoothing-transformation estimators (DVAE, DVAE++, DVAE#):
the pathwise gradient is unbiased for the relaxed objective (quadrature), its
bias to the discrete gradient (enumeration) shrinks as beta grows, loss and
aux values, finiteness at extreme logits and beta over many draws, and the
posterior logits passed to f. (The contract, per-unit f and option
validation: tests/registry_test.py and tests/estimator_options_test.py.)

Each estimator is compiled once (`probe`, beta traced) and run on a batch of
independent examples, so one call gives one gradient draw per example."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from discrete_vi import estimators
from discrete_vi.distributions import overlapping
from discrete_vi.estimators import smoothing
import stats

NAMES = ["overlapping_exponential", "overlapping_logistic", "spike_and_exp",
         "power_function"]
FAMILY = {"overlapping_exponential": "exponential",
          "overlapping_logistic": "logistic", "spike_and_exp": "spike_and_exp",
          "power_function": "power_function"}
LOGITS = np.array([0.4, -0.8])
THETA = 1.5
NUM_DRAWS = 100_000
# inverse temperatures at which the bias to the discrete gradient is compared
BIAS_BETAS = {"overlapping_exponential": [1.0, 3.0, 10.0],
              "overlapping_logistic": [1.0, 3.0, 10.0],
              # the spike's gradient variance grows like e^beta / beta^2
              "spike_and_exp": [1.0, 2.5, 5.0],
              "power_function": [2.0, 6.0, 20.0]}


def objective(z, theta=THETA, xp=jnp):
  """Nonlinear f(z) with an interaction, `[..., 2] -> [...]`."""
  z1, z2 = z[..., 0], z[..., 1]
  return (theta * z1 * z2 + z1 - 2.0 * z2 - 0.7 * (z1 - 0.3)**2 +
          0.5 * xp.sin(3.0 * z2) + 0.8 * xp.cos(2.0 * z1))


# ---------------------------------------------------- float64 quadrature


def conditional_quantile(family, z, u, beta):
  """R(.|z)^{-1}(u) in float64, from the definitions of r(zeta|z)."""
  if family == "exponential":
    q0 = lambda v: -np.log1p(v * np.expm1(-beta)) / beta
    return q0(u) if z == 0 else 1 - q0(1 - u)
  if family == "logistic":
    return z + special.logit(u) / beta
  if family == "power_function":
    return u**beta if z == 0 else 1 - (1 - u)**beta
  if family == "spike_and_exp":
    if z == 0:
      return np.zeros_like(u)
    return 1 + np.log(u + (1 - u) * np.exp(-beta)) / beta
  raise ValueError(family)


def relaxed_gradient(name, logits, beta, num_nodes=800):
  """d E_{q(zeta)}[f(zeta)] / d logits for D = 2, in float64.

  E[f] = sum_{z1,z2} q(z1) q(z2) E[f(zeta) | z1, z2]: only the weights depend
  on the logits, so d/dl_1 = q1(1-q1) sum_{z2} q(z2) (E[f|1,z2] - E[f|0,z2]).
  The conditional expectations use the tensor midpoint rule in probability
  space, nodes R(.|z)^{-1}((k + 1/2)/M).
  """
  u = (np.arange(num_nodes) + 0.5) / num_nodes
  nodes = {z: conditional_quantile(FAMILY[name], z, u, beta) for z in (0, 1)}
  cond = {(a, b): np.mean(objective(np.stack(np.broadcast_arrays(
      nodes[a][:, None], nodes[b][None, :]), -1), xp=np))
          for a in (0, 1) for b in (0, 1)}
  q = special.expit(np.asarray(logits, np.float64))
  weight = lambda d, z: q[d] if z else 1 - q[d]
  return np.array([
      q[0] * (1 - q[0]) * sum(weight(1, b) * (cond[1, b] - cond[0, b])
                              for b in (0, 1)),
      q[1] * (1 - q[1]) * sum(weight(0, a) * (cond[a, 1] - cond[a, 0])
                              for a in (0, 1))])


# ------------------------------------------------------------------ probe


@functools.partial(jax.jit, static_argnums=0)
def probe(name, key, logits, beta, theta):
  """One call of the estimator on a batch; per-example gradients of -loss."""
  estimate = estimators.ESTIMATORS[name]
  def total(l, th):
    loss, aux = estimate(key, l, lambda z: objective(z, th), beta=beta)
    return jnp.sum(loss), (loss, aux)
  (_, (loss, aux)), (d_logits, d_theta) = jax.value_and_grad(
      total, argnums=(0, 1), has_aux=True)(logits, theta)
  return dict(grad=-d_logits, grad_theta=-d_theta, loss=loss,
              objective=aux.objective, samples=aux.samples, state=aux.state,
              **aux.diagnostics)


def draws(name, beta, seed=0, logits=LOGITS):
  """NUM_DRAWS independent examples with the same logits `[2]`."""
  batch = jnp.broadcast_to(jnp.asarray(logits, jnp.float32), (NUM_DRAWS, 2))
  out = probe(name, jax.random.PRNGKey(seed), batch, jnp.float32(beta),
              jnp.float32(THETA))
  return {k: (None if v is None else np.asarray(v, np.float64))
          for k, v in out.items()}


def exact_discrete_gradient():
  return np.asarray(stats.exact_gradient(jnp.asarray(LOGITS, jnp.float32),
                                         objective), np.float64)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", NAMES)
def test_pathwise_gradient_is_unbiased_for_the_relaxed_objective(name):
  for beta in [smoothing.DEFAULT_BETA[name], 2.0]:
    out = draws(name, beta, seed=1)
    assert np.all(np.isfinite(out["grad"]))
    stats.assert_unbiased(out["grad"], relaxed_gradient(name, LOGITS, beta))


@pytest.mark.parametrize("name", NAMES)
def test_bias_to_the_discrete_gradient_shrinks_with_beta(name):
  exact = exact_discrete_gradient()
  biases, errors = [], []
  for beta in BIAS_BETAS[name]:
    grad = draws(name, beta, seed=2)["grad"]
    biases.append(np.linalg.norm(grad.mean(0) - exact))
    errors.append(np.linalg.norm(grad.std(0) / np.sqrt(len(grad))))
  for k in range(len(biases) - 1):
    assert biases[k + 1] + 4 * (errors[k] + errors[k + 1]) < biases[k], (
        biases, errors)
  # and the relaxed gradient itself tends to the discrete one (quadrature)
  relaxed = relaxed_gradient(name, LOGITS, 300.0)
  assert np.linalg.norm(relaxed - exact) < 0.01 * np.linalg.norm(exact)


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_aux_values(name):
  beta = smoothing.DEFAULT_BETA[name]
  out = draws(name, beta, seed=3)
  zeta, hard = out["samples"], out["hard_samples"]
  chex.assert_shape([zeta, hard], (NUM_DRAWS, 2))
  assert out["state"] is None
  # loss = -f(zeta); its theta-gradient is the pathwise one, df/dtheta(zeta)
  np.testing.assert_allclose(out["loss"], -objective(zeta, xp=np), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(out["relaxed_objective"], -out["loss"])
  np.testing.assert_allclose(out["grad_theta"],
                             np.sum(zeta[:, 0] * zeta[:, 1]), rtol=1e-4)
  # aux.objective = f(z) at an exact Bernoulli(q) sample z
  assert set(np.unique(hard)) <= {0.0, 1.0}
  np.testing.assert_allclose(out["objective"], objective(hard, xp=np),
                             rtol=1e-5, atol=1e-5)
  exact_value = -float(estimators.ESTIMATORS["enumerate"](
      None, jnp.asarray(LOGITS, jnp.float32), objective)[0])
  se = out["objective"].std() / np.sqrt(NUM_DRAWS)
  assert abs(out["objective"].mean() - exact_value) < 4 * se
  q = special.expit(LOGITS)
  assert np.all(np.abs(hard.mean(0) - q) < 4 * np.sqrt(q * (1 - q) /
                                                       NUM_DRAWS))
  np.testing.assert_allclose(out["relaxation_gap"],
                             np.mean(np.abs(zeta - hard)), rtol=1e-4)
  if name == "spike_and_exp":  # the z underlying zeta exactly
    np.testing.assert_array_equal(hard, zeta > 0)


@pytest.mark.parametrize("name", NAMES)
def test_finite_at_extreme_logits_and_beta(name):
  """Every output of `probe` is finite on 100k examples covering all pairs
  of extreme and moderate logits, at extreme beta. (The registry's
  test_relaxation_parameter_traced_and_extreme checks this for every
  estimator with a relaxation parameter, on 4096 examples; this one reuses
  `probe`, compiled for the statistical tests, for 100k draws per beta.)"""
  values = np.array([-50.0, -13.8, -3.0, 0.0, 2.0, 13.8, 50.0])
  pairs = np.stack(np.meshgrid(values, values), -1).reshape(-1, 2)  # [49, 2]
  logits = np.resize(pairs, (NUM_DRAWS, 2))
  for beta in [1.0, 10.0, 40.0, 100.0]:
    out = draws(name, beta, seed=4, logits=logits)
    chex.assert_tree_all_finite({k: v for k, v in out.items()
                                 if v is not None})


@pytest.mark.parametrize("name", NAMES)
def test_options_are_distribution_and_beta(name):
  """The smoothing estimators take exactly `distribution` and `beta` (their
  validation and categorical rejection are estimator_options_test's and the
  registry's)."""
  assert estimators.options_of(name) == {"distribution", "beta"}


@pytest.mark.parametrize("name", NAMES)
def test_posterior_logits_go_to_an_f_that_takes_them(name):
  # The overlapping families pass logit q(z=1|zeta) (for the KL terms of a
  # model's f, Vahdat et al., 2018a, Sec. 5) to the relaxed call only;
  # spike-and-exp, whose posterior is a step function of zeta, passes the
  # logits of q (the posterior's mean) instead.
  calls = []

  def f(z, posterior_logits=None):
    calls.append(posterior_logits)
    return objective(z)

  logits = jnp.asarray([[0.4, -0.8], [2.0, -3.0]], jnp.float32)
  beta = smoothing.DEFAULT_BETA[name]
  loss, aux = estimators.ESTIMATORS[name](jax.random.PRNGKey(5), logits, f,
                                          beta=beta)
  assert len(calls) == 2 and calls[1] is None  # relaxed, then hard
  np.testing.assert_allclose(loss, -objective(aux.samples), rtol=1e-6)
  if name == "spike_and_exp":
    np.testing.assert_allclose(calls[0], logits)
  else:
    family = overlapping.FAMILIES[FAMILY[name]]
    np.testing.assert_allclose(
        calls[0], overlapping.posterior_logits(family, logits, aux.samples,
                                               beta), rtol=1e-6)


def test_takes_posterior_logits():
  def keyword_only(z, *, posterior_logits):
    return z
  assert smoothing.takes_posterior_logits(keyword_only)
  assert smoothing.takes_posterior_logits(lambda z, posterior_logits=None: z)
  assert not smoothing.takes_posterior_logits(lambda z: z)
  assert not smoothing.takes_posterior_logits(lambda z, **kwargs: z)
