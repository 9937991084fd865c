"""Models: Flax Linen modules with pure training and evaluation functions.

Every model family satisfies the contract of `base.Model` (`init`,
`init_state`, `loss`, `log_likelihood`, `sample`, `extra_evaluations`) and
has one entry in `registry.MODELS` that validates and builds it from a run
config, so the training loop runs any family with any compatible estimator.
"""

from discrete_vi.models import base
from discrete_vi.models import registry
from discrete_vi.models import sbn
from discrete_vi.models.base import Model, ModelAux
from discrete_vi.models.sbn import SigmoidBeliefNet

__all__ = ["Model", "ModelAux", "SigmoidBeliefNet", "base", "registry", "sbn"]
