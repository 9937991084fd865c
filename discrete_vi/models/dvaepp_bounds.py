r"""Per-sample KL terms of the DVAE++ bounds, factorial and directed priors.

Pure functions of logits, smoothed samples and prior logits, used by
`discrete_vi.models.dvaepp` and `discrete_vi.models.dvaepp_conv` (Vahdat et
al., 2018, Sec. 4):

* Joint ELBO (Eq. 4): closed-form KL(q(z_g|.) || p(z_g|.)) between factorial
  Bernoullis, group 2's at the sampled \zeta_1 (`joint_kl`).
* Marginal ELBO (Eq. 5): KL(q(\zeta_g|.) || p(\zeta_g|.)) between the
  smoothed mixtures, one Monte Carlo sample log q(\zeta) - log p(\zeta) at
  the estimator's \zeta, densities in log space (`marginal_kl`).

The RBM prior's KL (Eqs. 6-7), log Z and chains are in
`discrete_vi.stochastic.rbm_prior`.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
"""

import jax.numpy as jnp

from discrete_vi import sums
from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import overlapping
from discrete_vi.types import Array


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
