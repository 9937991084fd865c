"""The config schema shared by every experiment (defaults of every field).

Every field a command line may override exists here, so that
`--config.estimator.num_samples=5` works for any config. Estimator options
left at None take the estimator's own default.
"""

import ml_collections
from ml_collections import config_dict


def base_config() -> ml_collections.ConfigDict:
  """Defaults for data, model, estimator, train, optim and eval."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "mnist5k"
  config.data.path = config_dict.placeholder(str)
  config.data.binarization = "static"

  config.model = ml_collections.ConfigDict()
  config.model.name = "sbn"
  config.model.architecture = "linear"
  config.model.num_latents = 200
  config.model.hidden_size = 200
  config.model.activation = "tanh"
  config.model.input_baseline = False  # NVIL's input-dependent baseline.

  config.estimator = ml_collections.ConfigDict()
  config.estimator.name = "reinforce"
  config.estimator.baseline = config_dict.placeholder(str)
  config.estimator.num_samples = config_dict.placeholder(int)
  config.estimator.temperature = config_dict.placeholder(float)
  config.estimator.beta = config_dict.placeholder(float)
  config.estimator.decay = config_dict.placeholder(float)
  config.estimator.greedy = config_dict.placeholder(bool)
  config.estimator.variant = config_dict.placeholder(str)
  config.estimator.eta = config_dict.placeholder(float)
  config.estimator.learn_control_variate = config_dict.placeholder(bool)
  config.estimator.cv_learning_rate = config_dict.placeholder(float)
  # Linear annealing of temperature / beta from the value above to *_end.
  config.estimator.temperature_end = config_dict.placeholder(float)
  config.estimator.beta_end = config_dict.placeholder(float)
  config.estimator.anneal_steps = 0

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 10_000
  config.train.batch_size = 24
  config.train.steps_per_jit = 10  # train steps fused in one lax.scan.
  config.train.log_every_steps = 500
  config.train.checkpoint_every_steps = 5_000
  config.train.kl_warmup_steps = 0
  # Split each batch over all devices (a 1-D mesh) when there are several;
  # batch_size must then be a multiple of the device count.
  config.train.data_parallel = True
  # Stop training after this many seconds (periodic evaluation excluded),
  # e.g. to compare models at equal wall-clock cost; None: no limit.
  config.train.time_budget_s = config_dict.placeholder(float)

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"
  config.optim.learning_rate = 3e-4
  config.optim.schedule = "constant"
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.eps = 1e-8
  config.optim.grad_clip_norm = config_dict.placeholder(float)
  # Per-group optimisers, e.g. {"prior": {"name": "sgd", "learning_rate": 1e-2}}.
  config.optim.groups = ml_collections.ConfigDict()

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 5_000
  config.eval.num_samples = 100         # bound used during training
  config.eval.final_num_samples = 1_000  # bound of the final test evaluation
  config.eval.chunk_size = 100
  config.eval.batch_size = 100
  config.eval.num_image_samples = 100
  return config
