r"""Trains the rows of a config file at one budget and compares them.

    python -m experiments.compare --config=configs/dvaepp.py \
        --rows="factorial,layers=2;directed,layers=2;rbm,layers=2" \
        --seeds=0,1,2 --steps=10000 --eval_every_steps=1000 \
        --workdir=runs/seeds_dvaepp --results=benchmark_results/seeds_dvaepp

Rows. `--config` is a config file of configs/ and each row of `--rows`
(';'-separated) one of its arguments: the row `rbm,layers=2` is the config
`configs/dvaepp.py:rbm,layers=2`. Without `--rows` there is one row, the
file's default config (`get_config(None)`), labelled `default`.
`--estimators=a,b` crosses every row with every estimator: the row's config
with `config.estimator.name` set, and the estimator options it sets that the
estimator does not take unset (logged), labelled `<row>+<estimator>` (just
`<estimator>` for the default row).

Budget. `--steps=N` trains exactly N steps, without a time budget unless
`--time_budget_s` is given too. `--time_budget_s=S` alone stops each run's
training after S seconds (periodic evaluation and the first, compiling,
chunk excluded) or at the config's own number of steps, whichever comes
first, so that the config's schedules keep their length; give `--steps`
too for another step limit. Neither: the config's own protocol.
Validation and checkpoints every `--eval_every_steps` (default 1000).

One run per row (no `--seeds`): `<workdir>/<row>/` (a full run,
resumable), then `comparison.md` (one line per row, best test bound first:
the test bound of the best-validation checkpoint with the config's final
number of importance samples, the best validation bound, every further
`test_*` number of the run's results.json with its standard error where it
has one, the evaluations' headline numbers, steps, wall time, steps/s and,
with `--variance_draws=N`, the gradient variance of the training loss over
N draws at the final checkpoint), `comparison.png` (validation bound vs
steps and vs wall-clock time), `samples.png` (one sample grid per row) and,
when runs log KL terms (`diag/kl_*`), `kl.png`.

Several seeds (`--seeds=0,1,2`, with `--steps` and without
`--time_budget_s`): every row x seed is a full run in
`<workdir>/<row>/seed_<s>/` with `config.seed = s` (initialisation,
training batches and, for statically binarised data, the binarisation
draw), trained for exactly `--steps` steps. Then `seeds.md`: the command
and git commit that made it, one line per row (in `--rows` order) with the
mean ± standard error over seeds of the test bound, the further `test_*`
numbers, the evaluations' numbers, steps/s and the gradient variance,
every seed's values, and the test-bound differences of every two rows
paired by seed; and `seeds.png` (validation bound vs steps, mean ± standard
error band). `--results=<prefix>` writes them to `<prefix>.md` and
`<prefix>.png` too (the tables of benchmark_results/).

A row's directory is its label with ',' -> '_' and '=' -> '-'
(`rbm,layers=2+disarm` -> `rbm_layers-2+disarm`). Rerunning a command
skips finished runs (a results.json at the run's number of steps next to a
config.json equal to its config) and resumes the others from their latest
checkpoints.

Evaluations. `--evaluations=digit_identity` measures each run after it
trained (`experiments.evaluations`), writes the result next to the run and
adds its headline numbers as columns.

Every row's config (each seed's), every estimator and every evaluation is
built and checked before anything is written: a bad value fails naming it.
Like `experiments.main`, this launcher defines its own flags; the library
defines none.
"""

import importlib
import importlib.util
import os
import shlex
from typing import NamedTuple

from absl import app
from absl import flags
from absl import logging
import ml_collections

from discrete_vi import estimators
from discrete_vi.training import estimator_spec
from discrete_vi.training import loop
from discrete_vi.training import validation
from experiments import comparison
from experiments import evaluations
from experiments import launcher

