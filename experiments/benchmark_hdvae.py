"""HD-VAE benchmark: the cost of discrete memory layers vs Gaussian ones
(Lievin et al., 2019, Sec. 5; a report, never a timed test).

    python -m experiments.benchmark_hdvae

The 6-layer skip-LVAE with 16 variables per layer (K = 16^2 classes,
product keys, d_1 = d_2 = 8), trained with the paper's Gumbel-softmax and
with straight-through Gumbel-softmax (`ROWS`: the first evaluates its
honest training objective on the hard samples, one more forward pass
without gradient; the second's forward value is that objective), against
the Gaussian baseline with the same 6 x 16 variables, batch 128, `STEPS_PER_CALL` fused train steps per call
(Adamax, the memory values' own group for discrete rows), at each width of
`WIDTHS`: the quick protocol's (32 filters, one residual block per
connection) and the paper's (64 filters, three blocks; Appendix A).

* Time: best-of-repeats seconds per train step, the two models timed
  round-robin in one process (`experiments.timing.time_interleaved`), so
  load from other processes hits both alike; compilation and a warm-up
  call excluded.
* Memory: XLA's compiled memory analysis of one jitted train step that
  donates its state, as the training loop's steps do
  (`jit(..., donate_argnums=0).lower(...).compile().memory_analysis()`):
  peak = temporaries + arguments + outputs - aliased (the new state reuses
  the donated buffers), i.e. the step's working set as XLA plans it (not
  the process's RSS).
"""

import jax
import jax.numpy as jnp

from configs import hdvae as hdvae_config
from discrete_vi.training import setup
from discrete_vi.training import steps as steps_lib
from experiments import timing

LAYERS = 6
UNITS_PER_LAYER = 16
CLASSES = 16**2
BATCH = 128
STEPS_PER_CALL = 2
REPEATS = 3
TARGET_RATIO = 1.3
# (name, filters, residual blocks per connection)
WIDTHS = (("quick", 32, 1), ("paper", 64, 3))
# (row, latent, estimator or None for the config's): the discrete model
# under the paper's Gumbel-softmax (relaxed forward: its honest training
# objective costs one more forward pass, without gradient) and under
# straight-through Gumbel-softmax (hard forward: one pass), and the
# Gaussian model.
ROWS = (("discrete", "discrete", None),
        ("discrete_st", "discrete", "st_gumbel_softmax"),
        ("normal", "normal", None))
MEMORY_KEYS = ("peak", "temp", "argument", "output", "alias")


def row_config(latent: str, layers: int = LAYERS, units: int = UNITS_PER_LAYER,
               classes: int = CLASSES, batch: int = BATCH, filters=None,
               num_blocks=None, estimator=None):
  """The benchmarked config: `configs/hdvae.py:<latent>,layers=L` with N_l =
  `units` and K_l = `classes` in every layer (`filters` and `num_blocks`
  to resize; the quick protocol's by default; `estimator` to replace the
  config's)."""
  config = hdvae_config.get_config(f"{latent},layers={layers}")
  if estimator is not None:
    config.estimator.name = estimator
  config.model.num_variables = (units,) * layers
  config.model.num_classes = (classes,) * layers
  config.train.batch_size = batch
  if filters is not None:
    config.model.filters = filters
  if num_blocks is not None:
    config.model.num_blocks = num_blocks
  return config


def memory_bytes(step, state, xs) -> dict:
  """XLA's compiled memory analysis of `step(state, xs)` with the state
  donated (bytes, `timing.compiled_memory`)."""
  return timing.compiled_memory(
      jax.jit(step, donate_argnums=0).lower(state, xs).compile())


def count_parameters(params) -> int:
  """The number of scalars in a parameter tree."""
  return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(params))


