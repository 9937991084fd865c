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

Schedules of the annealed options (temperature, beta), in this order:

1. `<option>_knots = ((step, value), ...)`: piecewise linear through the
   knots (first at step 0), held after the last, e.g. the HD-VAE temperature
   ((0, 0.8), (200_000, 0.3), (400_000, 0.1)) (Lievin et al., 2019,
   Appendix A). With `knots_as_fractions` the knot steps are fractions of
   `config.train.num_steps`, so a schedule scales with the run's length. Set
   in `config.estimator` or as a preference in
   `config.estimator_defaults.<name>` (then only used by that estimator);
   the option itself (`temperature`) must then be unset in that place.
2. `<option>` and `<option>_end` with `anneal_steps`: linear from the first
   to the second over `anneal_steps`, held after.
3. `<option>` alone: a constant.
"""

from typing import Any, Mapping, NamedTuple

from discrete_vi import checks
from discrete_vi import estimators
from discrete_vi.training import schedules

# Estimator options that may be annealed: option -> field of its end value.
ANNEALED_OPTIONS = {"temperature": "temperature_end", "beta": "beta_end"}
# Option -> field of its piecewise-linear schedule ((step, value), ...).
KNOT_FIELDS = {"temperature": "temperature_knots", "beta": "beta_knots"}
SCHEDULE_FIELDS = ("temperature_end", "beta_end", "anneal_steps",
                   "temperature_knots", "beta_knots", "knots_as_fractions")


class EstimatorSpec(NamedTuple):
  """A resolved estimator: its name, constant options and annealed ones.

  Attributes:
    name: a key of `estimators.ESTIMATORS`.
    options: options with constant values.
    annealed: option -> knots `((step, value), ...)` of its piecewise-linear
      schedule (a linear anneal is the two knots (0, start), (n, end)).
  """
  name: str
  options: dict
  annealed: dict

  def at(self, step) -> estimators.Estimator:
    """The estimator with annealed options evaluated at `step` (traced ok)."""
    options = dict(self.options)
    for option, knots in self.annealed.items():
      options[option] = schedules.piecewise_linear(step, knots)
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
  """The config file's preferences for estimator `name` (checked); may hold
  `<option>_knots` schedules of its annealed options."""
  preferences = config.get("estimator_defaults") or {}
  for estimator_name in preferences:
    checks.check_one_of("config.estimator_defaults.<name>", estimator_name,
                        sorted(estimators.ESTIMATORS))
  accepted = estimators.options_of(name)
  accepted = accepted | {KNOT_FIELDS[o] for o in KNOT_FIELDS if o in accepted}
  preferred = {k: v for k, v in dict(preferences.get(name) or {}).items()
               if v is not None}
  for option, value in preferred.items():
    if option not in accepted:
      raise ValueError(f"config.estimator_defaults.{name}.{option}={value!r} "
                       f"is not an option of estimator {name!r}.")
  return preferred


def _knots_of(option: str, knots, fractions: bool, num_steps: int, where: str
              ) -> tuple:
  """Checked knots of `option`, their steps scaled by `num_steps` when they
  are fractions of the run."""
  field = f"{where}.{KNOT_FIELDS[option]}"
  knots = schedules.check_knots(field, knots)
  if not fractions:
    return knots
  for fraction, _ in knots:
    checks.check_in_range(field + " (fraction of the run)", fraction, 0.0, 1.0)
  return tuple((round(f * num_steps), v) for f, v in knots)


def _split_annealed(section: Mapping[str, Any], name: str, options: dict,
                    preferred_knots: Mapping[str, Any] = (),
                    num_steps: int = 0) -> dict:
  """Moves the annealed options out of `options`: option -> knots.

  Args:
    section: `config.estimator`.
    name: the estimator.
    options: its options (constant ones stay; annealed ones are moved).
    preferred_knots: `<option>_knots` preferred by the config file for
      `name` (`config.estimator_defaults.<name>`).
    num_steps: `config.train.num_steps` (for `knots_as_fractions`).
  """
  anneal_steps = section.get("anneal_steps") or 0
  checks.check_int("config.estimator.anneal_steps", anneal_steps, 0)
  fractions = bool(section.get("knots_as_fractions"))
  annealed = {}
  for option, end_field in ANNEALED_OPTIONS.items():
    knot_field = KNOT_FIELDS[option]
    knots, where = section.get(knot_field), "config.estimator"
    if knots is None and knot_field in preferred_knots:
      knots, where = preferred_knots[knot_field], f"config.estimator_defaults.{name}"
    end = section.get(end_field)
    if knots is not None:
      if option not in estimators.options_of(name):
        raise ValueError(f"{where}.{knot_field} is set but estimator "
                         f"{name!r} has no option {option!r}.")
      if end is not None or section.get(option) is not None:
        raise ValueError(f"{where}.{knot_field} is set: unset "
                         f"config.estimator.{option} and .{end_field}.")
      options.pop(option, None)
      annealed[option] = _knots_of(option, knots, fractions, num_steps, where)
      continue
    if end is None:
      continue
    checks.check_positive(f"config.estimator.{end_field}", end)
    if option not in estimators.options_of(name):
      raise ValueError(f"config.estimator.{end_field}={end!r} is set but "
                       f"estimator {name!r} has no option {option!r}.")
    if option not in options:
      raise ValueError(f"config.estimator.{end_field}={end!r} needs a start "
                       f"value: set config.estimator.{option}.")
    start = options.pop(option)
    annealed[option] = (((0, start),) if anneal_steps <= 0 else
                        ((0, start), (anneal_steps, end)))
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
  preferred = _preferred_options(config, name)
  preferred_knots = {k: preferred.pop(k) for k in list(preferred)
                     if k in KNOT_FIELDS.values()}
  options = {**preferred, **_set_options(section, name)}
  train = config.get("train") or {}
  annealed = _split_annealed(section, name, options, preferred_knots,
                             train.get("num_steps") or 0)
  spec = EstimatorSpec(name, options, annealed)
  _check_values(spec)
  return spec


def _check_values(spec: EstimatorSpec) -> None:
  """Builds the estimator at every knot of every schedule and checks values
  (a piecewise-linear schedule stays within its knots' values)."""
  ends = [{}]
  if spec.annealed:
    longest = max(len(knots) for knots in spec.annealed.values())
    ends = [{k: knots[min(i, len(knots) - 1)][1]
             for k, knots in spec.annealed.items()} for i in range(longest)]
  for end in ends:
    options = {**spec.options, **end}
    try:
      estimators.check_options(spec.name, **options)
    except ValueError as error:
      raise ValueError(f"config.estimator ({spec.name}): {error}") from None
