r"""Per-sample KL terms of the DVAE++ bounds, factorial priors.

Pure functions of one group's parameters of q and p and its draw, used by
`discrete_vi.models.dvaepp` and `discrete_vi.models.dvaepp_conv` (Vahdat et
al., 2018, Secs. 4 and 6):

* Joint ELBO (Eq. 4): the closed-form KL(q(z_g|.) || p(z_g|.)) between
  factorial Bernoullis (the part's `latents.Bernoulli.kl`), group 2's at
  the sampled \zeta_1; continuous groups (normal, Sec. 6) likewise take
  their closed-form KL (`latents.Normal.kl`).
* Marginal ELBO (Eq. 5): KL(q(\zeta_g|.) || p(\zeta_g|.)) between the
  smoothed mixtures, one Monte Carlo sample log q(\zeta) - log p(\zeta) at
  the estimator's \zeta, densities in log space (`marginal_kl`).

`group_kl` picks one of the two for a group. The RBM prior's KL (Eqs. 6-7),
log Z and chains are in `discrete_vi.stochastic.rbm_prior`.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
"""

from typing import Any, Optional

import jax.numpy as jnp

from discrete_vi import sums
from discrete_vi.distributions import overlapping
from discrete_vi.stochastic import latents
from discrete_vi.types import Array


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


def group_kl(part: Any, q_params: Array, p_params: Array,
             draw: latents.Draw, marginal: Optional[tuple] = None) -> Array:
  r"""One group's KL term of the training bound, `[...]`.

  The closed-form KL(q || p) of the group's part (`part.kl`: Eq. 4's term
  for a Bernoulli group, the normal KL for a continuous one), or for a
  discrete group with `marginal` the one-sample KL between the smoothed
  mixtures at the draw's \zeta (Eq. 5, `marginal_kl`).

  Args:
    part: the group's latent part (`stochastic.latents`).
    q_params: `[..., n(, 2)]` parameters of q(z_g | .).
    p_params: parameters of p(z_g | .), broadcastable to `q_params`.
    draw: the group's `latents.Draw` (\zeta for smoothed groups).
    marginal: None, or `(smoothing family, beta)` of the estimator
      (`estimators.smoothing.family_and_beta`) for the marginal KL.
  """
  if marginal is None or part.continuous:
    return part.kl(q_params, jnp.broadcast_to(p_params, jnp.shape(q_params)))
  smoothing, beta = marginal
  return marginal_kl(smoothing, q_params, p_params, draw.z, beta)
