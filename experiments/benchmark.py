r"""Benchmarks of the estimator library (a report, never a timed test).

    python -m experiments.benchmark estimators [OUTPUT.md]
    python -m experiments.benchmark training [OUTPUT.md]
    python -m experiments.benchmark xor_flow [OUTPUT.md]
    python -m experiments.benchmark dvaepp [OUTPUT.md]
    python -m experiments.benchmark dvaepp_ais [OUTPUT.md] [RUN_DIR]
    python -m experiments.benchmark dvaepp_conv [OUTPUT.md]
    python -m experiments.benchmark hdvae [OUTPUT.md]

For every registry entry (and the main baselines of `reinforce`):

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
    gradient of the same f at a logistic-noise relaxed sample, measured in
    the same process.

`training` reports train steps/s of the linear and nonlinear SBN at batch
24 and 100 (10 steps fused per call, the train state donated as the
training loop does) for the single-sample estimators, and the ratio of the
step time to a "floor" measured in the same run, interleaved: the SBN's
dense layers (kernels and biases, chained encoder -> decoder with tanh in
between) forward and backward with an SGD update and no sampling, and the
same floor with the run's own optimiser (Adam) instead of SGD. For the
linear SBN it also times the same train step written directly in JAX
(`handwritten_step`), the library's overhead. Then the time and memory of a
5000-sample bound on 1,000 images.

`xor_flow` reports the XOR flows' train steps/s and the cost of their
pixel-by-pixel sampler vs D (experiments/benchmark_flows.py).

`dvaepp` reports the cost of an RBM prior: the train step split into
encoder/decoder and Gibbs chains, AIS time and error, chain memory
(experiments/benchmark_dvaepp.py).

`dvaepp_conv` reports the paper-size convolutional DVAE++'s train step at
batch 100 with the share of its Gibbs chains, compile time and memory
(experiments/benchmark_dvaepp_conv.py).

`hdvae` reports the 6-layer HD-VAE (6 x 16 units, K = 16^2, batch 128)
against its Gaussian baseline: step time and XLA memory as ratios
(experiments/benchmark_hdvae.py).

The markdown table is printed and written to OUTPUT.md (default
`benchmark_results/<name>.md`).
"""

import dataclasses
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from discrete_vi import estimators
from discrete_vi.training import steps as steps_lib
from experiments import benchmark_dvaepp
from experiments import benchmark_dvaepp_conv
from experiments import benchmark_flows
from experiments import benchmark_hdvae
from experiments import timing

TOY_TARGET = 0.499
TOY_DRAWS = 100_000
D, BATCH, HIDDEN = 200, 50, 200
VARIANCE_DRAWS = 200
TIMING_REPEATS = 7
TIMING_CALLS = 20


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


WARMUP_STEPS = 200


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
  """grad of f at a reparameterised logistic-noise sample: the time floor."""
  def loss(logits, key):
    noise = jax.random.logistic(key, logits.shape)
    return -jnp.sum(f(jax.nn.sigmoid(logits + noise)))
  return jax.jit(jax.grad(loss))


def estimator_gradient(entry: Entry, f, logits):
  est = estimators.make(entry.name, **entry.options)
  state = warmed_up_state(est, logits, f)

  def grad(logits, key):
    return jax.grad(lambda l: jnp.sum(est.estimate(key, l, f, state)[0]))(logits)
  return jax.jit(grad)


def seconds_per_call(fn, logits) -> float:
  """Best-of-repeats mean time of one call (compiled beforehand)."""
  keys = jax.random.split(jax.random.PRNGKey(2), TIMING_CALLS)
  jax.block_until_ready(fn(logits, keys[0]))
  best = float("inf")
  for _ in range(TIMING_REPEATS):
    start = time.perf_counter()
    for key in keys:
      out = fn(logits, key)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / TIMING_CALLS)
  return best


def gradient_variance(fn, logits, num_draws=VARIANCE_DRAWS) -> float:
  """Mean over coordinates of the across-draw variance of the gradient."""
  keys = jax.random.split(jax.random.PRNGKey(3), num_draws)
  draws = np.stack([np.asarray(fn(logits, k)) for k in keys]).astype(np.float64)
  return float(np.mean(np.var(draws, axis=0, ddof=1)))


