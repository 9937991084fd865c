"""The one registry of model families, by `config.model.name`.

Each family validates and builds itself from its config section here, the
same way for every family: `validate(config)` raises a ValueError naming the
bad field (values as well as names, before any data is read or file
written), and `build(config, spec)` returns an object satisfying
`discrete_vi.models.base.Model`. Adding a family means writing its module
and one entry below; nothing in the training loop.
"""

from typing import Any, Callable, Mapping, NamedTuple

from discrete_vi import checks
from discrete_vi.models import base
from discrete_vi.models import dvaepp
from discrete_vi.models import dvaepp_conv
from discrete_vi.models import hdvae
from discrete_vi.models import sbn
from discrete_vi.models import xor_flow

Config = Mapping[str, Any]


class ModelEntry(NamedTuple):
  """How one model family checks and builds itself from a config."""
  validate: Callable[[Config], None]
  build: Callable[[Config, Any], base.Model]  # (config, data.DataSpec)


MODELS = {
    "dvaepp": ModelEntry(dvaepp.validate_config, dvaepp.from_config),
    "dvaepp_conv": ModelEntry(dvaepp_conv.validate_config,
                              dvaepp_conv.from_config),
    "sbn": ModelEntry(sbn.validate_config, sbn.from_config),
    "xor_flow": ModelEntry(xor_flow.validate_config, xor_flow.from_config),
    "hdvae": ModelEntry(hdvae.validate_config, hdvae.from_config),
}


def validate_model_config(config: Config) -> None:
  """Checks `config.model.name` and then that family's own fields."""
  checks.check_one_of("config.model.name", config["model"]["name"],
                      sorted(MODELS))
  MODELS[config["model"]["name"]].validate(config)


def build_model(config: Config, spec) -> base.Model:
  """The model of `config.model` for the data that `spec` describes.

  Args:
    config: the whole run config (a family may read `config.train` or
      `config.estimator`, e.g. the SBN's KL warm-up).
    spec: a `discrete_vi.data.DataSpec` (training mean `[D]`, image shape
      `(H, W, C)`, value type).
  """
  return MODELS[config["model"]["name"]].build(config, spec)
