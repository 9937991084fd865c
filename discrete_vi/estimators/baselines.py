r"""Learning-signal processing for score-function gradients (optax style).

A score-function (REINFORCE) gradient pairs a learning signal with a score,

  \nabla_\phi E_q[f(z)] = E_q[(f(z) - b) \nabla_\phi \log q_\phi(z)]
                          + E_q[\nabla_\phi f(z)],

and is unbiased for any baseline b that does not depend on z (Williams,
1992). This module turns a raw signal f(z) into (f(z) - b) / s: it centres
it with a baseline b and may divide it by a running standard deviation s.
`reinforce` is built on it, and so is any model that computes its own
structured signals (per-pixel rewards, per-layer KL signals, scores of
autoregressive samplers) and therefore cannot call `reinforce` itself.

    processor = baselines.make("self_critic_standardize", decay=0.99)
    state = processor.init(num_units)                    # RunningStats or None
    signal, state, info = processor.apply(f_z, state, critic=f_critic,
                                          per_unit=False)
    loss = -(f_z + baselines.score_term(signal, log_q_units, per_unit=False))

Baselines (`BASELINES`), with \hat m and \hat s the bias-corrected running
mean and standard deviation of the centred signal from the state BEFORE this
step (so independent of the current sample):

  "none":                    f
  "moving_average":          f - \hat m
  "self_critic":             f - f(z')
  "standardize":             (f - \hat m) / s
  "self_critic_standardize": (f - f(z') - \hat m) / s

with z' ~ q independent of z, or the mode of q when `greedy` (Rennie et
al., 2017); the critic value f(z') is computed by the caller. The
"self_critic_standardize" statistics are those of f - f(z') (Hesselink &
Aziz, 2020, Sec. 5: "subtract ... a self-critic and standardise the result
using moving estimates of mean and standard deviation").

Standardisation floor. s = max(\hat s, std_floor) with std_floor = 1 by
default: NVIL's variance normalisation divides by max(1, \sqrt{v})
(Mnih & Gregor, 2014, Sec. 3.3 and Algorithm 1), which can shrink a signal
but never amplify it. With a single example per batch, or a first batch
whose centred signals are all equal (a greedy self-critic at the start of
training makes f - f(mode) = 0), \hat s = 0 and a small floor would multiply
the gradient by 1 / std_floor. A floor below 1 is allowed for signals whose
natural scale is small; for the first `std_warmup` updates of the state the
floor is then raised to 1 (s = max(\hat s, 1)), so that the divisor only
amplifies once the running variance has seen `std_warmup` batches.

Input-dependent baseline (NVIL). `apply(..., baseline_value=c)` subtracts a
caller-supplied c(x) (a learned network of the input, no gradient flows into
it from the signal) BEFORE the running statistics, in NVIL's order
(Mnih & Gregor, 2014, Algorithm 1): the residual r = f [- f(z')] - c(x) is
what the running mean and variance track, and the signal is
(r - \hat m) / s. c(x) is fit by regression on the target
f [- f(z')] - \hat m (the signal before c(x) and the scaling): `info`
carries `baseline_loss` = (target - c(x))^2, differentiable wrt c(x) only,
for the caller to add to its loss. NVIL's own update of c is the gradient of
this loss times 1 / (2 max(1, \sqrt{v})); the running statistics here are
those before the current batch, where NVIL's Algorithm 1 updates them first
(which makes b depend on z, a small bias that this module avoids).

What the standardised gradient estimates. For per-example signals s is one
positive scalar per step: the score part of the gradient is unbiased for
\nabla E_q[f] / s (the pathwise part E[\nabla f] is not rescaled). For
per-unit signals f_d paired with the score of z_d, each unit has its own
s_d: for a factorial q with per-unit parameters (logits l_d) the estimate of
\partial / \partial l_d is unbiased for (\partial E_q[\sum_j f_j] /
\partial l_d) / s_d, a different rescaling per coordinate, so the DIRECTION
of the gradient changes, and parameters shared between units (an encoder's
weights) receive \sum_d (1 / s_d) x (unit d's contribution), which is not a
rescaled \nabla E_q[f]. `info["scale"]` holds the divisor s (or s_d) of
every entry of the signal.

References:
  Williams (1992), Simple statistical gradient-following algorithms for
    connectionist reinforcement learning.
  Mnih & Gregor (2014), Neural variational inference and learning in belief
    networks (NVIL), Sec. 3.3 and Algorithm 1.
  Rennie, Marcheret, Mroueh, Ross & Goel (2017), Self-critical sequence
    training for image captioning.
  Hesselink & Aziz (2020), Latent transformations for discrete-data
    normalising flows, Sec. 5.
"""

