"""Training: train state, jitted steps, schedules, checkpoints, writers, loop.

    dataset = setup.load_data(config)
    run = setup.create_train_state(config, dataset)   # model, tx, state
    results = train_and_evaluate(config, workdir)
    model, state, config = restore_run(workdir)      # its best checkpoint
"""

from discrete_vi.training.loop import NonFiniteError, restore_run, train_and_evaluate
from discrete_vi.training.setup import Setup, create_train_state, load_data
from discrete_vi.training.steps import TrainState
from discrete_vi.training.validation import validate_config

__all__ = ["NonFiniteError", "Setup", "TrainState", "create_train_state",
           "load_data", "restore_run", "train_and_evaluate", "validate_config"]