PROGRAM = "python -m experiments.compare"
DEFAULT_ROW = "default"  # the label of the default config's row


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """Defines this launcher's flags in `flag_values` (only when run as a
  program, so that tests can import the module next to other launchers, or
  parse a command with their own `FlagValues`)."""
  def define(kind, name, default, text):
    return kind(name, default, text, flag_values=flag_values)
  defined = {
      "config": define(flags.DEFINE_string, "config", None,
                       "A config file of configs/, e.g. configs/dvaepp.py."),
      "workdir": define(flags.DEFINE_string, "workdir", None,
                        "Directory for all runs and tables."),
      "rows": define(flags.DEFINE_string, "rows", None,
                     "Semicolon-separated arguments of the config file "
                     "(unset: one row, its default config)."),
      "estimators": define(flags.DEFINE_list, "estimators", None,
                           "Comma-separated estimators, crossed with every "
                           "row."),
      "seeds": define(flags.DEFINE_list, "seeds", None,
                      "Comma-separated seeds, e.g. 0,1,2: every row x seed "
                      "trained for exactly --steps steps, tabulated as mean "
                      "± standard error in <workdir>/seeds.md (unset: one "
                      "run per row, comparison.md)."),
      "steps": define(flags.DEFINE_integer, "steps", None,
                      "Training steps per run (required with --seeds; "
                      "unset: the config's own)."),
      "time_budget_s": define(flags.DEFINE_float, "time_budget_s", None,
                              "Training seconds per run (not with --seeds)."),
      "eval_every_steps": define(flags.DEFINE_integer, "eval_every_steps",
                                 1000, "Validation and checkpoints every "
                                 "this many steps."),
      "variance_draws": define(flags.DEFINE_integer, "variance_draws", 0,
                               "Gradient draws for the variance column (0: "
                               "none)."),
      "results": define(flags.DEFINE_string, "results", None,
                        "With --seeds: also write the table and figure to "
                        "<prefix>.md and <prefix>.png, e.g. "
                        "benchmark_results/seeds_dvaepp."),
      "evaluations": define(flags.DEFINE_list, "evaluations", None,
                            "Comma-separated evaluations of every run, e.g. "
                            "digit_identity."),
  }
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
  return defined


# -- flags --------------------------------------------------------------------


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


def check_budget(values: dict) -> None:
  """Raises ValueError unless the budget flags have valid values and go
  together: with `--seeds` every run trains exactly `--steps` steps, so
  `--steps` must be given and `--time_budget_s` must not (a time budget
  would cut runs short at unequal steps)."""
  steps, budget = values["steps"], values["time_budget_s"]
  if values["seeds"] is not None:
    if steps is None:
      raise ValueError("--seeds trains every row x seed for exactly --steps "
                       "steps: give --steps (e.g. --steps=10000).")
    if budget is not None:
      raise ValueError(f"--time_budget_s={budget:g} does not apply with "
                       "--seeds: every run trains exactly --steps steps, "
                       "without a time budget.")
  if steps is not None and steps < 1:
    raise ValueError(f"--steps={steps} must be at least 1.")
  if budget is not None and not 0 < budget < float("inf"):
    raise ValueError(f"--time_budget_s={budget:g} must be a number of "
                     "seconds > 0.")
  if values["eval_every_steps"] < 1:
    raise ValueError(f"--eval_every_steps={values['eval_every_steps']} "
                     "must be at least 1.")
  draws = values["variance_draws"]
  if draws < 0 or draws == 1:
    raise ValueError(f"--variance_draws={draws}: give 0 (no variance "
                     "column) or at least 2 draws.")


def check_flags(values: dict) -> list[int] | None:
  """Checks the flags that need no config file (`check_budget`, the
  seeds, `--results`, the estimators' names) and returns the seeds.

  Args:
    values: flag name -> parsed value.

  Returns:
    The seeds (`parse_seeds`), or None without `--seeds`.

  Raises:
    ValueError: naming the flag and value that do not fit.
  """
  check_budget(values)
  if values["results"] is not None:
    if values["seeds"] is None:
      raise ValueError("--results writes the table of --seeds; give --seeds "
                       "too (e.g. --seeds=0,1,2).")
    check_results_prefix(values["results"])
  names = values["estimators"]
  if names is not None:
    if not names:
      raise ValueError("--estimators is empty: give comma-separated "
                       "estimators, e.g. --estimators=reinforce,disarm.")
    for name in names:
      if names.count(name) > 1:
        raise ValueError(f"--estimators: {name!r} is repeated.")
      if name not in estimators.ESTIMATORS:
        raise ValueError(f"--estimators: unknown estimator {name!r}.")
  return None if values["seeds"] is None else parse_seeds(values["seeds"])


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


