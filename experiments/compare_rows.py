r"""Trains rows of any config file at the same budget and compares them.

    python -m experiments.compare_rows --config_file=configs/dvaepp.py \
        --rows="factorial,layers=2;directed,layers=2;rbm,layers=2" \
        --time_budget_s=300 --workdir=runs/compare_dvaepp

Each row is the `:arg` of `--config_file` (e.g. `rbm,layers=2` for
`configs/dvaepp.py:rbm,layers=2`), trained with the same seed for
`--time_budget_s` seconds of training (periodic evaluation and the first,
compiling chunk excluded) or
`--max_steps` steps, whichever comes first. Writes `<workdir>/<row>/` (full
runs, resumable), `comparison.md` (test bound of the best-validation
checkpoint with the config's final number of importance samples, best
validation bound, every further `test_*` number of the row's results.json
with its standard error where there is one, steps, wall time, steps/s,
gradient variance), `comparison.png` (validation bound vs steps and vs
wall-clock time), `samples.png` (one sample grid per row) and, when the
runs log KL terms (`diag/kl_*`, e.g. the conv DVAE++'s global and
per-group local KLs), `kl.png` (each KL vs steps, one panel per row).

Like `experiments.main`, this launcher defines its own flags; the library
defines none.
"""

import importlib
import os

from absl import app
from absl import flags
import numpy as np

from experiments import comparison
from experiments import launcher



def define_flags() -> dict:
  """Defines this launcher's flags (only when run as a program, so that
  tests can import the module next to other launchers)."""
  defined = {
      "config_file": flags.DEFINE_string(
          "config_file", None,
          "A config file of configs/, e.g. configs/dvaepp.py."),
      "workdir": flags.DEFINE_string("workdir", None,
                                     "Directory for all runs."),
      "rows": flags.DEFINE_string(
          "rows", None, "Semicolon-separated arguments of the config."),
      "time_budget_s": flags.DEFINE_float("time_budget_s", 300.0,
                                          "Training seconds per row."),
      "max_steps": flags.DEFINE_integer("max_steps", 1_000_000,
                                        "Step limit per row."),
      "eval_every_steps": flags.DEFINE_integer(
          "eval_every_steps", 1000, "Validation every this many steps."),
      "variance_draws": flags.DEFINE_integer(
          "variance_draws", 0,
          "Gradient draws for the variance column (0: none)."),
  }
  flags.mark_flags_as_required(["config_file", "workdir", "rows"])
  return defined


# results.json entries that are not per-row numbers to tabulate.
_NOT_COLUMNS = ("test_log_likelihood",)


def load_config_module(path: str):
  """The module of a config file path such as `configs/dvaepp.py`."""
  if not path.endswith(".py"):
    raise ValueError(f"--config_file={path!r} must be a .py file of configs/.")
  return importlib.import_module(path.removesuffix(".py").replace("/", "."))


def config_for(module, row: str, *, max_steps: int, time_budget_s: float,
               eval_every_steps: int):
  """The config of `row` with this comparison's budget."""
  config = module.get_config(row)
  config.train.num_steps = max_steps
  config.train.time_budget_s = time_budget_s
  config.train.checkpoint_every_steps = eval_every_steps
  config.eval.every_steps = eval_every_steps
  return config


def extra_columns(rows) -> list[str]:
  """The `test_*` numbers any row reports (standard errors folded in)."""
  names = []
  for r in rows:
    for key, value in r["results"].items():
      if (key.startswith("test_") and key not in _NOT_COLUMNS
          and not key.endswith("_stderr") and key not in names
          and isinstance(value, (int, float))):
        names.append(key)
  return names


def _cell(results: dict, key: str) -> str:
  value = results.get(key)
  if value is None:
    return ""
  stderr = results.get(f"{key}_stderr")
  return f"{value:.2f}" if stderr is None else f"{value:.2f} ± {stderr:.2f}"


def write_table(rows, path: str) -> str:
  """comparison.md: one line per row, best test bound first."""
  extra = extra_columns(rows)
  # The variance column only when it was measured (`--variance_draws` > 0).
  with_variance = any(np.isfinite(r["grad_variance"]) for r in rows)
  header = ["row", "test bound", "best valid bound", *extra, "steps",
            "wall time (s)", "steps/s"] + ["grad variance"] * with_variance
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for r in sorted(rows, key=lambda r: -r["test"]):
    res = r["results"]
    cells = [r["estimator"], f"{r['test']:.2f}", f"{r['best_valid']:.2f}",
             *[_cell(res, k) for k in extra], str(res["num_steps"]),
             f"{r['wall_time_s']:.0f}", f"{r['steps_per_s']:.1f}"]
    if with_variance:
      cells.append(f"{r['grad_variance']:.3e}")
    lines.append("| " + " | ".join(cells) + " |")
  return comparison.write_markdown(lines, path)


def run(config_file: str, rows: str, workdir: str, *, time_budget_s: float,
        max_steps: int, eval_every_steps: int, variance_draws: int) -> str:
  """Trains every row of `rows` (';'-separated) and writes the comparison.

  Returns:
    The markdown table (also in `<workdir>/comparison.md`).
  """
  module = load_config_module(config_file)
  names = [r.strip() for r in rows.split(";") if r.strip()]
  configs = {name: config_for(module, name, max_steps=max_steps,
                              time_budget_s=time_budget_s,
                              eval_every_steps=eval_every_steps)
             for name in names}
  summaries, workdirs = comparison.train_rows(configs, workdir,
                                              variance_draws)
  table = write_table(summaries, os.path.join(workdir, "comparison.md"))
  comparison.plot(summaries, os.path.join(workdir, "comparison.png"))
  comparison.plot_samples(summaries, workdirs,
                          os.path.join(workdir, "samples.png"))
  comparison.plot_kls(summaries, os.path.join(workdir, "kl.png"))
  return table


def main(argv):
  launcher.prepare(argv)
  values = {name: flag.value for name, flag in _FLAGS.items()}
  table = run(values.pop("config_file"), values.pop("rows"),
              values.pop("workdir"), **values)
  print(table)
  print(f"written to {_FLAGS['workdir'].value}/comparison.md, "
        "comparison.png and samples.png")


if __name__ == "__main__":
  _FLAGS = define_flags()
  app.run(main)
