"""`dvaepp_conv [mnist] [cifar10]`: the paper-size convolutional DVAE++ on
this CPU.

The model of `configs/dvaepp_conv.py:mixed,protocol=paper` (Vahdat et al.,
2018, Sec. 6: RBM over 8 + 8 global units in 2 groups, 16 local groups x
32 normal variables per location at 7 x 7, 64 filters, 2 residual blocks
per stack with squeeze-and-excitation, factorial decoder; 1000 persistent
chains x 40 block-Gibbs sweeps per step) at batch 100 on the embedded
`mnist5k` (the paper's data has the same 28 x 28 binary shape), and, with
`data=cifar10` sizes (64 + 64 global units, multi-scale decoder with 10
discretised logistics per value), on random 8-bit 32 x 32 x 3 images (the
cost does not depend on the values). For each:

1. Train steps/s of the whole step (the loop's fused train step, Adam),
   the same step with the persistent chains frozen (the Gibbs update
   removed: encoder, decoder and bound only), and the Gibbs sweeps alone;
   timed round-robin in one process (`measure.time_interleaved`), so load
   from other processes hits all three alike. The Gibbs share is Gibbs alone / whole step (1 -
   frozen / whole is not used: at this size the difference of two 10-20 s
   timings is within their noise, and came out negative).
2. Memory: XLA's compiled buffers of one step (arguments: parameters,
   optimiser state, chains, batch; outputs; temporaries), and the
   process's peak resident set size after the runs.
3. The step's XLA compilation time (cold, in this process).
"""


import jax
import numpy as np

from configs import common
from configs import dvaepp_conv as config_lib
from discrete_vi import data as data_lib
from discrete_vi.distributions import rbm
from discrete_vi.training import setup
from experiments.benchmarks import dvaepp as dvaepp_benchmark
from experiments.benchmarks import measure

BATCH = 100
REPEATS = 3
PER_REPEAT = 2
DATA = ("mnist", "cifar10")
CIFAR_SHAPE = (32, 32, 3)


def paper_config(data: str, batch: int = BATCH, overrides=None):
  """The `mixed` row's paper-protocol config for `data` at `batch`, on the
  embedded data (`synthetic_cifar` stands in for CIFAR-10).

  Args:
    data: "mnist" or "cifar10".
    batch: training batch size.
    overrides: `{"model.channels": 8, ...}` (a test shrinks the model).
  """
  if data not in DATA:
    raise ValueError(f"data must be one of {DATA}; got {data!r}.")
  config = config_lib.get_config(f"mixed,protocol=paper,data={data}")
  config.data.name = "mnist5k"
  config.data.binarization = "none" if data == "cifar10" else "static"
  config.train.batch_size = batch
  for dotted, value in (overrides or {}).items():
    common.set_dotted(config, dotted, value)
  return config


def synthetic_cifar(num_examples: int, seed: int = 0) -> data_lib.Dataset:
  """Uniform random 8-bit images of CIFAR-10's shape (train = valid = test)."""
  rng = np.random.RandomState(seed)
  x = rng.randint(0, 256, size=(num_examples, int(np.prod(CIFAR_SHAPE)))
                  ).astype(np.float32)
  return data_lib.Dataset("synthetic_cifar", x, x, x, "none", x.mean(0),
                          image_shape=CIFAR_SHAPE, value_type="uint8")


def load(config, data: str) -> data_lib.Dataset:
  """mnist5k for MNIST, `synthetic_cifar` for CIFAR-10."""
  if data == "cifar10":
    return synthetic_cifar(config.train.batch_size)
  return setup.load_data(config)


