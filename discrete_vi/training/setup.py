"""The one recipe from a config to a ready train state.

    dataset = load_data(config)
    run = create_train_state(config, dataset)   # model, optimiser, state, ...

The training loop, the comparison launchers, the benchmarks and the tests all
start here, so a model family needs nothing beyond its registry entry.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from discrete_vi import data as data_lib
from discrete_vi.models import base
from discrete_vi.models import registry
from discrete_vi.training import estimator_spec
from discrete_vi.training import optim
from discrete_vi.training import steps as steps_lib


class Setup(NamedTuple):
  """A model with everything needed to train it.

  Attributes:
    model: the `base.Model` of `config.model`.
    estimator: the resolved estimator of `config.estimator`.
    tx: the optimiser of `config.optim`.
    state: the initial `TrainState` (seeded by `config.seed`).
    x_example: `[batch_size, D]` the first training batch (shapes of init).
  """
  model: base.Model
  estimator: estimator_spec.EstimatorSpec
  tx: optax.GradientTransformation
  state: steps_lib.TrainState
  x_example: Any


def load_data(config: ml_collections.ConfigDict) -> data_lib.Dataset:
  """The dataset of `config.data`, binarised with `config.seed`."""
  return data_lib.load_dataset(config.data.name, path=config.data.path,
                               binarization=config.data.binarization,
                               seed=config.seed)


def create_train_state(config: ml_collections.ConfigDict,
                       dataset: data_lib.Dataset) -> Setup:
  """Builds the model, initialises it and its optimiser: step 0 of a run.

  Args:
    config: a run config (validated here: ValueError naming a bad field).
    dataset: the run's data (`load_data`).

  Returns:
    A `Setup`. The state's key, parameters and model state are derived from
    `config.seed`, so the same config gives the same initial state.
  """
  estimator = estimator_spec.resolve(config)
  model = registry.build_model(config, dataset.spec)
  x_example = jnp.asarray(dataset.train[:config.train.batch_size])
  init_key, state_key, train_key = jax.random.split(
      jax.random.PRNGKey(config.seed), 3)
  params = model.init(init_key, x_example)
  model_state = model.init_state(state_key, params, x_example,
                                 estimator.at(0))
  tx = optim.make_optimizer(config.optim.to_dict(), params,
                            config.train.num_steps)
  state = steps_lib.TrainState(params=params, opt_state=tx.init(params),
                               model_state=model_state,
                               step=jnp.zeros((), jnp.int32), key=train_key)
  return Setup(model, estimator, tx, state, x_example)
