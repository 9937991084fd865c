"""`hdvae`: the cost of discrete memory layers vs Gaussian ones
(Lievin et al., 2019, Sec. 5).

The 6-layer skip-LVAE with 16 variables per layer (K = 16^2 classes,
product keys, d_1 = d_2 = 8), trained with the paper's Gumbel-softmax and
with straight-through Gumbel-softmax (`ROWS`: the first evaluates its
honest training objective on the hard samples, one more forward pass
without gradient; the second's forward value is that objective), against
the Gaussian baseline with the same 6 x 16 variables, batch 128 (Adamax,
the memory values' own group for discrete rows), at each width of
`WIDTHS`: the quick protocol's (32 filters, one residual block per
connection) and the paper's (64 filters, three blocks; Appendix A).
Each model runs the loop's fused train step (`measure.fused_train_step`:
`config.train.steps_per_jit` unrolled steps, the state donated).

* Time: best-of-repeats seconds per train step, the models timed
  round-robin in one process (`measure.time_interleaved`), so load from
  other processes hits them alike; compilation and a warm-up call
  excluded.
* Memory: XLA's compiled memory analysis of that step (`measure.memory`):
  peak = temporaries + arguments + outputs - aliased (the new state reuses
  the donated buffers), i.e. the step's working set as XLA plans it (not
  the process's RSS).
"""

import jax

from configs import hdvae as hdvae_config
from discrete_vi.training import setup
from experiments.benchmarks import measure

LAYERS = 6
UNITS_PER_LAYER = 16
CLASSES = 16**2
BATCH = 128
REPEATS = 3
TARGET_RATIO = 1.3
# (name, filters, residual blocks per connection)
WIDTHS = (("quick", 32, 1), ("paper", 64, 3))
# (row, column header, latent, estimator or None for the config's): the
# discrete model under the paper's Gumbel-softmax (relaxed forward: its
# honest training objective costs one more forward pass, without
# gradient) and under straight-through Gumbel-softmax (hard forward: one
# pass), and the Gaussian model, the reference of the ratios (last).
ROWS = (("discrete", "discrete (Gumbel-softmax)", "discrete", None),
        ("discrete_st", "discrete (ST Gumbel-softmax)", "discrete",
         "st_gumbel_softmax"),
        ("normal", "normal", "normal", None))
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


def count_parameters(params) -> int:
  """The number of scalars in a parameter tree."""
  return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(params))


def measure_rows(dataset, *, layers: int = LAYERS,
                 units: int = UNITS_PER_LAYER, classes: int = CLASSES,
                 batch: int = BATCH, filters=None, num_blocks=None,
                 repeats: int = REPEATS, time_steps: bool = True) -> dict:
  """{row: {"step_s", "memory", "parameters", "description"}} for each row
  of `ROWS` ("step_s" only with `time_steps`)."""
  calls, out = [], {}
  for row, _, latent, estimator in ROWS:
    config = row_config(latent, layers, units, classes, batch, filters,
                        num_blocks, estimator)
    run = setup.create_train_state(config, dataset)
    xs = measure.first_batches(dataset, batch, config.train.steps_per_jit)
    compiled = measure.fused_train_step(config, run).lower(
        run.state, xs).compile()
    out[row] = {"memory": measure.memory(compiled),
                "parameters": count_parameters(run.state.params),
                "description": run.model.description,
                "steps_per_call": xs.shape[0]}
    calls.append((compiled, run.state, (xs,)))
  if time_steps:
    seconds = measure.time_interleaved(calls, repeats=repeats, per_repeat=1)
    for (row, *_), s in zip(ROWS, seconds):
      out[row]["step_s"] = s / out[row]["steps_per_call"]
  return out


def table(results: dict) -> list[str]:
  """Markdown lines of `measure_rows`' results, with each discrete row's
  ratio to the last row of `ROWS` (target `TARGET_RATIO`)."""
  rows = [results[row] for row, *_ in ROWS]
  reference = rows[-1]
  header = [title for _, title, *_ in ROWS]
  ratio = lambda a, b: a / b if b else float("nan")

  def line(name, values, fmt):
    cells = [format(v, fmt) for v in values]
    cells += [f"{ratio(v, values[-1]):.2f}" for v in values[:-1]]
    return f"| {name} | " + " | ".join(cells) + " |"
  lines = ["| | " + " | ".join(header) + " | " + " | ".join(
      f"{row} / {ROWS[-1][0]}" for row, *_ in ROWS[:-1]) + " |",
           "|" + "---|" * (2 * len(ROWS))]
  if "step_s" in reference:
    lines.append(line("train step (ms)", [r["step_s"] * 1e3 for r in rows],
                      ".0f"))
  lines.append(line("parameters (M)", [r["parameters"] / 1e6 for r in rows],
                    ".2f"))
  for key in MEMORY_KEYS:
    lines.append(line(f"XLA {key} memory (MiB)",
                      [r["memory"].get(key, float("nan")) / measure.MIB
                       for r in rows], ".1f"))
  return lines


def report() -> str:
  """The whole benchmark as markdown: one table per width of `WIDTHS`."""
  from discrete_vi import data as data_lib  # pylint: disable=g-import-not-at-top
  dataset = data_lib.load_dataset("mnist5k")
  lines = [f"## HD-VAE: {LAYERS} x {UNITS_PER_LAYER} discrete units (K = "
           f"{CLASSES}, product keys) vs Gaussian units", "",
           f"Skip-LVAE, batch {BATCH}, the loop's fused train step, best of "
           f"{REPEATS} round-robin repeats (compilation and warm-up "
           "excluded); memory is XLA's compiled analysis of that step with "
           "its state donated (peak = temporaries + arguments + outputs - "
           f"aliased), not RSS. Target: <= {TARGET_RATIO}x.", ""]
  for name, filters, blocks in WIDTHS:
    results = measure_rows(dataset, filters=filters, num_blocks=blocks)
    lines += [f"### {name} widths ({filters} filters, {blocks} block(s) per "
              "connection)", ""] + table(results) + [""]
  return "\n".join(lines)
