r"""Chaining stochastic layers under estimators: one way for every model.

A model writes its inference pass once, in continuation-passing style: at
each stochastic layer l it calls

    sampler(l, part, params, rest, baseline=None)

where `part` is the layer's latent part (`stochastic.latents`), `params`
the parameters of q computed so far, `rest(draw)` runs the layers after it
given this layer's `Draw` and returns the per-example objective F `[...]`
(or whatever the pass collects), and `baseline` an optional input-dependent
baseline c(x) `[...]` for the layer's learning signal (NVIL). The sampler
decides how the layer is drawn:

* `hard_sampler(key)`: exact draws of q (evaluation, sampling).
* `fixed_sampler(draws)`: given values (enumeration, tests).
* `relaxed_sampler(key, temperature)` / `relaxed_sampler(..., hard=True)`:
  the Concrete draw or the hard draw of the same noise, for relaxation
  bias (Lievin et al., 2019, Eq. 6).
* `TrainingSampler(estimators, key, states)`: under the run's estimator
  (one, or one per layer). Continuous parts are reparameterised. Pathwise
  estimators (`Estimator.sample`: straight-through, Gumbel-softmax and
  smoothing families) draw their layer directly and `rest` continues: with
  every layer pathwise the surrogate is F itself, in one pass. The others
  (score-function family, control variates, enumeration) nest: layer l's
  estimator gets f(z) = rest(z), which for an inner layer is -(next nested
  layer's loss), so each layer's learning signal is the objective of the
  whole pass below it, scored against that layer's own state and
  baseline.

`sequential` writes the common pass of layers drawn one after the other.
`training_pass` runs a model's pass under the estimators and returns the
surrogate, the honest objective (F on the all-hard path at tau = 0), the
nested layers' new states and diagnostics (inner layers by a probe pass)
and the baselines' regression loss.

The layer key is `layer_key(key, l)` (default `jax.random.fold_in`).
"""

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

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
  def sampler(l, part, params, rest, baseline=None):
    del baseline
    return rest(part.sample(layer_key(key, l), params))
  return sampler


def fixed_sampler(draws: Sequence[Any]) -> Sampler:
  """Layer l takes `draws[l]` (a `Draw`, or an array used as a hard draw)."""
  def sampler(l, part, params, rest, baseline=None):
    del part, params, baseline
    draw = draws[l]
    if not isinstance(draw, latents.Draw):
      draw = latents.hard_draw(draw)
    return rest(draw)
  return sampler


def relaxed_sampler(key: PRNGKey, temperature, hard: bool = False,
                    layer_key=default_layer_key) -> Sampler:
  """Concrete draws at `temperature` (Eq. 4), or with `hard` the hard draw
  H of the same noise given the hard layers above (tau = 0)."""
  def sampler(l, part, params, rest, baseline=None):
    del baseline
    draw = part.relaxed(layer_key(key, l), params, temperature)
    return rest(latents.hard_draw(draw.hard) if hard else draw)
  return sampler


def sequential(num_layers: int, part: Any, q_params_of: Callable,
               sampler: Sampler, finish: Callable,
               baseline_of: Optional[Callable] = None):
  """Layers l = 0..L-1 of one part drawn in order through `sampler`, each
  conditioned on the draws before it (an SBN's z_l | z_{l-1}, DVAE++'s
  groups q(z_g | x, zeta_{<g})).

  Args:
    num_layers: L.
    part: the layers' latent part (`stochastic.latents`).
    q_params_of: `q_params_of(l, path)`: layer l's parameters of q given
      the path of the layers before it.
    sampler: a `Sampler`; layer l is drawn as its layer l.
    finish: `finish(path)` after the last layer, with the path
      `((draw_l, q_params_l), ...)`.
    baseline_of: optional `baseline_of(l, path)`, layer l's input-dependent
      baseline (NVIL), handed to the sampler.

  Returns:
    What `finish` returns, through the sampler.
  """
  def layer(l, path):
    q = q_params_of(l, path)
    baseline = None if baseline_of is None else baseline_of(l, path)

    def rest(draw):
      new_path = path + ((draw, q),)
      if l == num_layers - 1:
        return finish(new_path)
      return layer(l + 1, new_path)
    return sampler(l, part, q, rest, baseline=baseline)
  return layer(0, ())


