"""The config schema shared by every experiment, and `:arg` parsing.

Every field a command line may override exists here, so that
`--config.estimator.num_samples=5` works for any config. The estimator
section is derived from the estimator registry: it has one field per option
that any registered estimator takes (None: not set; see
`discrete_vi.training.estimator_spec` for how unset options are filled).
"""

from typing import Any, Callable, Mapping, Sequence

import ml_collections
from ml_collections import config_dict

from discrete_vi import estimators


def estimator_section() -> ml_collections.ConfigDict:
  """`config.estimator`: the name, every registry option unset, annealing."""
  section = ml_collections.ConfigDict()
  section.name = "reinforce"
  for option, kind in sorted(estimators.option_specs().items()):
    section[option] = config_dict.placeholder(kind)
  # Linear annealing of temperature / beta from the value above to *_end.
  section.temperature_end = config_dict.placeholder(float)
  section.beta_end = config_dict.placeholder(float)
  section.anneal_steps = 0
  # Or piecewise-linear schedules ((step, value), ...) (knot steps fractions
  # of config.train.num_steps with knots_as_fractions); see
  # discrete_vi.training.estimator_spec.
  section.temperature_knots = config_dict.placeholder(tuple)
  section.beta_knots = config_dict.placeholder(tuple)
  section.knots_as_fractions = False
  return section


def parse_arg(arg: str | None, source: str, *, positional: Sequence[str],
              default: str, keys: Mapping[str, tuple[Any, Callable]]
              ) -> dict:
  """Parses a config argument 'NAME[,key=value]...' (the part after ':').

  Args:
    arg: the argument, or None for `default`.
    source: the config file, for error messages ("configs/sbn.py").
    positional: the allowed values of the leading NAME.
    default: NAME when `arg` is None or empty.
    keys: key -> (default value, parse) where `parse(text)` returns the
      value or raises ValueError.

  Returns:
    `{"name": NAME, key: value, ...}` with every key present.

  Raises:
    ValueError: naming the file and the bad part.
  """
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  name = parts[0] if parts else default
  if name not in positional:
    raise ValueError(f"{source}: {name!r} is not one of {tuple(positional)}.")
  out = {"name": name, **{k: value for k, (value, _) in keys.items()}}
  for part in parts[1:]:
    key, sep, text = part.partition("=")
    if not sep or key not in keys:
      raise ValueError(f"{source}: unknown argument {part!r}; expected "
                       f"{', '.join(k + '=' for k in keys)}.")
    try:
      out[key] = keys[key][1](text)
    except ValueError as error:
      raise ValueError(f"{source}: {key}={text!r}: {error}") from None
  return out


def set_dotted(config, dotted: str, value, *, only_if_present: bool = False
               ) -> bool:
  """Sets `config.<dotted>` (e.g. "model.rbm.gibbs_chains") to `value`;
  with `only_if_present`, only when every section and the field exist.
  Returns whether it was set."""
  *path, field = dotted.split(".")
  section = config
  for name in path:
    if only_if_present and name not in section:
      return False
    section = section[name]
  if only_if_present and field not in section:
    return False
  section[field] = value
  return True


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
  """A `parse_arg` parser accepting only `choices`."""
  def parse(text: str) -> str:
    if text not in choices:
      raise ValueError(f"not one of {tuple(choices)}")
    return text
  return parse


def positive_float(text: str) -> float:
  """A `parse_arg` parser for finite numbers > 0."""
  try:
    value = float(text)
  except ValueError:
    raise ValueError("must be a number > 0") from None
  if not 0 < value < float("inf"):
    raise ValueError("must be a number > 0")
  return value


def positive_int(text: str) -> int:
  """A `parse_arg` parser for integers >= 1."""
  if not text.isdigit() or int(text) < 1:
    raise ValueError("must be a positive integer")
  return int(text)


def base_config() -> ml_collections.ConfigDict:
  """Defaults for data, model, estimator, train, optim, eval and
  diagnostics."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "mnist5k"
  config.data.path = config_dict.placeholder(str)
  config.data.binarization = "static"

  # Only the family's name: each config file adds its family's fields
  # (described once by the family's section, e.g. `models.sbn.SBNSection`).
  config.model = ml_collections.ConfigDict()
  config.model.name = "sbn"

  config.estimator = estimator_section()
  # A config file's preferred options per estimator, used when the run's
  # estimator is that one and the option is not set in config.estimator,
  # e.g. config.estimator_defaults.reinforce = {"baseline": "moving_average"}.
  config.estimator_defaults = ml_collections.ConfigDict()

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
  # Stop training after this many seconds (periodic evaluation and the first
  # chunk, which compiles, excluded), e.g. to compare models at equal
  # wall-clock cost; None: no limit.
  config.train.time_budget_s = config_dict.placeholder(float)

  config.optim = ml_collections.ConfigDict()
  config.optim.name = "adam"
  config.optim.learning_rate = 3e-4
  config.optim.schedule = "constant"
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.eps = 1e-8
  config.optim.grad_clip_norm = config_dict.placeholder(float)
  # Per-group optimisers by parameter name, e.g. the SBN prior for DisARM:
  # {"prior_logits": {"name": "sgd", "learning_rate": 1e-2}}.
  config.optim.groups = ml_collections.ConfigDict()

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 5_000
  config.eval.num_samples = 100         # bound used during training
  config.eval.final_num_samples = 1_000  # bound of the final test evaluation
  config.eval.chunk_size = 100
  config.eval.batch_size = 100
  config.eval.num_image_samples = 100
  # Evaluate on the first N examples of the valid / test splits (None: all;
  # results.json records it). For smoke runs; published numbers use all.
  config.eval.max_examples = config_dict.placeholder(int)

  config.diagnostics = diagnostics_section()
  return config


def diagnostics_section() -> ml_collections.ConfigDict:
  """`config.diagnostics`: gradient quality measured while training
  (`discrete_vi.training.gradient_diagnostics`), off by default.

  every_steps: every this many steps (0: never), at the current parameters
    and one fixed training batch, num_draws draws of the training gradient:
    their norm, variance and SNR per parameter group.
  groups: parameter-tree names, one group each (empty: one group per
    top-level entry, layer index stripped).
  reference: an unbiased, stateless estimator (e.g. "rloo", "enumerate")
    drawn reference_draws times (with reference_num_samples when it takes
    num_samples) for the bias of the run's estimator; None: no bias.
  """
  section = ml_collections.ConfigDict()
  section.every_steps = 0
  section.num_draws = 16
  section.groups = ()
  section.reference = config_dict.placeholder(str)
  section.reference_num_samples = config_dict.placeholder(int)
  section.reference_draws = 16
  return section
