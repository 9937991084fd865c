"""The tiny training budget of the tests that run a family's config through
the training loop: two steps, a two-sample evaluation of the first 50
examples of each split, checkpoints and logs at every step.
(`launcher_test.TINY_BUDGET` is the same budget as command-line flags.)"""


def tiny(config, *, steps_per_jit: int = 1, image_samples: int = 4):
  """Sets `config`'s train and eval sections to the tiny budget (in place,
  also returned); the model's sizes are the caller's."""
  config.train.num_steps = 2
  config.train.steps_per_jit = steps_per_jit
  config.train.batch_size = 8
  config.train.log_every_steps = 1
  config.train.checkpoint_every_steps = 1
  config.eval.every_steps = 2
  config.eval.num_samples = config.eval.final_num_samples = 2
  config.eval.chunk_size = 2
  config.eval.batch_size = 50
  config.eval.max_examples = 50  # of each 500-digit split
  config.eval.num_image_samples = image_samples
  return config
