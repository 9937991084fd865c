"""A model family's config section, described once.

Each family writes its `config.model` fields as one frozen dataclass
deriving from `Section`, each field declared with `field(check, *args)`:
its type, default and check live in that one line. `Section.of(mapping)`
builds the section from a run config's `config.model` (a ConfigDict or a
plain dict), reading exactly the declared fields, and runs every check
with the field's full name (`config.model.<field>=<value>` in the error),
so the family's `validate_config` and `from_config` read the same
validated object. Adding a field means writing one line here and setting
it in the family's config file.

    @dataclasses.dataclass(frozen=True)
    class SBNSection(sections.Section):
      architecture: str = sections.field(checks.check_one_of, ARCHITECTURES)
      num_latents: int = sections.field(checks.check_int, 1)

    section = SBNSection.of(config["model"])
"""

import dataclasses
import functools
from typing import Any, Callable, Mapping

from discrete_vi import checks

_CHECK = "check"  # dataclasses metadata key of a field's check


def field(check: Callable[..., None], *args: Any, default: Any = None,
          optional: bool = False, **kwargs: Any) -> Any:
  """A section field checked by `check(name, value, *args)` (a function of
  `discrete_vi.checks`, or any with that signature).

  Args:
    check: the check, called with the field's full name and value.
    *args: further arguments of the check (e.g. the choices).
    **kwargs: its keyword arguments (e.g. `high_open=True`).
    default: the value when the config section omits the field (None: the
      field is required, unless `optional`).
    optional: the field may be omitted or None (then not checked).
  """
  return dataclasses.field(default=default,
                           metadata={_CHECK: (functools.partial(
                               check, **kwargs) if kwargs else check, args,
                                              optional)})


def check_tuple_of_ints(name: str, value: Any, minimum: int = 1) -> None:
  """A non-empty tuple or list of ints >= `minimum`."""
  if not isinstance(value, (tuple, list)) or not value:
    raise ValueError(f"{name}={value!r} must be a non-empty tuple of "
                     f"integers.")
  checks.check_ints(name, value, minimum)


@dataclasses.dataclass(frozen=True)
class Section:
  """The base of a family's section: `of` builds and checks it."""

  prefix = "config.model"
  # Keys of the config section that are not fields and not refused: the
  # family's name, sub-sections read by a part (e.g. "rbm").
  other_keys = ("name",)

  @classmethod
  def of(cls, mapping: Mapping[str, Any]):
    """The section of a config's `config.model` (checked).

    Raises:
      ValueError: naming a missing required field, a bad value, or a key
        that is neither a field nor one of `other_keys` (e.g. a misspelt
        field in a config file).
    """
    declared = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - declared - set(cls.other_keys))
    if unknown:
      raise ValueError(f"{cls.prefix} has field(s) {unknown} that "
                       f"{cls.__name__} does not declare; it reads "
                       f"{sorted(declared)}.")
    values = {}
    for f in dataclasses.fields(cls):
      check, _, optional = f.metadata[_CHECK]
      del check
      if f.name in mapping:
        values[f.name] = mapping[f.name]
      elif f.default is None and not optional:
        raise ValueError(f"{cls.prefix}.{f.name} is required by "
                         f"{cls.__name__} and is not set.")
    return cls(**values)

  def __post_init__(self):
    for f in dataclasses.fields(self):
      check, args, optional = f.metadata[_CHECK]
      value = getattr(self, f.name)
      if value is None and optional:
        continue
      check(f"{self.prefix}.{f.name}", value, *args)
      if isinstance(value, list):  # hashable, as the frozen section
        object.__setattr__(self, f.name, tuple(value))

  def replace(self, **changes):
    """A copy with `changes` (checked again)."""
    return dataclasses.replace(self, **changes)
