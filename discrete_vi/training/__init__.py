"""Training: train state, jitted steps, schedules, checkpoints, writers, loop."""

from discrete_vi.training.loop import NonFiniteError, train_and_evaluate
from discrete_vi.training.steps import TrainState

__all__ = ["NonFiniteError", "TrainState", "train_and_evaluate"]