from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.types import Array

BASELINES = ("none", "moving_average", "self_critic", "standardize",
             "self_critic_standardize")
STATEFUL_BASELINES = ("moving_average", "standardize",
                      "self_critic_standardize")
SELF_CRITIC_BASELINES = ("self_critic", "self_critic_standardize")
STANDARDIZING_BASELINES = ("standardize", "self_critic_standardize")

DEFAULT_DECAY = 0.99
DEFAULT_STD_FLOOR = 1.0
DEFAULT_STD_WARMUP = 10


class RunningStats(NamedTuple):
  """Exponential moving averages of the (centred) learning signal, per unit.

  The statistics always have one entry per latent unit (`[D]`), whether the
  signal is per example (the statistics are then replicated over the D
  entries) or per unit (one statistic per unit), so their shape depends only
  on D and `lax.scan` can carry them.

  Attributes:
    count: number of updates so far, int32 scalar (bias correction and
      standardisation warm-up).
    mean: un-corrected EMA of the signal, `[D]`.
    var: un-corrected EMA of the squared deviation from the running mean,
      `[D]`.
  """
  count: Array
  mean: Array
  var: Array


class SignalProcessor(NamedTuple):
  """A baseline with its options bound: pure `init` and `apply` (optax style).

  Attributes:
    init: `init(num_units, dtype=jnp.float32) -> state`, zeroed
      `RunningStats` with `[num_units]` entries for the stateful baselines,
      None for the others.
    apply: `apply(value, state, *, critic=None, per_unit,
      baseline_value=None) -> (signal, new_state, info)`. `value` is the
      learning signal f(z), `[...]` or per unit `[..., D]`; `critic` is f at
      the self-critic sample (same shape), required iff `needs_critic`;
      `baseline_value` an optional input-dependent baseline c(x), `[...]`
      (broadcast over units) or `[..., D]`. `signal` = (f - b) / s has the
      shape of `value`; `info` is a dict of arrays without gradient except
      `baseline_loss`: "baseline" (b, shape of value), "scale" (s, shape of
      value), "baseline_loss" (`[...]`, zeros without `baseline_value`).
    needs_critic: whether `apply` needs `critic`.
    greedy: take the self-critic at the mode of q instead of an independent
      sample z' ~ q.
    baseline: the baseline's name (one of `BASELINES`).
    stateful: whether `init` returns `RunningStats` (else None).
  """
  init: Callable[..., Optional[RunningStats]]
  apply: Callable[..., tuple[Array, Optional[RunningStats], dict]]
  needs_critic: bool
  greedy: bool
  baseline: str
  stateful: bool


def check_baseline(baseline: str) -> None:
  """Raises ValueError unless `baseline` is one of `BASELINES`."""
  checks.check_one_of("baseline", baseline, BASELINES)


def check_options(baseline: str = "none", *, decay: float = DEFAULT_DECAY,
                  greedy: bool = False, std_floor: float = DEFAULT_STD_FLOOR,
                  std_warmup: int = DEFAULT_STD_WARMUP) -> None:
  """Raises ValueError (naming the value) for an invalid option of `make`."""
  check_baseline(baseline)
  checks.check_in_range("decay", decay, 0.0, 1.0, high_open=True)
  checks.check_bool("greedy", greedy)
  checks.check_positive("std_floor", std_floor)
  checks.check_int("std_warmup", std_warmup, 0)


