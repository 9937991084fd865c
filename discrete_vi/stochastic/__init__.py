"""Stochastic layers and priors: the parts models are assembled from.

- `latents`: latent parts (`Bernoulli`, `Categorical`, `Normal`), each
  owning its sampling under an estimator, log-mass / density, analytic KL
  and the estimators it accepts (`check_estimator`); `Draw`.
- `chain`: one way to chain layers under estimators (pathwise layers in one
  pass, score-function layers nested with per-layer states and baselines,
  the honest objective on the all-hard path): `training_pass`, and the
  samplers `hard_sampler`, `fixed_sampler`, `relaxed_sampler`.
- `rbm_prior`: the RBM prior of DVAE++ (persistent Gibbs chains, the log Z
  gradient surrogate, log Z by enumeration or AIS, sampling).
"""

from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.stochastic import rbm_prior
from discrete_vi.stochastic.chain import training_pass
from discrete_vi.stochastic.latents import Bernoulli, Categorical, Draw, Normal
from discrete_vi.stochastic.rbm_prior import RBMPrior

__all__ = ["Bernoulli", "Categorical", "Draw", "Normal", "RBMPrior", "chain",
           "latents", "rbm_prior", "training_pass"]
