r"""Smoothing-transformation estimators (DVAE, DVAE++, DVAE#).

Each binary unit z ~ Bernoulli(q) is replaced by a continuous
\zeta ~ q(\zeta) = (1-q) r(\zeta|0) + q\, r(\zeta|1) (see
`discrete_vi.distributions.overlapping`), and f is evaluated at \zeta. The
loss -f(\zeta) is differentiated by reparameterisation, so its gradient is an
unbiased estimator of the gradient of the *relaxed* objective

  -\nabla E_{q(\zeta)}[f(\zeta)],

which is a biased estimator of -\nabla E_{q(z)}[f(z)] whose bias vanishes as
the inverse temperature beta -> infinity (while its variance grows). f must be
differentiable and defined on relaxed values (in [0, 1], or on R for the
logistic family), and return one value per example.

Posterior of z given \zeta. If f takes a keyword argument `posterior_logits`,
the overlapping families (exponential, logistic, power-function) call

  f(\zeta, posterior_logits=\mathrm{logit}\, q(z = 1 | \zeta)),
  \mathrm{logit}\, q(z = 1 | \zeta) = \mathrm{logits} + \log r(\zeta|1) -
  \log r(\zeta|0),

differentiable in \zeta and in the logits. A model whose f contains terms
linear in z (a Bernoulli log-mass such as log q(z|x) or log p(z)) evaluates
them at \nu = q(z = 1|\zeta) rather than at \zeta: since
E_{q(\zeta)}[\nu] = q exactly, those terms then have the discrete expectation
(the closed-form KL of DVAE++'s joint ELBO, Vahdat et al., 2018a, Eq. 4, in
the per-sample form of their Sec. 5), and their pathwise gradient is
unbiased. Evaluated at \zeta instead, a log-mass term is biased by
E[\zeta] - q = m_0 (1 - 2q) (m_0 = E[\zeta|z=0] ~ 1/beta for the
exponential family): the relaxed entropy -E[\zeta \log q + (1-\zeta)\log(1-q)]
grows without bound as q -> 0 or 1, so maximising it drives the encoder's
logits to +-infinity. Spike-and-exp's posterior 1[\zeta > 0] is a step
function of \zeta, whose pathwise gradient would miss the KL gradient (Rolfe,
2017, codes that gradient by hand); it passes the logits of q itself
instead, \nu = E_{q(\zeta)}[q(z=1|\zeta)] = q, which makes the terms linear
in z exact (the closed-form KL of DVAE) whenever their coefficients do not
depend on \zeta (one stochastic layer). For nested layers (DVAE++'s RBM
with q(z_2|x, \zeta_1): the cross term \nu_1^T W \mu_2(\zeta_1) of Eq. 7)
it is a plug-in, biased by \sum W \odot Cov_q(z_1, \mu_2(\zeta_1)) in value
and by that covariance in W's gradient (the authors' code does the same);
`tests/dvaepp_spike_test.py` measures it by quadrature: 17-28 % of the KL
when q(z_2|x, \zeta_1) follows the prior's coupling (the training objective
below Eq. 6's bound; 23 % on the pinned 2 + 2 case, 27.5 % on a 16 + 16
one), about -3 % with an unrelated q(z_2|x, \zeta_1) (then not a bound),
8.7 % error in the encoder's gradient, against 53.5 % for the exact step
\nu_1 =
1[\zeta_1 > 0] differentiated pathwise (it misses the boundary term). An f
without the keyword is called as f(\zeta).

`aux.objective` is f at the hard z that \zeta tends to as beta -> infinity
(z = 1[\rho > 1 - q] for the inverse-CDF samplers, the ancestral z for the
others): an exact Bernoulli(q) sample, so `aux.objective` is an unbiased
estimate of the discrete objective E_q[f(z)]; `diagnostics` holds
f(\zeta) as "relaxed_objective", z as "hard_samples" and the mean
|\zeta - z| as "relaxation_gap".

References:
  Rolfe, 2017. Discrete variational autoencoders. ICLR.
  Vahdat, Macready, Bian, Khoshaman, Andriyash, 2018a. DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Vahdat, Andriyash, Macready, 2018b. DVAE#: Discrete variational
    autoencoders with relaxed Boltzmann priors. NeurIPS.
"""