def _estimator_of(estimators, l) -> Estimator:
  """The estimator of layer l: `estimators` itself, or its entry l."""
  return estimators if isinstance(estimators, Estimator) else estimators[l]


def _state_of(states, l):
  """Layer l's estimator state: None, or entry l of one per layer."""
  return None if states is None else states[l]


def estimate_with_baseline(estimator: Estimator, key: PRNGKey, logits: Array,
                           f: Callable, state: Any,
                           baseline: Optional[Array]):
  """Runs `estimator`, centring its learning signal by an input-dependent
  `baseline` c(x) `[...]` when given: the signal F - c(x), and c trained by
  regression on F (Mnih & Gregor, 2014, Sec. 3.3, "input-dependent
  signal centering").

  Returns:
    `(loss, aux, baseline_loss)`; loss and aux.objective are shifted back
    so that their values do not depend on the baseline; baseline_loss
    (stop_gradient(F) - c)^2 trains only the baseline (zeros without one).
  """
  if baseline is None:
    loss, aux = estimator.estimate(key, logits, f, state)
    return loss, aux, jnp.zeros(loss.shape, loss.dtype)
  b = jax.lax.stop_gradient(baseline)
  loss, aux = estimator.estimate(key, logits, lambda z: f(z) - b, state)
  objective = aux.objective + b
  baseline_loss = jnp.square(jax.lax.stop_gradient(objective) - baseline)
  return loss - b, aux._replace(objective=objective), baseline_loss


class Record(NamedTuple):
  """What a nested layer's estimator reported (`TrainingSampler`)."""
  layer: int
  aux: Any
  baseline_loss: Array


class TrainingSampler:
  """Draws layers under the run's estimator(s) (module docstring). Nested
  layers compose their estimators' surrogates as stochastic computation
  graphs do (Schulman, Heess, Weber & Abbeel, 2015): each layer's score
  term is weighted by the objective of everything below it.

  Attributes:
    estimators: one `Estimator`, or one per layer (indexed by layer).
    key: the sampling key (layer keys from `layer_key`).
    states: None (stateless), or one estimator state per layer.
    layer_key: `layer_key(key, l)`.
    hard_before: with `target`, a probe: the layers drawn before depth
      `target` are exact draws keyed by `hard_before(l)`.
    target: the depth (0: the first layer drawn) whose estimator's report
      is recorded; the others run unrecorded.
  """

  def __init__(self, estimators, key: PRNGKey, states: Any = None,
               layer_key=default_layer_key, hard_before=None,
               target: int = 0):
    self.estimators, self.key, self.states = estimators, key, states
    self.layer_key, self.hard_before, self.target = (layer_key, hard_before,
                                                     target)
    self.depth = 0
    self.record: Optional[Record] = None
    self.relaxed = False
    self.inner = []  # (depth, layer, stateful, baseline given) of layers

  def __call__(self, l, part, params, rest, baseline=None):
    if self.depth < self.target:
      draw = part.sample(self.hard_before(l), params)
      return self._descend(rest, draw)
    key = self.layer_key(self.key, l)
    if part.continuous:
      return self._descend(rest, part.sample(key, params))
    estimator = _estimator_of(self.estimators, l)
    state = _state_of(self.states, l)
    part.check_estimator(estimator, l)
    if estimator.sample is not None:
      self.relaxed = self.relaxed or estimator.relaxed_forward
      return self._descend(rest, part.pathwise(estimator, key, params))
    depth = self.depth
    if depth > self.target:
      self.inner.append((depth, l, state is not None or baseline is not None))
    loss, aux, baseline_loss = estimate_with_baseline(
        estimator, key, params,
        lambda z: self._descend(rest, latents.hard_draw(z)), state, baseline)
    if depth == self.target:
      self.record = Record(l, aux, baseline_loss)
    return -loss

  def _descend(self, rest, draw):
    self.depth += 1
    try:
      return rest(draw)
    finally:
      self.depth -= 1


