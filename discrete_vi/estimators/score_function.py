r"""Score-function (REINFORCE) estimators: single-sample with baselines, RLOO
and VIMCO.

All three rest on the log-derivative identity

  \nabla_\phi E_q[f(z)] = E_q[(f(z) - b) \nabla_\phi \log q_\phi(z)]
                          + E_q[\nabla_\phi f(z)],

valid for any baseline b that does not depend on z (Williams, 1992). They
differ in how b is chosen. Each returns a "magic box" surrogate whose value is
-f at the hard sample(s) and whose gradient is the estimator. `reinforce`
delegates its baselines (moving average, self-critic, running
standardisation, NVIL's input-dependent baseline) to
`discrete_vi.estimators.baselines`, which models with their own learning
signals use directly.
"""

from typing import Optional

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey


def init_reinforce(key: PRNGKey, logits: Array, *,
                   distribution: str = "bernoulli",
                   baseline: str = "none") -> Optional[baselines.RunningStats]:
  """The initial state of `reinforce`.

  Args:
    key: unused (kept for the common signature).
    logits: `[..., D]` or `[..., D, K]`; only D and the dtype are used.
    distribution: "bernoulli" or "categorical".
    baseline: one of `baselines.BASELINES`.

  Returns:
    Zeroed `baselines.RunningStats` with `[D]` entries for the stateful
    baselines ("moving_average", "standardize", "self_critic_standardize"),
    None for the others.
  """
  del key
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="reinforce")
  _common.check_logits(logits, distribution)
  return baselines.make(baseline).init(
      _common.num_units(logits, distribution), logits.dtype)


def critic_value(key: PRNGKey, logits: Array, f: ObjectiveFn,
                 distribution: str, greedy: bool, per_unit: bool) -> Array:
  """f at the self-critic sample: z' ~ q (from `key`), or the mode of q.

  Raises:
    ValueError: when f's output at z' is not shaped like its output at z.
  """
  z_critic = (_common.mode(logits, distribution) if greedy else
              _common.sample_hard(key, logits, distribution))
  critic, critic_per_unit = _common.call_objective(
      f, jax.lax.stop_gradient(z_critic), logits, distribution)
  if critic_per_unit != per_unit:
    raise ValueError("f returned different shapes at the sample and at the "
                     "self-critic sample.")
  return jax.lax.stop_gradient(critic)


def _scale_diagnostic(scale: Array, per_unit: bool) -> Array:
  """The divisor: a scalar for per-example f, `[D]` (s_d) for per-unit f."""
  if per_unit:
    return jnp.mean(scale.reshape((-1, scale.shape[-1])), 0)
  return jnp.mean(scale)


