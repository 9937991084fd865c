"""`models.sections`: a family's config section described once, and the
RBM prior's section (`stochastic.rbm_prior.config_section`)."""

import dataclasses
from typing import Optional

import ml_collections
import pytest

from discrete_vi import checks
from discrete_vi.models import sections
from discrete_vi.stochastic import rbm_prior


@dataclasses.dataclass(frozen=True)
class Toy(sections.Section):
  kind: str = sections.field(checks.check_one_of, ("a", "b"))
  size: int = sections.field(checks.check_int, 1, default=3)
  widths: tuple = sections.field(sections.check_tuple_of_ints, 1,
                                 default=(2,))
  ratio: Optional[int] = sections.field(checks.check_int, 1, optional=True)


def test_of_reads_declared_fields_and_keeps_defaults():
  config = ml_collections.ConfigDict(
      {"name": "toy", "kind": "b", "widths": [4, 5]})
  section = Toy.of(config)
  assert section == Toy(kind="b", size=3, widths=(4, 5), ratio=None)
  assert isinstance(section.widths, tuple)  # lists become hashable tuples
  hash(section)


@pytest.mark.parametrize("mapping,match", [
    ({}, "config.model.kind is required by Toy"),
    ({"kind": "c"}, "config.model.kind='c'"),
    ({"kind": "a", "size": 0}, "config.model.size=0"),
    ({"kind": "a", "widths": ()}, r"config.model.widths=\(\)"),
    ({"kind": "a", "widths": (1, 0)}, "config.model.widths"),
    ({"kind": "a", "ratio": 0}, "config.model.ratio=0"),
])
def test_bad_or_missing_fields_are_named(mapping, match):
  with pytest.raises(ValueError, match=match):
    Toy.of(mapping)


def test_undeclared_keys_are_refused_but_the_name():
  with pytest.raises(ValueError, match=r"\['sizes'\] that Toy does not"):
    Toy.of({"name": "toy", "kind": "a", "sizes": 3})


def test_optional_field_may_be_none_and_replace_checks_again():
  section = Toy.of({"kind": "a", "ratio": None})
  assert section.ratio is None
  assert section.replace(size=7).size == 7
  with pytest.raises(ValueError, match="config.model.size=-1"):
    section.replace(size=-1)


def test_rbm_section_is_rbm_prior_described_once():
  section = rbm_prior.config_section(gibbs_chains=7)
  prior = rbm_prior.from_config_section(section)
  assert prior == rbm_prior.RBMPrior(gibbs_chains=7)
  # Every field of the dataclass is in the section, at its default.
  assert set(section) == {f.name for f in dataclasses.fields(prior)}
  assert rbm_prior.from_config_section({}) == rbm_prior.RBMPrior()
  with pytest.raises(ValueError, match="has no field 'chains'"):
    rbm_prior.config_section(chains=3)


@pytest.mark.parametrize("mapping,units,match", [
    ({"gibbs_sweeps": 0}, None, "config.model.rbm.gibbs_sweeps=0"),
    ({"log_z": "magic"}, None, "config.model.rbm.log_z='magic'"),
    ({"weight_decay": -1.0}, None, "config.model.rbm.weight_decay=-1.0"),
    ({"sweeps": 3}, None, r"unknown field\(s\) \['sweeps'\]"),
    ({"log_z": "exact"}, (21, 21), "config.model.rbm.log_z='exact'"),
    ({"tempering_temperatures": 0}, None,
     "config.model.rbm.tempering_temperatures=0"),
    ({"tempering_base_beta": 0.0}, None,
     "config.model.rbm.tempering_base_beta=0.0"),
    ({"chain_gap_sweeps": 0}, None, "config.model.rbm.chain_gap_sweeps=0"),
])
def test_rbm_section_errors_name_the_field(mapping, units, match):
  with pytest.raises(ValueError, match=match):
    rbm_prior.from_config_section(mapping, units)
