"""Pieces of the evidence lower bound (ELBO).

For a latent-variable model p(x, z) and an approximate posterior q(z|x),

  log p(x) >= E_{q(z|x)}[log p(x|z) + log p(z) - log q(z|x)] = ELBO.

The estimators of `discrete_vi.estimators` take the integrand inside the
expectation as their objective f(z); this module supplies its pieces.
"""

import jax
import jax.numpy as jnp

from discrete_vi import sums
from discrete_vi.distributions import bernoulli
from discrete_vi.types import Array, ArrayLike


def bernoulli_log_likelihood(logits: ArrayLike, x: ArrayLike) -> Array:
  r"""log p(x | logits) of binary data, summed over the last (pixel) axis.

  \log p(x) = \sum_i x_i \log\sigma(l_i) + (1 - x_i) \log\sigma(-l_i),
  computed with log-sigmoids so that it is finite at any logit. The formula is
  linear in x, so it also gives the (multilinear) extension used for relaxed
  values x in [0, 1].

  Args:
    logits: `[..., P]` Bernoulli logits of the P pixels.
    x: `[..., P]` data in {0, 1} (or in [0, 1]); broadcast against logits.

  Returns:
    `[...]` log-likelihood per example.
  """
  return sums.sum_last(bernoulli.log_prob(logits, x))


def elbo_integrand(log_likelihood: ArrayLike, log_prior: ArrayLike,
                   log_posterior: ArrayLike, kl_weight: ArrayLike = 1.0
                   ) -> Array:
  r"""The (KL-weighted) ELBO integrand at one sample z.

  \log p(x|z) + \beta (\log p(z) - \log q(z|x)); with \beta = 1 its
  expectation under q is the ELBO, and with \beta < 1 (KL warm-up, Sønderby et
  al. 2016; used by DVAE++, Vahdat et al. 2018) the KL term is down-weighted.

  Args:
    log_likelihood: log p(x|z), `[...]`.
    log_prior: log p(z), `[...]`.
    log_posterior: log q(z|x), `[...]`.
    kl_weight: beta, a scalar (may be traced).

  Returns:
    `[...]` the integrand.
  """
  return log_likelihood + kl_weight * (log_prior - log_posterior)


def kl_warmup_factor(step: ArrayLike, warmup_steps: int) -> Array:
  r"""The KL warm-up factor \min(step / warmup\_steps, 1).

  DVAE++ (Vahdat et al., 2018) warms up over the first 30 % of training:
  `warmup_steps = 0.3 * num_steps`.

  Args:
    step: the training step (int, may be traced).
    warmup_steps: length of the warm-up (a Python number); 0 means no
      warm-up (factor 1 from the first step).

  Returns:
    A float32 scalar in [0, 1].

  Raises:
    ValueError: if `warmup_steps` is negative.
  """
  if warmup_steps < 0:
    raise ValueError(f"warmup_steps must be >= 0; got warmup_steps="
                     f"{warmup_steps!r}.")
  if warmup_steps == 0:
    return jnp.ones((), jnp.float32)
  step = jnp.asarray(step, jnp.float32)
  return jnp.clip(step / float(warmup_steps), 0.0, 1.0)
