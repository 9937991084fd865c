"""The one registry of model families, by `config.model.name`.

Each family validates and builds itself from its config section here, the
same way for every family, and declares what the training loop needs to
know about it:

* `validate(config)` raises a ValueError naming the bad field (values as
  well as names, before any data is read or file written);
* `build(config, spec)` returns an object satisfying
  `discrete_vi.models.base.Model`;
* `estimators(config)`: the estimator names the family accepts with this
  config (derived from its latent parts, e.g. `latents.Categorical.
  accepted_estimators`); `validate_model_config` checks the run's in this
  one place;
* `unroll_on_cpu`: whether the fused train steps must be unrolled on a CPU
  (`steps.fuse_steps`): convolutional models, whose convolutions run about
  10x slower inside XLA's CPU loops.

How `sample` output is laid out is the same for every family
(`base.Model.sample`: `[n, D]` values in data space, in rows of the
model's `sample_columns`). Adding a family means writing its module and
one entry below; nothing in the training loop.
"""

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax

from discrete_vi import checks
from discrete_vi.models import base
from discrete_vi.models import dvaepp
from discrete_vi.models import dvaepp_conv
from discrete_vi.models import hdvae
from discrete_vi.models import sbn
from discrete_vi.models import xor_flow

Config = Mapping[str, Any]


class ModelEntry(NamedTuple):
  """How one model family checks and builds itself from a config, and what
  it declares to the loop (module docstring)."""
  validate: Callable[[Config], None]
  build: Callable[[Config, Any], base.Model]  # (config, data.DataSpec)
  estimators: Callable[[Config], Sequence[str]]
  unroll_on_cpu: bool = False


MODELS = {
    "dvaepp": ModelEntry(dvaepp.validate_config, dvaepp.from_config,
                         dvaepp.accepted_estimators),
    "dvaepp_conv": ModelEntry(dvaepp_conv.validate_config,
                              dvaepp_conv.from_config,
                              dvaepp_conv.accepted_estimators,
                              unroll_on_cpu=True),
    "sbn": ModelEntry(sbn.validate_config, sbn.from_config,
                      sbn.accepted_estimators),
    "xor_flow": ModelEntry(xor_flow.validate_config, xor_flow.from_config,
                           xor_flow.accepted_estimators),
    "hdvae": ModelEntry(hdvae.validate_config, hdvae.from_config,
                        hdvae.accepted_estimators, unroll_on_cpu=True),
}


def validate_model_config(config: Config) -> None:
  """Checks `config.model.name`, that family's own fields, and that it
  accepts `config.estimator.name`."""
  name = config["model"]["name"]
  checks.check_one_of("config.model.name", name, sorted(MODELS))
  MODELS[name].validate(config)
  accepted = tuple(MODELS[name].estimators(config))
  estimator = config["estimator"]["name"]
  if estimator not in accepted:
    raise ValueError(f"config.estimator.name={estimator!r} is not accepted by "
                     f"the {name!r} model with this config.model; it accepts "
                     f"{', '.join(accepted)}.")


def unroll_steps(config: Config) -> bool:
  """Whether the run's fused train steps are unrolled: on a CPU backend,
  for the families that declare `unroll_on_cpu`."""
  return (MODELS[config["model"]["name"]].unroll_on_cpu and
          jax.default_backend() == "cpu")


def build_model(config: Config, spec) -> base.Model:
  """The model of `config.model` for the data that `spec` describes.

  Args:
    config: the whole run config (a family may read `config.train` or
      `config.estimator`, e.g. the SBN's KL warm-up).
    spec: a `discrete_vi.data.DataSpec` (training mean `[D]`, image shape
      `(H, W, C)`, value type).
  """
  return MODELS[config["model"]["name"]].build(config, spec)
