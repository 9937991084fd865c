r"""`categorical`: bias, variance and cost of the categorical estimators.

(a) An enumerable problem (N = 2 variables, K = 3 classes, batch 2, an f
    with interactions, as in the tests' `stats.categorical_objective`): the
    exact gradient by enumeration; per estimator the mean of `SMALL_DRAWS`
    draws, its largest deviation from the exact gradient in standard errors
    (unbiased estimators stay within about 4; relaxed ones do not), and the
    total variance of one draw (summed over the 12 logits).
(b) A memory layer's size (HD-VAE's first layer: N = 16 variables with
    K = 256 classes, batch 32) with a fixed random tanh MLP f of the
    one-hot (or relaxed) sample: the variance per logit coordinate (mean
    over coordinates, `LAYER_DRAWS` draws) and the time of one jitted
    gradient call as a ratio to the pathwise gradient of the same f at a
    Gumbel-softmax sample (timed round-robin in one process). Estimators
    are compared at their f evaluations per call (column `f evals`); the
    ones whose cost grows with the support (`indecater`: N (K - 1) + 1
    evaluations, 4081 here; `unordered_set`, `enumerate`: 256^16
    configurations) are reported on (a) only.

Stateful estimators (REBAR, RELAX) are measured after `WARMUP_STEPS`
variance-minimising updates at the same logits.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import estimators
from experiments.benchmarks import estimators as binary

SMALL_DRAWS = 20_000
N, K, BATCH, HIDDEN = 16, 256, 32, 128
LAYER_DRAWS = 100
WARMUP_STEPS = 100
CATEGORICAL = {"distribution": "categorical"}


@dataclasses.dataclass(frozen=True)
class Entry:
  label: str
  name: str
  options: dict
  evaluations: str  # f evaluations per call, as a formula in N, K.
  scales: bool = True  # measured at the memory layer's size


def entries() -> list[Entry]:
  """The benchmarked configurations on categorical variables."""
  return [
      Entry("reinforce", "reinforce", {}, "1"),
      Entry("reinforce[moving_average]", "reinforce",
            {"baseline": "moving_average"}, "1"),
      Entry("rloo[K=4]", "rloo", {"num_samples": 4}, "4"),
      Entry("muprop", "muprop", {}, "2 + grad"),
      Entry("rebar", "rebar", {"learn_control_variate": True}, "3 + grad"),
      Entry("relax", "relax", {}, "3 + grad"),
      Entry("indecater[M=1]", "indecater", {"num_samples": 1},
            "N (K - 1) + 1", scales=False),
      Entry("unordered_set[k=4]", "unordered_set", {"num_samples": 4}, "4",
            scales=False),
      Entry("enumerate", "enumerate", {}, "K^N", scales=False),
      Entry("gumbel_softmax", "gumbel_softmax", {}, "1 (relaxed)"),
      Entry("st_gumbel_softmax", "st_gumbel_softmax", {}, "1"),
      Entry("gumbel_rao", "gumbel_rao", {}, "1"),
      Entry("straight_through", "straight_through", {}, "1"),
  ]


def _estimator(entry: Entry, logits, f):
  """The estimator and its (warmed-up) state."""
  est = estimators.make(entry.name, **CATEGORICAL, **entry.options)
  return est, binary.warmed_up_state(est, logits, f, steps=WARMUP_STEPS)


def small_problem(entry: Entry, logits, f, exact) -> tuple:
  """(mean gradient, max |bias| in SE, total variance) on problem (a)."""
  est, state = _estimator(entry, logits, f)

  def one(key):
    return jax.grad(lambda l: jnp.sum(est.estimate(key, l, f, state)[0]))(
        logits)
  keys = jax.random.split(jax.random.PRNGKey(0), SMALL_DRAWS)
  draws = -np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)
  mean = draws.mean(0)
  se = np.maximum(draws.std(0, ddof=1) / np.sqrt(SMALL_DRAWS),
                  1e-4 * np.abs(np.asarray(exact)) + 1e-7)
  bias_se = float(np.max(np.abs(mean - np.asarray(exact)) / se))
  return bias_se, float(np.sum(draws.var(0, ddof=1)))


def layer_objective(key):
  """A fixed random tanh MLP of the flattened `[..., N, K]` sample."""
  k1, k2 = jax.random.split(key)
  w1 = jax.random.normal(k1, (N * K, HIDDEN)) / np.sqrt(N)
  w2 = jax.random.normal(k2, (HIDDEN,)) / np.sqrt(HIDDEN)

  def f(z):  # [..., N, K] -> [...]
    return jnp.tanh(z.reshape(z.shape[:-2] + (N * K,)) @ w1) @ w2
  return f


def pathwise_reference(f):
  """The gradient of f at a Gumbel-softmax sample (tau = 0.5): the floor."""
  def loss(logits, key):
    gumbel = jax.random.gumbel(key, logits.shape)
    return -jnp.sum(f(jax.nn.softmax((logits + gumbel) / 0.5, -1)))
  return jax.grad(loss)


def layer_problem(entry: Entry, logits, f, reference) -> tuple:
  """(variance per coordinate, time / pathwise) on problem (b)."""
  est, state = _estimator(entry, logits, f)

  def grad(l, key):
    return jax.grad(lambda x: jnp.sum(est.estimate(key, x, f, state)[0]))(l)
  keyed_grad = binary.keyed(grad)
  variance = binary.gradient_variance(keyed_grad, logits, LAYER_DRAWS)
  seconds, floor = binary.seconds_per_call([keyed_grad, reference], logits)
  return variance, seconds / floor


def small_objective(z):
  """f of problem (a), `[..., 2, 3]` one-hot or relaxed -> `[...]`: a
  linear term and two interactions between the variables."""
  w = jnp.array([[1.0, -0.5, 2.0], [0.3, -1.5, 0.7]])
  same = jnp.sum(z[..., 0, :] * z[..., 1, :], -1)
  return (jnp.sum(w * z, (-2, -1)) + 1.5 * same
          - 2.0 * z[..., 0, -1] * z[..., 1, 0])


SMALL_LOGITS = jnp.array([[[0.5, -0.3, 0.1], [-1.0, 0.4, 0.8]],
                          [[0.0, 1.2, -0.6], [0.3, 0.3, -0.9]]])  # [2, 2, 3]


def exact_gradient(logits, f):
  """grad E_q[f] by enumerating the K^N joint classes (`enumerate`)."""
  est = estimators.make("enumerate", **CATEGORICAL)
  return -jax.grad(lambda l: jnp.sum(est.estimate(
      jax.random.PRNGKey(0), l, f)[0]))(logits)


def report() -> str:
  """Both problems for every entry; the markdown report."""
  exact = exact_gradient(SMALL_LOGITS, small_objective)
  f = layer_objective(jax.random.PRNGKey(42))
  logits = jax.random.normal(jax.random.PRNGKey(7), (BATCH, N, K))
  reference = binary.keyed(pathwise_reference(f))
  lines = [
      f"(a) N = 2, K = 3, batch 2, {SMALL_DRAWS} draws: the largest "
      "deviation of the mean gradient from the exact one (enumeration), in "
      "standard errors (floored at 1e-4 of the gradient: float32), and the "
      "variance of one draw summed over the 12 logits. "
      f"(b) N = {N}, K = {K}, batch {BATCH}, a tanh MLP of the "
      f"{N * K}-dimensional sample, {LAYER_DRAWS} draws: variance per logit "
      "coordinate and time per call over the pathwise gradient at a "
      "Gumbel-softmax sample (round-robin in one process). Stateful "
      f"estimators after {WARMUP_STEPS} updates of their state.",
      "",
      "The f of (a) is multilinear in each variable's one-hot vector, so "
      "df/dz_{n,k} at a one-hot z is f(z_{-n}, z_n = k): straight-through's "
      "gradient sum_k f(z_{-n}, k) d softmax_k / dl_n is then IndeCateR's "
      "with one sample, draw for draw (same variance in the table), and "
      "unbiased. The f of (b) is not multilinear (a tanh MLP), and "
      "straight-through is biased there (not measured: no exact gradient "
      "at that size).",
      "",
      "| estimator | f evals | (a) max bias (SE) | (a) variance | "
      "(b) variance per coordinate | (b) time / pathwise |",
      "|---|---|---|---|---|---|"]
  for entry in entries():
    bias_se, small_variance = small_problem(entry, SMALL_LOGITS,
                                            small_objective, exact)
    if entry.scales:
      variance, ratio = layer_problem(entry, logits, f, reference)
      layer = f"{variance:.3e} | {ratio:.2f}x"
    else:
      layer = "n/a (cost grows with the support) | n/a"
    lines.append(f"| {entry.label} | {entry.evaluations} | {bias_se:.1f} | "
                 f"{small_variance:.3e} | {layer} |")
  return "\n".join(lines) + "\n"
