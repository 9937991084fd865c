"""`xor_flow`: the XOR flows' training speed and the sequential sampler's
cost.

1. Train steps/s of the STE flow (depth 1) and the special-case latent flow
   (depth 1, running-average and greedy self-critic baselines) on the 28x28
   embedded digits at batch 64, with the configs/xor_flow.py networks
   (one hidden layer of 256), by the loop's fused train step (ten steps per
   call); beside them, timed round-robin in the same process, a jitted
   forward + backward pass and SGD update of a single MADE on the same
   batches, fused the same way (the floor every variant must pay at least
   once).
2. The pixel-by-pixel sampler (`latent_flow.LatentFlow.generative_scan`,
   used to train and evaluate the special case and to sample any latent
   flow) per sample, vs D, with the incremental MADE (O(D H) per sample) and
   with full passes (O(D^2 H)), measured on the same networks and draws.

All timings are best-of-5 wall-clock in one process.
"""

import jax
import jax.numpy as jnp

from configs import xor_flow as xor_flow_config
from discrete_vi import data as data_lib
from discrete_vi.models import made as made_lib
from discrete_vi.models import xor_flow
from discrete_vi.objectives import elbo
from experiments.benchmarks import measure

BATCH = 64
REPEATS = 5
ROWS = ("ste,depth=1", "sfe_special,baseline=running_average",
        "sfe_special,baseline=self_critic")
SAMPLER_DIMS = (16, 64, 196, 784)
SAMPLER_DRAWS = 256


def made_floor(xs):
  """One MADE forward + backward + SGD update per batch of
  `xs  # [n, B, D]`, the n fused by `lax.scan` as the train steps are.

  Returns:
    `(run, params, (xs,))` for `measure.time_interleaved`:
    `run(params, xs) -> (params, None)`.
  """
  made = made_lib.MADE((256,))
  params = made.init(jax.random.PRNGKey(0), xs[0])

  def one(params, x):
    def loss(p):
      return -jnp.mean(elbo.bernoulli_log_likelihood(made.apply(p, x), x))
    grads = jax.grad(loss)(params)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, params,
                                  grads), None

  run = jax.jit(lambda params, xs: jax.lax.scan(one, params, xs))
  return run, params, (xs,)


def sampler_seconds(d: int, incremental: bool) -> float:
  """Seconds per sample of the special-case sampler at D = d (draws x)."""
  model = xor_flow.SpecialCaseFlow(d, hidden_dims=(256,),
                                   incremental_sampler=incremental)
  x = jnp.zeros((SAMPLER_DRAWS, d))
  params = model.init(jax.random.PRNGKey(0), x)
  run = jax.jit(lambda p, k: model.generative_scan(p, k, None,
                                                   (SAMPLER_DRAWS,))[1])
  seconds = measure.best_time(run, params, jax.random.PRNGKey(1),
                              repeats=REPEATS)
  return seconds / SAMPLER_DRAWS


def report() -> str:
  """The markdown report."""
  dataset = data_lib.load_dataset("mnist5k", binarization="static", seed=0)
  calls = []
  for row in ROWS:
    fused, state, xs = measure.fused_train_setup(
        xor_flow_config.get_config(row), dataset, BATCH)
    calls.append((fused, state, (xs,)))
  calls.insert(0, made_floor(xs))
  steps_per_call = xs.shape[0]
  floor, *steps = [t / steps_per_call for t in
                   measure.time_interleaved(calls, repeats=REPEATS)]
  lines = [f"### XOR flows: training speed (batch {BATCH}, 28x28, MADE "
           "784-256-784)", "",
           f"Floor: one MADE forward + backward + SGD update at batch "
           f"{BATCH} (fused like the train steps, timed round-robin with "
           f"them): {1e3 * floor:.2f} ms ({1 / floor:.0f} passes/s).", "",
           "| row | steps/s | step time / MADE floor |", "|---|---|---|"]
  for row, step in zip(ROWS, steps):
    lines.append(f"| {row} | {1 / step:.1f} | {step / floor:.1f}x |")
  lines += ["", "### Sequential sampler: seconds per sample vs D "
            f"({SAMPLER_DRAWS} draws per call, one hidden layer of 256)", "",
            "| D | incremental MADE (ms / sample) | full passes (ms / sample) "
            "| ratio |", "|---|---|---|---|"]
  for d in SAMPLER_DIMS:
    fast = sampler_seconds(d, True)
    slow = sampler_seconds(d, False)
    lines.append(f"| {d} | {1e3 * fast:.3f} | {1e3 * slow:.3f} | "
                 f"{slow / fast:.1f}x |")
  return "\n".join(lines) + "\n"