def check_state(state: Any, num_units: int) -> None:
  """Raises ValueError unless `state` is `RunningStats` with `[num_units]`."""
  if (not isinstance(state, RunningStats) or
      jnp.shape(state.mean) != (num_units,) or
      jnp.shape(state.var) != (num_units,)):
    raise ValueError(f"state must be RunningStats with [D]=[{num_units}] "
                     f"entries (from the processor's init); got "
                     f"state={state!r}.")


def init_stats(num_units: int, dtype=jnp.float32) -> RunningStats:
  """Zeroed `RunningStats` with `[num_units]` entries."""
  checks.check_int("num_units", num_units, 1)
  zeros = jnp.zeros((num_units,), dtype)
  return RunningStats(count=jnp.zeros((), jnp.int32), mean=zeros, var=zeros)


def corrected_stats(state: RunningStats, decay: float) -> tuple[Array, Array]:
  r"""Bias-corrected running mean and variance, `[D]` each.

  An EMA started at zero has total weight 1 - decay^t after t updates; the
  correction divides by it (as Adam does, Kingma & Ba 2015). Before the first
  update (t = 0) the mean is 0 and the variance 1.

  Returns:
    `(mean, var)`, each `[D]`.
  """
  weight = 1.0 - jnp.power(jnp.asarray(decay, state.mean.dtype),
                           state.count.astype(state.mean.dtype))
  started = state.count > 0
  safe_weight = jnp.where(started, weight, 1.0)
  mean = jnp.where(started, state.mean / safe_weight, 0.0)
  var = jnp.where(started, state.var / safe_weight, 1.0)
  return mean, var


def update_stats(state: RunningStats, units: Array,
                 decay: float) -> RunningStats:
  r"""One EMA step with the batch of signals `units  # [..., D]`.

  m_t = \delta m_{t-1} + (1 - \delta) \bar{x}_t and
  v_t = \delta v_{t-1} + (1 - \delta) mean_batch[(x - \hat{m}_t)^2], with
  \hat{m}_t the bias-corrected mean after this update. No gradient flows into
  the state.
  """
  units = jax.lax.stop_gradient(units).astype(state.mean.dtype)
  flat = units.reshape((-1, units.shape[-1]))  # [B, D]
  mean = decay * state.mean + (1.0 - decay) * jnp.mean(flat, 0)
  count = state.count + 1
  provisional = RunningStats(count=count, mean=mean, var=state.var)
  new_mean, _ = corrected_stats(provisional, decay)
  deviation = jnp.mean(jnp.square(flat - new_mean), 0)  # [D]
  var = decay * state.var + (1.0 - decay) * deviation
  return RunningStats(count=count, mean=mean, var=var)


def standard_deviation(state: RunningStats, decay: float, std_floor: float,
                       std_warmup: int) -> Array:
  r"""The divisor s = max(\hat s, floor), `[D]`, never below std_floor.

  floor = max(std_floor, 1) while `state.count < std_warmup`, std_floor
  afterwards: during the warm-up s >= 1, so the signal is never amplified.
  """
  _, var = corrected_stats(state, decay)
  floor = jnp.where(state.count < std_warmup, jnp.maximum(std_floor, 1.0),
                    std_floor)
  return jnp.maximum(jnp.sqrt(var), floor).astype(state.mean.dtype)


def _to_units(value: Array, per_unit: bool, num_units: int) -> Array:
  """Per-example `[...]` values replicated to `[..., D]`; per-unit as is."""
  if per_unit:
    return value
  return jnp.broadcast_to(value[..., None], value.shape + (num_units,))


def _from_units(stat: Array, per_unit: bool) -> Array:
  """A `[D]` statistic for per-unit signals, or its scalar (replicated)."""
  return stat if per_unit else jnp.mean(stat, -1)


