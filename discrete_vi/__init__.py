"""discrete_vi: variational inference with discrete latent variables in JAX.

`import discrete_vi` loads what estimator users need (distributions,
estimators, types); the stochastic parts, data, model and training layers
load on first use (`discrete_vi.data`, or `from discrete_vi import
stochastic, models, training`).
"""

import importlib

from discrete_vi import _xla_workarounds

_xla_workarounds.apply()  # before any JAX computation (module docstring)

# pylint: disable=g-import-not-at-top,wrong-import-position
from discrete_vi import distributions
from discrete_vi import estimators
from discrete_vi.estimators import ESTIMATORS, make
from discrete_vi.types import Estimator, EstimatorAux

__version__ = "0.1.0"

# Subpackages imported on first attribute access.
_LAZY_SUBPACKAGES = ("data", "models", "objectives", "stochastic",
                     "training")


def __getattr__(name: str):
  if name in _LAZY_SUBPACKAGES:
    return importlib.import_module(f"discrete_vi.{name}")
  raise AttributeError(f"module 'discrete_vi' has no attribute {name!r}")


__all__ = ["data", "distributions", "estimators", "ESTIMATORS", "make",
           "Estimator", "EstimatorAux", "models", "objectives", "stochastic",
           "training", "__version__"]