def measure(dataset, *, layers: int = LAYERS, units: int = UNITS_PER_LAYER,
            classes: int = CLASSES, batch: int = BATCH, filters=None,
            num_blocks=None, repeats: int = REPEATS,
            time_steps: bool = True) -> dict:
  """{row: {"step_s", "memory", "parameters", "description"}} for each row
  of `ROWS`."""
  calls, out = [], {}
  xs = jnp.asarray(dataset.train[:batch * STEPS_PER_CALL]).reshape(
      STEPS_PER_CALL, batch, -1)
  for row, latent, estimator in ROWS:
    config = row_config(latent, layers, units, classes, batch, filters,
                        num_blocks, estimator)
    run = setup.create_train_state(config, dataset)
    step = steps_lib.make_train_step(run.model, run.tx, run.estimator)
    out[row] = {"memory": memory_bytes(step, run.state, xs[0]),
                "parameters": count_parameters(run.state.params),
                "description": run.model.description}
    # Fused as the training loop fuses them (unrolled for these conv nets).
    calls.append((timing.fused_train_step(config, run), run.state, (xs,)))
  if time_steps:
    seconds = timing.time_interleaved(calls, repeats=repeats, per_repeat=1)
    for (row, _, _), s in zip(ROWS, seconds):
      out[row]["step_s"] = s / STEPS_PER_CALL
  return out


def table(results: dict) -> list[str]:
  """Markdown lines of `measure`'s results, with each discrete row's ratio
  to the normal row (target `TARGET_RATIO`)."""
  d, st, n = results["discrete"], results["discrete_st"], results["normal"]
  mib = lambda r, k: r["memory"].get(k, float("nan")) / 2**20
  ratio = lambda a, b: a / b if b else float("nan")
  lines = ["| | discrete (Gumbel-softmax) | discrete (ST Gumbel-softmax) | "
           "normal | Gumbel-softmax / normal | ST / normal |",
           "|---|---|---|---|---|---|"]
  if "step_s" in d:
    ms = [r["step_s"] * 1e3 for r in (d, st, n)]
    lines.append(f"| train step (ms) | {ms[0]:.0f} | {ms[1]:.0f} | "
                 f"{ms[2]:.0f} | {ratio(ms[0], ms[2]):.2f} | "
                 f"{ratio(ms[1], ms[2]):.2f} |")
  counts = [r["parameters"] / 1e6 for r in (d, st, n)]
  lines.append(f"| parameters (M) | {counts[0]:.2f} | {counts[1]:.2f} | "
               f"{counts[2]:.2f} | {ratio(counts[0], counts[2]):.2f} | "
               f"{ratio(counts[1], counts[2]):.2f} |")
  for key in MEMORY_KEYS:
    m = [mib(r, key) for r in (d, st, n)]
    lines.append(f"| XLA {key} memory (MiB) | {m[0]:.1f} | {m[1]:.1f} | "
                 f"{m[2]:.1f} | {ratio(m[0], m[2]):.2f} | "
                 f"{ratio(m[1], m[2]):.2f} |")
  return lines


def report() -> str:
  """The whole benchmark as markdown: one table per width of `WIDTHS`."""
  from discrete_vi import data as data_lib  # pylint: disable=g-import-not-at-top
  dataset = data_lib.load_dataset("mnist5k")
  lines = [f"## HD-VAE: {LAYERS} x {UNITS_PER_LAYER} discrete units (K = "
           f"{CLASSES}, product keys) vs Gaussian units", "",
           f"Skip-LVAE, batch {BATCH}, {STEPS_PER_CALL} fused steps per call, "
           f"best of {REPEATS} round-robin repeats (compilation and warm-up "
           "excluded); memory is XLA's compiled analysis of one train step "
           "with its state donated (peak = temporaries + arguments + outputs "
           f"- aliased), not RSS. Target: <= {TARGET_RATIO}x.", ""]
  for name, filters, blocks in WIDTHS:
    results = measure(dataset, filters=filters, num_blocks=blocks)
    lines += [f"### {name} widths ({filters} filters, {blocks} block(s) per "
              "connection)", ""] + table(results) + [""]
  return "\n".join(lines)


if __name__ == "__main__":
  print(report())
