r"""The per-sample KL terms of the DVAE++ bounds, and log Z for evaluation.

Pure functions of logits, smoothed samples and prior parameters, used by
`discrete_vi.models.dvaepp` (Vahdat et al., 2018). Notation of the paper:
\mu_g = q(z_g = 1 | .) the encoder's means of group g, \nu_g = q(z_g = 1 |
., \zeta_g) the posterior of z_g given its smoothed \zeta_g,

  \nu_g = \sigma(g(\mu_g) + \log[r(\zeta_g|1) / r(\zeta_g|0)])  (Sec. 5),

which the smoothing estimators hand to the objective as `posterior_logits`
(`discrete_vi.estimators.smoothing`).

* Joint ELBO (Eq. 4): closed-form KL(q(z_g|.) || p(z_g|.)) between factorial
  Bernoullis, group 2's at the sampled \zeta_1 (`joint_kl`).
* Marginal ELBO (Eq. 5): KL(q(\zeta_g|.) || p(\zeta_g|.)) between the
  smoothed mixtures, one Monte Carlo sample log q(\zeta) - log p(\zeta) at
  the estimator's \zeta, densities in log space (`marginal_kl`).
* RBM prior (Eqs. 6-7): the KL minus log Z, analytic given \zeta_1
  (`rbm_kl_without_log_z`); log Z itself is estimated for evaluation by
  `estimate_log_z` (exact enumeration or AIS).

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from discrete_vi import sums
from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import overlapping
from discrete_vi.distributions import rbm
from discrete_vi.types import Array, PRNGKey

LOG_Z_METHODS = ("exact", "ais", "auto")


def joint_kl(q_logits: Array, p_logits: Array) -> Array:
  r"""KL(q(z|.) || p(z|.)) of factorial Bernoullis, summed over units, `[...]`.

  One group's term of the joint ELBO (Vahdat et al., 2018, Eq. 4); for the
  second group both logits are functions of the sampled \zeta_1, so the
  expectation E_{q(\zeta_1|x)}[KL(q(z_2|x,\zeta_1) || p(z_2|\zeta_1))] is
  estimated by this term at that sample.

  Args:
    q_logits: `[..., n]` logits of q(z_g = 1 | .).
    p_logits: `[..., n]` (or `[n]`) logits of the prior p(z_g = 1 | .).
  """
  return sums.sum_last(bernoulli.kl_divergence(
      q_logits, jnp.broadcast_to(p_logits, jnp.shape(q_logits))))


def marginal_kl(smoothing: overlapping.Smoothing, q_logits: Array,
                p_logits: Array, zeta: Array, beta) -> Array:
  r"""log q(\zeta|.) - log p(\zeta|.) of the smoothed mixtures, `[...]`.

  One group's one-sample Monte Carlo estimate of the KL of the marginal ELBO
  (Vahdat et al., 2018, Eq. 5) at \zeta ~ q(\zeta|.), with
  q(\zeta) = \sum_z q(z) r(\zeta|z) and p(\zeta) = \sum_z p(z) r(\zeta|z)
  (Eq. 2) evaluated by `overlapping.log_prob` (a log-sum-exp of the two
  components: finite at \zeta \in \{0, 1\} and at large beta). Its gradient
  is pathwise through \zeta and direct through the logits.

  Args:
    smoothing: the family of r(\zeta|z).
    q_logits: `[..., n]` logits of q(z_g = 1 | .).
    p_logits: `[..., n]` (or `[n]`) logits of p(z_g = 1 | .).
    zeta: `[..., n]` the sample of q(\zeta_g | .).
    beta: the inverse temperature (may be traced).
  """
  p_logits = jnp.broadcast_to(p_logits, jnp.shape(q_logits))
  return sums.sum_last(overlapping.log_prob(smoothing, q_logits, zeta, beta) -
                       overlapping.log_prob(smoothing, p_logits, zeta, beta))


def rbm_kl_without_log_z(params: rbm.RBMParams, logits1: Array, nu1: Array,
                         logits2: Array) -> Array:
  r"""The KL of Eq. (7) minus log Z, at one sample \zeta_1, `[...]`.

  KL(q(z, \zeta | x) || p(z, \zeta)) = \log Z - H(q(z_1|x))
    - E_{q(\zeta_1|x)}[H(q(z_2|x,\zeta_1))] - a_1^T \mu_1
    - E_{q(\zeta_1|x)}[a_2^T \mu_2 + \nu_1^T W \mu_2]        (Eq. 7)

  with everything but log Z analytic given the encoder's sample \zeta_1
  (through \mu_2 = \mu_2(x, \zeta_1) and \nu_1 = \nu_1(x, \zeta_1)). With a
  non-hierarchical encoder (\mu_2 independent of \zeta_1) pass \nu_1 = \mu_1:
  the mean-field KL, exact in expectation since E[\nu_1] = \mu_1.

  Args:
    params: the RBM (a1 `[n1]`, a2 `[n2]`, w `[n1, n2]`).
    logits1: `[..., n1]` logits of q(z_1 = 1 | x) (so \mu_1 = sigmoid).
    nu1: `[..., n1]` \nu_1 = q(z_1 = 1 | x, \zeta_1) in [0, 1].
    logits2: `[..., n2]` logits of q(z_2 = 1 | x, \zeta_1).

  Returns:
    `[...]` cross-entropy minus entropy, log Z excluded.
  """
  mu1 = jax.nn.sigmoid(logits1)
  mu2 = jax.nn.sigmoid(logits2)
  entropy = (sums.sum_last(bernoulli.entropy(logits1)) +
             sums.sum_last(bernoulli.entropy(logits2)))
  cross_entropy = -(mu1 @ params.a1 + mu2 @ params.a2 +
                    jnp.sum((nu1 @ params.w) * mu2, -1))
  return cross_entropy - entropy


def weight_decay(params: rbm.RBMParams, rate: float) -> Array:
  r"""(rate / 2) (|a_1|^2 + |a_2|^2 + |W|^2): L2 on the RBM, gradient rate * params."""
  return 0.5 * rate * sum(jnp.sum(jnp.square(p)) for p in params)


class LogZ(NamedTuple):
  """An evaluation log Z of the RBM prior: value, standard error, method."""
  log_z: Array
  stderr: Array
  method: str


def log_z_method(method: str, num_units: tuple[int, int]) -> str:
  """"exact" or "ais": `method`, with "auto" exact when a half has <= 20 units.

  Raises:
    ValueError: for an unknown method, or "exact" when both halves are
      larger than `rbm.MAX_ENUMERATED_UNITS`.
  """
  if method not in LOG_Z_METHODS:
    raise ValueError(f"log_z={method!r} is unknown; expected one of "
                     f"{LOG_Z_METHODS}.")
  small = min(num_units) <= rbm.MAX_ENUMERATED_UNITS
  if method == "exact" and not small:
    raise ValueError(f"log_z='exact' enumerates one half of the RBM, which "
                     f"must have at most {rbm.MAX_ENUMERATED_UNITS} units; "
                     f"got halves of {num_units}.")
  if method == "auto":
    return "exact" if small else "ais"
  return method


def estimate_log_z(key: PRNGKey, params: rbm.RBMParams, method: str, *,
                   ais_num_chains: int = 1024,
                   ais_num_temperatures: int = 1000) -> LogZ:
  """log Z for evaluating the discrete model, by enumeration or AIS.

  Args:
    key: PRNG key (AIS only).
    params: the RBM.
    method: "exact", "ais" or "auto" (`log_z_method`).
    ais_num_chains: AIS runs (1024 as the authors).
    ais_num_temperatures: linearly spaced inverse temperatures (1000).

  Returns:
    `LogZ(log_z, stderr, method)`: stderr 0 for the exact value, AIS's
    delta-method standard error otherwise (`rbm.ais_log_z`).
  """
  method = log_z_method(method, rbm.num_units(params))
  params = jax.lax.stop_gradient(params)
  if method == "exact":
    log_z = rbm.exact_log_z(params)
    return LogZ(log_z, jnp.zeros_like(log_z), method)
  result = rbm.ais_log_z(key, params, num_chains=ais_num_chains,
                         num_temperatures=ais_num_temperatures)
  return LogZ(result.log_z, result.stderr, method)
