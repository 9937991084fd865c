r"""Factorial normal distributions N(mean, exp(log_std)^2), elementwise.

The one implementation of the Gaussian latent variables of the HD-VAE
baseline (Lievin et al., 2019, Appendix A) and the continuous groups of the
convolutional DVAE++ (Vahdat et al., 2018, Sec. 6): density, the
reparameterised sampler and the analytic KL divergence. Every function
works per element; callers sum over their event axes.
"""

import math

import jax
import jax.numpy as jnp

from discrete_vi.types import Array, PRNGKey

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def log_prob(mean: Array, log_std: Array, x: Array) -> Array:
  """log N(x; mean, exp(log_std)^2) per element."""
  return -HALF_LOG_2PI - log_std - 0.5 * jnp.square((x - mean) *
                                                    jnp.exp(-log_std))


def sample(key: PRNGKey, mean: Array, log_std: Array) -> Array:
  """mean + exp(log_std) eps, eps ~ N(0, I): the reparameterisation of
  Kingma & Welling (2014, Sec. 2.4)."""
  eps = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
  return mean + jnp.exp(log_std) * eps


def kl(mean_q: Array, log_std_q: Array, mean_p: Array, log_std_p: Array
       ) -> Array:
  r"""KL(N(m_q, s_q^2) || N(m_p, s_p^2)) per element:
  \log(s_p / s_q) + (s_q^2 + (m_q - m_p)^2) / (2 s_p^2) - 1/2."""
  ratio = jnp.exp(2.0 * (log_std_q - log_std_p))
  return (log_std_p - log_std_q + 0.5 * ratio +
          0.5 * jnp.square(mean_q - mean_p) * jnp.exp(-2.0 * log_std_p) - 0.5)
