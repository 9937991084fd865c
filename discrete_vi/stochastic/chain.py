r"""Chaining stochastic layers under estimators: one way for every model.

A model writes its inference pass once, in continuation-passing style: at
each stochastic layer l it calls

    sampler(l, part, params, rest)

where `part` is the layer's latent part (`stochastic.latents`), `params`
the distribution parameters q computed so far, and `rest(draw)` runs the
layers after it given this layer's `Draw` and returns the per-example
objective F `[...]` (or whatever the pass collects). The sampler decides how
the layer is drawn:

* `hard_sampler(key)`: exact draws of q (evaluation, sampling).
* `fixed_sampler(draws)`: given values (enumeration, tests).
* `relaxed_sampler(key, temperature)` / `relaxed_sampler(..., hard=True)`:
  the Concrete draw or the hard draw of the same noise, for relaxation
  bias (Lievin et al., 2019, Eq. 6).
* `TrainingSampler(estimator, key, state, first)`: under the run's
  estimator. Continuous parts are reparameterised. Pathwise estimators
  (`Estimator.sample`) draw every layer in one pass and `rest` returns F at
  those draws (the surrogate is F itself). The others (score-function
  family, control variates) are nested: layer l's estimator gets
  f(z) = rest(z), which for inner layers is -(next layer's loss), so each
  layer's learning signal is the objective of the whole pass below it; the
  first layer's aux (its honest objective and new state) is kept.

`training_pass` runs a model's pass with the training sampler and returns
the surrogate, the honest objective F on the all-hard path at tau = 0 (for
relaxed-forward estimators one more pass, without gradient, on the hard
draws of the same noise), and the first layer's new estimator state.

The layer key is `layer_key(key, l)` (default `jax.random.fold_in`).
"""

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax

from discrete_vi.stochastic import latents
from discrete_vi.types import Array, Estimator, PRNGKey

Rest = Callable[[latents.Draw], Array]
Sampler = Callable[[int, Any, Array, Rest], Array]
# A model's inference pass: run(sampler, hard) -> per-example F `[...]`;
# `hard` asks for F at tau = 0 (log-masses of Eq. 14, no gradient needed).
Pass = Callable[[Sampler, bool], Array]


def default_layer_key(key: PRNGKey, layer: int) -> PRNGKey:
  return jax.random.fold_in(key, layer)


def hard_sampler(key: PRNGKey, layer_key=default_layer_key) -> Sampler:
  """Exact draws of every layer's q."""
  def sampler(l, part, params, rest):
    return rest(part.sample(layer_key(key, l), params))
  return sampler


def fixed_sampler(draws: Sequence[Any]) -> Sampler:
  """Layer l takes `draws[l]` (a `Draw`, or an array used as a hard draw)."""
  def sampler(l, part, params, rest):
    del part, params
    draw = draws[l]
    if not isinstance(draw, latents.Draw):
      draw = latents.hard_draw(draw)
    return rest(draw)
  return sampler


def relaxed_sampler(key: PRNGKey, temperature, hard: bool = False,
                    layer_key=default_layer_key) -> Sampler:
  """Concrete draws at `temperature` (Eq. 4), or with `hard` the hard draw
  H of the same noise given the hard layers above (tau = 0)."""
  def sampler(l, part, params, rest):
    draw = part.relaxed(layer_key(key, l), params, temperature)
    return rest(latents.hard_draw(draw.hard) if hard else draw)
  return sampler


class TrainingSampler:
  """Draws layers under `estimator` (module docstring); `first` is the
  layer sampled first, whose estimator carries `state` and whose aux is
  kept in `self.first_aux` (nested estimators only)."""

  def __init__(self, estimator: Estimator, key: PRNGKey, state: Any,
               first: int, layer_key=default_layer_key):
    self.estimator, self.key, self.state = estimator, key, state
    self.first, self.layer_key = first, layer_key
    self.first_aux, self.discrete = None, False

  def __call__(self, l, part, params, rest):
    key = self.layer_key(self.key, l)
    if part.continuous:
      return rest(part.sample(key, params))
    part.check_estimator(self.estimator, l)
    self.discrete = True
    if self.estimator.sample is not None:
      return rest(part.pathwise(self.estimator, key, params))
    loss, aux = self.estimator.estimate(
        key, params, lambda z: rest(latents.hard_draw(z)),
        self.state if l == self.first else None)
    if l == self.first:
      self.first_aux = aux
    return -loss


def same_noise_hard_sampler(estimator: Estimator, key: PRNGKey,
                            layer_key=default_layer_key) -> Sampler:
  """The hard draws of the training sampler's noise: layer l is the hard
  sample of `estimator.sample` at its own params given the hard layers
  above (continuous layers: their reparameterised draw)."""
  def sampler(l, part, params, rest):
    k = layer_key(key, l)
    if part.continuous:
      return rest(part.sample(k, params))
    return rest(latents.hard_draw(part.pathwise(estimator, k, params).hard))
  return sampler


class TrainingPass(NamedTuple):
  """What `training_pass` returns (per example `[...]` arrays).

  Attributes:
    surrogate: the value whose gradient is the estimator's (maximise it).
    objective: F on the all-hard path at tau = 0, without gradient.
    state: the first layer's new estimator state.
  """
  surrogate: Array
  objective: Array
  state: Any


def training_pass(run: Pass, estimator: Estimator, key: PRNGKey, state: Any,
                  first: int, layer_key=default_layer_key) -> TrainingPass:
  """Runs `run` under `estimator` (module docstring).

  Args:
    run: the model's pass, `run(sampler, hard) -> F [...]`.
    estimator: the run's estimator (of the discrete layers).
    key: sampling key.
    state: the first layer's estimator state (None: stateless).
    first: the index of the layer sampled first.
    layer_key: `layer_key(key, l)`.

  Returns:
    `TrainingPass(surrogate, objective, state)`.
  """
  sampler = TrainingSampler(estimator, key, state, first, layer_key)
  surrogate = run(sampler, False)
  if sampler.first_aux is not None:  # nested estimators
    aux = sampler.first_aux
    return TrainingPass(surrogate, jax.lax.stop_gradient(aux.objective),
                        aux.state)
  if not (estimator.relaxed_forward and sampler.discrete):
    # hard forward (or continuous layers only): F on the hard path
    return TrainingPass(surrogate, jax.lax.stop_gradient(surrogate), state)
  objective = run(same_noise_hard_sampler(estimator, key, layer_key), True)
  return TrainingPass(surrogate, jax.lax.stop_gradient(objective), state)


def check_estimator(parts: Sequence[Any], estimator: Optional[Estimator]
                    ) -> None:
  """ValueError naming the first layer whose part cannot be sampled by
  `estimator` (continuous parts accept any)."""
  if estimator is None:
    return
  for l, part in enumerate(parts):
    part.check_estimator(estimator, l)
