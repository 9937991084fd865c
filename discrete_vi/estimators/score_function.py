r"""Score-function (REINFORCE) estimators: single-sample with baselines, RLOO
and VIMCO.

All three rest on the log-derivative identity

  \nabla_\phi E_q[f(z)] = E_q[(f(z) - b) \nabla_\phi \log q_\phi(z)]
                          + E_q[\nabla_\phi f(z)],

valid for any baseline b that does not depend on z (Williams, 1992). They
differ in how b is chosen. Each returns a "magic box" surrogate whose value is
-f at the hard sample(s) and whose gradient is the estimator.
"""

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from discrete_vi.estimators import _common
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

BASELINES = ("none", "moving_average", "self_critic", "standardize",
             "self_critic_standardize")
STATEFUL_BASELINES = ("moving_average", "standardize",
                      "self_critic_standardize")
SELF_CRITIC_BASELINES = ("self_critic", "self_critic_standardize")


class RunningStats(NamedTuple):
  """Exponential moving averages of the learning signal, per unit.

  The state always has one entry per latent unit (`[D]`), whether f returns
  per-example values (the statistics are then replicated over the D entries)
  or per-unit learning signals (one statistic per unit). Its shape thus
  depends only on `logits`, so `init_reinforce` can build it without calling
  f and `lax.scan` can carry it.

  Attributes:
    count: number of updates so far, int32 scalar (for the bias correction).
    mean: un-corrected EMA of the signal, `[D]`.
    var: un-corrected EMA of the squared deviation from the running mean,
      `[D]`.
  """
  count: Array
  mean: Array
  var: Array


def check_baseline(baseline: str) -> None:
  """Raises ValueError unless `baseline` is one of `BASELINES`."""
  if baseline not in BASELINES:
    raise ValueError(f"baseline={baseline!r} is unknown; expected one of "
                     f"{BASELINES}.")


def check_decay(decay) -> None:
  """Raises ValueError unless 0 <= decay < 1 (for a concrete decay)."""
  if isinstance(decay, jax.core.Tracer):
    return
  if not 0.0 <= float(decay) < 1.0:
    raise ValueError(f"decay must be in [0, 1); got decay={decay!r}.")


def init_reinforce(key: PRNGKey, logits: Array, *,
                   distribution: str = "bernoulli",
                   baseline: str = "none") -> Optional[RunningStats]:
  """The initial state of `reinforce`.

  Args:
    key: unused (kept for the common signature).
    logits: `[..., D]` or `[..., D, K]`; only D and the dtype are used.
    distribution: "bernoulli" or "categorical".
    baseline: one of `BASELINES`.

  Returns:
    Zeroed `RunningStats` with `[D]` entries for "moving_average" and
    "standardize", None for the stateless baselines.
  """
  del key
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="reinforce")
  _common.check_logits(logits, distribution)
  check_baseline(baseline)
  if baseline not in STATEFUL_BASELINES:
    return None
  d = _common.num_units(logits, distribution)
  zeros = jnp.zeros((d,), logits.dtype)
  return RunningStats(count=jnp.zeros((), jnp.int32), mean=zeros, var=zeros)


