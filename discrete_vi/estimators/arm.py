"""ARM and DisARM: antithetic two-sample estimators for Bernoulli variables.

Both estimators draw one logistic variable per unit, eps = logit(u) with
u ~ U(0, 1), and evaluate f at the antithetic pair

    b = 1[u < sigma(l)] = 1[eps < l],   b~ = 1[1 - u < sigma(l)] = 1[eps > -l],

each of which is marginally Bernoulli(sigma(l)). They differ only in the
weight that turns f(b) - f(b~) into a gradient with respect to the logits l.
Writing the pair through eps instead of u keeps the comparisons exact at
extreme logits (sigma(+-50) rounds to 0 or 1 in float32).
"""

import jax
import jax.numpy as jnp

from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey


def _draw_antithetic_pair(key: PRNGKey, logits: Array
                          ) -> tuple[Array, Array, Array]:
  """The shared logistic noise and the antithetic pair it induces.

  Returns:
    `(eps, b, b_anti)`, each `[..., D]`: eps = logit(u), b = 1[eps < l],
    b_anti = 1[eps > -l].
  """
  eps = jax.random.logistic(key, logits.shape, dtype=logits.dtype)
  b = (eps < logits).astype(logits.dtype)
  b_anti = (eps > -logits).astype(logits.dtype)
  return eps, b, b_anti


def _evaluate_pair(f: ObjectiveFn, b: Array, b_anti: Array, logits: Array,
                   estimator: str) -> tuple[Array, Array]:
  """f(b) and f(b~) (one vmapped call over the pair), each `[...]`."""
  values = _common.call_objective_samples(
      f, jnp.stack([b, b_anti]), logits, "bernoulli", estimator)  # [2, ...]
  return values[0], values[1]


def _attach_logits_gradient(logits: Array, objective: Array,
                            grad_logits: Array) -> Array:
  """A loss whose value is -objective and whose logits-gradient is -g.

  The model parameters that f closes over receive the gradient of
  `objective` (the pathwise part); the logits receive, in addition, exactly
  the (stop-gradient) estimate `grad_logits`.

  Args:
    logits: `[..., D]`.
    objective: `[...]`, differentiable through f's parameters.
    grad_logits: `[..., D]` estimate of d E_q[f] / d logits.

  Returns:
    `[...]` loss.
  """
  centred = logits - jax.lax.stop_gradient(logits)  # [..., D], value 0
  grad_logits = jax.lax.stop_gradient(grad_logits)
  return -(objective + jnp.sum(grad_logits * centred, -1))


def _antithetic_aux(f_b: Array, f_anti: Array, b: Array, b_anti: Array,
                    grad_logits: Array) -> EstimatorAux:
  """The auxiliary output shared by ARM and DisARM."""
  diagnostics = baselines.signal_stats(f_b - f_anti)
  diagnostics["grad_logits_sq"] = jax.lax.stop_gradient(
      jnp.mean(jnp.sum(grad_logits**2, -1)))
  return EstimatorAux(objective=0.5 * (f_b + f_anti),
                      samples=jnp.stack([b, b_anti]), state=None,
                      diagnostics=diagnostics)


def _prepare(logits, distribution: str, estimator: str) -> Array:
  """Validates the options and returns the logits as an array."""
  _common.check_distribution(distribution, ("bernoulli",), estimator=estimator)
  logits = jnp.asarray(logits)
  _common.check_logits(logits, distribution)
  return logits


def arm(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
        distribution: str = "bernoulli") -> tuple[Array, EstimatorAux]:
  r"""The augment-REINFORCE-merge (ARM) estimator for Bernoulli logits.

  With one uniform u_d per unit,

  $$\nabla_{l_d} E_{b \sim Bern(\sigma(l))}[f(b)] =
    E_u\big[(f(1[u > \sigma(-l)]) - f(1[u < \sigma(l)]))\,(u_d - 1/2)\big],$$

  where the indicators act elementwise on the whole vector u. In terms of
  the antithetic pair, 1[u > sigma(-l)] = b~ and 1[u < sigma(l)] = b, so
  g_d = (f(b~) - f(b)) (u_d - 1/2), u_d = sigma(eps_d).

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, per example `[...]`.
    state: unused (ARM is stateless).
    distribution: must be "bernoulli".

  Returns:
    `(loss, aux)`: loss `[...]` with value -(f(b) + f(b~)) / 2, logits
    gradient -g and model-parameter gradient -(grad f(b) + grad f(b~)) / 2;
    `aux.samples` is `[2, ..., D]` (b, b~), `aux.objective` the pair mean.

  Raises:
    ValueError: for distribution="categorical" or malformed logits.

  References:
    Yin & Zhou (2019), "ARM: Augment-REINFORCE-merge gradient for stochastic
    binary networks", ICLR (the ARM identity for a vector of Bernoulli
    variables, written above).
  """
  del state
  logits = _prepare(logits, distribution, "arm")
  eps, b, b_anti = _draw_antithetic_pair(key, logits)
  f_b, f_anti = _evaluate_pair(f, b, b_anti, logits, "arm")
  u_centred = jax.nn.sigmoid(eps) - 0.5  # [..., D]
  grad_logits = (f_anti - f_b)[..., None] * u_centred  # [..., D]
  loss = _attach_logits_gradient(logits, 0.5 * (f_b + f_anti), grad_logits)
  return loss, _antithetic_aux(f_b, f_anti, b, b_anti, grad_logits)


def disarm(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
           distribution: str = "bernoulli") -> tuple[Array, EstimatorAux]:
  r"""The DisARM estimator: ARM with the uniform noise integrated out.

  Conditioning ARM on the antithetic pair (b, b~) gives

  $$g_d = \tfrac12\,(f(b) - f(b~))\,(-1)^{\tilde b_d}\,
    1[b_d \neq \tilde b_d]\,\sigma(|l_d|),$$

  which has the same mean as ARM and never a larger variance (Rao-Blackwell).
  Units where b and b~ agree contribute nothing.

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, per example `[...]`.
    state: unused (DisARM is stateless).
    distribution: must be "bernoulli".

  Returns:
    `(loss, aux)` as for `arm`: value -(f(b) + f(b~)) / 2, `aux.samples`
    `[2, ..., D]`.

  Raises:
    ValueError: for distribution="categorical" or malformed logits.

  References:
    Dong, Mnih & Tucker (2020), "DisARM: An antithetic gradient estimator for
    binary latent variables", NeurIPS (the multivariate DisARM estimator,
    written above).
  """
  del state
  logits = _prepare(logits, distribution, "disarm")
  _, b, b_anti = _draw_antithetic_pair(key, logits)
  f_b, f_anti = _evaluate_pair(f, b, b_anti, logits, "disarm")
  sign = 1. - 2. * b_anti  # (-1)^{b~}, [..., D]
  differ = (b != b_anti).astype(logits.dtype)  # [..., D]
  weight = sign * differ * jax.nn.sigmoid(jnp.abs(logits))  # [..., D]
  grad_logits = 0.5 * (f_b - f_anti)[..., None] * weight  # [..., D]
  loss = _attach_logits_gradient(logits, 0.5 * (f_b + f_anti), grad_logits)
  return loss, _antithetic_aux(f_b, f_anti, b, b_anti, grad_logits)
