"""Straight-through and Gumbel-softmax (Concrete) gradient estimators.

All four estimators are *biased* estimators of -grad E_q[f] (section
"Bias" of each docstring); they need f to be differentiable in z and defined
on relaxed values, and they all take per-example objectives only. Each works
for Bernoulli logits `[..., D]` and categorical logits `[..., D, K]`.

Forward values: `straight_through`, `st_gumbel_softmax` and `gumbel_rao`
evaluate f at an exact hard sample (their loss VALUE is -f(hard)); only
`gumbel_softmax` evaluates f at the relaxed sample.

Shared trick: `hard + (soft - stop_gradient(soft))` has the value of `hard`
exactly (no float rounding of p + (h - p)) and the Jacobian of `soft`.
"""

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import concrete
from discrete_vi.estimators import _common
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

STRAIGHT_THROUGH_VARIANTS = ("stochastic", "deterministic")


def _attach_gradient(hard: Array, soft: Array) -> Array:
  """Value `hard`, gradient of `soft` (identity Jacobian of the rounding)."""
  return hard + (soft - jax.lax.stop_gradient(soft))


def _check_inputs(logits, distribution: str, estimator: str) -> Array:
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator=estimator)
  _common.check_logits(logits, distribution)
  return logits


def _relaxed_sample(key: PRNGKey, logits: Array, temperature,
                    distribution: str) -> concrete.RelaxedSample:
  """Concrete sample and the hard sample of the same noise."""
  noise = concrete.sample_noise(key, logits.shape, distribution, logits.dtype)
  return concrete.relax(logits, noise, temperature, distribution)


def _straight_through_hard(key: PRNGKey, logits: Array, distribution: str,
                           variant: str) -> Array:
  """h(p) for the deterministic variant, or z ~ q for the stochastic one."""
  if variant == "deterministic":
    return _common.mode(logits, distribution)
  return _common.sample_hard(key, logits, distribution)


def _hard_forward(f: ObjectiveFn, sample, logits: Array, distribution: str,
                  name: str) -> tuple[Array, EstimatorAux]:
  """-f at a hard-forward pathwise sample, and its aux."""
  value = _common.call_objective_per_example(f, sample.z, logits,
                                             distribution, name)
  return -value, _aux(value, sample.hard)


def _aux(value: Array, samples: Array, diagnostics=None) -> EstimatorAux:
  return EstimatorAux(objective=jax.lax.stop_gradient(value),
                      samples=jax.lax.stop_gradient(samples), state=None,
                      diagnostics=diagnostics or {})


class PathwiseSample(NamedTuple):
  """A sample drawn under a pathwise estimator, for models that evaluate f
  themselves (e.g. through several stochastic layers).

  Attributes:
    z: the value f is evaluated at, carrying the estimator's gradient: the
      relaxed sample (`gumbel_softmax`) or the hard sample with a surrogate
      Jacobian (straight-through family), `[..., D]` / `[..., D, K]`.
    hard: the exact hard sample of the same noise (no gradient), ~ q.
    log_space: for the Concrete samplers, the log-space relaxed sample
      y = log_softmax((logits + G) / tau) (Bernoulli: the logit of the
      relaxed sample), from which densities of z are computed without
      underflow; None otherwise.
    posterior_logits: for the smoothing samplers (Bernoulli), the logits
      of q(z = 1 | zeta) at which terms linear in z are evaluated
      (`estimators.smoothing`, module docstring); None otherwise.
  """
  z: Array
  hard: Array
  log_space: Optional[Array] = None
  posterior_logits: Optional[Array] = None


def straight_through_sample(key: PRNGKey, logits: Array, *,
                            distribution: str = "bernoulli",
                            variant: str = "stochastic") -> PathwiseSample:
  """The sample `straight_through` evaluates f at: h + (p - sg(p)) (Bengio,
  Leonard & Courville, 2013; see `straight_through`)."""
  logits = _check_inputs(logits, distribution, "straight_through")
  if variant not in STRAIGHT_THROUGH_VARIANTS:
    raise ValueError(f"straight_through: variant={variant!r} is unknown; "
                     f"expected one of {STRAIGHT_THROUGH_VARIANTS}.")
  hard = _straight_through_hard(key, logits, distribution, variant)
  return PathwiseSample(
      _attach_gradient(hard, _common.probs(logits, distribution)),
      jax.lax.stop_gradient(hard))


def _concrete_sample(key: PRNGKey, logits: Array, distribution: str,
                     temperature, name: str) -> PathwiseSample:
  """The Concrete sample as `z`, with its hard and log-space samples."""
  logits = _check_inputs(logits, distribution, name)
  checks.check_positive("temperature", temperature)
  sample = _relaxed_sample(key, logits, temperature, distribution)
  return PathwiseSample(sample.relaxed, jax.lax.stop_gradient(sample.hard),
                        sample.latent)


def gumbel_softmax_sample(key: PRNGKey, logits: Array, *,
                          distribution: str = "bernoulli",
                          temperature: float = 1.0) -> PathwiseSample:
  """The relaxed sample `gumbel_softmax` evaluates f at (see there)."""
  return _concrete_sample(key, logits, distribution, temperature,
                          "gumbel_softmax")


