r"""The unordered set estimator: k samples without replacement, with its
built-in baseline (Kool, van Hoof & Welling, 2020).

The sample space D is the joint configuration of the N categorical variables
of an example (one-hot `[..., N, K]`, |D| = K^N), with p(s) = \prod_n q_n(s_n).
S = {s_1, ..., s_k} is drawn without replacement by Gumbel-top-k: the k
largest of \log p(s) + G_s, G_s ~ Gumbel(0, 1) i.i.d. over D (their Sec. 2).
With p^{D \setminus B}(A) the probability that sampling without replacement
from D \setminus B (p renormalised there) draws the set A in its first |A|
draws, in any order, and p(S) = p^D(S), the leave-one-out ratios are

  R(S, s) = p^{D \setminus \{s\}}(S \setminus \{s\}) / p(S),
  R^{D \setminus \{s\}}(S, s') = p^{D \setminus \{s, s'\}}(S \setminus
      \{s, s'\}) / p^{D \setminus \{s\}}(S \setminus \{s\})   (= 1 if s' = s),

and (their Sec. 3, Theorem 1; Sec. 4, Theorem 2)

  E[f] = E_S[\sum_{s \in S} p(s) R(S, s) f(s)],
  \nabla E[f] = E_S[\sum_{s \in S} \nabla p(s) R(S, s)
                    (f(s) - \sum_{s' \in S} p(s') R^{D \setminus \{s\}}(S, s')
                     f(s'))].

The weights w_s = p(s) R(S, s) are the probability that s was drawn first
given the set, so they sum to one, and so do the baseline's weights
p(s') R^{D \setminus \{s\}}(S, s') over s' for each s.

Every p^{D \setminus B}(S \setminus B) is one value of a single recursion over
the 2^k subsets U of S (`subset_log_probabilities`), with the mass left after
drawing U, p(D \setminus U) = p(D \setminus S) + \sum_{s \in S \setminus U}
p(s), formed in log space from p(D \setminus S), a log-sum-exp over the
unsampled configurations: no 1 - \sum p cancellation, so saturated logits stay
exact. That sum over D is why the joint space is enumerated: the estimator is
for small K^N (at most `max_support` configurations), e.g. one categorical
variable per example (N = 1) or a few small ones.
"""

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.estimators import exact
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

DISTRIBUTIONS = ("categorical",)
# The largest set size: the recursion costs k^2 2^k log-sum-exp terms per
# example (k = 8: 16k; k = 10: 100k).
MAX_NUM_SAMPLES = 10


def joint_log_probs(logits: Array) -> Array:
  """log p(s) of every joint configuration, in lexicographic order.

  Args:
    logits: `[..., N, K]`.

  Returns:
    `[..., K^N]`; configuration c has class (c // K^(N-1-n)) % K at n, the
    order of `exact.support` (built by outer sums: no gather).
  """
  log_q = jax.nn.log_softmax(logits)  # [..., N, K]
  joint = log_q[..., 0, :]
  for n in range(1, logits.shape[-2]):
    joint = (joint[..., :, None] + log_q[..., n, None, :]).reshape(
        joint.shape[:-1] + (-1,))
  return joint


