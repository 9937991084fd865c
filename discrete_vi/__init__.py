"""discrete_vi: variational inference with discrete latent variables in JAX."""

from discrete_vi import data
from discrete_vi import distributions
from discrete_vi import estimators
from discrete_vi.estimators import ESTIMATORS, make
from discrete_vi.types import Estimator, EstimatorAux

__version__ = "0.1.0"

__all__ = ["data", "distributions", "estimators", "ESTIMATORS", "make", "Estimator",
           "EstimatorAux", "__version__"]
