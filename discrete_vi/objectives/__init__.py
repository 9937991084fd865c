"""Training and evaluation objectives: ELBO pieces and importance-weighted bounds.

`elbo` holds the pieces of the evidence lower bound (Bernoulli likelihood of
binary data, the weighted ELBO integrand, KL warm-up); `iwae` holds the
max-shifted log-mean-exp and the chunked k-sample importance-weighted bound
used for evaluation with k up to thousands of samples.
"""

from discrete_vi.objectives.elbo import bernoulli_log_likelihood
from discrete_vi.objectives.elbo import elbo_integrand
from discrete_vi.objectives.elbo import kl_warmup_factor
from discrete_vi.objectives.iwae import iwae_bound
from discrete_vi.objectives.iwae import log_mean_exp

__all__ = ["bernoulli_log_likelihood", "elbo_integrand", "kl_warmup_factor",
           "iwae_bound", "log_mean_exp"]
