"""Which estimator a run uses, resolved from its config before anything runs.

`config.estimator` holds what the run asks for: `name`, and every option any
estimator of the registry takes (None: not set), plus the annealing fields
`temperature_end`, `beta_end`, `anneal_steps`. A config file states the
options it prefers for an estimator in `config.estimator_defaults.<name>`
(e.g. the SBN configs: `reinforce` with a moving-average baseline). The
options used are, for each option the named estimator takes:

1. the value set in `config.estimator` (config row or command line), else
2. the config file's preference `config.estimator_defaults.<name>.<option>`,
   else
3. the estimator's own default.

So `--config.estimator.name=vimco` just works on a config that prefers
moving-average REINFORCE, while an option set in `config.estimator` that the
named estimator does not take is an error naming it.
"""

from typing import Any, Mapping, NamedTuple

from discrete_vi import checks
from discrete_vi import estimators
from discrete_vi.training import schedules

# Estimator options that may be annealed: option -> field of its end value.
ANNEALED_OPTIONS = {"temperature": "temperature_end", "beta": "beta_end"}
SCHEDULE_FIELDS = ("temperature_end", "beta_end", "anneal_steps")


class EstimatorSpec(NamedTuple):
  """A resolved estimator: its name, constant options and annealed ones.

  Attributes:
    name: a key of `estimators.ESTIMATORS`.
    options: options with constant values.
    annealed: option -> (start, end, num_steps) of a linear anneal.
  """
  name: str
  options: dict
  annealed: dict

  def at(self, step) -> estimators.Estimator:
    """The estimator with annealed options evaluated at `step` (traced ok)."""
    options = dict(self.options)
    for option, (start, end, num_steps) in self.annealed.items():
      options[option] = schedules.linear_anneal(step, start, end, num_steps)
    return estimators.make(self.name, **options)


def _set_options(section: Mapping[str, Any], name: str) -> dict:
  """The options set in `config.estimator`; each must be one of `name`'s."""
  accepted = estimators.options_of(name)
  chosen = {k: v for k, v in dict(section).items()
            if k != "name" and k not in SCHEDULE_FIELDS and v is not None}
  for option, value in chosen.items():
    if option not in accepted:
      raise ValueError(f"config.estimator.{option}={value!r} is not an option "
                       f"of estimator {name!r} (its options: "
                       f"{sorted(accepted)}).")
  return chosen


def _preferred_options(config: Mapping[str, Any], name: str) -> dict:
  """The config file's preferences for estimator `name` (checked)."""
  preferences = config.get("estimator_defaults") or {}
  for estimator_name in preferences:
    checks.check_one_of("config.estimator_defaults.<name>", estimator_name,
                        sorted(estimators.ESTIMATORS))
  accepted = estimators.options_of(name)
  preferred = {k: v for k, v in dict(preferences.get(name) or {}).items()
               if v is not None}
  for option, value in preferred.items():
    if option not in accepted:
      raise ValueError(f"config.estimator_defaults.{name}.{option}={value!r} "
                       f"is not an option of estimator {name!r}.")
  return preferred


def _split_annealed(section: Mapping[str, Any], name: str, options: dict
                    ) -> dict:
  """Moves the annealed options out of `options`: option -> (start, end,
  num_steps)."""
  anneal_steps = section.get("anneal_steps") or 0
  checks.check_int("config.estimator.anneal_steps", anneal_steps, 0)
  annealed = {}
  for option, end_field in ANNEALED_OPTIONS.items():
    end = section.get(end_field)
    if end is None:
      continue
    if option not in estimators.options_of(name):
      raise ValueError(f"config.estimator.{end_field}={end!r} is set but "
                       f"estimator {name!r} has no option {option!r}.")
    if option not in options:
      raise ValueError(f"config.estimator.{end_field}={end!r} needs a start "
                       f"value: set config.estimator.{option}.")
    annealed[option] = (options.pop(option), end, anneal_steps)
  return annealed


def resolve(config: Mapping[str, Any]) -> EstimatorSpec:
  """The estimator of a run config, validated (ValueError naming the field).

  Args:
    config: the whole run config (`estimator`, `estimator_defaults`).

  Returns:
    The `EstimatorSpec`; every option value has been checked by tracing the
    estimator at the start and the end of its anneal.
  """
  section = config["estimator"]
  name = section["name"]
  checks.check_one_of("config.estimator.name", name,
                      sorted(estimators.ESTIMATORS))
  options = {**_preferred_options(config, name), **_set_options(section, name)}
  annealed = _split_annealed(section, name, options)
  spec = EstimatorSpec(name, options, annealed)
  _check_values(spec)
  return spec


def _check_values(spec: EstimatorSpec) -> None:
  """Builds the estimator at both ends of every anneal and checks values."""
  ends = [{}]
  if spec.annealed:
    ends = [{k: v[0] for k, v in spec.annealed.items()},
            {k: v[1] for k, v in spec.annealed.items()}]
  for end in ends:
    options = {**spec.options, **end}
    try:
      estimators.check_options(spec.name, **options)
    except ValueError as error:
      raise ValueError(f"config.estimator ({spec.name}): {error}") from None