def benchmark_estimators() -> str:
  """Runs both benchmarks for every entry; returns the markdown report."""
  exact = (1 - 2 * TOY_TARGET) * 0.25
  f = make_mlp_objective(jax.random.PRNGKey(42))
  logits = jax.random.normal(jax.random.PRNGKey(7), (BATCH, D))
  reference = pathwise_reference(f)
  # The reference is timed before and after the estimators; the smaller time
  # is the floor (a noisier machine can only make the floor look slower).
  floor = seconds_per_call(reference, logits)
  rows = []
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
      fn = estimator_gradient(entry, f, logits)
      variance = gradient_variance(fn, logits)
      ratio = seconds_per_call(fn, logits)
    rows.append((entry, mean, z, sd**2, variance, ratio))
  floor = min(floor, seconds_per_call(reference, logits))
  return format_table(rows, floor, exact)


def format_table(rows, floor, exact) -> str:
  """Markdown table of the toy and D = 200 results."""
  lines = [
      f"Toy: exact gradient {exact:.3e} (t = {TOY_TARGET}, theta = 0, "
      f"{TOY_DRAWS} draws). Nonlinear f: D = {D}, batch {BATCH}, "
      f"{VARIANCE_DRAWS} draws; pathwise reference {floor * 1e3:.3f} ms/call "
      f"on {jax.devices()[0].platform}.",
      "",
      "| estimator | toy mean grad | toy bias (SE) | toy variance | "
      "D=200 grad variance | time / pathwise | target | holds |",
      "|---|---|---|---|---|---|---|---|"]
  for entry, mean, z, var, variance, seconds in rows:
    target = speed_target(entry)
    ratio = None if seconds is None else seconds / floor
    holds = "" if ratio is None or target is None else (
        "yes" if ratio <= target else "no")
    lines.append(
        f"| {entry.label} | {mean:.4e} | {z:+.1f} | {var:.3e} | "
        f"{'n/a' if np.isnan(variance) else f'{variance:.3e}'} | "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | "
        f"{'' if target is None else f'{target:g}x'} | {holds} |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) < 2 or argv[1] not in BENCHMARKS:
    raise SystemExit(f"usage: python -m experiments.benchmark "
                     f"{{{'|'.join(BENCHMARKS)}}} [OUTPUT.md] [ARGS...]")
  name = argv[1]
  output = argv[2] if len(argv) > 2 else os.path.join(
      "benchmark_results", f"{name}.md")
  report = BENCHMARKS[name](*argv[3:])  # e.g. dvaepp_ais's RUN_DIR
  os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
  with open(output, "w") as fh:
    fh.write(report)
  sys.stdout.write(report)
  sys.stdout.write(f"\nwritten to {output}\n")


# -- training benchmark ---------------------------------------------------------

TRAIN_STEPS_PER_CALL = 10
TRAIN_ESTIMATORS = (("reinforce[moving_average]", "reinforce",
                     {"baseline": "moving_average"}),
                    ("straight_through", "straight_through", {}),
                    ("st_gumbel_softmax", "st_gumbel_softmax", {}),
                    ("gumbel_softmax", "gumbel_softmax", {}))
HANDWRITTEN = ("reinforce", "gumbel_softmax")


def dense_layers(params) -> list[tuple[jax.Array, jax.Array]]:
  """The SBN's dense layers `(kernel, bias)` in the order a sample meets them.

  Encoders bottom-up (`encoders_0`, `encoders_1`, ...), then decoders
  top-down (..., `decoders_1`, `decoders_0`); within a link its hidden
  layers, then `out`. The NVIL baseline nets and the prior are left out.
  """
  def layers_of(link):
    names = sorted((n for n in link if n.startswith("hidden_")),
                   key=lambda n: int(n.split("_")[1])) + ["out"]
    return [(link[n]["kernel"], link[n]["bias"]) for n in names]

  def links(prefix):
    return sorted((k for k in params if k.startswith(prefix)),
                  key=lambda k: int(k.rsplit("_", 1)[1]))
  layers = [l for k in links("encoders_") for l in layers_of(params[k])]
  layers += [l for k in reversed(links("decoders_"))
             for l in layers_of(params[k])]
  return layers


def dense_floor(params, optimizer=None):
  """The time floor of a train step: the SBN's dense layers forward and
  backward, chained as in the model (x -> encoders -> decoders), with tanh
  between layers and an update, no sampling.

  The update is plain SGD, or `optimizer` (an optax transformation, e.g. the
  run's Adam) applied to the same kernels and biases. The backward pass
  computes every layer's input gradient except the first's, as a pathwise
  (relaxed) estimator does; a score-function estimator needs one matrix
  product fewer per step (no gradient into the decoder's input).

  Returns:
    `(run, layers, opt_state)`: `run((layers, opt_state), xs [n, B, D])`
    does n steps in one lax.scan, returns `((layers, opt_state), None)` with
    the new values, and donates its first argument (opt_state is None for
    SGD).
  """
  layers = dense_layers(params)

  def loss(layers, x):
    h = x
    for kernel, bias in layers:
      h = jnp.tanh(h @ kernel + bias)
    return jnp.sum(h)

  def one(carry, x):
    layers, opt_state = carry
    g = jax.grad(loss)(layers, x)
    if optimizer is None:
      return (jax.tree_util.tree_map(lambda w, gw: w - 1e-3 * gw, layers, g),
              opt_state), None
    updates, opt_state = optimizer.update(g, opt_state, layers)
    return (optax.apply_updates(layers, updates), opt_state), None

  def run(carry, xs):
    return jax.lax.scan(one, carry, xs)
  opt_state = None if optimizer is None else optimizer.init(layers)
  return jax.jit(run, donate_argnums=0), layers, opt_state


def handwritten_step(params, train_mean, estimator: str, learning_rate: float):
  """The linear SBN's train step written directly in JAX: the reference for
  the library's overhead (same math, none of the library's abstractions).

  REINFORCE with a bias-corrected moving-average baseline of the batch-mean
  objective, or Gumbel-softmax at temperature 1 with the objective also
  evaluated at the hard sample (the honest train objective), the ELBO
  integrand of `SigmoidBeliefNet`, Adam, and the library's `step_health`
  (the same finiteness checks and gradient norm). It uses the library's
  Bernoulli log-mass (`elbo.bernoulli_log_likelihood`), as the model does,
  so the comparison measures the abstractions (model, estimator registry,
  train step), not those numerics.

  Returns:
    `(run, carry)`: `run(carry, xs [n, B, D])` does n steps in one lax.scan,
    returns `(carry, (losses [n], health))` and donates its carry.
  """
  from discrete_vi.objectives import elbo  # pylint: disable=g-import-not-at-top
  tx = optax.adam(learning_rate)
  encoder, decoder = params["encoders_0"]["out"], params["decoders_0"]["out"]
  mean = jnp.asarray(train_mean)
  log_mass = elbo.bernoulli_log_likelihood  # (logits, z) [B, D] -> [B]

  def integrand(p, x, z, logits):
    dec = p["decoders_0"]["out"]
    return (log_mass(z @ dec["kernel"] + dec["bias"], x) +
            log_mass(p["prior_logits"], z) - log_mass(logits, z))

  def loss(p, key, x, average):
    enc = p["encoders_0"]["out"]
    logits = (x - mean) @ enc["kernel"] + enc["bias"]
    if estimator == "gumbel_softmax":
      u = jax.random.uniform(key, logits.shape, minval=1e-7, maxval=1 - 1e-7)
      noisy = logits + jnp.log(u) - jnp.log1p(-u)
      relaxed = integrand(p, x, jax.nn.sigmoid(noisy), logits)
      hard = integrand(jax.lax.stop_gradient(p), x,
                       (noisy > 0).astype(x.dtype),
                       jax.lax.stop_gradient(logits))
      return -jnp.mean(relaxed), jnp.mean(hard)
    z = (jax.random.uniform(key, logits.shape) <
         jax.nn.sigmoid(jax.lax.stop_gradient(logits))).astype(x.dtype)
    value = integrand(p, x, z, logits)
    signal = jax.lax.stop_gradient(value) - average
    return -jnp.mean(value + signal * log_mass(logits, z)), jnp.mean(value)

  def one(carry, x):
    p, opt_state, ema, count, key = carry
    key, step_key = jax.random.split(key)
    average = ema / jnp.maximum(1 - 0.99 ** count, 1e-12)
    (value, objective), grads = jax.value_and_grad(loss, has_aux=True)(
        p, step_key, x, jnp.where(count > 0, average, 0.0))
    updates, opt_state = tx.update(grads, opt_state, p)
    p = optax.apply_updates(p, updates)
    health = steps_lib.step_health(value, grads, p)
    ema = 0.99 * ema + 0.01 * jax.lax.stop_gradient(objective)
    return (p, opt_state, ema, count + 1, key), (value, health)

  def run(carry, xs):
    return jax.lax.scan(one, carry, xs)
  p = {"encoders_0": {"out": encoder}, "decoders_0": {"out": decoder},
       "prior_logits": params["prior_logits"]}
  carry = (p, tx.init(p), jnp.zeros(()), jnp.zeros((), jnp.int32),
           jax.random.PRNGKey(1))
  return jax.jit(run, donate_argnums=0), carry


def benchmark_training() -> str:
  """Train steps/s and the ratio to the dense-layer floor; 5000-sample eval."""
  from configs import sbn as sbn_config  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import optim, setup  # pylint: disable=g-import-not-at-top
  lines = ["| model | batch | estimator | steps/s | floor steps/s | "
           "step time / floor | Adam floor steps/s | step time / Adam floor |",
           "|---|---|---|---|---|---|---|---|"]
  overhead = ["| model | batch | estimator | library steps/s | "
              "hand-written steps/s | library / hand-written step time |",
              "|---|---|---|---|---|---|"]
  for architecture in ("linear", "nonlinear"):
    for batch in (24, 100):
      for label, name, options in TRAIN_ESTIMATORS:
        config = sbn_config.get_config(architecture)
        config.estimator.baseline = None
        config.estimator.name = name
        for k, v in options.items():
          config.estimator[k] = v
        config.train.batch_size = batch
        dataset = setup.load_data(config)
        fused, state, xs = benchmark_flows.fused_train_setup(
            config, dataset, batch, TRAIN_STEPS_PER_CALL, donate=True)
        floor_fn, layers, _ = dense_floor(state.params)
        adam_fn, _, adam_state = dense_floor(
            state.params, optim.make_single(config.optim.to_dict(), 1000))
        calls = [(fused, state, (xs,)), (floor_fn, (layers, None), (xs,)),
                 (adam_fn, (layers, adam_state), (xs,))]
        reference = architecture == "linear" and name in HANDWRITTEN
        if reference:
          calls.append((*handwritten_step(state.params, dataset.train_mean,
                                          name, config.optim.learning_rate),
                        (xs,)))
        times = [t / TRAIN_STEPS_PER_CALL for t in timing.time_interleaved(calls)]
        step_time, floor_time, adam_time = times[:3]
        lines.append(f"| {architecture} | {batch} | {label} | "
                     f"{1 / step_time:.0f} | {1 / floor_time:.0f} | "
                     f"{step_time / floor_time:.2f}x | {1 / adam_time:.0f} | "
                     f"{step_time / adam_time:.2f}x |")
        if reference:
          overhead.append(f"| {architecture} | {batch} | {label} | "
                          f"{1 / step_time:.0f} | {1 / times[3]:.0f} | "
                          f"{step_time / times[3]:.2f}x |")
  return ("\n".join(lines) + "\n\nThe library's step vs the same step "
          "written directly in JAX (`handwritten_step`), same run:\n\n" +
          "\n".join(overhead) + "\n\n" + benchmark_evaluation() + "\n")


def benchmark_evaluation(num_images: int = 1000, num_samples: int = 5000,
                         chunk_size: int = 100, batch: int = 100) -> str:
  """Time and memory of a 5000-sample bound on 1,000 test images (linear)."""
  import resource  # pylint: disable=g-import-not-at-top
  from configs import sbn as sbn_config  # pylint: disable=g-import-not-at-top
  from discrete_vi import data as data_lib  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import loop, setup  # pylint: disable=g-import-not-at-top
  config = sbn_config.get_config("linear")
  dataset = setup.load_data(config)
  run = setup.create_train_state(config, dataset)
  model, params = run.model, run.state.params
  test = data_lib.evaluation_split(dataset, "test")
  images = np.concatenate([test, dataset.valid])[:num_images]
  eval_step = steps_lib.make_eval_step(model, num_samples, chunk_size)
  compiled = eval_step.lower(params, None, jax.random.PRNGKey(0),
                             jnp.asarray(images[:batch])).compile()
  analysis = compiled.memory_analysis()
  temp_mb = getattr(analysis, "temp_size_in_bytes", 0) / 2**20
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  start = time.perf_counter()
  value = loop.evaluate(eval_step, params, None, images,
                        jax.random.PRNGKey(1), batch)
  seconds = time.perf_counter() - start
  rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return (f"Evaluation: {num_samples}-sample bound on {len(images)} images "
          f"(linear SBN, chunks of {chunk_size} samples x {batch} images): "
          f"{seconds:.1f} s; XLA temporary buffers {temp_mb:.1f} MiB per "
          f"call; process peak RSS {rss_after:.0f} MiB (grew by "
          f"{rss_after - rss_before:.0f} MiB during the evaluation); bound "
          f"{value:.2f} nats (untrained model).")


BENCHMARKS = {"estimators": benchmark_estimators,
              "training": benchmark_training,
              "xor_flow": benchmark_flows.report,
              "dvaepp": benchmark_dvaepp.report,
              "dvaepp_ais": benchmark_dvaepp.ais_report,
              "dvaepp_conv": benchmark_dvaepp_conv.report,
              "hdvae": benchmark_hdvae.report}

if __name__ == "__main__":
  main(sys.argv)
