"""`training`: the SBN's train steps/s against floors measured in the same
run, and the cost of a 5000-sample bound.

Train steps/s of the linear and nonlinear SBN at batch 24 and 100
(the loop's fused train step, `measure.fused_train_setup`: 10 steps per
call, the state donated) for the single-sample estimators, and the ratio
of the step time to a "floor" timed round-robin with it: the SBN's dense
layers (kernels and biases, chained encoder -> decoder with tanh in
between) forward and backward with an SGD update and no sampling, and the
same floor with the run's own optimiser (Adam) instead of SGD. For the
linear SBN it also times the same train step written directly in JAX
(`handwritten_step`), the library's overhead. Then the time and memory of
a 5000-sample bound on 1,000 images by the loop's evaluation step.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import sbn as sbn_config
from discrete_vi import data as data_lib
from discrete_vi.training import optim
from discrete_vi.training import parallel
from discrete_vi.training import setup
from discrete_vi.training import steps as steps_lib
from experiments.benchmarks import measure

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


def estimator_config(architecture: str, name: str, options: dict):
  """`configs/sbn.py:<architecture>` with the estimator `name`."""
  config = sbn_config.get_config(architecture)
  config.estimator.baseline = None
  config.estimator.name = name
  for k, v in options.items():
    config.estimator[k] = v
  return config


def report() -> str:
  """Train steps/s and the ratio to the dense-layer floor; 5000-sample eval."""
  lines = ["| model | batch | estimator | steps/s | floor steps/s | "
           "step time / floor | Adam floor steps/s | step time / Adam floor |",
           "|---|---|---|---|---|---|---|---|"]
  overhead = ["| model | batch | estimator | library steps/s | "
              "hand-written steps/s | library / hand-written step time |",
              "|---|---|---|---|---|---|"]
  for architecture in ("linear", "nonlinear"):
    for batch in (24, 100):
      for label, name, options in TRAIN_ESTIMATORS:
        config = estimator_config(architecture, name, options)
        dataset = setup.load_data(config)
        fused, state, xs = measure.fused_train_setup(config, dataset, batch)
        steps_per_call = xs.shape[0]
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
        times = [t / steps_per_call for t in measure.time_interleaved(calls)]
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
          "\n".join(overhead) + "\n\n" + evaluation_cost() + "\n")


def evaluation_cost(num_images: int = 1000, num_samples: int = 5000,
                    chunk_size: int = 100, batch: int = 100) -> str:
  """Time and memory of a 5000-sample bound on 1,000 images (linear SBN,
  untrained) by the loop's evaluation step."""
  from discrete_vi.training import loop  # pylint: disable=g-import-not-at-top
  config = sbn_config.get_config("linear")
  config.eval.chunk_size, config.eval.batch_size = chunk_size, batch
  dataset = setup.load_data(config)
  run = setup.create_train_state(config, dataset)
  params = run.state.params
  test = data_lib.evaluation_split(dataset, "test")
  images = np.concatenate([test, dataset.valid])[:num_images]
  eval_step = loop.jit_eval_step(config, run.model, parallel.make_mesh(False),
                                 num_samples)
  compiled = eval_step.lower(params, None, jax.random.PRNGKey(0),
                             images[:batch]).compile()
  before = measure.memory(compiled)
  start = time.perf_counter()
  value = loop.evaluate(eval_step, params, None, images,
                        jax.random.PRNGKey(1), batch)
  seconds = time.perf_counter() - start
  after = measure.memory()
  mib = lambda b: b / measure.MIB
  return (f"Evaluation: {num_samples}-sample bound on {len(images)} images "
          f"(linear SBN, chunks of {chunk_size} samples x {batch} images): "
          f"{seconds:.1f} s; XLA temporary buffers "
          f"{mib(before.get('temp', float('nan'))):.1f} MiB per call; "
          f"process peak RSS {mib(after['rss_peak']):.0f} MiB (grew by "
          f"{mib(after['rss_peak'] - before['rss_peak']):.0f} MiB during the "
          f"evaluation); bound {value:.2f} nats (untrained model).")
