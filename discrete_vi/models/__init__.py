"""Models: Flax Linen modules with pure training / evaluation functions.

Each model exposes `init`, `loss`, `log_likelihood` and `sample`
(DESIGN.md section 4), so the training loop runs any model with any
compatible estimator.
"""

from discrete_vi.models import sbn
from discrete_vi.models.sbn import SigmoidBeliefNet

__all__ = ["sbn", "SigmoidBeliefNet"]