def corrected_stats(state: RunningStats, decay: float) -> tuple[Array, Array]:
  r"""Bias-corrected running mean and variance, `[D]` each.

  An EMA started at zero has total weight 1 - decay^t after t updates; the
  correction divides by it (as Adam does, Kingma & Ba 2015). Before the first
  update (t = 0) the mean is 0 and the variance 1 (no centring, no scaling).

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


def to_units(value: Array, per_unit: bool, d: int) -> Array:
  """Per-example `[...]` values replicated to `[..., D]`; per-unit as is."""
  if per_unit:
    return value
  return jnp.broadcast_to(value[..., None], value.shape + (d,))


def from_units(stat: Array, per_unit: bool) -> Array:
  """A `[D]` statistic for per-unit signals, or its (replicated) scalar."""
  return stat if per_unit else jnp.mean(stat, -1)


def centre_signal(key: PRNGKey, logits: Array, f: ObjectiveFn, value: Array,
                  per_unit: bool, state: Optional[RunningStats], *,
                  distribution: str, baseline: str, decay: float,
                  greedy: bool, eps: float):
  """Applies the named baseline to the learning signal f(z).

  Draws the self-critic sample (an independent z' ~ q, or the mode of q when
  `greedy`) when the baseline needs one, then defers to `apply_baseline`.

  Returns:
    `(signal, new_state, b, scale)` as `apply_baseline`.
  """
  critic = None
  if baseline in SELF_CRITIC_BASELINES:
    z_critic = (_common.mode(logits, distribution) if greedy else
                _common.sample_hard(key, logits, distribution))
    critic, critic_per_unit = _common.call_objective(
        f, jax.lax.stop_gradient(z_critic), logits, distribution)
    if critic_per_unit != per_unit:
      raise ValueError("f returned different shapes at the sample and at the "
                       "self-critic sample.")
  return apply_baseline(value, critic, state, per_unit=per_unit,
                        num_units=_common.num_units(logits, distribution),
                        baseline=baseline, decay=decay, eps=eps)


def apply_baseline(value: Array, critic: Optional[Array],
                   state: Optional[RunningStats], *, per_unit: bool,
                   num_units: int, baseline: str, decay: float, eps: float):
  r"""Centres (and maybe scales) a learning signal computed by the caller.

  The building block of every score-function estimator here, public so that
  models with structured learning signals (latent XOR flows: per-pixel
  rewards, per-layer KL signals) apply the same baselines to signals they
  compute themselves.

    "none": f.  "self_critic": f - f(z').  "moving_average": f - \hat{m}.
    "standardize": (f - \hat{m}) / \hat{s}.
    "self_critic_standardize": (f - f(z') - \hat{m}) / \hat{s}, the
      running statistics taken of the critic-centred signal f - f(z')
      (Hesselink & Aziz 2020, Sec. 5: "subtract a self-critic and
      standardise the result using moving estimates of mean and standard
      deviation").
  Running statistics are those of the state before this step (independent
  of the current sample), bias-corrected.

  Args:
    value: the learning signal f(z), `[...]` or per unit `[..., D]`.
    critic: f(z') at the self-critic sample (same shape), for the
      self-critic baselines; ignored otherwise.
    state: `RunningStats` with `[num_units]` entries for the stateful
      baselines.
    per_unit: whether `value` is per unit.
    num_units: D.
    baseline: one of `BASELINES`.
    decay: EMA decay of the running statistics.
    eps: floor of the running standard deviation.

  Returns:
    `(signal, new_state, b, scale)`: signal = (f - b) / scale (shape of f),
    the updated state (or None), the baseline b and the scale (1 unless
    standardising), all without gradient.
  """
  value = jax.lax.stop_gradient(value)
  ones = jnp.ones_like(value)
  if baseline == "none":
    return value, None, jnp.zeros_like(value), ones
  b = jnp.zeros_like(value)
  if baseline in SELF_CRITIC_BASELINES:
    if critic is None:
      raise ValueError(f"baseline={baseline!r} needs the critic's value.")
    b = jax.lax.stop_gradient(critic)
    value = value - b
    if baseline == "self_critic":
      return value, None, b, ones
  # Stateful baselines: statistics from BEFORE this step's update, so that
  # they are independent of the current sample.
  mean, var = corrected_stats(state, decay)
  new_state = update_stats(state, to_units(value, per_unit, num_units), decay)
  m = jnp.broadcast_to(from_units(mean, per_unit), value.shape)
  if baseline == "moving_average":
    return value - m, new_state, m, ones
  std = jnp.maximum(jnp.sqrt(from_units(var, per_unit)), eps)
  scale = jnp.broadcast_to(std, value.shape)
  return (value - m) / scale, new_state, b + m, scale


def score_term(signal: Array, log_q_units: Array, per_unit: bool) -> Array:
  """Zero-valued term with gradient stop(signal) * grad log q (per unit or
  summed); `_common.score_term`, public for models that compute their own
  learning signals (latent XOR flows)."""
  return _common.score_term(signal, log_q_units, per_unit)


def signal_stats(signal: Array, prefix: str = "") -> dict:
  """Mean and standard deviation of a learning signal, keys prefixed."""
  return {prefix + k: v for k, v in _common.signal_stats(signal).items()}


def check_state(state, logits: Array, distribution: str) -> None:
  """Raises ValueError when a stateful baseline gets a foreign state."""
  d = _common.num_units(logits, distribution)
  if (not isinstance(state, RunningStats) or state.mean.shape != (d,) or
      state.var.shape != (d,)):
    raise ValueError(f"reinforce: state must be RunningStats with [D]=[{d}] "
                     f"entries (from init_reinforce); got state={state!r}.")


def subtract_learned_baseline(signal: Array, baseline_value: Array,
                              per_unit: bool, batch: tuple[int, ...]):
  """Subtracts a caller-supplied baseline c(x) and forms its regression loss.

  NVIL's input-dependent baseline (Mnih & Gregor, 2014) is fit by
  minimising E[(signal - c(x))^2]; that loss is returned for the caller.

  Args:
    signal: the learning signal after the named baseline, `[...]` or
      `[..., D]`.
    baseline_value: c(x), `[...]` (broadcast over units for per-unit signals)
      or, for per-unit signals, `[..., D]`.
    per_unit: whether the signal is per unit.
    batch: the batch shape `[...]`.

  Returns:
    `(signal - c(x), loss)`: the loss `[...]` is differentiable wrt c(x) only
    (summed over units for per-unit signals).
  """
  baseline_value = jnp.asarray(baseline_value)
  shapes = (batch, signal.shape) if per_unit else (batch,)
  if baseline_value.shape not in shapes:
    expected = " or ".join(map(str, shapes))
    raise ValueError(f"baseline_value must have shape {expected}; got shape "
                     f"{baseline_value.shape}.")
  if per_unit and baseline_value.shape == batch:
    baseline_value = baseline_value[..., None]
  error = jnp.square(jax.lax.stop_gradient(signal) - baseline_value)
  loss = jnp.sum(error, -1) if per_unit else error
  return signal - jax.lax.stop_gradient(baseline_value), loss


def reinforce(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
              distribution: str = "bernoulli", baseline: str = "none",
              decay: float = 0.99, greedy: bool = False,
              baseline_value: Optional[Array] = None,
              eps: float = 1e-6) -> tuple[Array, EstimatorAux]:
  r"""REINFORCE with a baseline: (f(z) - b) \nabla \log q(z) + \nabla f(z).

  With per-unit learning signals f(z) = [f_1(z), ..., f_D(z)] (f returns
  `[..., D]`) each f_d is paired with its own score,
  \sum_d (f_d(z) - b_d) \nabla \log q(z_d); this is unbiased for
  \nabla E[\sum_d f_d] when f_d collects the terms that depend on z_d
  (local learning signals, Hesselink & Aziz 2020, Eqs. 10-12), and for
  \nabla E[g] when f_d = g for every d. The pathwise part is then left to the
  caller (`_common.pathwise_objective`).

  Baselines (all independent of the current z, hence unbiased):
    "none": b = 0.
    "moving_average": bias-corrected EMA of the batch-mean signal (NVIL's
      centring c, Mnih & Gregor 2014), from the state before this step.
    "self_critic": b = f(z') for an independent z' ~ q, or the mode of q when
      `greedy` (Rennie et al., 2017).
    "standardize": (f - \hat{m}) / max(\hat{s}, eps) with running mean and
      standard deviation from the state before this step (NVIL's variance
      normalisation; Hesselink & Aziz 2020). The logits gradient is then
      unbiased for \nabla E[f] / \hat{s}, a known positive rescaling
      (reported as `diagnostics["scale"]`); the pathwise part is not rescaled.
    "self_critic_standardize": the self-critic first, then "standardize" of
      the centred signal (Hesselink & Aziz 2020, Sec. 5); unbiased for
      \nabla E[f] / \hat{s} like "standardize".
  `baseline_value` c(x) is subtracted after the named baseline (so
  "standardize" + c(x) is NVIL); its loss is `diagnostics["baseline_loss"]`.

  Args:
    key: PRNG key.
    logits: `[..., D]` (Bernoulli) or `[..., D, K]` (categorical).
    f: objective to maximise, `z -> [...]` or per-unit `z -> [..., D]`.
    state: `RunningStats` for the stateful baselines (None: start afresh).
    distribution: "bernoulli" or "categorical".
    baseline: one of `BASELINES`.
    decay: EMA decay in [0, 1) of the stateful baselines.
    greedy: self-critic at the mode of q instead of a sample.
    baseline_value: optional learned baseline c(x), `[...]` (or `[..., D]`
      for per-unit f). It receives no gradient from the loss.
    eps: floor of the standard deviation in "standardize".

  Returns:
    `(loss [...], aux)`; aux.state is the updated `RunningStats` (or None).

  References:
    Williams (1992), Simple statistical gradient-following algorithms for
    connectionist reinforcement learning. Mnih & Gregor (2014), Neural
    variational inference and learning in belief networks.
  """
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="reinforce")
  _common.check_logits(logits, distribution)
  check_baseline(baseline)
  check_decay(decay)
  _common.check_positive("eps", eps)
  if baseline in STATEFUL_BASELINES:
    if state is None:
      state = init_reinforce(key, logits, distribution=distribution,
                             baseline=baseline)
    check_state(state, logits, distribution)
  sample_key, critic_key = jax.random.split(key)
  z = _common.sample_hard(sample_key, logits, distribution)
  value, per_unit = _common.call_objective(f, z, logits, distribution)
  signal, new_state, b, scale = centre_signal(
      critic_key, logits, f, value, per_unit, state, distribution=distribution,
      baseline=baseline, decay=decay, greedy=greedy, eps=eps)
  batch = _common.batch_shape(logits, distribution)
  baseline_loss = jnp.zeros(batch, value.dtype)
  if baseline_value is not None:
    signal, baseline_loss = subtract_learned_baseline(
        signal, baseline_value, per_unit, batch)
  log_q_units = _common.log_prob_units(logits, z, distribution)  # [..., D]
  surrogate = (_common.pathwise_objective(value, per_unit) +
               _common.score_term(signal, log_q_units, per_unit))
  diagnostics = {"baseline": jnp.mean(b), "scale": jnp.mean(scale),
                 "baseline_loss": baseline_loss,
                 **_common.signal_stats(signal)}
  aux = EstimatorAux(objective=value, samples=z, state=new_state,
                     diagnostics=diagnostics)
  return -surrogate, aux


def leave_one_out_mean(values: Array) -> Array:
  r"""m_k = \frac{1}{K-1} \sum_{j \neq k} v_j for `values  # [K, ...]`.

  Sums the other entries directly (a masked [K, K, ...] sum) rather than
  subtracting v_k from the total, which would cancel catastrophically for
  large values in float32.
  """
  k = values.shape[0]
  others = ~jnp.eye(k, dtype=bool).reshape((k, k) + (1,) * (values.ndim - 1))
  total = jnp.sum(jnp.where(others, values[None], 0.0), 1)  # [K, ...]
  return total / (k - 1)


def draw_samples(key: PRNGKey, logits: Array, f: ObjectiveFn,
                 distribution: str, num_samples: int, estimator: str):
  """K samples `[K, ..., D(, K)]`, f at each `[K, ...]` and log q per unit."""
  zs = _common.sample_hard(key, logits, distribution, (num_samples,))
  values = _common.call_objective_samples(f, zs, logits, distribution,
                                          estimator)  # [K, ...]
  log_q_units = _common.log_prob_units(logits, zs, distribution)  # [K, ..., D]
  return zs, values, log_q_units


def rloo(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
         distribution: str = "bernoulli",
         num_samples: int = 2) -> tuple[Array, EstimatorAux]:
  r"""REINFORCE leave-one-out: K samples, each baselined by the others.

  \frac{1}{K} \sum_k [(f(z_k) - \frac{1}{K-1} \sum_{j \neq k} f(z_j))
  \nabla \log q(z_k) + \nabla f(z_k)], z_k ~ q i.i.d.; unbiased because the
  baseline of z_k is independent of z_k.

  Args:
    key: PRNG key.
    logits: `[..., D]` or `[..., D, K]`.
    f: objective, per example `[...]`.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    num_samples: K >= 2.

  Returns:
    `(loss [...], aux)` with loss = -mean_k f(z_k) in value and
    `aux.samples  # [K, ..., D(, K)]`.

  References:
    Kool, van Hoof & Welling (2019), Buy 4 REINFORCE samples, get a baseline
    for free!
  """
  del state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="rloo")
  _common.check_logits(logits, distribution)
  _common.check_num_samples(num_samples, 2, "rloo")
  zs, values, log_q_units = draw_samples(key, logits, f, distribution,
                                         num_samples, "rloo")
  b = leave_one_out_mean(jax.lax.stop_gradient(values))  # [K, ...]
  signal = values - b
  surrogate = values + _common.score_term(signal, log_q_units, False)
  diagnostics = {"baseline": jnp.mean(b), **_common.signal_stats(signal)}
  aux = EstimatorAux(objective=jnp.mean(values, 0), samples=zs, state=None,
                     diagnostics=diagnostics)
  return -jnp.mean(surrogate, 0), aux


def log_mean_exp(values: Array, axis: int = 0) -> Array:
  """log mean exp along `axis`, max-shifted (finite for large |values|)."""
  return (jax.nn.logsumexp(values, axis) -
          jnp.log(jnp.asarray(values.shape[axis], values.dtype)))


def vimco_leave_one_out(log_weights: Array) -> Array:
  r"""L_{-k}: the bound with log w_k replaced by the mean of the others.

  L_{-k} = \log \frac{1}{K}(\sum_{j \neq k} w_j + \hat{w}_{-k}) with
  \log \hat{w}_{-k} = \frac{1}{K-1} \sum_{j \neq k} \log w_j (the geometric
  mean of the other weights).

  Args:
    log_weights: `[K, ...]`.

  Returns:
    `[K, ...]`.
  """
  k = log_weights.shape[0]
  replacement = leave_one_out_mean(log_weights)  # [K, ...]
  diagonal = jnp.eye(k, dtype=bool).reshape(
      (k, k) + (1,) * (log_weights.ndim - 1))
  # replaced[k, j] = log w_j for j != k, the replacement for j == k.
  replaced = jnp.where(diagonal, replacement[:, None], log_weights[None])
  return log_mean_exp(replaced, axis=1)


def vimco(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
          distribution: str = "bernoulli",
          num_samples: int = 2) -> tuple[Array, EstimatorAux]:
  r"""VIMCO: the multi-sample bound with per-sample leave-one-out baselines.

  f returns log importance weights log w(z). With z_1..z_K ~ q i.i.d. and
  L = \log \frac{1}{K} \sum_k w(z_k), the estimator of \nabla E[L] is

    \sum_k (L - L_{-k}) \nabla \log q(z_k)
      + \sum_k \tilde{w}_k \nabla \log w(z_k),

  \tilde{w}_k the normalised weights (Mnih & Rezende, 2016). The
  signals are summed over k, not averaged: each z_k enters L directly.

  Args:
    key: PRNG key.
    logits: `[..., D]` or `[..., D, K]`.
    f: log importance weight, per example `[...]`.
    state: unused (stateless).
    distribution: "bernoulli" or "categorical".
    num_samples: K >= 2.

  Returns:
    `(loss [...], aux)` with loss = -L in value, `aux.objective` = L and
    `aux.samples  # [K, ..., D(, K)]`.

  References:
    Mnih & Rezende (2016), Variational inference for Monte Carlo objectives.
  """
  del state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="vimco")
  _common.check_logits(logits, distribution)
  _common.check_num_samples(num_samples, 2, "vimco")
  zs, log_weights, log_q_units = draw_samples(key, logits, f, distribution,
                                              num_samples, "vimco")
  bound = log_mean_exp(log_weights, 0)  # [...]
  fixed = jax.lax.stop_gradient(log_weights)
  leave_one_out = vimco_leave_one_out(fixed)  # [K, ...]
  signal = log_mean_exp(fixed, 0) - leave_one_out
  score = jnp.sum(_common.score_term(signal, log_q_units, False), 0)
  weights = jax.nn.softmax(fixed, 0)
  diagnostics = {"baseline": jnp.mean(leave_one_out),
                 "effective_sample_size": jnp.mean(
                     1.0 / jnp.sum(jnp.square(weights), 0)),
                 **_common.signal_stats(signal)}
  aux = EstimatorAux(objective=bound, samples=zs, state=None,
                     diagnostics=diagnostics)
  return -(bound + score), aux
