r"""MuProp: REINFORCE with a first-order Taylor control variate (Gu et al.).

With \mu = E_q[z] (sigmoid or softmax of the logits) and the linearisation
\bar{f}(z) = f(\mu) + \nabla f(\mu)^\top (z - \mu),

  \nabla E_q[f] = E_q[(f(z) - \bar{f}(z)) \nabla \log q(z)]
                  + \nabla f(\mu)^\top \nabla \mu + E_q[\nabla_\theta f(z)],

because E_q[\bar{f}(z) \nabla \log q(z)] = \nabla E_q[\bar{f}] =
\nabla f(\mu)^\top \nabla \mu when f(\mu), \nabla f(\mu) are held fixed.
"""

import jax
import jax.numpy as jnp

from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey


def event_dot(a: Array, b: Array, distribution: str) -> Array:
  """Sum of a * b over the event axes (`[D]` or `[D, K]`): returns `[...]`."""
  axes = (-1,) if distribution == "bernoulli" else (-2, -1)
  return jnp.sum(a * b, axes)


def linearise(f: ObjectiveFn, mean: Array, logits: Array,
              distribution: str) -> tuple[Array, Array]:
  r"""f(\mu) and \nabla_z f(\mu), both held constant (no gradient at all).

  f is assumed not to mix examples, so one vector-Jacobian product with ones
  gives each example's gradient. Stopping gradients here keeps the control
  variate from sending gradient into f's closed-over parameters: their
  pathwise gradient is \nabla_\theta f(z) alone.

  Returns:
    `(f(mu) [...], grad f(mu)  # like mean)`.
  """
  mean = jax.lax.stop_gradient(mean)
  value, vjp = jax.vjp(
      lambda m: _common.call_objective_per_example(
          f, m, logits, distribution, "muprop"), mean)
  (grad,) = vjp(jnp.ones_like(value))
  return jax.lax.stop_gradient(value), jax.lax.stop_gradient(grad)


def muprop(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
           distribution: str = "bernoulli") -> tuple[Array, EstimatorAux]:
  r"""The MuProp estimator (unbiased, one sample and one extra f, grad f call).

  (f(z) - f(\mu) - \nabla f(\mu)^\top (z - \mu)) \nabla \log q(z)
  + \nabla f(\mu)^\top \nabla \mu + \nabla_\theta f(z),  z ~ q.

  f must accept relaxed inputs: it is evaluated and differentiated at the
  mean \mu in [0, 1]^D (Bernoulli) or on the simplex (categorical).

  Args:
    key: PRNG key.
    logits: `[..., D]` (Bernoulli) or `[..., D, K]` (categorical).
    f: objective to maximise, per example `[...]`, differentiable in z.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".

  Returns:
    `(loss [...], aux)` with loss = -f(z) in value.

  References:
    Gu, Levine, Sutskever & Mnih (2016), MuProp: unbiased backpropagation
    for stochastic neural networks.
  """
  del state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="muprop")
  _common.check_logits(logits, distribution)
  z = _common.sample_hard(key, logits, distribution)
  value = _common.call_objective_per_example(f, z, logits, distribution,
                                             "muprop")  # [...]
  mean = _common.probs(logits, distribution)  # like logits
  f_mean, grad_mean = linearise(f, mean, logits, distribution)
  control = f_mean + event_dot(grad_mean, z - jax.lax.stop_gradient(mean),
                               distribution)  # [...]
  signal = value - control
  log_q_units = _common.log_prob_units(logits, z, distribution)  # [..., D]
  # Zero in value; its gradient is grad f(mu)^T grad mu (logits only).
  mean_term = event_dot(grad_mean, mean - jax.lax.stop_gradient(mean),
                        distribution)
  surrogate = (value + baselines.score_term(signal, log_q_units, False) +
               mean_term)
  diagnostics = {"baseline": jnp.mean(control),
                 **baselines.signal_stats(signal)}
  aux = EstimatorAux(objective=value, samples=z, state=None,
                     diagnostics=diagnostics)
  return -surrogate, aux
