r"""XOR flows for binary data (Hesselink & Aziz, 2020): the family's entry.

A discrete normalising flow on x \in {0,1}^D: x = y \oplus u (Eq. 4) with a
factorial Bernoulli base p_Y (Eq. 3) and a transformation u predicted by
autoregressive MADE conditioners. `config.model.variant` picks one of

* "ste": the deterministic flow of depth L (Sec. 3), exact likelihood,
  trained by straight-through (`ste_flow.STEFlow`); its estimator is
  `straight_through` with variant "deterministic" (the threshold of Eq. 5
  forward, the identity backward);
* "sfe_full": latent transformations with a mean-field posterior (Sec. 4,
  Appendices A-B; `latent_flow.FullPosteriorFlow`);
* "sfe_special": latent transformations with q = p (Sec. 5,
  Appendix C; `latent_flow.SpecialCaseFlow`).

The latent flows are trained by score-function estimation, and
`config.estimator` is that estimator: `reinforce`, whose baseline options
(`baseline`, `greedy`, `decay`, `std_floor`, `std_warmup`) every learning-
signal stream of the flow applies. The shared pieces (XOR, base, MADE
conditioners, data checks) are in `xor_flow_common`.

`validate_config(config)` and `from_config(config, spec)` are the
family's entry in `discrete_vi.models.registry`.

References:
  Hesselink & Aziz (2020), Latent Transformations for Discrete-Data
    Normalising Flows.
"""

from typing import Any, Callable, Mapping, NamedTuple

from discrete_vi import checks
from discrete_vi.estimators import baselines
from discrete_vi.models import latent_flow
from discrete_vi.models import ste_flow
from discrete_vi.models.latent_flow import FullPosteriorFlow, SpecialCaseFlow
from discrete_vi.models.ste_flow import STEFlow
from discrete_vi.models.xor_flow_common import suffix_sum, xor

Config = Mapping[str, Any]

COMMON_FIELDS = ("depth", "hidden_dims", "activation", "base_prob",
                 "learn_base")


class Variant(NamedTuple):
  """One XOR-flow variant: its class, its model fields and their check, and
  the estimator that trains it."""
  flow: Callable[..., Any]
  fields: tuple
  check: Callable[[Mapping[str, Any], str], None]
  estimator: str


VARIANTS = {
    "ste": Variant(STEFlow, COMMON_FIELDS, ste_flow.check_args,
                   "straight_through"),
    "sfe_full": Variant(FullPosteriorFlow,
                        COMMON_FIELDS + ("posterior_hidden", "kl_next_scale"),
                        latent_flow.check_full_args, "reinforce"),
    "sfe_special": Variant(SpecialCaseFlow,
                           COMMON_FIELDS + ("prefix_scale", "prefix_sample"),
                           latent_flow.check_special_args, "reinforce"),
}
# The straight-through variant that is the STE flow's Eq. 5.
STE_VARIANT = "deterministic"


def _estimator_option(config: Config, option: str):
  """config.estimator.<option>, else the config file's preference for the
  named estimator (config.estimator_defaults.<name>.<option>), else None."""
  value = config["estimator"].get(option)
  if value is None:
    preferences = config.get("estimator_defaults") or {}
    value = (preferences.get(config["estimator"]["name"]) or {}).get(option)
  return value


def _model_args(config: Config) -> tuple[Variant, dict]:
  """The variant and its constructor arguments from `config.model`."""
  model = config["model"]
  checks.check_one_of("config.model.variant", model.get("variant"),
                      tuple(VARIANTS))
  variant = VARIANTS[model["variant"]]
  missing = [f for f in variant.fields if f not in model]
  if missing:
    raise ValueError(f"config.model lacks the XOR-flow field(s) {missing}; "
                     "start from configs/xor_flow.py.")
  args = {f: model[f] for f in variant.fields}
  for field in ("hidden_dims", "posterior_hidden"):
    if field in args:
      args[field] = tuple(args[field])
  return variant, args


def _check_estimator(config: Config, variant_name: str) -> None:
  """The estimator's options for the variant (the STE flow's threshold; the
  latent flows' baseline options); the registry checks its name
  (`accepted_estimators`)."""
  if variant_name == "ste":
    variant = _estimator_option(config, "variant")
    if variant != STE_VARIANT:
      raise ValueError(f"config.estimator.variant must be {STE_VARIANT!r} for "
                       f"the STE flow (the threshold of Eq. 5); got "
                       f"{variant!r}.")
    return
  for option in baselines.PROCESSOR_OPTIONS:
    value = _estimator_option(config, option)
    if value is None:
      continue
    try:
      baselines.make(**{option: value})
    except ValueError as error:
      raise ValueError(f"config.estimator.{option}={value!r}: {error}"
                       ) from None


def accepted_estimators(config: Config) -> tuple[str, ...]:
  """The one estimator that trains `config.model.variant`."""
  return (VARIANTS[config["model"]["variant"]].estimator,)


def validate_config(config: Config) -> None:
  """Raises ValueError naming the bad field of an XOR-flow config.

  Checks `config.model` (the variant, its fields and their values) and that
  `config.estimator` names the estimator that trains the variant, without
  data.
  """
  variant, args = _model_args(config)
  variant.check(args, "config.model.")
  _check_estimator(config, config["model"]["variant"])


def from_config(config: Config, spec) -> Any:
  """The XOR flow of `config.model` for the data of `spec` (a
  `data.DataSpec`), flattened to length D."""
  spec.require_value_type("binary", "config.model.name='xor_flow'")
  variant, args = _model_args(config)
  return variant.flow(spec.data_dim, **args)


__all__ = ["VARIANTS", "FullPosteriorFlow", "SpecialCaseFlow", "STEFlow",
           "from_config", "suffix_sum", "validate_config", "xor"]