def st_gumbel_softmax_sample(key: PRNGKey, logits: Array, *,
                             distribution: str = "bernoulli",
                             temperature: float = 1.0) -> PathwiseSample:
  """The hard sample with the relaxed Jacobian (`st_gumbel_softmax`)."""
  sample = _concrete_sample(key, logits, distribution, temperature,
                            "st_gumbel_softmax")
  return sample._replace(z=_attach_gradient(sample.hard, sample.z))


def gumbel_rao_sample(key: PRNGKey, logits: Array, *,
                      distribution: str = "bernoulli",
                      temperature: float = 1.0,
                      num_samples: int = 10) -> PathwiseSample:
  """The hard sample with the Rao-Blackwellised Jacobian of Paulus,
  Maddison & Krause (2021; see `gumbel_rao`)."""
  logits = _check_inputs(logits, distribution, "gumbel_rao")
  checks.check_positive("temperature", temperature)
  checks.check_int("num_samples", num_samples, 1)
  hard_key, noise_key = jax.random.split(key)
  hard = _common.sample_hard(hard_key, logits, distribution)
  soft = _rao_blackwellized_relaxation(noise_key, logits, hard, temperature,
                                       distribution, num_samples)
  return PathwiseSample(_attach_gradient(hard, soft),
                        jax.lax.stop_gradient(hard))


def straight_through(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                     state=None, distribution: str = "bernoulli",
                     variant: str = "stochastic") -> tuple[Array, EstimatorAux]:
  r"""Straight-through: hard forward, gradient through the probabilities.

  With p = sigmoid(logits) (or softmax over K), the forward value uses a hard
  z and the backward pass treats dz/dp as the identity:
    z = h + (p - \mathrm{sg}(p)),\qquad
    \hat g = \nabla_z f(h)^\top \frac{\partial p}{\partial \mathrm{logits}}.
  * variant="deterministic": h = threshold of p, h_d = 1[p_d > 0.5]
    (Hesselink & Aziz, 2020, Eq. 5), or the one-hot arg max of p.
  * variant="stochastic": h ~ q (Bengio et al., 2013).

  Bias: the deterministic variant estimates the gradient of f at the mode,
  not of E_q[f]. The stochastic variant has expectation
  E_q[\nabla_z f(z)]^\top \partial p / \partial logits, which equals
  \nabla E_q[f] when f is affine in each unit's z_d separately (e.g. linear,
  or multilinear like z_1 z_2, since q factorises) and is biased otherwise:
  for f(z) = z^2 on one binary unit the exact gradient is p(1-p) but the
  estimator's mean is 2p \cdot p(1-p).

  Args:
    key: PRNG key (unused by the deterministic variant).
    logits: `[..., D]` or `[..., D, K]`.
    f: objective to maximise, per example `[...]`.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    variant: "stochastic" or "deterministic".

  Returns:
    `(loss, aux)`: loss = -f(h) in value, `[...]`; aux.samples = h.

  Raises:
    ValueError: unknown variant or distribution, bad logits shape, per-unit f.

  References:
    Bengio, Leonard & Courville (2013), "Estimating or propagating gradients
    through stochastic neurons for conditional computation".
    Hesselink & Aziz (2020), "Latent transformations for discrete-data
    normalising flows", Eq. 5 and the note on STE (J_h = I_D).
  """
  del state
  sample = straight_through_sample(key, logits, distribution=distribution,
                                   variant=variant)
  return _hard_forward(f, sample, logits, distribution, "straight_through")


def gumbel_softmax(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                   state=None, distribution: str = "bernoulli",
                   temperature: float = 1.0) -> tuple[Array, EstimatorAux]:
  r"""Gumbel-softmax / Concrete estimator: f at the relaxed sample.

  The loss is -f(z_\tau) with z_\tau = sigmoid((logits + L)/\tau) (logistic
  L) or softmax((logits + G)/\tau) (Gumbel G); its gradient is the
  reparameterisation (pathwise) gradient of the relaxed objective
    \nabla E_{G}[f(z_\tau(\mathrm{logits}, G))]
  (Jang et al., 2017; Maddison et al., 2017).

  Bias: it is unbiased for the RELAXED objective, not for E_q[f]: both the
  value E[f(z_\tau)] and its gradient differ from E_q[f] and its gradient;
  the difference vanishes as \tau -> 0 (where z_\tau -> the hard sample),
  at the price of a variance that grows as \tau -> 0.

  Args:
    key: PRNG key.
    logits: `[..., D]` or `[..., D, K]`.
    f: objective to maximise, per example `[...]`, defined on relaxed z.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    temperature: tau > 0.

  Returns:
    `(loss, aux)`: loss = -f(z_\tau) `[...]`; aux.objective = f at the hard
    sample of the same noise (the honest estimate of E_q[f]); aux.samples =
    that hard sample; diagnostics: "relaxed_objective" = f(z_\tau),
    "relaxed_samples" = z_\tau.

  References:
    Jang, Gu & Poole (2017), "Categorical reparameterization with
    Gumbel-softmax"; Maddison, Mnih & Teh (2017), "The Concrete distribution".
  """
  del state
  name = "gumbel_softmax"
  sample = gumbel_softmax_sample(key, logits, distribution=distribution,
                                 temperature=temperature)
  relaxed_value = _common.call_objective_per_example(
      f, sample.z, logits, distribution, name)
  hard_value = _common.call_objective_per_example(
      f, sample.hard, logits, distribution, name)
  diagnostics = {
      "relaxed_objective": jax.lax.stop_gradient(relaxed_value),
      "relaxed_samples": jax.lax.stop_gradient(sample.z),
  }
  return -relaxed_value, _aux(hard_value, sample.hard, diagnostics)