# -- configs ------------------------------------------------------------------


def load_config_module(path: str):
  """The module of a config file of configs/, e.g. `configs/dvaepp.py`.

  Raises:
    ValueError: naming `path` when it carries a `:arg`, is not a .py file
      of configs/ or does not exist.
  """
  if ":" in path:
    file, _, arg = path.partition(":")
    raise ValueError(f"--config={path}: give the file alone and its "
                     f"argument as a row: --config={file} --rows={arg}.")
  directory, name = os.path.split(os.path.normpath(path))
  if directory != "configs" or not name.endswith(".py"):
    raise ValueError(f"--config={path!r} must be a .py file of configs/, "
                     "e.g. configs/dvaepp.py.")
  module = "configs." + name.removesuffix(".py")
  if importlib.util.find_spec(module) is None:
    raise ValueError(f"--config={path!r}: no such config file.")
  return importlib.import_module(module)


def row_args(rows: str | None) -> list[str | None]:
  """The config arguments of `--rows` (';'-separated); `[None]` (the
  default config) when it is unset.

  Raises:
    ValueError: when `--rows` is given but names no row.
  """
  if rows is None:
    return [None]
  args = [r.strip() for r in rows.split(";") if r.strip()]
  if not args:
    raise ValueError(f"--rows={rows!r} names no row.")
  return args


def row_label(row: str | None, estimator: str | None) -> str:
  """A row's label in the tables: the config argument `row` (`DEFAULT_ROW`
  for the default config), crossed with `estimator` as `<row>+<estimator>`
  (just `<estimator>` for the default config)."""
  if estimator is None:
    return DEFAULT_ROW if row is None else row
  return estimator if row is None else f"{row}+{estimator}"


def estimator_config(base: ml_collections.ConfigDict, name: str
                     ) -> ml_collections.ConfigDict:
  """`base` with estimator `name`; options set in `base.estimator` that it
  does not take are unset (logged), so that one command line can compare
  estimators with different options."""
  config = base.copy_and_resolve_references()
  accepted = estimators.options_of(name)
  with config.unlocked():
    config.estimator.name = name
    for field in list(config.estimator.keys()):
      if (field != "name" and field not in estimator_spec.SCHEDULE_FIELDS
          and field not in accepted
          and config.estimator[field] is not None):
        logging.info("%s: dropping estimator option %s=%r it does not take.",
                     name, field, config.estimator[field])
        config.estimator[field] = None
  return config


def budget_config(config: ml_collections.ConfigDict, *, steps: int | None,
                  time_budget_s: float | None, eval_every_steps: int,
                  seed: int | None = None) -> ml_collections.ConfigDict:
  """`config` (changed in place) with the comparison's budget (module
  docstring): `steps` sets the number of steps and the time budget to
  `time_budget_s` (None: none); without `steps`, a `time_budget_s` is set
  under the config's own number of steps. Validation, checkpoints and (unless
  the config sets them) gradient diagnostics every `eval_every_steps`;
  `config.seed = seed` unless it is None."""
  if steps is not None:
    config.train.num_steps = steps
    config.train.time_budget_s = time_budget_s
  elif time_budget_s is not None:
    config.train.time_budget_s = time_budget_s
  config.train.checkpoint_every_steps = eval_every_steps
  config.eval.every_steps = eval_every_steps
  if not config.diagnostics.every_steps:
    # Gradient diagnostics at every validation (they change neither the
    # training nor which finished run a config names).
    config.diagnostics.every_steps = eval_every_steps
  if seed is not None:
    config.seed = seed
  return config


