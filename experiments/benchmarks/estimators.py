r"""`estimators`: bias, variance and cost of every estimator of binary units.

For every registry entry (and the main baselines of `reinforce`).
Stateful estimators are measured with the state reached after
`WARMUP_STEPS` calls at the same logits (moving averages filled, REBAR/RELAX
control variates trained), as they would be during training.

(a) the toy problem of REBAR/RELAX (`standardize` rescaled by its running
    std, the known scale it divides by): minimise E_{b ~ Bern(sigmoid(theta))}
    [(b - t)^2] with t = 0.499 at theta = 0; the exact gradient is
    (1 - 2t) sigmoid(theta)(1 - sigmoid(theta)). Reported: the mean of
    `TOY_DRAWS` gradient draws, its bias in standard errors, and the variance
    of one draw.
(b) a fixed random nonlinear f (a tanh MLP) on D = 200 binary units, batch
    50: the gradient variance per logit coordinate (mean over coordinates of
    the variance across `VARIANCE_DRAWS` draws), and the time of one jitted
    gradient call as a ratio to one jitted reparameterised (pathwise)
    gradient of the same f at a logistic-noise relaxed sample, the two timed
    round-robin in the same process (`measure.time_interleaved`).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import estimators
from experiments.benchmarks import measure

TOY_TARGET = 0.499
TOY_DRAWS = 100_000
D, BATCH, HIDDEN = 200, 50, 200
VARIANCE_DRAWS = 200
TIMING_REPEATS = 7
TIMING_CALLS = 20
WARMUP_STEPS = 200


@dataclasses.dataclass(frozen=True)
class Entry:
  label: str
  name: str
  options: dict
  evaluations: float  # f evaluations per call: sets the speed target.


def entries() -> list[Entry]:
  """The benchmarked configurations, one per registry entry plus baselines."""
  rows = [Entry("reinforce", "reinforce", {}, 1),
          Entry("reinforce[moving_average]", "reinforce",
                {"baseline": "moving_average"}, 1),
          Entry("reinforce[standardize]", "reinforce",
                {"baseline": "standardize"}, 1),
          Entry("reinforce[self_critic]", "reinforce",
                {"baseline": "self_critic"}, 2),
          Entry("rloo[K=4]", "rloo", {"num_samples": 4}, 4),
          Entry("vimco[K=4]", "vimco", {"num_samples": 4}, 4)]
  single = ["straight_through", "gumbel_softmax", "st_gumbel_softmax",
            "gumbel_rao", "overlapping_exponential", "overlapping_logistic",
            "spike_and_exp", "power_function"]
  rows += [Entry(n, n, {}, 1) for n in single]
  rows += [Entry(n, n, {}, 3) for n in ["muprop", "rebar", "relax", "arm",
                                        "disarm"]]
  rows += [Entry("enumerate", "enumerate", {}, 0)]
  # Every estimator of binary units (the problems here are Bernoulli); the
  # categorical-only ones (indecater, unordered_set) have their variance
  # measured in their tests, a categorical section is still to come.
  binary = {n for n, ds in estimators.DISTRIBUTIONS.items()
            if "bernoulli" in ds}
  missing = binary - {e.name for e in rows}
  if missing:
    raise RuntimeError(f"benchmark misses registry entries {sorted(missing)}")
  return rows


def speed_target(entry: Entry) -> float | None:
  """The agreed ratio target to the pathwise reference (None: no target)."""
  if entry.evaluations == 0:
    return None
  if entry.evaluations == 1:
    return 1.5
  if entry.evaluations in (2, 3):
    return 3.5
  return entry.evaluations + 0.5


def warmed_up_state(est, logits, f, steps: int = WARMUP_STEPS):
  """The estimator state after `steps` calls at fixed logits (moving
  averages filled, REBAR/RELAX control variates trained), as in training."""
  def step(state, key):
    return est.estimate(key, logits, f, state)[1].state, None
  state = est.init(jax.random.PRNGKey(0), logits)
  if state is None:
    return None
  keys = jax.random.split(jax.random.PRNGKey(5), steps)
  return jax.jit(lambda s: jax.lax.scan(step, s, keys)[0])(state)


def toy_objective(z):
  # f is maximised: f = -(b - t)^2, so grad(loss) estimates +grad E[(b-t)^2].
  return -jnp.sum((z - TOY_TARGET) ** 2, -1)


def toy_gradients(entry: Entry, num_draws: int = TOY_DRAWS) -> np.ndarray:
  """`num_draws` gradient estimates of E[(b - t)^2] wrt theta at theta = 0."""
  est = estimators.make(entry.name, **entry.options)
  logits = jnp.zeros((1,))
  f = toy_objective
  state = warmed_up_state(est, logits, f)

  def one(key):
    # `standardize` estimates grad E[f] / scale (its running std): multiply
    # the scale back so every row targets the same exact gradient.
    grad, aux = jax.grad(lambda l: (lambda out: (out[0], out[1]))(
        est.estimate(key, l, f, state)), has_aux=True)(logits)
    return grad[0] * jnp.mean(aux.diagnostics.get("scale", 1.0))

  keys = jax.random.split(jax.random.PRNGKey(1), num_draws)
  return np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)


def make_mlp_objective(key):
  """A fixed random tanh MLP f(z) = sum(tanh(z W1 + b1) w2), per example."""
  k1, k2, k3 = jax.random.split(key, 3)
  w1 = jax.random.normal(k1, (D, HIDDEN)) / np.sqrt(D)
  b1 = 0.1 * jax.random.normal(k2, (HIDDEN,))
  w2 = jax.random.normal(k3, (HIDDEN,)) / np.sqrt(HIDDEN)

  def f(z):  # z [..., D] -> [...]
    return jnp.tanh(z @ w1 + b1) @ w2
  return f


def pathwise_reference(f):
  """`grad(logits, key)`: the gradient of f at a reparameterised
  logistic-noise sample, the time floor (not jitted)."""
  def loss(logits, key):
    noise = jax.random.logistic(key, logits.shape)
    return -jnp.sum(f(jax.nn.sigmoid(logits + noise)))
  return jax.grad(loss)


def estimator_gradient(entry: Entry, f, logits):
  """`grad(logits, key)`: one gradient estimate of E[f] (not jitted)."""
  est = estimators.make(entry.name, **entry.options)
  state = warmed_up_state(est, logits, f)

  def grad(logits, key):
    return jax.grad(lambda l: jnp.sum(est.estimate(key, l, f, state)[0]))(logits)
  return grad


def keyed(grad):
  """`grad(logits, key)` as a jitted `(key, logits) -> (next key, grad)`
  for `measure.time_interleaved`: a fresh key every call."""
  return jax.jit(lambda key, logits: (jax.random.split(key)[0],
                                      grad(logits, key)))


def seconds_per_call(keyed_grads, logits) -> list[float]:
  """Seconds per call of each `keyed` gradient function, timed
  round-robin."""
  calls = [(g, jax.random.PRNGKey(2), (logits,)) for g in keyed_grads]
  return measure.time_interleaved(calls, repeats=TIMING_REPEATS,
                                  per_repeat=TIMING_CALLS)


def gradient_variance(keyed_grad, logits, num_draws=VARIANCE_DRAWS) -> float:
  """Mean over coordinates of the across-draw variance of the gradient
  (`keyed_grad` as `keyed` returns it)."""
  keys = jax.random.split(jax.random.PRNGKey(3), num_draws)
  draws = np.stack([np.asarray(keyed_grad(k, logits)[1])
                    for k in keys]).astype(np.float64)
  return float(np.mean(np.var(draws, axis=0, ddof=1)))


def report() -> str:
  """Runs both benchmarks for every entry; returns the markdown report."""
  exact = (1 - 2 * TOY_TARGET) * 0.25
  f = make_mlp_objective(jax.random.PRNGKey(42))
  logits = jax.random.normal(jax.random.PRNGKey(7), (BATCH, D))
  reference = keyed(pathwise_reference(f))
  rows, floors = [], []
  for entry in entries():
    toy = toy_gradients(entry)
    mean, sd = toy.mean(), toy.std(ddof=1)
    # The standard error is floored at 1e-4 of the exact value: float32
    # cancellation in f(1) - f(0) = 0.002 limits every estimator to about that
    # relative precision (enumerate has no variance, DisARM almost none).
    se = max(sd / np.sqrt(len(toy)), 1e-4 * abs(exact))
    z = (mean - exact) / se
    if entry.name == "enumerate":
      variance, ratio = float("nan"), None
    else:
      grad = keyed(estimator_gradient(entry, f, logits))
      variance = gradient_variance(grad, logits)
      seconds, floor = seconds_per_call([grad, reference], logits)
      floors.append(floor)
      ratio = seconds / floor
    rows.append((entry, mean, z, sd**2, variance, ratio))
  return format_table(rows, min(floors), exact)


def format_table(rows, floor, exact) -> str:
  """Markdown table of the toy and D = 200 results."""
  lines = [
      f"Toy: exact gradient {exact:.3e} (t = {TOY_TARGET}, theta = 0, "
      f"{TOY_DRAWS} draws). Nonlinear f: D = {D}, batch {BATCH}, "
      f"{VARIANCE_DRAWS} draws; pathwise reference {floor * 1e3:.3f} ms/call "
      "(the fastest of its timings; each ratio is to the reference timed "
      "round-robin with that estimator).",
      "",
      "| estimator | toy mean grad | toy bias (SE) | toy variance | "
      "D=200 grad variance | time / pathwise | target | holds |",
      "|---|---|---|---|---|---|---|---|"]
  for entry, mean, z, var, variance, ratio in rows:
    target = speed_target(entry)
    holds = "" if ratio is None or target is None else (
        "yes" if ratio <= target else "no")
    lines.append(
        f"| {entry.label} | {mean:.4e} | {z:+.1f} | {var:.3e} | "
        f"{'n/a' if np.isnan(variance) else f'{variance:.3e}'} | "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | "
        f"{'' if target is None else f'{target:g}x'} | {holds} |")
  return "\n".join(lines) + "\n"
