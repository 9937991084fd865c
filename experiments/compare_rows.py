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

Several seeds at equal steps (`--seeds`, with `--max_steps` required and no
time budget), e.g. the quick protocol's 10k steps, three seeds per row
(nine runs of a few minutes each on a CPU):

    python -m experiments.compare_rows --config_file=configs/dvaepp.py \
        --rows="factorial,layers=2;directed,layers=2;rbm,layers=2" \
        --seeds=0,1,2 --max_steps=10000 --eval_every_steps=1000 \
        --workdir=runs/seeds_dvaepp --results=benchmark_results/seeds_dvaepp

Each row x seed is a full run in `<workdir>/<row>/seed_<s>/` with
`config.seed = s` (initialisation, training batches and, for statically
binarised data, the binarisation draw), trained for exactly `--max_steps`
steps and evaluated at its best-validation checkpoint. Rerunning the
command skips finished runs (results.json at `--max_steps` steps under the
same config) and resumes the others from their latest checkpoints. Writes
`<workdir>/seeds.md`: the command and git commit that made it, then one line
per row (in `--rows` order) with the mean +- standard error over seeds
(sample standard deviation / sqrt(n)) of the test bound, the test KL
(`test_kl`, when a row reports one), steps/s, the RBM chain gap
(`test_chain_gap`, when a row reports one) and, with `--variance_draws`,
the gradient variance; then a table of every seed's values.
`<workdir>/seeds.png`: validation bound vs steps, the mean over seeds with
a +-1 standard error band. `--results=<prefix>` writes the same table and
figure to `<prefix>.md` and `<prefix>.png` too (the files that README
tables are).