def _input_baseline(baseline_value: Array, value: Array,
                    per_unit: bool) -> Array:
  """c(x) checked and broadcast to the shape of `value`."""
  baseline_value = jnp.asarray(baseline_value)
  batch = value.shape[:-1] if per_unit else value.shape
  shapes = (batch, value.shape) if per_unit else (batch,)
  if baseline_value.shape not in shapes:
    expected = " or ".join(map(str, shapes))
    raise ValueError(f"baseline_value must have shape {expected}; got shape "
                     f"{baseline_value.shape}.")
  if per_unit and baseline_value.shape == batch:
    baseline_value = baseline_value[..., None]
  return jnp.broadcast_to(baseline_value, value.shape)


def _regression_loss(target: Array, baseline_value: Array,
                     per_unit: bool) -> Array:
  """(stop(target) - c)^2, summed over units for per-unit signals: `[...]`."""
  error = jnp.square(jax.lax.stop_gradient(target) - baseline_value)
  return jnp.sum(error, -1) if per_unit else error


def _apply(value: Array, state: Optional[RunningStats], *, baseline: str,
           decay: float, std_floor: float, std_warmup: int,
           critic: Optional[Array], per_unit: bool,
           baseline_value: Optional[Array]):
  """`SignalProcessor.apply` with the processor's options as arguments."""
  value = jax.lax.stop_gradient(jnp.asarray(value))
  if per_unit and value.ndim < 1:
    raise ValueError(f"per-unit signals need shape [..., D]; got shape "
                     f"{value.shape}.")
  batch = value.shape[:-1] if per_unit else value.shape
  fixed = jnp.zeros_like(value)  # critic and c(x): no gradient, no state
  if baseline in SELF_CRITIC_BASELINES:
    if critic is None:
      raise ValueError(f"baseline={baseline!r} needs the critic's value "
                       f"(f at the self-critic sample).")
    critic = jnp.asarray(critic)
    if critic.shape != value.shape:
      raise ValueError(f"critic must have the shape of the signal "
                       f"{value.shape}; got shape {critic.shape}.")
    fixed = fixed + jax.lax.stop_gradient(critic)
  c = None
  if baseline_value is not None:
    c = _input_baseline(baseline_value, value, per_unit)
  residual = value - fixed - (0.0 if c is None else jax.lax.stop_gradient(c))
  mean = jnp.zeros_like(value)
  scale = jnp.ones_like(value)
  new_state = None
  if baseline in STATEFUL_BASELINES:
    if not isinstance(state, RunningStats):
      raise ValueError(f"baseline={baseline!r} needs state=RunningStats "
                       f"(from the processor's init); got state={state!r}.")
    num_units = jnp.shape(state.mean)[-1] if jnp.ndim(state.mean) == 1 else -1
    check_state(state, value.shape[-1] if per_unit else num_units)
    # Statistics from BEFORE this step's update: independent of this sample.
    running_mean, _ = corrected_stats(state, decay)
    mean = jnp.broadcast_to(_from_units(running_mean, per_unit), value.shape)
    if baseline in STANDARDIZING_BASELINES:
      std = standard_deviation(state, decay, std_floor, std_warmup)
      scale = jnp.broadcast_to(_from_units(std, per_unit), value.shape)
    new_state = update_stats(state, _to_units(residual, per_unit, num_units),
                             decay)
  signal = (residual - mean) / scale
  baseline_loss = jnp.zeros(batch, value.dtype)
  if c is not None:
    baseline_loss = _regression_loss(value - fixed - mean, c, per_unit)
    c = jax.lax.stop_gradient(c)
  b = fixed + mean + (0.0 if c is None else c)
  info = {"baseline": b, "scale": scale, "baseline_loss": baseline_loss}
  return signal, new_state, info


