"""Optimisers from configs, with per-parameter-group settings.

`config.optim` names a default optimiser; `config.optim.groups` may give other
optimisers to parameter groups selected by name, e.g. DisARM's plain SGD with
learning rate 1e-2 on the prior logits:

    config.optim.groups = {"prior_logits": {"name": "sgd",
                                            "learning_rate": 1e-2}}

A parameter belongs to group G when G is one of the names on its path in the
parameter tree (`params["prior_logits"]` belongs to "prior_logits",
`params["encoders_0"]["out"]["kernel"]` to "encoders_0" and to "out").
"""

from typing import Any, Mapping

import jax
import optax

from discrete_vi.training import schedules

OPTIMIZERS = ("adam", "adamax", "sgd")
DEFAULT_GROUP = "__default__"


def make_single(spec: Mapping[str, Any], num_steps: int
                ) -> optax.GradientTransformation:
  """One optimiser from a spec with name, learning_rate, schedule, ..."""
  name = spec.get("name", "adam")
  lr = schedules.learning_rate(spec.get("schedule", "constant"),
                               spec.get("learning_rate", 1e-3), num_steps)
  if name == "adam":
    return optax.adam(lr, b1=spec.get("b1", 0.9), b2=spec.get("b2", 0.999),
                      eps=spec.get("eps", 1e-8))
  if name == "adamax":
    return optax.adamax(lr, b1=spec.get("b1", 0.9), b2=spec.get("b2", 0.999),
                        eps=spec.get("eps", 1e-8))
  if name == "sgd":
    return optax.sgd(lr, momentum=spec.get("momentum", None) or None)
  raise ValueError(f"unknown optimiser {name!r}; expected one of {OPTIMIZERS}.")


def _path_names(path) -> set[str]:
  return {str(getattr(k, "key", getattr(k, "name", k))) for k in path}


def group_labels(params, groups: Mapping[str, Any]):
  """A pytree like params of group names (DEFAULT_GROUP where none matches)."""
  def label(path, _):
    names = _path_names(path)
    matches = [g for g in groups if g in names]
    if len(matches) > 1:
      raise ValueError(f"parameter {jax.tree_util.keystr(path)} matches "
                       f"several optimiser groups {matches}.")
    return matches[0] if matches else DEFAULT_GROUP
  return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(optim_config: Mapping[str, Any], params, num_steps: int
                   ) -> optax.GradientTransformation:
  """The optimiser of `config.optim` for `params` (groups included).

  Raises:
    ValueError: for an unknown optimiser, a bad learning rate, or a group
      that matches no parameter.
  """
  spec = dict(optim_config)
  groups = {k: dict(v) for k, v in dict(spec.pop("groups", {}) or {}).items()}
  clip = spec.pop("grad_clip_norm", None)
  default = make_single(spec, num_steps)
  if groups:
    labels = group_labels(params, groups)
    used = set(jax.tree_util.tree_leaves(labels))
    for g in groups:
      if g not in used:
        raise ValueError(f"optimiser group {g!r} matches no parameter; "
                         f"top-level parameter names are {sorted(params)}.")
    transforms = {g: make_single(s, num_steps) for g, s in groups.items()}
    transforms[DEFAULT_GROUP] = default
    tx = optax.multi_transform(transforms, labels)
  else:
    tx = default
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  return tx