Like `experiments.main`, this launcher defines its own flags; the library
defines none.
"""

import importlib
import json
import os
import shlex
import subprocess
from typing import Callable, NamedTuple, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from discrete_vi.training import loop
from discrete_vi.training import validation
from experiments import comparison
from experiments import launcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = "python -m experiments.compare_rows"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """Defines this launcher's flags in `flag_values` (only when run as a
  program, so that tests can import the module next to other launchers, or
  parse a command with their own `FlagValues`)."""
  defined = {
      "config_file": flags.DEFINE_string(
          "config_file", None,
          "A config file of configs/, e.g. configs/dvaepp.py.",
          flag_values=flag_values),
      "workdir": flags.DEFINE_string("workdir", None,
                                     "Directory for all runs.",
                                     flag_values=flag_values),
      "rows": flags.DEFINE_string(
          "rows", None, "Semicolon-separated arguments of the config.",
          flag_values=flag_values),
      "time_budget_s": flags.DEFINE_float(
          "time_budget_s", 300.0,
          "Training seconds per row (not with --seeds).",
          flag_values=flag_values),
      "max_steps": flags.DEFINE_integer(
          "max_steps", 1_000_000,
          "Step limit per row; with --seeds required: the exact number of "
          "steps of every run.", flag_values=flag_values),
      "eval_every_steps": flags.DEFINE_integer(
          "eval_every_steps", 1000, "Validation every this many steps.",
          flag_values=flag_values),
      "variance_draws": flags.DEFINE_integer(
          "variance_draws", 0,
          "Gradient draws for the variance column (0: none).",
          flag_values=flag_values),
      "seeds": flags.DEFINE_list(
          "seeds", None,
          "Comma-separated seeds, e.g. 0,1,2: every row x seed trained for "
          "exactly --max_steps steps, tabulated as mean +- standard error "
          "in <workdir>/seeds.md (unset: one run per row at the time "
          "budget, comparison.md).", flag_values=flag_values),
      "results": flags.DEFINE_string(
          "results", None,
          "With --seeds: also write the table and figure to <prefix>.md "
          "and <prefix>.png, e.g. benchmark_results/seeds_dvaepp.",
          flag_values=flag_values),
  }
  flags.mark_flags_as_required(["config_file", "workdir", "rows"],
                               flag_values=flag_values)
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


# -- several seeds at equal steps ---------------------------------------------


def parse_seeds(items: list[str]) -> list[int]:
  """The seeds of `--seeds` (its comma-separated items): distinct
  non-negative integers, in the given order.

  Raises:
    ValueError: naming an item that is not an integer, a negative or
      repeated seed, or no seed at all.
  """
  text = ",".join(items)
  if not items:
    raise ValueError("--seeds is empty: give comma-separated seeds, e.g. "
                     "--seeds=0,1,2.")
  seeds = []
  for item in items:
    try:
      seed = int(item)
    except ValueError:
      raise ValueError(f"--seeds={text}: {item!r} is not an integer."
                       ) from None
    if seed < 0:
      raise ValueError(f"--seeds={text}: {seed} is negative (config.seed "
                       "must be >= 0).")
    if seed in seeds:
      raise ValueError(f"--seeds={text}: seed {seed} is repeated.")
    seeds.append(seed)
  return seeds


def check_results_prefix(prefix: str) -> None:
  """Raises ValueError unless `--results` is a path prefix (no extension,
  not a directory): the launcher writes `<prefix>.md` and `<prefix>.png`."""
  if (not prefix or prefix.endswith(("/", ".md", ".png"))
      or os.path.isdir(prefix)):
    raise ValueError(f"--results={prefix!r} must be a path prefix such as "
                     "benchmark_results/seeds_dvaepp (the launcher adds .md "
                     "and .png).")


def check_flags(values: dict, given: set) -> list[int] | None:
  """The seeds of a command, after checking that its flags go together.

  With `--seeds` every run trains exactly `--max_steps` steps, so
  `--max_steps` must be given and `--time_budget_s` must not (a time budget
  would cut runs short at unequal steps); `--results` needs `--seeds`.

  Args:
    values: flag name -> parsed value.
    given: the names of the flags given on the command line.

  Returns:
    The seeds (`parse_seeds`), or None without `--seeds`.

  Raises:
    app.UsageError: naming the flag that does not fit.
  """
  if values["seeds"] is None:
    if values["results"] is not None:
      raise app.UsageError("--results writes the table of --seeds; give "
                           "--seeds too (e.g. --seeds=0,1,2).")
    return None
  if "max_steps" not in given:
    raise app.UsageError(
        "--seeds trains every row x seed for exactly --max_steps steps: "
        "give --max_steps explicitly (e.g. --max_steps=10000).")
  if "time_budget_s" in given:
    raise app.UsageError(
        "--time_budget_s does not apply with --seeds: every run trains "
        "exactly --max_steps steps, without a time budget.")
  try:
    seeds = parse_seeds(values["seeds"])
    if values["results"] is not None:
      check_results_prefix(values["results"])
  except ValueError as error:
    raise app.UsageError(str(error)) from None
  return seeds


def command_line(defined: dict) -> str:
  """The command that reproduces a parsed one: the program and each of
  this launcher's flags given on the command line, in `define_flags` order,
  shell-quoted (absl's own flags, e.g. of logging, left out)."""
  parts = [PROGRAM]
  for holder in defined.values():
    if holder.present:
      value = holder.value
      text = (",".join(map(str, value)) if isinstance(value, list)
              else str(value))
      parts.append(f"--{holder.name}={shlex.quote(text)}")
  return " ".join(parts)


def git_commit(root: str = ROOT, written: Sequence[str] = ()) -> str:
  """The short commit of the repository at `root`, "+dirty" when a tracked
  file differs from it (other than `written`, the files being produced), or
  "unknown (git unavailable)" without git or a repository."""
  def git(*args) -> str:
    return subprocess.run(["git", "-C", root, *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout
  try:
    commit = git("rev-parse", "--short", "HEAD").strip()
    top = git("rev-parse", "--show-toplevel").strip()
    # "XY path" (or "XY old -> new") per changed tracked file.
    changed = git("status", "--porcelain", "--untracked-files=no")
  except (OSError, subprocess.SubprocessError):
    return "unknown (git unavailable)"
  ignored = {os.path.realpath(p) for p in written}
  paths = [os.path.realpath(os.path.join(top, line[3:].split(" -> ")[-1]))
           for line in changed.splitlines() if line.strip()]
  dirty = any(p not in ignored for p in paths)
  return commit + "+dirty" * dirty


def row_names(rows: str) -> list[str]:
  """The rows of `--rows` (';'-separated), each with a directory of its own.

  Raises:
    ValueError: for no row or two rows in one directory.
  """
  names = [r.strip() for r in rows.split(";") if r.strip()]
  if not names:
    raise ValueError(f"--rows={rows!r} names no row.")
  directories = [comparison.directory_name(n) for n in names]
  for d in directories:
    if directories.count(d) > 1:
      raise ValueError(f"--rows={rows!r}: two rows share the directory "
                       f"{d!r}.")
  return names


def seed_config(module, row: str, seed: int, *, max_steps: int,
                eval_every_steps: int):
  """The config of `row` for one seed: exactly `max_steps` steps (no time
  budget) with `config.seed = seed`."""
  config = config_for(module, row, max_steps=max_steps, time_budget_s=None,
                      eval_every_steps=eval_every_steps)
  config.seed = seed
  return config


def seed_dir(workdir: str, row: str, seed: int) -> str:
  """`<workdir>/<row>/seed_<seed>`: the run of one row x seed."""
  return os.path.join(workdir, comparison.directory_name(row), f"seed_{seed}")


def _load_json(path: str):
  with open(path) as fh:
    return json.load(fh)


def is_finished(config, run_dir: str) -> bool:
  """Whether `run_dir` holds a finished run of exactly `config`: a
  results.json at `config.train.num_steps` steps next to a config.json
  equal to `config`."""
  results_path = os.path.join(run_dir, "results.json")
  config_path = os.path.join(run_dir, "config.json")
  if not (os.path.exists(results_path) and os.path.exists(config_path)):
    return False
  same = _load_json(config_path) == json.loads(json.dumps(config.to_dict()))
  return same and (_load_json(results_path).get("num_steps")
                   == config.train.num_steps)


def train_seed_run(row: str, config, run_dir: str,
                   variance_draws: int) -> dict:
  """Trains one row x seed (skipped when finished, else resumed from its
  latest checkpoint by `loop.train_and_evaluate`) and summarises it.

  Returns:
    The run's `comparison.summarise` dict.

  Raises:
    ValueError: when the run did not end at `config.train.num_steps` steps
      (e.g. `run_dir` holds a run of a larger `--max_steps`).
  """
  if is_finished(config, run_dir):
    logging.info("%s is finished: skipped.", run_dir)
  else:
    loop.train_and_evaluate(config, run_dir)
  variance = (comparison.gradient_variance(config, run_dir, variance_draws)
              if variance_draws else float("nan"))
  summary = comparison.summarise(row, run_dir, variance)
  steps = summary["results"]["num_steps"]
  if steps != config.train.num_steps:
    raise ValueError(f"{run_dir} holds a run of {steps} steps, not "
                     f"--max_steps={config.train.num_steps}: give another "
                     "--workdir or that run's --max_steps.")
  return summary


def _number(value) -> float | None:
  """`value` as a float, None when it is missing or not finite."""
  if value is None or not np.isfinite(value):
    return None
  return float(value)


def chain_gap(summary: dict) -> float | None:
  """The RBM prior's chain gap of a run (`comparison.summarise` dict):
  results.json's `test_chain_gap`, else the gap logged with the
  validation of the best-validation step (`valid_chain_gap` or
  `chain_gap`); None when the run reports none."""
  value = summary["results"].get("test_chain_gap")
  if value is not None:
    return value
  best_step = summary["results"].get("best_step")
  for record in reversed(summary["records"]):
    if record.get("step") == best_step:
      for key in ("valid_chain_gap", "chain_gap"):
        if record.get(key) is not None:
          return record[key]
  return None


class SeedColumn(NamedTuple):
  """A column of seeds.md: its header, the format of one number and the
  number of a run (`comparison.summarise` dict; None when it has none)."""
  header: str
  fmt: str
  value: Callable[[dict], float | None]


# In table order; a column appears when some run has a value for it.
SEED_COLUMNS = (
    SeedColumn("test bound", "{:.2f}", lambda s: s["test"]),
    SeedColumn("test KL", "{:.2f}", lambda s: s["results"].get("test_kl")),
    SeedColumn("steps/s", "{:.1f}", lambda s: s["steps_per_s"]),
    SeedColumn("chain gap", "{:.3f}", chain_gap),
    SeedColumn("grad variance", "{:.3e}", lambda s: s["grad_variance"]),
)


def present_columns(runs: dict) -> list[SeedColumn]:
  """The `SEED_COLUMNS` that some run of `runs` (row -> summaries) has."""
  summaries = [s for row in runs.values() for s in row]
  return [c for c in SEED_COLUMNS
          if any(_number(c.value(s)) is not None for s in summaries)]


def stat_cell(values, fmt: str) -> str:
  """"mean ± SE" over a row's seeds (`comparison.mean_and_stderr`) of the
  values present: just the value for one, "" for none, and "(n=k)" after
  it when only k of the seeds have one."""
  present = [v for v in map(_number, values) if v is not None]
  if not present:
    return ""
  mean, stderr = comparison.mean_and_stderr(present)
  text = fmt.format(mean)
  if stderr is not None:
    text += " ± " + fmt.format(stderr)
  if len(present) < len(values):
    text += f" (n={len(present)})"
  return text


def _markdown_row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def seeds_tables(runs: dict, seeds: list[int]) -> list[str]:
  """Markdown lines of two tables: mean ± SE over seeds, one line per row
  (in `runs` order), then every seed's values.

  Args:
    runs: row name -> one `comparison.summarise` dict per seed.
    seeds: the seeds, in the order of each row's summaries.
  """
  columns = present_columns(runs)
  headers = [c.header for c in columns]
  lines = [_markdown_row(["row", "n", *headers]),
           "|" + "---|" * (2 + len(columns))]
  for name, summaries in runs.items():
    lines.append(_markdown_row(
        [name, str(len(summaries)),
         *[stat_cell([c.value(s) for s in summaries], c.fmt)
           for c in columns]]))
  lines += ["", "Per seed:", "", _markdown_row(["row", "seed", *headers]),
            "|" + "---|" * (2 + len(columns))]
  for name, summaries in runs.items():
    for seed, s in zip(seeds, summaries):
      cells = [_number(c.value(s)) for c in columns]
      lines.append(_markdown_row(
          [name, str(seed), *["" if v is None else c.fmt.format(v)
                              for c, v in zip(columns, cells)]]))
  return lines


# A difference of two rows counts as resolved at this budget when its mean
# is more than this many standard errors from 0.
RESOLVED_SE = 2.0


def paired_differences(runs: dict) -> list[str]:
  """Markdown lines of a table of test-bound differences between every two
  rows (`runs`: row -> one summary per seed, in the same seed order),
  paired by seed (seed s of both rows shares the data draw and the initial
  key, so pairing removes that shared variation): the mean ± SE of
  (row A - row B) over the seeds both have, and whether it is resolved
  (|mean| > RESOLVED_SE standard errors); empty with fewer than 2 rows or
  2 common seeds."""
  names = list(runs)
  lines = []
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      diffs = [_number(sa["test"]) - _number(sb["test"])
               for sa, sb in zip(runs[a], runs[b])
               if _number(sa["test"]) is not None
               and _number(sb["test"]) is not None]
      if len(diffs) < 2:
        continue
      mean, stderr = comparison.mean_and_stderr(diffs)
      resolved = abs(mean) > RESOLVED_SE * stderr if stderr else False
      lines.append(_markdown_row(
          [a, b, str(len(diffs)), f"{mean:+.2f} ± {stderr:.2f}",
           "yes" if resolved else "no"]))
  if not lines:
    return []
  return ["Test-bound differences, paired by seed (A - B, mean ± standard "
          f"error over the common seeds; resolved: |mean| > {RESOLVED_SE:g} "
          "standard errors):", "",
          _markdown_row(["A", "B", "n", "A - B", "resolved"]),
          "|---|---|---|---|---|", *lines]


def seeds_markdown(runs: dict, seeds: list[int], *, config_file: str,
                   max_steps: int, command: str, commit: str,
                   figure: str) -> list[str]:
  """The lines of seeds.md: what made it, what the numbers are, the
  tables (`seeds_tables`) and a link to `figure`."""
  samples = sorted({s["eval_num_samples"] for row in runs.values()
                    for s in row})
  return [
      f"# {config_file}: rows x seeds at equal steps", "",
      f"Made by `{command}` at commit `{commit}`.", "",
      f"n = {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
      f"{max_steps} training steps per run. Test bound: the "
      f"{'/'.join(map(str, samples))}-sample importance-weighted bound of "
      "the best-validation checkpoint on the test split. Each cell: mean ± "
      "standard error over seeds (sample standard deviation, ddof = 1, / "
      "sqrt(n)). steps/s as the training loop logs it (compilation and "
      "periodic evaluation included).", "",
      *seeds_tables(runs, seeds), "",
      *paired_differences(runs), "",
      f"![validation bound vs steps, mean ± standard error over seeds]"
      f"({figure})"]


def run_seeds(config_file: str, rows: str, workdir: str, *,
              seeds: list[int], max_steps: int, eval_every_steps: int,
              variance_draws: int = 0, results: str | None = None,
              command: str | None = None) -> str:
  """Trains every row x seed for exactly `max_steps` steps and tabulates
  them over seeds. Every config is built and validated before any
  directory is written.

  Args:
    config_file, rows, workdir, max_steps, eval_every_steps,
      variance_draws: as for `run` (no time budget).
    seeds: the seeds (`parse_seeds`).
    results: a path prefix: the table and figure are also written to
      `<results>.md` and `<results>.png`.
    command: the command line for the table's header (`command_line`).

  Returns:
    The markdown of `<workdir>/seeds.md`.
  """
  module = load_config_module(config_file)
  configs = {name: [seed_config(module, name, seed, max_steps=max_steps,
                                eval_every_steps=eval_every_steps)
                    for seed in seeds]
             for name in row_names(rows)}
  for config in [c for row in configs.values() for c in row]:
    validation.validate_config(config)
  if results is not None:
    check_results_prefix(results)
  prefixes = [os.path.join(workdir, "seeds")] + [results] * bool(results)
  commit = git_commit(written=[p + e for p in prefixes for e in (".md",
                                                                 ".png")])
  runs = {}
  for name, row_configs in configs.items():
    runs[name] = []
    for seed, config in zip(seeds, row_configs):
      logging.info("=== %s, seed %d ===", name, seed)
      runs[name].append(train_seed_run(name, config,
                                       seed_dir(workdir, name, seed),
                                       variance_draws))
  curves = {name: comparison.seed_curves([s["records"] for s in summaries])
            for name, summaries in runs.items()}
  texts = []
  for prefix in prefixes:
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    lines = seeds_markdown(
        runs, seeds, config_file=config_file, max_steps=max_steps,
        command=command or "experiments.compare_rows.run_seeds (no command "
        "line)", commit=commit, figure=os.path.basename(prefix) + ".png")
    texts.append(comparison.write_markdown(lines, prefix + ".md"))
    comparison.plot_seeds(curves, prefix + ".png")
  return texts[0]


def run_flags(defined: dict) -> str:
  """Runs the command whose parsed flags `defined` holds (`define_flags`):
  `run` without `--seeds`, `run_seeds` with it (flags checked first,
  `check_flags`).

  Returns:
    The markdown table written.
  """
  values = {name: holder.value for name, holder in defined.items()}
  given = {name for name, holder in defined.items() if holder.present}
  seeds = check_flags(values, given)
  common = dict(max_steps=values["max_steps"],
                eval_every_steps=values["eval_every_steps"],
                variance_draws=values["variance_draws"])
  if seeds is None:
    return run(values["config_file"], values["rows"], values["workdir"],
               time_budget_s=values["time_budget_s"], **common)
  return run_seeds(values["config_file"], values["rows"], values["workdir"],
                   seeds=seeds, results=values["results"],
                   command=command_line(defined), **common)


def main(argv):
  launcher.prepare(argv)
  table = run_flags(_FLAGS)
  print(table)
  workdir = _FLAGS["workdir"].value
  if _FLAGS["seeds"].value is None:
    print(f"written to {workdir}/comparison.md, comparison.png and "
          "samples.png")
  else:
    extra = (f" and {_FLAGS['results'].value}.md/.png"
             if _FLAGS["results"].value else "")
    print(f"written to {workdir}/seeds.md, seeds.png{extra}")


if __name__ == "__main__":
  _FLAGS = define_flags()
  app.run(main)