def configuration_classes(index: Array, n: int, k: int) -> Array:
  """The N classes of configuration number `index`, `[..., N]`."""
  powers = k ** np.arange(n - 1, -1, -1)
  return (index[..., None] // powers) % k


def subset_log_probabilities(log_p: Array, log_p_rest: Array) -> Array:
  r"""log Q(U) for every subset U of the k sampled configurations.

  Q(U) = p^{D \setminus U}(S \setminus U): drawing without replacement from
  D \setminus U, the next |S \setminus U| draws are S \setminus U in some
  order. Conditioning on the first draw a,

    Q(U) = \sum_{a \in S \setminus U} \frac{p(a)}{p(D \setminus U)}
           Q(U \cup \{a\}),   Q(S) = 1,

  iterated k times over all 2^k subsets at once (iteration j makes every U
  with |S \setminus U| <= j exact). So p(S) = Q(\emptyset),
  p^{D \setminus \{s\}}(S \setminus \{s\}) = Q(\{s\}) and
  p^{D \setminus \{s,s'\}}(S \setminus \{s,s'\}) = Q(\{s, s'\}).

  Args:
    log_p: `[..., k]` log p of the sampled configurations.
    log_p_rest: `[...]` log p(D \setminus S) (-inf when S = D).

  Returns:
    `[..., 2^k]`, subset U as the bit mask \sum_{i \in U} 2^i.
  """
  k = log_p.shape[-1]
  subsets = np.arange(2**k)
  member = ((subsets[:, None] >> np.arange(k)) & 1) == 1  # [2^k, k]
  full = subsets == 2**k - 1
  outside = jnp.where(member, -jnp.inf, log_p[..., None, :])  # [..., 2^k, k]
  log_left = jnp.logaddexp(jax.nn.logsumexp(outside, -1),
                           log_p_rest[..., None])  # log p(D \ U)
  log_left = jnp.where(full, 0.0, log_left)
  log_q = jnp.where(full, 0.0, -jnp.inf) + jnp.zeros_like(log_left)
  for _ in range(k):
    terms = [_draw_next(log_q, log_p[..., a], a) for a in range(k)]
    log_q = jnp.where(full, 0.0, jax.nn.logsumexp(jnp.stack(terms, -1), -1) -
                      log_left)
  return log_q


def _draw_next(log_q: Array, log_p_a: Array, a: int) -> Array:
  r"""\log p(a) + \log Q(U \cup \{a\}) for U without a, -inf for U with a.

  Bit a of U is the middle axis of `log_q` reshaped to
  `[..., 2^(k-1-a), 2, 2^a]`: static slices, no gather.
  """
  size = log_q.shape[-1]
  split = log_q.reshape(log_q.shape[:-1] + (size // 2**(a + 1), 2, 2**a))
  grown = log_p_a[..., None, None] + split[..., 1, :]  # U without a, plus a
  blocked = jnp.full_like(grown, -jnp.inf)  # U already holds a
  return jnp.stack([grown, blocked], -2).reshape(log_q.shape)


def leave_one_out_log_weights(log_p: Array, log_p_rest: Array
                              ) -> tuple[Array, Array]:
  r"""log p(s) R(S, s) and log p(s') R^{D \setminus \{s\}}(S, s').

  Args:
    log_p: `[..., k]` log p of the sampled configurations.
    log_p_rest: `[...]` log p(D \setminus S).

  Returns:
    `(log_w [..., k], log_v [..., k, k])`: log_w[s] weights f(s) in the
    estimate of E[f]; log_v[s, s'] weights f(s') in the baseline of s.
  """
  k = log_p.shape[-1]
  log_q = subset_log_probabilities(log_p, log_p_rest)  # [..., 2^k]
  singles = 1 << np.arange(k)
  pairs = singles[:, None] | singles[None, :]  # diagonal: {s}
  log_q1 = log_q[..., singles]  # [..., k]
  log_w = log_p + log_q1 - log_q[..., :1]
  log_v = log_p[..., None, :] + log_q[..., pairs] - log_q1[..., :, None]
  return log_w, log_v


def sample_without_replacement(key: PRNGKey, log_p: Array, k: int) -> Array:
  """k distinct configuration numbers by Gumbel-top-k, `[..., k]`."""
  gumbel = jax.random.gumbel(key, log_p.shape, log_p.dtype)
  return jax.lax.top_k(log_p + gumbel, k)[1]


def rest_log_prob(log_p: Array, index: Array) -> Array:
  r"""log p(D \setminus S): the configurations not in `index  # [..., k]`."""
  drawn = jnp.any(index[..., :, None] == jnp.arange(log_p.shape[-1]), -2)
  return jax.nn.logsumexp(jnp.where(drawn, -jnp.inf, log_p), -1)


def check_support(logits: Array, num_samples: int, max_support: int) -> int:
  """The set size k = min(num_samples, K^N), after checking K^N and k.

  Raises:
    ValueError: for K^N > max_support or k > MAX_NUM_SAMPLES.
  """
  n, k = logits.shape[-2:]
  size = k**n
  if size > max_support:
    raise ValueError(
        f"unordered_set samples without replacement from the joint "
        f"configurations of the N={n} variables, {k}^{n} = {size} of them, "
        f"more than max_support={max_support}; it is meant for small K^N "
        f"(e.g. one categorical variable per example).")
  set_size = min(num_samples, size)
  if set_size > MAX_NUM_SAMPLES:
    raise ValueError(
        f"unordered_set takes at most {MAX_NUM_SAMPLES} samples (its "
        f"leave-one-out probabilities cost k^2 2^k terms per example); got "
        f"num_samples={num_samples}.")
  return set_size


def unordered_set(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
                  distribution: str = "categorical", num_samples: int = 4,
                  max_support: int = exact.DEFAULT_MAX_SUPPORT
                  ) -> tuple[Array, EstimatorAux]:
  r"""The unordered set policy-gradient estimator with its built-in baseline.

  Draws S, k = min(num_samples, K^N) distinct joint configurations, by
  Gumbel-top-k and returns the surrogate

    -( \sum_{s \in S} w_s f(s) + \sum_{s \in S} stop(w_s (f(s) - b_s))
       (\log p(s) - stop(\log p(s))) ),
    w_s = p(s) R(S, s),  b_s = \sum_{s' \in S} p(s') R^{D \setminus \{s\}}(S,
    s') f(s'),

  (Kool et al., 2020, Sec. 4, Theorem 2; the ratios in the module
  docstring). Its value is minus the unordered set estimate of E[f] (Sec. 3,
  Theorem 1), its logits gradient \sum_s \nabla p(s) R(S, s) (f(s) - b_s)
  and its gradient in f's parameters \sum_s w_s \nabla f(s): both unbiased.
  With k = K^N (every configuration drawn) it is the exact gradient. Cost: k
  evaluations of f (as RLOO with k samples), plus O(K^N) work to enumerate
  and sample the configurations and O(k^2 2^k) for the leave-one-out
  probabilities (`subset_log_probabilities`) per example.

  Args:
    key: PRNG key.
    logits: `[..., N, K]` categorical logits; the K^N joint configurations of
      an example are enumerated.
    f: objective, per example `[...]`.
    state: unused (stateless).
    distribution: "categorical" (the only one).
    num_samples: k >= 2, the set size (at most `MAX_NUM_SAMPLES`); taken
      as K^N when larger.
    max_support: integer >= 2, the largest K^N allowed.

  Returns:
    `(loss [...], aux)`: aux.objective = \sum_s w_s f(s);
    `aux.samples  # [k, ..., N, K]` in the order drawn; diagnostics
    "sample_weights" (w_s, `[k, ...]`, summing to 1), "baseline" (mean of
    b_s), "signal_mean" / "signal_std" of f(s) - b_s.

  Raises:
    ValueError: for a bad option, K^N > max_support, or a set larger than
      `MAX_NUM_SAMPLES`.

  References:
    Kool, van Hoof & Welling (2020), Estimating gradients for discrete random
    variables by sampling without replacement, ICLR.
  """
  del state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, DISTRIBUTIONS, "unordered_set")
  _common.check_logits(logits, distribution)
  checks.check_int("num_samples", num_samples, 2)
  checks.check_int("max_support", max_support, 2)
  set_size = check_support(logits, num_samples, max_support)
  log_p_all = jax.lax.stop_gradient(joint_log_probs(logits))  # [..., K^N]
  index = sample_without_replacement(key, log_p_all, set_size)  # [..., k]
  return set_estimate(logits, f, index)


def set_estimate(logits: Array, f: ObjectiveFn, index: Array
                 ) -> tuple[Array, EstimatorAux]:
  """`unordered_set`'s surrogate and aux at a given set of configurations.

  Args:
    logits: `[..., N, K]` categorical logits.
    f: objective, per example `[...]`.
    index: `[..., k]` distinct configuration numbers (the order of
      `joint_log_probs`), e.g. from `sample_without_replacement`.

  Returns:
    `(loss [...], aux)` as `unordered_set`.
  """
  n, k = logits.shape[-2:]
  log_p_all = jax.lax.stop_gradient(joint_log_probs(logits))  # [..., K^N]
  zs = jax.nn.one_hot(configuration_classes(index, n, k), k,
                      dtype=logits.dtype)  # [..., k, N, K]
  zs = jnp.moveaxis(zs, -3, 0)  # [k, ..., N, K]
  values = _common.call_objective_samples(f, zs, logits, "categorical",
                                          "unordered_set")  # [k, ...]
  log_w, log_v = leave_one_out_log_weights(
      jnp.take_along_axis(log_p_all, index, -1),
      rest_log_prob(log_p_all, index))
  weights = jnp.moveaxis(jnp.exp(log_w), -1, 0)  # [k, ...]
  fixed = jax.lax.stop_gradient(jnp.moveaxis(values, 0, -1))  # [..., k]
  baseline = jnp.moveaxis(jnp.sum(jnp.exp(log_v) * fixed[..., None, :], -1),
                          -1, 0)  # b_s, [k, ...]
  signal = jax.lax.stop_gradient(values) - baseline
  log_p = jnp.sum(_common.log_prob_units(logits, zs, "categorical"), -1)
  objective = jnp.sum(weights * values, 0)  # [...]
  score = jnp.sum(weights * signal * (log_p - jax.lax.stop_gradient(log_p)),
                  0)
  diagnostics = {"sample_weights": weights, "baseline": jnp.mean(baseline),
                 **baselines.signal_stats(signal)}
  aux = EstimatorAux(objective=objective, samples=zs, state=None,
                     diagnostics=diagnostics)
  return -(objective + score), aux