def st_gumbel_softmax(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                      state=None, distribution: str = "bernoulli",
                      temperature: float = 1.0) -> tuple[Array, EstimatorAux]:
  r"""Straight-through Gumbel-softmax: hard forward, relaxed backward.

  z = H + (z_\tau - \mathrm{sg}(z_\tau)), with H the hard sample (threshold
  / arg max) of the same noise as the relaxed z_\tau, so
    \hat g = \nabla_z f(H)^\top \partial z_\tau / \partial \mathrm{logits}
  (Jang et al., 2017, straight-through Gumbel-softmax).

  Bias: f is only evaluated at hard samples, but the Jacobian of the relaxed
  sample stands in for the (zero almost everywhere) Jacobian of H, so the
  estimator is biased at every \tau > 0 in general. Even for linear
  f = w^\top z its mean is w^\top \partial E[z_\tau] / \partial logits, not
  w^\top \partial p / \partial logits (E[z_\tau] != p); this part of the bias
  vanishes as \tau -> 0, while the variance grows.

  Args:
    key: PRNG key.
    logits: `[..., D]` or `[..., D, K]`.
    f: objective to maximise, per example `[...]`.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    temperature: tau > 0.

  Returns:
    `(loss, aux)`: loss = -f(H) in value, `[...]`; aux.samples = H.

  References:
    Jang, Gu & Poole (2017), "Categorical reparameterization with
    Gumbel-softmax"; Bengio et al. (2013).
  """
  del state
  sample = st_gumbel_softmax_sample(key, logits, distribution=distribution,
                                    temperature=temperature)
  return _hard_forward(f, sample, logits, distribution, "st_gumbel_softmax")


def _rao_blackwellized_relaxation(key: PRNGKey, logits: Array, hard: Array,
                                  temperature, distribution: str,
                                  num_samples: int) -> Array:
  r"""\frac1M \sum_m z_\tau(\mathrm{logits}, \mathrm{sg}(G_m)), G_m ~ p(G | H).

  The noise is drawn given the hard sample and held fixed (stop_gradient),
  so the Jacobian of the mean is the Monte Carlo estimate of
  E[\partial z_\tau / \partial \mathrm{logits} \mid H].
  """
  noise = concrete.conditional_noise(
      key, jax.lax.stop_gradient(logits), hard, distribution,
      (num_samples,))  # [M, ...]
  noise = jax.lax.stop_gradient(noise)
  relaxed = concrete.relax(logits, noise, temperature, distribution).relaxed
  return jnp.mean(relaxed, 0)


def gumbel_rao(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
               distribution: str = "bernoulli", temperature: float = 1.0,
               num_samples: int = 10) -> tuple[Array, EstimatorAux]:
  r"""Gumbel-Rao: straight-through Gumbel-softmax, Rao-Blackwellised.

  Draw H ~ q, then M = num_samples noises G_m ~ p(G | H) (truncated Gumbels,
  or conditional logistic noise for Bernoulli), and pass H forward with the
  averaged relaxed sample backward:
    z = H + (\bar z - \mathrm{sg}(\bar z)),\quad
    \bar z = \frac1M\sum_m z_\tau(\mathrm{logits}, G_m),
    \hat g = \nabla_z f(H)^\top \frac1M\sum_m
             \partial z_\tau(\mathrm{logits}, G_m)/\partial\mathrm{logits}
  (Paulus, Maddison & Krause, 2021). Since E[\hat g] =
  E_H[\nabla f(H)^\top E[\partial z_\tau / \partial \mathrm{logits} | H]],
  its expectation is that of `st_gumbel_softmax` at the same \tau, with
  variance no larger (Rao-Blackwell theorem).

  Bias: exactly the bias of `st_gumbel_softmax` (same expectation).

  Args:
    key: PRNG key.
    logits: `[..., D]` or `[..., D, K]`.
    f: objective to maximise, per example `[...]`.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    temperature: tau > 0.
    num_samples: M >= 1 conditional noise draws per hard sample (static).

  Returns:
    `(loss, aux)`: loss = -f(H) in value, `[...]`; aux.samples = H.

  References:
    Paulus, Maddison & Krause (2021), "Rao-Blackwellizing the
    straight-through Gumbel-softmax gradient estimator", ICLR.
  """
  del state
  sample = gumbel_rao_sample(key, logits, distribution=distribution,
                             temperature=temperature, num_samples=num_samples)
  return _hard_forward(f, sample, logits, distribution, "gumbel_rao")
