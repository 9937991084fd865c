r"""Objectives on relaxed categorical samples: Eqs. 14-16, the relaxation
bias (Eq. 6) and the relaxed-ELBO (Eqs. 8, 12) of Lievin et al. (2019).

The ELBO integrand f(x, z) = log p(x, z) - log q(z|x) (Eq. 3) is defined for
one-hot z only. On a relaxed sample \tilde z (Eq. 4) it is extended as
(Appendix D, Eq. 14)

  f(x, \tilde z) = \log p(x | \tilde z) + \log p(H(\tilde z))
                   - \log q(H(\tilde z) | x),       H = one_hot o arg max,

and the surrogate L_1^{\tau>0} = E_{q^\tau}[f(x, \tilde z)] (Eq. 5) is
maximised. `categorical_log_mass` evaluates the log-mass terms (b), (c) in
one of four forms:

* "relaxed" (Eq. 15): \sum_k \tilde z_k \log \pi_k, linear in \tilde z.
  Under `gumbel_softmax` its pathwise gradient is unbiased for the relaxed
  objective; at a straight-through sample H + \tilde z - sg(\tilde z) its
  value is Eq. 14's and its gradient the straight-through one; at hard
  samples it is exact.
* "straight_through": Eq. 14's value with the straight-through gradient,
  \sum_k (H(\tilde z) + \tilde z - sg(\tilde z))_k \log \pi_k.
* "hard" (Eq. 14): \log \pi_{H(\tilde z)}. Its derivative in \tilde z is
  zero, so under a pathwise estimator the encoder gets no gradient of
  these terms through the sample (only a mean-zero score at fixed H): the
  rate is not trained.
* "concrete" (Eq. 16): the Concrete density of \tilde z itself, a proper
  continuous model, computed from the sample's log-space value
  y = log_softmax((logits + G) / \tau) (no underflow at small \tau).

"relaxed", "straight_through" and "hard" agree in value at one-hot z;
"concrete" is a density, not a mass.

Relaxation bias (Eq. 6). \delta^\tau = |L_1^{\tau>0} - L_1^{\tau=0}|, the
absolute difference of the two expectations (Table 4 reports the difference
of the test-set means). Since L_1^{\tau=0} = E_{q^\tau}[f(x, H(\tilde z))]
(Appendix C), `relaxation_gap` returns the signed per-sample difference
f(x, \tilde z) - f(x, H(\tilde z)) at common noise, whose mean estimates
L_1^{\tau>0} - L_1^{\tau=0} with less variance than two independent
estimates; \delta^\tau is the absolute value of that mean, not the mean of
absolute values (the latter is the larger E|.| of Eq. 11's Jensen step).

Relaxed-ELBO (Eqs. 8, 12). If z \mapsto f(x, z) is \kappa-Lipschitz in L^2,
then per sample f(x, \tilde z) - \kappa \|\tilde z - H(\tilde z)\|_2 \le
f(x, H(\tilde z)), so L_1^{\tau>0} - \kappa E\|\tilde z - H(\tilde z)\|_2 \le
L_1^{\tau=0} \le \log p(x).
"""

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import categorical
from discrete_vi.distributions import concrete
from discrete_vi.types import Array

LOG_MASS_FORMS = ("relaxed", "straight_through", "hard", "concrete")


def categorical_log_mass(logits: Array, z: Array, form: str = "relaxed",
                         temperature=None, log_z=None) -> Array:
  r"""One layer's log p or log q term of f at z, summed over its N variables.

  Args:
    logits: `[..., N, K]` of the categorical (prior or posterior).
    z: `[..., N, K]` a one-hot, relaxed or straight-through sample.
    form: one of `LOG_MASS_FORMS` (module docstring): "relaxed" (Eq. 15),
      "straight_through", "hard" (Eq. 14) or "concrete" (Eq. 16).
    temperature: tau > 0 for "concrete" (the temperature of the sample);
      unused otherwise.
    log_z: `[..., N, K]` for "concrete": the sample's log-space value
      (`estimators.PathwiseSample.log_space`; any shift per variable);
      unused otherwise.

  Returns:
    `[...]`.

  Raises:
    ValueError: unknown form, or "concrete" without a temperature or log_z.
  """
  checks.check_one_of("form", form, LOG_MASS_FORMS)
  if form == "hard":
    z = concrete.harden_categorical(z)
  elif form == "straight_through":
    z = concrete.harden_categorical(z) + (z - jax.lax.stop_gradient(z))
  if form != "concrete":
    return jnp.sum(categorical.log_prob(logits, z), -1)
  if temperature is None or log_z is None:
    raise ValueError("form='concrete' needs the temperature and the "
                     "log-space value log_z of the sample (Eq. 16).")
  return jnp.sum(concrete.log_prob_categorical_from_latent(
      logits, log_z, temperature), -1)


def relaxation_distance(z: Array, event_axes: int = 2) -> Array:
  r"""\|\tilde z - H(\tilde z)\|_2 over the last `event_axes` axes (N, K).

  Args:
    z: `[..., N, K]` relaxed sample.
    event_axes: trailing axes forming one layer's sample.

  Returns:
    `[...]`.
  """
  diff = z - concrete.harden_categorical(z)
  axes = tuple(range(-event_axes, 0))
  return jnp.sqrt(jnp.sum(jnp.square(diff), axes))


def relaxation_gap(relaxed_objective: Array, hard_objective: Array) -> Array:
  r"""f(x, \tilde z) - f(x, H(\tilde z)) per sample (common noise), whose
  mean estimates L_1^{\tau>0} - L_1^{\tau=0} and whose mean's absolute value
  is the relaxation bias \delta^\tau (Eq. 6)."""
  return relaxed_objective - hard_objective


def relaxed_elbo(relaxed_objective: Array, distance: Array, kappa) -> Array:
  r"""f(x, \tilde z) - \kappa \|\tilde z - H(\tilde z)\|_2 (Eq. 8, 12).

  Its expectation over q^\tau is a lower bound on the ELBO L_1^{\tau=0}
  (hence on log p(x)) whenever z -> f(x, z) is \kappa-Lipschitz; per sample
  it is at most f(x, H(\tilde z)).

  Args:
    relaxed_objective: `[...]` f(x, \tilde z) (Eq. 14).
    distance: `[...]` \|\tilde z - H(\tilde z)\|_2 (`relaxation_distance`,
      over every layer's variables).
    kappa: the Lipschitz constant, >= 0.
  """
  checks.check_nonnegative("kappa", kappa)
  return relaxed_objective - kappa * distance
