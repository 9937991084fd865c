"""Every check of a run config, done before any data is read or file written.

`validate_config(config)` raises a ValueError that names the first bad field
(`config.<section>.<field>=<value>`): train and evaluation budgets, data,
model (through its registry entry), estimator (option names and values, see
`estimator_spec.resolve`), optimiser and schedule, and the device mesh.
"""

from typing import Any, Mapping

from discrete_vi import checks
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi.models import registry
from discrete_vi.training import estimator_spec
from discrete_vi.training import optim
from discrete_vi.training import parallel
from discrete_vi.training import schedules

Config = Mapping[str, Any]

# (field, minimum) of every integer budget.
INTEGER_FIELDS = (
    ("seed", 0),
    ("train.num_steps", 1), ("train.batch_size", 1),
    ("train.steps_per_jit", 1), ("train.log_every_steps", 1),
    ("train.checkpoint_every_steps", 1), ("train.kl_warmup_steps", 0),
    ("eval.every_steps", 1), ("eval.num_samples", 1),
    ("eval.final_num_samples", 1), ("eval.chunk_size", 1),
    ("eval.batch_size", 1), ("eval.num_image_samples", 0),
)


def _field(config: Config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def validate_budgets(config: Config) -> None:
  """Integer budgets and the optional wall-clock budget of training."""
  for dotted, minimum in INTEGER_FIELDS:
    checks.check_int(f"config.{dotted}", _field(config, dotted), minimum)
  budget = config["train"].get("time_budget_s")
  if budget is not None:
    checks.check_positive("config.train.time_budget_s", budget)
  max_examples = config["eval"].get("max_examples")
  if max_examples is not None:
    checks.check_int("config.eval.max_examples", max_examples, 1)


def validate_data(config: Config) -> None:
  """The dataset name, binarisation and whether a local path is given.

  Binary datasets take one of `data.BINARIZATIONS`; 8-bit ("uint8") ones,
  e.g. "cifar10", are never binarised and take only "none".
  """
  data = config["data"]
  checks.check_one_of("config.data.name", data["name"],
                      sorted(data_lib.DATASETS))
  if data_lib.DATASETS[data["name"]].value_type == "binary":
    checks.check_one_of("config.data.binarization", data["binarization"],
                        data_lib.BINARIZATIONS)
  elif data["binarization"] != data_lib.NO_BINARIZATION:
    raise ValueError(f"config.data.binarization={data['binarization']!r} "
                     f"does not apply to config.data.name={data['name']!r} "
                     f"(8-bit values, kept as they are); set "
                     f"config.data.binarization="
                     f"{data_lib.NO_BINARIZATION!r}.")
  if data["name"] in data_lib.LOCAL_DATASETS and not data.get("path"):
    raise ValueError(f"config.data.path must name the file or directory of "
                     f"config.data.name={data['name']!r}.")
  if data["name"] == "mnist5k" and data.get("path"):
    raise ValueError(f"config.data.path={data['path']!r} must be unset for "
                     f"the embedded config.data.name='mnist5k'.")


def validate_optimizer(config: Config) -> None:
  """The optimiser, its schedule and hyperparameters, and its groups."""
  spec = config["optim"]
  checks.check_one_of("config.optim.name", spec["name"], optim.OPTIMIZERS)
  checks.check_one_of("config.optim.schedule", spec["schedule"],
                      schedules.LEARNING_RATE_SCHEDULES)
  checks.check_positive("config.optim.learning_rate", spec["learning_rate"])
  for name in ("b1", "b2"):
    checks.check_in_range(f"config.optim.{name}", spec[name], 0.0, 1.0,
                          high_open=True)
  checks.check_positive("config.optim.eps", spec["eps"])
  if spec.get("grad_clip_norm") is not None:
    checks.check_positive("config.optim.grad_clip_norm",
                          spec["grad_clip_norm"])
  for group, group_spec in dict(spec.get("groups") or {}).items():
    group_spec = dict(group_spec)
    if "name" in group_spec:
      checks.check_one_of(f"config.optim.groups.{group}.name",
                          group_spec["name"], optim.OPTIMIZERS)
    if "learning_rate" in group_spec:
      checks.check_positive(f"config.optim.groups.{group}.learning_rate",
                            group_spec["learning_rate"])


def validate_diagnostics(config: Config) -> None:
  """`config.diagnostics`: the budgets, and a reference estimator that is
  unbiased, stateless and accepted by the model."""
  section = config.get("diagnostics")
  if section is None:
    return
  checks.check_int("config.diagnostics.every_steps", section["every_steps"], 0)
  checks.check_int("config.diagnostics.num_draws", section["num_draws"], 2)
  groups = section.get("groups") or ()
  if isinstance(groups, str) or not all(isinstance(g, str) for g in groups):
    raise ValueError(f"config.diagnostics.groups={groups!r} must be a tuple "
                     "of parameter names.")
  reference = section.get("reference")
  if reference is None:
    return
  checks.check_int("config.diagnostics.reference_draws",
                   section["reference_draws"], 2)
  unbiased = sorted(n for n in estimators.ESTIMATORS
                    if n not in estimators.BIASED
                    and n not in estimators.STATE_INITS)
  checks.check_one_of("config.diagnostics.reference", reference, unbiased)
  accepted = registry.MODELS[config["model"]["name"]].estimators(config)
  if reference not in accepted:
    raise ValueError(f"config.diagnostics.reference={reference!r} is not an "
                     f"estimator model {config['model']['name']!r} accepts "
                     f"here; it accepts {sorted(accepted)}.")
  num_samples = section.get("reference_num_samples")
  if num_samples is not None:
    checks.check_int("config.diagnostics.reference_num_samples",
                     num_samples, 1)
    if "num_samples" not in estimators.options_of(reference):
      raise ValueError(
          f"config.diagnostics.reference_num_samples={num_samples} does not "
          f"apply: estimator {reference!r} takes no num_samples.")


def validate_config(config: Config) -> estimator_spec.EstimatorSpec:
  """Raises ValueError naming the first bad field; nothing is read or written.

  Returns:
    The run's resolved estimator.
  """
  validate_budgets(config)
  validate_data(config)
  registry.validate_model_config(config)
  spec = estimator_spec.resolve(config)
  validate_optimizer(config)
  validate_diagnostics(config)
  parallel.validate_config(config)
  return spec