def make(baseline: str = "none", *, decay: float = DEFAULT_DECAY,
         greedy: bool = False, std_floor: float = DEFAULT_STD_FLOOR,
         std_warmup: int = DEFAULT_STD_WARMUP) -> SignalProcessor:
  """The named baseline as a `SignalProcessor` (see the module docstring).

  Args:
    baseline: one of `BASELINES`.
    decay: EMA decay in [0, 1) of the running mean and variance.
    greedy: self-critic at the mode of q instead of a sample (only used by
      the self-critic baselines; the caller evaluates f there).
    std_floor: > 0, the smallest divisor of the standardising baselines
      (default 1: never amplify, as NVIL).
    std_warmup: integer >= 0, number of state updates during which the
      divisor is at least 1 whatever `std_floor` (only matters for
      std_floor < 1).

  Returns:
    `SignalProcessor(init, apply, needs_critic, greedy, baseline, stateful)`.

  Raises:
    ValueError: naming any invalid option value.
  """
  check_options(baseline, decay=decay, greedy=greedy, std_floor=std_floor,
                std_warmup=std_warmup)
  stateful = baseline in STATEFUL_BASELINES

  def init(num_units: int, dtype=jnp.float32) -> Optional[RunningStats]:
    stats = init_stats(num_units, dtype)  # validates num_units
    return stats if stateful else None

  def apply(value, state=None, *, critic=None, per_unit: bool,
            baseline_value=None):
    checks.check_bool("per_unit", per_unit)
    return _apply(value, state, baseline=baseline, decay=decay,
                  std_floor=std_floor, std_warmup=std_warmup, critic=critic,
                  per_unit=per_unit, baseline_value=baseline_value)

  return SignalProcessor(init=init, apply=apply,
                         needs_critic=baseline in SELF_CRITIC_BASELINES,
                         greedy=bool(greedy), baseline=baseline,
                         stateful=stateful)


# The options of `make` that a `reinforce` estimator carries.
PROCESSOR_OPTIONS = ("baseline", "decay", "greedy", "std_floor", "std_warmup")


def from_estimator(estimator: Any) -> SignalProcessor:
  """The signal processor of a `reinforce` estimator from `estimators.make`.

  Models that compute their own learning signals use it to apply exactly the
  baseline that the configured estimator names.

  Args:
    estimator: an `Estimator` with `name == "reinforce"`.

  Returns:
    `make(**options)` with the estimator's baseline options.

  Raises:
    ValueError: naming the estimator when it is not `reinforce`.
  """
  name = getattr(estimator, "name", None)
  options = getattr(estimator, "options", None)
  if name != "reinforce" or not isinstance(options, Mapping):
    raise ValueError(f"from_estimator needs a 'reinforce' estimator from "
                     f"estimators.make; got estimator {name!r} "
                     f"({type(estimator).__name__}).")
  return make(**{k: v for k, v in options.items() if k in PROCESSOR_OPTIONS})


def score_term(signal: Array, log_q_units: Array, per_unit: bool) -> Array:
  r"""A zero-valued term whose gradient is stop(signal) \nabla \log q(z).

  The "magic box" (DiCE, Foerster et al., 2018) form of the score-function
  estimator: add it to the objective whose gradient is taken.

  Args:
    signal: learning signal, `[...]` or per unit `[..., D]`.
    log_q_units: log q(z) per unit, `[..., D]`.
    per_unit: pair signal_d with \log q(z_d) (local learning signals)
      instead of the whole signal with \sum_d \log q(z_d).

  Returns:
    `[...]`, equal to 0 in value.
  """
  centred = log_q_units - jax.lax.stop_gradient(log_q_units)
  signal = jax.lax.stop_gradient(signal)
  if per_unit:
    return jnp.sum(signal * centred, -1)
  return signal * jnp.sum(centred, -1)


def signal_stats(signal: Array, prefix: str = "") -> dict:
  """Mean and standard deviation of a learning signal (no gradient).

  Returns:
    `{prefix + "signal_mean": [], prefix + "signal_std": []}`.
  """
  signal = jax.lax.stop_gradient(signal)
  return {prefix + "signal_mean": jnp.mean(signal),
          prefix + "signal_std": jnp.std(signal)}
