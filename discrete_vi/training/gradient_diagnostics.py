r"""Gradient quality measured while training: variance, signal-to-noise, bias.

Estimator papers (REBAR, RELAX, DisARM) report the variance of the gradient
during training. Here it is a measurement any run can make: at the current
parameters and one fixed batch, M independent draws of the training
gradient g_1..g_M (the model's loss under the run's estimator, new keys
only; nothing is updated) give, per parameter group G,

    grad_norm  = || mean_m g_m ||_2                        (over G's coordinates)
    variance   = sum_{i in G} var_m(g_{m,i})                (ddof = 1)
    snr        = grad_norm / sqrt(variance)

The group SNR is the norm of the mean over the root of the total variance:
the single-draw signal-to-noise ratio of the group's gradient vector (it is
finite where some coordinates have no variance, unlike a mean of
per-coordinate ratios). Averaging M draws multiplies it by sqrt(M).

With a reference estimator (unbiased, e.g. `rloo` with many samples or
`enumerate` on a tiny model) drawn R times at the same parameters and batch,
the bias of the run's estimator is estimated per group as

    bias_norm  = || mean_m g_m - mean_r g^ref_r ||_2
    bias_floor = sqrt( sum_{i in G} var(g_i) / M + var(g^ref_i) / R )

bias_floor is the root mean square of bias_norm when there is no bias (the
norm of the difference of two independent sample means): a bias_norm well
above its floor is bias, one near it is not resolved at these M, R.

The moments are accumulated over the draws in a `lax.scan` (Welford's
update), so memory stays at a few copies of the parameters whatever M.
"""

import re
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from discrete_vi import estimators
from discrete_vi.training import estimator_spec
from discrete_vi.types import Array, PRNGKey

# grad_fn(params, key) -> a pytree like params
GradFn = Callable[[Any, PRNGKey], Any]
ALL = "all"
OTHER = "other"
STATISTICS = ("grad_norm", "variance", "snr")
BIAS_STATISTICS = ("bias_norm", "bias_floor")


class Moments(NamedTuple):
  """Per-coordinate mean and variance (ddof = 1) of `count` gradient
  draws, each a pytree like the parameters."""
  mean: Any
  variance: Any
  count: int


def _path_names(path) -> list[str]:
  return [str(getattr(k, "key", getattr(k, "name", k))) for k in path]


def _default_group(names: list[str]) -> str:
  """The top-level name, without a trailing layer index ("encoders_0" ->
  "encoders")."""
  return re.sub(r"_\d+$", "", names[0]) if names else OTHER


def group_labels(params, groups: Sequence[str] = ()) -> Any:
  """A pytree like `params` of group names.

  Args:
    params: the model parameters.
    groups: names of parameter-tree nodes, each a group (a parameter whose
      path contains one of them belongs to it; the others to "other"); empty:
      one group per top-level entry, its layer index stripped.

  Raises:
    ValueError: when a parameter's path matches two groups, or a group
      matches no parameter.
  """
  def label(path, _):
    names = _path_names(path)
    if not groups:
      return _default_group(names)
    matches = [g for g in groups if g in names]
    if len(matches) > 1:
      raise ValueError(f"parameter {jax.tree_util.keystr(path)} matches "
                       f"several diagnostic groups {matches}.")
    return matches[0] if matches else OTHER

  labels = jax.tree_util.tree_map_with_path(label, params)
  used = set(jax.tree_util.tree_leaves(labels))
  missing = [g for g in groups if g not in used]
  if missing:
    raise ValueError(f"diagnostic groups {missing} match no parameter; the "
                     "parameters' top-level names are "
                     f"{sorted(_top_level_names(params))}.")
  return labels


def _top_level_names(params) -> set[str]:
  return {(_path_names(path) or [OTHER])[0] for path, _ in
          jax.tree_util.tree_flatten_with_path(params)[0]}


def gradient_moments(grad_fn: GradFn, params, keys: Array) -> Moments:
  """The mean and variance of `grad_fn(params, key)` over `keys` `[M, 2]`
  (M >= 2), accumulated one draw at a time (Welford)."""
  num_draws = keys.shape[0]
  if num_draws < 2:
    raise ValueError(f"gradient_moments needs at least 2 draws; got "
                     f"{num_draws}.")
  zeros = jax.tree_util.tree_map(
      lambda p: jnp.zeros(jnp.shape(p), jnp.float32), params)

  def step(carry, key):
    count, mean, m2 = carry
    g = grad_fn(params, key)
    count = count + 1.0
    delta = jax.tree_util.tree_map(lambda gi, mi: gi - mi, g, mean)
    mean = jax.tree_util.tree_map(lambda mi, di: mi + di / count, mean, delta)
    m2 = jax.tree_util.tree_map(lambda si, di, gi, mi: si + di * (gi - mi),
                                m2, delta, g, mean)
    return (count, mean, m2), None

  (_, mean, m2), _ = jax.lax.scan(step, (jnp.float32(0.0), zeros, zeros),
                                  keys)
  variance = jax.tree_util.tree_map(lambda s: s / (num_draws - 1), m2)
  return Moments(mean, variance, num_draws)


def _group_sums(tree, labels, names: Sequence[str]) -> dict[str, Array]:
  """{group: sum over the group's coordinates of `tree`} and "all"."""
  leaves = jax.tree_util.tree_leaves(tree)
  leaf_labels = jax.tree_util.tree_leaves(labels)
  sums = {name: jnp.float32(0.0) for name in names}
  for leaf, name in zip(leaves, leaf_labels):
    sums[name] = sums[name] + jnp.sum(leaf)
  sums[ALL] = sum(jnp.sum(leaf) for leaf in leaves)
  return sums


