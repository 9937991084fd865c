r"""A tiny config for tests: a linear SBN with 8 latents, a few steps.

    python -m experiments.main --config=configs/test.py --workdir=/tmp/test

Runs in seconds on a CPU; targets no paper number.
"""

import ml_collections

from configs import common
from configs import sbn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Tiny settings; `arg` may name the estimator (default reinforce)."""
  config = common.base_config()
  config.model = sbn.model_section("linear")
  config.model.num_latents = 8
  config.model.hidden_size = 16
  config.estimator.name = arg or "reinforce"
  config.train.num_steps = 6
  config.train.batch_size = 16
  config.train.steps_per_jit = 2
  config.train.log_every_steps = 2
  config.train.checkpoint_every_steps = 2
  config.optim.learning_rate = 1e-3
  config.eval.every_steps = 4
  config.eval.num_samples = 4
  config.eval.final_num_samples = 8
  config.eval.chunk_size = 4
  config.eval.batch_size = 250
  config.eval.num_image_samples = 10
  return config