import functools
import inspect

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import overlapping
from discrete_vi.estimators import _common
from discrete_vi.estimators import relaxed
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

# The authors' fixed inverse temperatures (Rolfe 2017; Vahdat et al. 2018a,
# 2018b); the logistic value is ours, matching the exponential family's.
DEFAULT_BETA = {
    "spike_and_exp": 4.0,
    "overlapping_exponential": 10.0,
    "overlapping_logistic": 10.0,
    "power_function": 30.0,
}


# Families whose q(z|zeta) is a smooth function of zeta (r(.|0) and r(.|1)
# share their support), so that f may receive its logits (module docstring).
POSTERIOR_FAMILIES = ("exponential", "logistic", "power_function")
POSTERIOR_KEYWORD = "posterior_logits"


# The smoothing family behind each estimator of this module, by registry name.
FAMILY_OF_ESTIMATOR = {
    "overlapping_exponential": overlapping.EXPONENTIAL,
    "overlapping_logistic": overlapping.LOGISTIC,
    "spike_and_exp": overlapping.SPIKE_AND_EXP,
    "power_function": overlapping.POWER_FUNCTION,
}


def family_and_beta(estimator) -> tuple[overlapping.Smoothing, Array]:
  r"""The smoothing family and inverse temperature of a smoothing `Estimator`.

  For models whose objective needs the smoothed densities themselves, e.g.
  the marginal ELBO of DVAE++ (Vahdat et al., 2018a, Eq. 5), whose KL
  between the mixtures q(\zeta|x) and p(\zeta) is estimated with
  `overlapping.log_prob(family, logits, zeta, beta)` at the estimator's
  samples.

  Args:
    estimator: an `Estimator` from `estimators.make` (or `EstimatorSpec.at`)
      whose name is a key of `FAMILY_OF_ESTIMATOR`.

  Returns:
    `(family, beta)`: the `overlapping.Smoothing` family, and the bound
    `beta` option (possibly traced, when annealed) or the estimator's
    default `DEFAULT_BETA[name]`.

  Raises:
    ValueError: naming the estimator if it is not a smoothing estimator.
  """
  name = getattr(estimator, "name", None)
  if name not in FAMILY_OF_ESTIMATOR:
    raise ValueError(f"estimator {name!r} is not a smoothing estimator; "
                     f"expected one of {sorted(FAMILY_OF_ESTIMATOR)}.")
  options = getattr(estimator, "options", {}) or {}
  beta = options.get("beta")
  if beta is None:
    beta = DEFAULT_BETA[name]
  return FAMILY_OF_ESTIMATOR[name], beta