class Run(NamedTuple):
  """One run of a comparison: its row's label, its seed (None: one run of
  the config's own seed), config and directory."""
  label: str
  seed: int | None
  config: ml_collections.ConfigDict
  run_dir: str


def run_dir(workdir: str, label: str, seed: int | None) -> str:
  """`<workdir>/<row>/` of a row's one run, `<workdir>/<row>/seed_<s>/`
  of its seed s (`comparison.directory_name` of the label)."""
  path = os.path.join(workdir, comparison.directory_name(label))
  return path if seed is None else os.path.join(path, f"seed_{seed}")


def row_runs(module, row: str | None, estimator: str | None, *,
             seeds: list[int] | None, budget: dict, workdir: str
             ) -> list[Run]:
  """The runs of one row (one per seed, or one): `row`'s config of
  `module`, crossed with `estimator` (None: the config's own), with the
  budget's keyword arguments (`budget_config`)."""
  label = row_label(row, estimator)
  base = module.get_config(row)
  if estimator is not None:
    base = estimator_config(base, estimator)
  return [Run(label, seed,
              budget_config(base.copy_and_resolve_references(), seed=seed,
                            **budget),
              run_dir(workdir, label, seed))
          for seed in seeds or [None]]


def check_runs(runs: list[Run], evaluation_names: list[str]) -> None:
  """Validates every run's config (`training.validate_config`) and that
  every evaluation applies to it.

  Raises:
    ValueError: naming the row and the bad value.
  """
  for run in runs:
    try:
      validation.validate_config(run.config)
      evaluations.check(evaluation_names, run.config)
    except ValueError as error:
      raise ValueError(f"row {run.label!r}: {error}") from None


# -- a command ----------------------------------------------------------------


class Plan(NamedTuple):
  """A checked command: its runs by row label (in table order; one per
  seed, or one), the seeds (None: one run per row) and what it writes."""
  config_file: str
  workdir: str
  runs: dict
  seeds: list[int] | None
  steps: int | None
  variance_draws: int
  evaluations: list[str]
  results: str | None
  command: str


def build_plan(values: dict, command: str) -> Plan:
  """Builds and checks every config of a command; reads and writes
  nothing but the config files.

  Args:
    values: flag name -> parsed value (`define_flags`).
    command: the command line (`command_line`), for the seeds table.

  Raises:
    ValueError: naming the first bad flag value or row.
  """
  seeds = check_flags(values)
  module = load_config_module(values["config"])
  names = evaluations.parse_names(values["evaluations"] or [])
  budget = {"steps": values["steps"], "time_budget_s": values["time_budget_s"],
            "eval_every_steps": values["eval_every_steps"]}
  runs, directories = {}, {}
  for row in row_args(values["rows"]):
    for estimator in values["estimators"] or [None]:
      label = row_label(row, estimator)
      try:
        runs_of_row = row_runs(module, row, estimator, seeds=seeds,
                               budget=budget, workdir=values["workdir"])
      except ValueError as error:
        raise ValueError(f"--rows: row {label!r}: {error}") from None
      check_runs(runs_of_row, names)
      directory = comparison.directory_name(label)
      if directory in directories:
        raise ValueError(f"--rows: rows {directories[directory]!r} and "
                         f"{label!r} share the directory {directory!r}.")
      directories[directory] = label
      runs[label] = runs_of_row
  return Plan(values["config"], values["workdir"], runs, seeds,
              values["steps"], values["variance_draws"], names,
              values["results"], command)


def plan_command(defined: dict) -> Plan:
  """`build_plan` of the command whose parsed flags `defined` holds.

  Raises:
    app.UsageError: naming the first bad flag value or row.
  """
  values = {name: holder.value for name, holder in defined.items()}
  try:
    return build_plan(values, command_line(defined))
  except ValueError as error:
    raise app.UsageError(str(error)) from None


