"""XOR-flow benchmark: training speed and the sequential sampler's cost.

    python -m experiments.benchmark xor_flow   # writes benchmark_results/xor_flow.md

1. Train steps/s of the STE flow (depth 1) and the special-case latent flow
   (depth 1, running-average and greedy self-critic baselines) on the 28x28
   embedded digits at batch 64, with the configs/xor_flow.py networks
   (one hidden layer of 256), ten steps fused per call as in training; beside
   them, timed round-robin in the same process, a jitted forward + backward
   pass and SGD update of a single MADE on the same batches, fused the same
   way (the floor every variant must pay at least once).
2. The pixel-by-pixel sampler (`latent_flow.LatentFlow.generative_scan`,
   used to train and evaluate the special case and to sample any latent
   flow) per sample, vs D, with the incremental MADE (O(D H) per sample) and
   with full passes (O(D^2 H)), measured on the same networks and draws.

All timings are best-of-5 wall-clock in one process on this machine.
"""


import jax
import jax.numpy as jnp

from configs import xor_flow as xor_flow_config
from discrete_vi import data as data_lib
from discrete_vi.models import made as made_lib
from discrete_vi.models import xor_flow
from discrete_vi.objectives import elbo
from discrete_vi.training import setup
from experiments import timing

BATCH = 64
STEPS_PER_CALL = 10
REPEATS = 5
SAMPLER_DIMS = (16, 64, 196, 784)
SAMPLER_DRAWS = 256
FULL_PASS_MAX_D = 784  # every D of SAMPLER_DIMS (D = 784: ~2 s per call)


def best_time(fn, *args) -> float:
  """Best of REPEATS wall-clock seconds of fn(*args) (`timing.best_time`)."""
  return timing.best_time(fn, *args, repeats=REPEATS)


def made_floor(dataset):
  """One MADE forward + backward + SGD update at batch 64, `STEPS_PER_CALL`
  of them fused by `lax.scan` as the train steps are.

  Returns:
    `(run, params, (xs,))` for `timing.time_interleaved`:
    `run(params, xs) -> (params, None)`.
  """
  made = made_lib.MADE((256,))
  xs = jnp.asarray(dataset.train[:BATCH * STEPS_PER_CALL]).reshape(
      STEPS_PER_CALL, BATCH, -1)
  params = made.init(jax.random.PRNGKey(0), xs[0])

  def one(params, x):
    def loss(p):
      return -jnp.mean(elbo.bernoulli_log_likelihood(made.apply(p, x), x))
    grads = jax.grad(loss)(params)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, params,
                                  grads), None

  run = jax.jit(lambda params, xs: jax.lax.scan(one, params, xs))
  return run, params, (xs,)


def fused_train_setup(config, dataset, batch: int, steps_per_call: int,
                      donate: bool = False):
  """The jitted fused train step of `config`, its initial state and inputs.

  Shared with `experiments.benchmark training`, which times it as the
  training loop runs it: donating its input state (`donate=True`; the state
  must then be threaded from call to call).

  Returns:
    `(fused, state, xs)`: fused(state, xs) runs `steps_per_call` steps on
    `xs  # [steps_per_call, batch, D]`, the first training images.
  """
  with config.unlocked():
    config.train.batch_size = batch
  run = setup.create_train_state(config, dataset)
  xs = jnp.asarray(dataset.train[:batch * steps_per_call]).reshape(
      steps_per_call, batch, -1)
  state = run.state
  return timing.fused_train_step(config, run, donate=donate), state, xs


def sampler_seconds(d: int, incremental: bool) -> float:
  """Seconds per sample of the special-case sampler at D = d (draws x)."""
  model = xor_flow.SpecialCaseFlow(d, hidden_dims=(256,),
                                   incremental_sampler=incremental)
  x = jnp.zeros((SAMPLER_DRAWS, d))
  params = model.init(jax.random.PRNGKey(0), x)
  run = jax.jit(lambda p, k: model.generative_scan(p, k, None,
                                                   (SAMPLER_DRAWS,))[1])
  seconds = best_time(run, params, jax.random.PRNGKey(1))
  return seconds / SAMPLER_DRAWS


def report() -> str:
  """The markdown report."""
  dataset = data_lib.load_dataset("mnist5k", binarization="static", seed=0)
  rows = ("ste,depth=1", "sfe_special,baseline=running_average",
          "sfe_special,baseline=self_critic")
  calls = [made_floor(dataset)]
  for row in rows:
    fused, state, xs = fused_train_setup(xor_flow_config.get_config(row),
                                         dataset, BATCH, STEPS_PER_CALL)
    calls.append((fused, state, (xs,)))
  floor, *steps = [t / STEPS_PER_CALL
                   for t in timing.time_interleaved(calls, repeats=REPEATS)]
  lines = ["### XOR flows: training speed (batch 64, 28x28, MADE 784-256-784)",
           "", f"Floor: one MADE forward + backward + SGD update at batch 64 "
           f"(fused like the train steps, timed round-robin with them): "
           f"{1e3 * floor:.2f} ms ({1 / floor:.0f} passes/s).", "",
           "| row | steps/s | step time / MADE floor |", "|---|---|---|"]
  for row, step in zip(rows, steps):
    lines.append(f"| {row} | {1 / step:.1f} | {step / floor:.1f}x |")
  lines += ["", "### Sequential sampler: seconds per sample vs D "
            f"({SAMPLER_DRAWS} draws per call, one hidden layer of 256)", "",
            "| D | incremental MADE (ms / sample) | full passes (ms / sample) "
            "| ratio |", "|---|---|---|---|"]
  for d in SAMPLER_DIMS:
    fast = sampler_seconds(d, True)
    if d <= FULL_PASS_MAX_D:
      slow = sampler_seconds(d, False)
      lines.append(f"| {d} | {1e3 * fast:.3f} | {1e3 * slow:.3f} | "
                   f"{slow / fast:.1f}x |")
    else:
      lines.append(f"| {d} | {1e3 * fast:.3f} | not run | |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  print(report())
