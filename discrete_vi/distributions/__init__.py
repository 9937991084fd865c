"""Distributions over binary and categorical variables and their relaxations.

- `bernoulli`, `categorical`: the discrete distributions (factorised).
- `concrete`: Concrete / Gumbel-softmax relaxations, densities in log space.
- `overlapping`: DVAE / DVAE++ / DVAE# smoothing transformations.
- `discretized_logistic`: factorial mixtures of discretised logistics for
  8-bit data (PixelCNN++), their sampler, and bits per dimension.
- `normal`: factorial normals (density, reparameterised sampler, KL).
- `rbm`: restricted Boltzmann machines (the DVAE++ prior): energies, Gibbs
  sampling, exact and AIS log partition functions.
"""

from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import categorical
from discrete_vi.distributions import concrete
from discrete_vi.distributions import discretized_logistic
from discrete_vi.distributions import normal
from discrete_vi.distributions import overlapping
from discrete_vi.distributions import rbm

__all__ = ["bernoulli", "categorical", "concrete", "discretized_logistic",
           "normal", "overlapping", "rbm"]