def exact_and_pathwise_hard_sampler(estimators, key: PRNGKey,
                                    layer_key=default_layer_key) -> Sampler:
  """Hard draws for the honest objective: a pathwise estimator's layer is
  the hard sample of its own noise (given the hard layers above); a layer
  of any other estimator an exact draw of q; continuous layers their
  reparameterised draw."""
  def sampler(l, part, params, rest, baseline=None):
    del baseline
    k = layer_key(key, l)
    estimator = _estimator_of(estimators, l)
    if part.continuous or estimator.sample is None:
      return rest(part.sample(k, params))
    return rest(latents.hard_draw(part.pathwise(estimator, k, params).hard))
  return sampler


class TrainingPass(NamedTuple):
  """What `training_pass` returns.

  Attributes:
    surrogate: `[...]` the value whose gradient is the estimators' (to
      maximise).
    objective: `[...]` F on the all-hard path at tau = 0, no gradient.
    states: {layer: new estimator state} of the nested layers whose state
      moved (the first layer's, and the probed inner layers').
    diagnostics: {layer: the estimator's diagnostics} of the same layers,
      with its baseline's regression loss as "baseline_loss".
    baseline_loss: `[...]` the input-dependent baselines' regression loss
      (zeros without baselines).
  """
  surrogate: Array
  objective: Array
  states: dict
  diagnostics: dict
  baseline_loss: Array


def training_pass(run: Pass, estimators, key: PRNGKey, states: Any = None,
                  layer_key=default_layer_key,
                  probe_key: Optional[PRNGKey] = None,
                  hard_objective: bool = True) -> TrainingPass:
  """Runs the model's pass `run` under the estimator(s).

  Pathwise estimators draw their layers in one pass; the others nest (the
  first layer's estimator report is kept). Inner nested layers run inside
  the outer estimator's f (possibly vmapped), where their reports cannot
  be returned: when a `probe_key` is given, each inner nested layer with a
  state or an input-dependent baseline is run once more at an exact
  ancestral draw of the layers before it (keys `fold_in(probe_key, l)`),
  with the same keys and states; that pass supplies its new state, its
  diagnostics and its baseline's loss, and its surrogate is discarded.

  Args:
    run: the model's pass, `run(sampler, hard) -> F [...]`.
    estimators: the run's estimator, or one per layer.
    key: sampling key.
    states: None (stateless), or one estimator state per layer.
    layer_key: `layer_key(key, l)`.
    probe_key: key of the probes' ancestral draws (None: no probes; inner
      layers' states are then left as they are).
    hard_objective: compute F on the all-hard path when a relaxed-forward
      estimator drew a layer (one more forward pass, without gradient);
      False reports the surrogate's value there instead (the relaxed
      objective), for models that do not need the honest training value.

  Returns:
    `TrainingPass`. The objective is F on the all-hard path when a layer
    was drawn by a relaxed-forward estimator (one more forward pass,
    without gradient: `exact_and_pathwise_hard_sampler`), the first nested
    layer's honest objective when the first layer nests, else the forward
    value itself (hard-forward or continuous layers).
  """
  sampler = TrainingSampler(estimators, key, states, layer_key)
  surrogate = run(sampler, False)
  new_states, diagnostics, baseline_loss = {}, {}, jnp.zeros_like(surrogate)
  reports = [sampler.record] if sampler.record is not None else []
  if probe_key is not None:
    for depth, l, needed in sampler.inner:
      if not needed or any(r.layer == l for r in reports):
        continue
      probe = TrainingSampler(
          estimators, key, states, layer_key,
          hard_before=lambda m: jax.random.fold_in(probe_key, m),
          target=depth)
      run(probe, False)
      reports.append(probe.record)
  for report in reports:
    new_states[report.layer] = report.aux.state
    diagnostics[report.layer] = {
        **report.aux.diagnostics,
        "baseline_loss": jax.lax.stop_gradient(report.baseline_loss)}
    baseline_loss = baseline_loss + report.baseline_loss
  if sampler.relaxed and hard_objective:
    objective = run(exact_and_pathwise_hard_sampler(estimators, key,
                                                    layer_key), True)
  elif sampler.record is not None and not sampler.relaxed:
    objective = sampler.record.aux.objective
  else:
    objective = surrogate
  return TrainingPass(surrogate, jax.lax.stop_gradient(objective),
                      new_states, diagnostics, baseline_loss)