def group_names(labels) -> list[str]:
  """The groups of a label tree, in first-appearance order, then "all"."""
  names = []
  for name in jax.tree_util.tree_leaves(labels):
    if name not in names:
      names.append(name)
  return names + [ALL]


def group_statistics(moments: Moments, labels) -> dict[str, dict[str, Array]]:
  """{group: {"grad_norm", "variance", "snr"}} (module docstring)."""
  names = group_names(labels)[:-1]
  squared = _group_sums(jax.tree_util.tree_map(jnp.square, moments.mean),
                        labels, names)
  variance = _group_sums(moments.variance, labels, names)
  out = {}
  for name in squared:
    norm = jnp.sqrt(squared[name])
    out[name] = {"grad_norm": norm, "variance": variance[name],
                 "snr": norm / jnp.sqrt(variance[name])}
  return out


def bias_statistics(moments: Moments, reference: Moments, labels
                    ) -> dict[str, dict[str, Array]]:
  """{group: {"bias_norm", "bias_floor"}} of `moments` against the
  `reference` draws (module docstring)."""
  names = group_names(labels)[:-1]
  difference = jax.tree_util.tree_map(lambda a, b: jnp.square(a - b),
                                      moments.mean, reference.mean)
  noise = jax.tree_util.tree_map(
      lambda a, b: a / moments.count + b / reference.count,
      moments.variance, reference.variance)
  squared = _group_sums(difference, labels, names)
  floor = _group_sums(noise, labels, names)
  return {name: {"bias_norm": jnp.sqrt(squared[name]),
                 "bias_floor": jnp.sqrt(floor[name])} for name in squared}


def flatten(statistics: Mapping[str, Mapping[str, Array]]) -> dict[str, Array]:
  """{"grad/<group>/<statistic>": value}: the names metrics.jsonl and
  TensorBoard get."""
  return {f"grad/{group}/{stat}": value
          for group, values in statistics.items()
          for stat, value in values.items()}


def measure(grad_fn: GradFn, params, key: PRNGKey, *, num_draws: int,
            labels, reference_fn: GradFn | None = None,
            reference_draws: int = 0) -> dict[str, Array]:
  """Every statistic of the module docstring, flattened (`flatten`).

  Args:
    grad_fn: one draw of the training gradient at `params`.
    params: the parameters.
    key: the diagnostics' own key (never the training key).
    num_draws: M >= 2.
    labels: `group_labels(params, ...)`.
    reference_fn: one draw of an unbiased reference gradient, or None.
    reference_draws: R >= 2 when `reference_fn` is given.
  """
  key_run, key_ref = jax.random.split(key)
  moments = gradient_moments(grad_fn, params,
                             jax.random.split(key_run, num_draws))
  statistics = group_statistics(moments, labels)
  if reference_fn is not None:
    reference = gradient_moments(reference_fn, params,
                                 jax.random.split(key_ref, reference_draws))
    for group, values in bias_statistics(moments, reference, labels).items():
      statistics[group].update(values)
  return flatten(statistics)


# Folded into the run's seed for the diagnostics' keys, so that they never
# share the training key (the trajectory is the same with and without).
_KEY_SALT = 0x6D1A


def reference_spec(config, spec: estimator_spec.EstimatorSpec
                   ) -> estimator_spec.EstimatorSpec | None:
  """The reference estimator of `config.diagnostics.reference` (None when
  unset), on the run's distribution, with `reference_num_samples`."""
  section = config["diagnostics"]
  name = section.get("reference")
  if name is None:
    return None
  accepted = estimators.options_of(name)
  options = {k: v for k, v in spec.options.items()
             if k == "distribution" and k in accepted}
  if section.get("reference_num_samples") is not None:
    options["num_samples"] = section["reference_num_samples"]
  return estimator_spec.EstimatorSpec(name, options, {})


def make_measure(config, run) -> Callable[[Any], dict[str, Array]] | None:
  """`measure_state(train_state) -> {"grad/<group>/<statistic>": value}`
  for a run (`setup.Setup`) at its first training batch, jitted; None when
  `config.diagnostics.every_steps` is 0.

  The draws use keys of their own (`config.seed` folded with a constant and
  the step) and update nothing: the estimator's and the model's state are
  read, never written, so training is the same with and without.
  """
  section = config["diagnostics"]
  if not section["every_steps"]:
    return None
  labels = group_labels(run.state.params, tuple(section.get("groups") or ()))
  reference = reference_spec(config, run.estimator)
  x = run.x_example
  model = run.model

  def grad_fn_of(spec, step, model_state):
    def grad_fn(params, key):
      return jax.grad(lambda p: model.loss(
          p, key, x, step=step, estimator=spec.at(step),
          state=model_state)[0])(params)
    return grad_fn

  def measure_at(params, model_state, step, key):
    return measure(
        grad_fn_of(run.estimator, step, model_state), params, key,
        num_draws=section["num_draws"], labels=labels,
        reference_fn=(None if reference is None
                      else grad_fn_of(reference, step, model_state)),
        reference_draws=section["reference_draws"])

  jitted = jax.jit(measure_at)
  base_key = jax.random.fold_in(jax.random.PRNGKey(config["seed"]),
                                _KEY_SALT)

  def measure_state(state) -> dict[str, Array]:
    # On the default device, as the batch is (the training state may be
    # replicated over a mesh of several).
    params, model_state, step = jax.device_get(
        (state.params, state.model_state, state.step))
    return jitted(params, model_state, step,
                  jax.random.fold_in(base_key, step))
  return measure_state