def takes_posterior_logits(f: ObjectiveFn) -> bool:
  """Whether f has a parameter named `posterior_logits` (by keyword)."""
  try:
    parameters = inspect.signature(f).parameters
  except (TypeError, ValueError):  # no signature (some builtins)
    return False
  parameter = parameters.get(POSTERIOR_KEYWORD)
  return parameter is not None and parameter.kind in (
      inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def smoothing_sample(name: str, key: PRNGKey, logits: Array, *,
                     distribution: str = "bernoulli", beta=None
                     ) -> relaxed.PathwiseSample:
  r"""The draw the smoothing estimator `name` evaluates f at.

  Returns:
    `PathwiseSample(z=\zeta, hard=z, posterior_logits=\mathrm{logit}\,
    q(z = 1 | \zeta))` (spike-and-exp: the logits of q themselves, the
    mean of its step-function posterior; module docstring).

  References:
    Vahdat et al., 2018a, Sec. 5: \nu = \sigma(g(\mu) + \log[r(\zeta|1) /
    r(\zeta|0)]), with E_{q(\zeta)}[\nu] = \mu.
  """
  smoothing = FAMILY_OF_ESTIMATOR[name]
  beta = DEFAULT_BETA[name] if beta is None else beta
  _common.check_distribution(distribution, ("bernoulli",), estimator=name)
  logits = jnp.asarray(logits)
  _common.check_logits(logits, distribution)
  checks.check_positive("beta", beta)
  zeta, z = overlapping.sample(smoothing, key, logits, beta)  # [..., D]
  if smoothing.name in POSTERIOR_FAMILIES:
    posterior = overlapping.posterior_logits(smoothing, logits, zeta, beta)
  else:
    posterior = logits
  return relaxed.PathwiseSample(zeta, jax.lax.stop_gradient(z),
                                posterior_logits=posterior)


def _smoothed_estimate(name: str, key: PRNGKey, logits: Array,
                       f: ObjectiveFn, distribution: str, beta
                       ) -> tuple[Array, EstimatorAux]:
  """loss = -f(zeta) with zeta ~ q(zeta) reparameterised; f(z) in aux."""
  sample = smoothing_sample(name, key, logits, distribution=distribution,
                            beta=beta)
  relaxed_f = f
  if takes_posterior_logits(f):
    relaxed_f = functools.partial(
        f, **{POSTERIOR_KEYWORD: sample.posterior_logits})
  relaxed_value = _common.call_objective_per_example(
      relaxed_f, sample.z, logits, distribution, name)  # [...]
  hard = _common.call_objective_per_example(f, sample.hard, logits,
                                            distribution, name)
  gap = jnp.mean(jnp.abs(jax.lax.stop_gradient(sample.z) - sample.hard))
  diagnostics = {"relaxed_objective": jax.lax.stop_gradient(relaxed_value),
                 "relaxation_gap": gap, "hard_samples": sample.hard}
  aux = EstimatorAux(objective=hard, samples=sample.z, state=None,
                     diagnostics=diagnostics)
  return -relaxed_value, aux


def overlapping_exponential(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                            state=None, distribution: str = "bernoulli",
                            beta: float = DEFAULT_BETA[
                                "overlapping_exponential"]
                            ) -> tuple[Array, EstimatorAux]:
  r"""DVAE++ overlapping-exponential smoothing: loss = -f(F^{-1}(\rho)).

  r(\zeta|0) \propto e^{-\beta\zeta}, r(\zeta|1) \propto e^{-\beta(1-\zeta)} on
  [0, 1]; \zeta = F^{-1}(\rho), \rho ~ U(0, 1), with F^{-1} the closed-form
  mixture inverse CDF (Eq. 3, in a stable rearrangement), so that
  \nabla_{logits} -loss = f'(\zeta)\, \partial\zeta/\partial logits estimates
  \nabla E_{q(\zeta)}[f(\zeta)] without bias.

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, differentiable on [0, 1]^D, per example `[...]`.
      If it takes a keyword `posterior_logits`, it gets
      logit q(z=1|zeta) there (module docstring).
    state: unused (stateless).
    distribution: must be "bernoulli".
    beta: inverse temperature > 0 (authors: 10).

  Returns:
    `(loss, aux)`: loss `[...]` = -f(\zeta); aux.objective = f(z) at
    z = 1[\rho > 1 - q]; aux.samples = \zeta.

  References:
    Vahdat et al., 2018a, Sec. 3, Eq. 3.
  """
  del state
  return _smoothed_estimate("overlapping_exponential", key, logits, f,
                            distribution, beta)


def overlapping_logistic(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                         state=None, distribution: str = "bernoulli",
                         beta: float = DEFAULT_BETA["overlapping_logistic"]
                         ) -> tuple[Array, EstimatorAux]:
  r"""DVAE++ overlapping-logistic smoothing, with implicit gradients.

  r(\zeta|z) is the logistic density centred at z with scale 1/\beta (support
  R). \zeta is sampled ancestrally (z ~ Bernoulli(q), \zeta = z +
  logit(u)/\beta) and differentiated implicitly:
  \partial\zeta/\partial logits = q(1-q)(R(\zeta|0) - R(\zeta|1))/q(\zeta).

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, differentiable on R^D, per example `[...]`.
      If it takes a keyword `posterior_logits`, it gets
      logit q(z=1|zeta) there (module docstring).
    state: unused (stateless).
    distribution: must be "bernoulli".
    beta: inverse temperature > 0 (default 10: no published value in our
      copy of the paper).

  Returns:
    `(loss, aux)`: loss `[...]` = -f(\zeta); aux.objective = f(z) at the
    ancestral z; aux.samples = \zeta.

  References:
    Vahdat et al., 2018a, Sec. 3 and Appendix B; Figurnov et al., 2018
    (implicit reparameterisation gradients).
  """
  del state
  return _smoothed_estimate("overlapping_logistic", key, logits, f,
                            distribution, beta)


def spike_and_exp(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                  state=None, distribution: str = "bernoulli",
                  beta: float = DEFAULT_BETA["spike_and_exp"]
                  ) -> tuple[Array, EstimatorAux]:
  r"""DVAE spike-and-exponential smoothing: loss = -f(F^{-1}(\rho)).

  r(\zeta|0) = \delta(\zeta), r(\zeta|1) \propto e^{\beta\zeta} on [0, 1];
  \zeta = 0 if \rho <= 1 - q, else
  \zeta = \beta^{-1}\log((e^\beta - 1)((\rho - 1)/q + 1) + 1) (evaluated in
  log space). Here z = 1[\rho > 1 - q] = 1[\zeta > 0] is exactly the z
  underlying \zeta.

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, differentiable on [0, 1]^D, per example `[...]`.
    state: unused (stateless).
    distribution: must be "bernoulli".
    beta: inverse temperature > 0 (authors: 4).

  Returns:
    `(loss, aux)`: loss `[...]` = -f(\zeta); aux.objective = f(z);
    aux.samples = \zeta.

  References:
    Rolfe, 2017, Sec. 2.1; Vahdat et al., 2018a, Sec. 2.
  """
  del state
  return _smoothed_estimate("spike_and_exp", key, logits, f,
                            distribution, beta)


def power_function(key: PRNGKey, logits: Array, f: ObjectiveFn, *,
                   state=None, distribution: str = "bernoulli",
                   beta: float = DEFAULT_BETA["power_function"]
                   ) -> tuple[Array, EstimatorAux]:
  r"""DVAE# power-function smoothing, with implicit gradients.

  r(\zeta|0) = \lambda\zeta^{\lambda-1}, r(\zeta|1) = r(1-\zeta|0),
  \lambda = 1/\beta, on [0, 1]. \zeta is sampled ancestrally (\zeta = u^\beta
  or 1 - (1-u)^\beta given z) and differentiated implicitly:
  \partial\zeta/\partial logits = q(1-q)(R(\zeta|0) - R(\zeta|1))/q(\zeta).

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli logits.
    f: objective to maximise, differentiable on [0, 1]^D, per example `[...]`.
      If it takes a keyword `posterior_logits`, it gets
      logit q(z=1|zeta) there (module docstring).
    state: unused (stateless).
    distribution: must be "bernoulli".
    beta: inverse temperature > 0 (authors: 30).

  Returns:
    `(loss, aux)`: loss `[...]` = -f(\zeta); aux.objective = f(z) at the
    ancestral z; aux.samples = \zeta.

  References:
    Vahdat et al., 2018b (power-function smoothing); Figurnov et al., 2018.
  """
  del state
  return _smoothed_estimate("power_function", key, logits, f,
                            distribution, beta)
