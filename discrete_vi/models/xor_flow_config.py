"""The XOR flow's entry in the training loop's model registry.

`validate(config)` checks the fields `configs/xor_flow.py` sets (raising
ValueError that names the field) and `build(config, data_mean)` makes the
`XORFlow`. The estimator settings come from `config.estimator`: the STE flow
uses `straight_through` (variant "deterministic", Eq. 5); the latent flows
use the score-function family (`reinforce`) with its `baseline`, `greedy`,
`decay` and `eps` options applied to every learning-signal stream.
"""

from typing import Any, Mapping

from discrete_vi.models import xor_flow

ESTIMATOR_OF_VARIANT = {"ste": "straight_through", "sfe_full": "reinforce",
                        "sfe_special": "reinforce"}
MODEL_FIELDS = ("variant", "depth", "hidden_dims", "posterior_hidden",
                "activation", "base_prob", "learn_base", "kl_next_scale",
                "prefix_scale", "prefix_sample")


def _estimator_options(estimator_config: Mapping[str, Any]) -> dict:
  """The reinforce options the latent flows take, defaults for unset ones."""
  options = {"baseline": estimator_config.get("baseline") or "standardize",
             "greedy": bool(estimator_config.get("greedy") or False)}
  for name in ("decay", "eps"):
    if estimator_config.get(name) is not None:
      options[name] = estimator_config[name]
  return options


def _model_kwargs(config: Mapping[str, Any]) -> dict:
  model = config["model"]
  missing = [f for f in MODEL_FIELDS if f not in model]
  if missing:
    raise ValueError(f"config.model lacks the XOR-flow field(s) {missing}; "
                     "start from configs/xor_flow.py.")
  kwargs = {f: model[f] for f in MODEL_FIELDS}
  kwargs["hidden_dims"] = tuple(kwargs["hidden_dims"])
  kwargs["posterior_hidden"] = tuple(kwargs["posterior_hidden"])
  return kwargs


def build(config: Mapping[str, Any], data_mean) -> xor_flow.XORFlow:
  """The `XORFlow` of `config` for data of length len(data_mean)."""
  kwargs = _model_kwargs(config)
  if kwargs["variant"] != "ste":
    kwargs.update(_estimator_options(config["estimator"]))
  return xor_flow.XORFlow(len(data_mean), **kwargs)


def validate(config: Mapping[str, Any]) -> None:
  """Raises ValueError naming the bad field of an XOR-flow config."""
  kwargs = _model_kwargs(config)
  variant = kwargs["variant"]
  if variant not in xor_flow.VARIANTS:
    raise ValueError(f"config.model.variant={variant!r} is not one of "
                     f"{xor_flow.VARIANTS}.")
  estimator = config["estimator"]["name"]
  expected = ESTIMATOR_OF_VARIANT[variant]
  if estimator != expected:
    raise ValueError(f"config.estimator.name={estimator!r} does not train the "
                     f"XOR flow variant {variant!r}; it takes {expected!r}.")
  if variant == "ste" and config["estimator"].get("variant") != "deterministic":
    raise ValueError("config.estimator.variant must be 'deterministic' for the "
                     "STE flow (the threshold of Eq. 5); got "
                     f"{config['estimator'].get('variant')!r}.")
  if variant != "ste":
    kwargs.update(_estimator_options(config["estimator"]))
  try:
    xor_flow.XORFlow(784, **kwargs)  # construction validates every value
  except ValueError as error:
    raise ValueError(f"config.model / config.estimator: {error}") from None