def reinforce(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
              distribution: str = "bernoulli", baseline: str = "none",
              decay: float = baselines.DEFAULT_DECAY, greedy: bool = False,
              baseline_value: Optional[Array] = None,
              std_floor: float = baselines.DEFAULT_STD_FLOOR,
              std_warmup: int = baselines.DEFAULT_STD_WARMUP
              ) -> tuple[Array, EstimatorAux]:
  r"""REINFORCE with a baseline: (f(z) - b) \nabla \log q(z) + \nabla f(z).

  The learning signal f(z) is processed by `baselines.make(baseline, ...)`
  (see `discrete_vi.estimators.baselines` for every baseline, the
  standardisation floor and NVIL's order); this function draws z (and the
  self-critic sample), calls f and forms the "magic box" surrogate
  -(f(z) + stop(signal) (\log q(z) - stop(\log q(z)))), whose value is -f(z).

  With per-unit learning signals f(z) = [f_1(z), ..., f_D(z)] (f returns
  `[..., D]`) each f_d is paired with its own score,
  \sum_d (f_d(z) - b_d) \nabla \log q(z_d); this is unbiased for
  \nabla E[\sum_d f_d] when f_d collects the terms that depend on z_d
  (local learning signals, Hesselink & Aziz 2020, Eqs. 10-12), and for
  \nabla E[g] when f_d = g for every d. The pathwise part is then left to the
  caller (the loss has value 0).

  Baselines (all independent of the current z):
    "none", "moving_average", "self_critic" (`greedy`: at the mode of q;
      Rennie et al., 2017): unbiased for \nabla E_q[f].
    "standardize", "self_critic_standardize": the centred signal is divided
      by s = max(running std, std_floor) (NVIL's variance normalisation,
      Mnih & Gregor 2014, Sec. 3.3; Hesselink & Aziz 2020, Sec. 5). For a
      per-example f the score part is unbiased for \nabla E_q[f] / s, with s
      in `diagnostics["scale"]` (a scalar); the pathwise part \nabla f is
      not rescaled. For a per-unit f each unit has its own s_d
      (`diagnostics["scale"]` is `[D]`): the estimate of the derivative wrt
      unit d's logits is unbiased for that derivative of E_q[\sum_j f_j]
      divided by s_d, which changes the direction of the gradient.
  `baseline_value` c(x), an input-dependent baseline, is subtracted before
  the running statistics (NVIL, Mnih & Gregor 2014, Algorithm 1; so
  "standardize" + c(x) is NVIL's estimator); its regression loss
  (f [- f(z')] - running mean - c(x))^2 is `diagnostics["baseline_loss"]`.

  Args:
    key: PRNG key.
    logits: `[..., D]` (Bernoulli) or `[..., D, K]` (categorical).
    f: objective to maximise, `z -> [...]` or per-unit `z -> [..., D]`.
    state: `baselines.RunningStats` for the stateful baselines (None: start
      afresh).
    distribution: "bernoulli" or "categorical".
    baseline: one of `baselines.BASELINES`.
    decay: EMA decay in [0, 1) of the stateful baselines.
    greedy: self-critic at the mode of q instead of a sample.
    baseline_value: optional learned baseline c(x), `[...]` (or `[..., D]`
      for per-unit f). It receives no gradient from the loss.
    std_floor: > 0, the smallest divisor of the standardising baselines
      (default 1, never amplifying the signal).
    std_warmup: the divisor is at least 1 during the first `std_warmup`
      updates of the state (matters only for std_floor < 1).

  Returns:
    `(loss [...], aux)`; aux.state is the updated `RunningStats` (or None);
    diagnostics "baseline" (mean of b), "scale" (the divisor s, see above),
    "baseline_loss" `[...]`, "signal_mean" and "signal_std".

  References:
    Williams (1992), Simple statistical gradient-following algorithms for
    connectionist reinforcement learning. Mnih & Gregor (2014), Neural
    variational inference and learning in belief networks.
  """
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, estimator="reinforce")
  _common.check_logits(logits, distribution)
  processor = baselines.make(baseline, decay=decay, greedy=greedy,
                             std_floor=std_floor, std_warmup=std_warmup)
  d = _common.num_units(logits, distribution)
  if processor.stateful:
    if state is None:
      state = processor.init(d, logits.dtype)
    baselines.check_state(state, d)
  sample_key, critic_key = jax.random.split(key)
  z = _common.sample_hard(sample_key, logits, distribution)
  value, per_unit = _common.call_objective(f, z, logits, distribution)
  critic = None
  if processor.needs_critic:
    critic = critic_value(critic_key, logits, f, distribution, greedy,
                          per_unit)
  signal, new_state, info = processor.apply(
      value, state, critic=critic, per_unit=per_unit,
      baseline_value=baseline_value)
  log_q_units = _common.log_prob_units(logits, z, distribution)  # [..., D]
  surrogate = (_common.pathwise_objective(value, per_unit) +
               baselines.score_term(signal, log_q_units, per_unit))
  diagnostics = {"baseline": jnp.mean(info["baseline"]),
                 "scale": _scale_diagnostic(info["scale"], per_unit),
                 "baseline_loss": info["baseline_loss"],
                 **baselines.signal_stats(signal)}
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
  checks.check_int("num_samples", num_samples, 2)
  zs, values, log_q_units = draw_samples(key, logits, f, distribution,
                                         num_samples, "rloo")
  b = leave_one_out_mean(jax.lax.stop_gradient(values))  # [K, ...]
  signal = values - b
  surrogate = values + baselines.score_term(signal, log_q_units, False)
  diagnostics = {"baseline": jnp.mean(b), **baselines.signal_stats(signal)}
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
  checks.check_int("num_samples", num_samples, 2)
  zs, log_weights, log_q_units = draw_samples(key, logits, f, distribution,
                                              num_samples, "vimco")
  bound = log_mean_exp(log_weights, 0)  # [...]
  fixed = jax.lax.stop_gradient(log_weights)
  leave_one_out = vimco_leave_one_out(fixed)  # [K, ...]
  signal = log_mean_exp(fixed, 0) - leave_one_out
  score = jnp.sum(baselines.score_term(signal, log_q_units, False), 0)
  weights = jax.nn.softmax(fixed, 0)
  diagnostics = {"baseline": jnp.mean(leave_one_out),
                 "effective_sample_size": jnp.mean(
                     1.0 / jnp.sum(jnp.square(weights), 0)),
                 **baselines.signal_stats(signal)}
  aux = EstimatorAux(objective=bound, samples=zs, state=None,
                     diagnostics=diagnostics)
  return -(bound + score), aux