def train_and_summarise(run: Run, plan: Plan) -> dict:
  """Trains one run of `plan` (skipped when finished, else resumed from
  its latest checkpoint), measures its gradient variance and the plan's
  evaluations, and summarises it.

  Returns:
    The run's `comparison.summarise` dict.

  Raises:
    ValueError: when a run without a time budget did not end at its
      number of steps (its directory holds a run of more steps).
  """
  logging.info("=== %s%s ===", run.label,
               "" if run.seed is None else f", seed {run.seed}")
  results = loop.finished_results(run.config, run.run_dir)
  if results is None:
    results = loop.train_and_evaluate(run.config, run.run_dir)
  else:
    logging.info("%s is finished: skipped.", run.run_dir)
  steps = run.config.train.num_steps
  if run.config.train.time_budget_s is None and results["num_steps"] != steps:
    raise ValueError(f"{run.run_dir} holds a run of {results['num_steps']} "
                     f"steps, not {steps}: give another --workdir or that "
                     "run's --steps.")
  variance = (comparison.gradient_variance(run.config, run.run_dir,
                                           plan.variance_draws)
              if plan.variance_draws else float("nan"))
  headline = {}
  for name in plan.evaluations:
    headline.update(evaluations.evaluate(name, run.run_dir))
  return comparison.summarise(run.label, run.run_dir, variance, headline)


def compare_one_run_per_row(plan: Plan) -> str:
  """Trains one run per row and writes comparison.md, comparison.png,
  samples.png and (when runs log KLs) kl.png; returns the table."""
  runs = [row[0] for row in plan.runs.values()]
  summaries = [train_and_summarise(run, plan) for run in runs]
  lines = comparison.comparison_table(
      summaries, evaluations.columns(plan.evaluations))
  out = plan.workdir
  table = comparison.write_markdown(lines, os.path.join(out, "comparison.md"))
  comparison.plot(summaries, os.path.join(out, "comparison.png"))
  comparison.plot_samples(summaries, [r.run_dir for r in runs],
                          os.path.join(out, "samples.png"))
  comparison.plot_kls(summaries, os.path.join(out, "kl.png"))
  return table


def compare_seeds(plan: Plan) -> str:
  """Trains every row x seed and writes seeds.md and seeds.png (and the
  `--results` prefix's copies); returns the table."""
  prefixes = [os.path.join(plan.workdir, "seeds")]
  prefixes += [plan.results] if plan.results else []
  commit = comparison.git_commit(written=[p + e for p in prefixes
                                          for e in (".md", ".png")])
  runs = {label: [train_and_summarise(run, plan) for run in row]
          for label, row in plan.runs.items()}
  curves = {label: comparison.seed_curves([s["records"] for s in summaries])
            for label, summaries in runs.items()}
  extra = evaluations.columns(plan.evaluations)
  notes = [evaluations.EVALUATIONS[n].note for n in plan.evaluations]
  texts = []
  for prefix in prefixes:
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    lines = comparison.seeds_markdown(
        runs, plan.seeds, config_file=plan.config_file, steps=plan.steps,
        command=plan.command, commit=commit,
        figure=os.path.basename(prefix) + ".png", extra=extra, notes=notes)
    texts.append(comparison.write_markdown(lines, prefix + ".md"))
    comparison.plot_seeds(curves, prefix + ".png")
  return texts[0]


def execute(plan: Plan) -> str:
  """Runs a checked command (`compare_one_run_per_row` without seeds,
  `compare_seeds` with them); returns the markdown table written."""
  return (compare_one_run_per_row(plan) if plan.seeds is None
          else compare_seeds(plan))


def written_files(plan: Plan) -> str:
  """The tables and figures a command writes, for its last line."""
  if plan.seeds is None:
    return (f"{plan.workdir}/comparison.md, comparison.png, samples.png "
            "(and kl.png when the runs log KL terms)")
  extra = f" and {plan.results}.md/.png" if plan.results else ""
  return f"{plan.workdir}/seeds.md, seeds.png{extra}"


def main(argv):
  launcher.prepare(argv)
  plan = plan_command(_FLAGS)
  print(execute(plan))
  print(f"written to {written_files(plan)}")


if __name__ == "__main__":
  _FLAGS = define_flags()
  app.run(main)