def measure_step(config, dataset) -> dict:
  """Seconds per step (whole, chains frozen, Gibbs alone), compile seconds,
  and XLA's compiled memory of one step of `config`'s model."""
  run = setup.create_train_state(config, dataset)
  x = measure.first_batches(dataset, config.train.batch_size,
                            config.train.steps_per_jit)  # [n, B, D]
  whole = measure.fused_train_step(config, run)
  frozen = measure.fused_train_step(
      config, run, dvaepp_benchmark.frozen_chains(run.model))
  compiled, compile_s = measure.compile_timed(whole.lower(run.state, x))
  memory = measure.memory(compiled)
  rbm_params = run.model.rbm_params(run.state.params)
  sweeps = run.model.rbm_prior.gibbs_sweeps
  gibbs = jax.jit(lambda chains, key: (rbm.gibbs_sweeps(
      key, rbm_params, chains, sweeps), None))
  seconds = measure.time_interleaved(
      [(compiled, run.state, (x,)), (frozen, run.state, (x,)),
       (gibbs, run.state.model_state, (jax.random.PRNGKey(0),))],
      repeats=REPEATS, per_repeat=PER_REPEAT)
  out = dict(zip(("whole_s", "frozen_s", "gibbs_s"), seconds))
  out.update(compile_s=compile_s, memory=memory,
             num_params=sum(a.size for a in jax.tree_util.tree_leaves(
                 run.state.params)))
  return out


def describe(config) -> str:
  """The sizes of a config's model, one line."""
  m = config.model
  return (f"{m.num_global} global units ({m.num_global // 2} + "
          f"{m.num_global // 2} RBM) in {m.global_groups} groups, "
          f"{m.num_local_groups} local groups x {m.local_channels}, "
          f"{m.channels} filters, {m.num_blocks} blocks per stack, "
          f"{m.decoder} decoder, {m.rbm.gibbs_chains} chains x "
          f"{m.rbm.gibbs_sweeps} sweeps")


TABLE_HEADER = [
    "| data | parameters | whole step (s) | steps/s | chains frozen (s) | "
    "Gibbs alone (s) | Gibbs share | compile (s) | XLA arguments / outputs / "
    "temporaries (MiB) |", "|---|---|---|---|---|---|---|---|---|"]


def table_row(data: str, batch: int = BATCH, overrides=None) -> str:
  """One line of the benchmark's table: `data`'s paper-size model."""
  config = paper_config(data, batch, overrides)
  r = measure_step(config, load(config, data))
  mem = r["memory"]
  mib = lambda key: mem[key] / measure.MIB
  memory = (f"{mib('argument'):.0f} / {mib('output'):.0f} / {mib('temp'):.0f}"
            if "temp" in mem else "n/a")
  return (f"| {data} | {r['num_params'] / 1e6:.2f} M | {r['whole_s']:.2f} | "
          f"{1.0 / r['whole_s']:.2f} | {r['frozen_s']:.2f} | "
          f"{r['gibbs_s']:.3f} | {r['gibbs_s'] / r['whole_s']:.1%} | "
          f"{r['compile_s']:.0f} | {memory} |")


def table(data_sets=DATA, batch: int = BATCH, overrides=None,
          emit=None) -> list[str]:
  """The benchmark's table: one line per data set (each also passed to
  `emit` as soon as it is measured, e.g. `print`)."""
  emit = emit or (lambda line: None)
  lines = list(TABLE_HEADER)
  for line in lines:
    emit(line)
  for data in data_sets:
    lines.append(table_row(data, batch, overrides))
    emit(lines[-1])
  notes = [f"- {data}: {describe(paper_config(data, batch, overrides))}."
           for data in data_sets]
  return lines + [""] + notes + [
      "", f"Process peak RSS after the runs: "
      f"{measure.memory()['rss_peak'] / measure.MIB:.0f} MiB."]


def report(*data_sets: str) -> str:
  """The whole benchmark as markdown for `data_sets` (default both; each
  checked before anything is built); table lines are also printed as they
  are measured."""
  for data in data_sets:
    paper_config(data)  # a bad name fails before anything is measured
  lines = [f"## Convolutional DVAE++ (paper sizes, batch {BATCH}, "
           f"{jax.devices()[0].platform.upper()}, "
           f"{jax.local_device_count()} device(s))", ""]
  emit = lambda line: print(line, flush=True)
  return "\n".join(lines + table(data_sets or DATA, emit=emit)) + "\n"
