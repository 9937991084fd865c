"""Flag-free helpers of the comparison, `python -m experiments.compare`.

They summarise finished runs (`summarise`), measure the gradient variance at
the final checkpoint, lay out the tables (`Column`: comparison.md of one run
per row; `seeds_markdown`: seeds.md of several seeds per row, with means and
standard errors and paired differences), plot validation curves, samples and
KL terms, and name the git commit a table was made at.

A table's columns come from what the runs report, never from a model's
fields: the test bound, every further `test_*` number of the runs'
results.json (`result_columns`, with its standard error where there is one),
the headline numbers of the evaluations asked for (`experiments.evaluations`)
and the rates; a column appears when some run has a value for it.
"""

import json
import os
import subprocess
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from discrete_vi.training import checkpoints
from discrete_vi.training import setup
from discrete_vi.training import writers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gradient_variance(config, workdir: str, num_draws: int) -> float:
  """Mean per-parameter variance of the training-loss gradient at the final
  checkpoint, over `num_draws` keys on one fixed training batch."""
  run = setup.create_train_state(config, setup.load_data(config))
  ckpt = checkpoints.Checkpointer(workdir)
  state = ckpt.restore(run.state)
  ckpt.close()
  estimator = run.estimator.at(state.step)
  x = run.x_example

  def grad(key):
    return jax.grad(lambda p: run.model.loss(
        p, key, x, step=state.step, estimator=estimator,
        state=state.model_state)[0])(state.params)

  keys = jax.random.split(jax.random.PRNGKey(123), num_draws)
  grad = jax.jit(grad)
  draws = [grad(k) for k in keys]
  flat = np.stack([np.concatenate([np.ravel(a) for a in
                                   jax.tree_util.tree_leaves(g)])
                   for g in draws]).astype(np.float64)  # [draws, P]
  return float(np.mean(np.var(flat, axis=0, ddof=1)))


def summarise(label: str, workdir: str, variance: float,
              evaluations: dict | None = None) -> dict:
  """One table row of a finished run.

  Args:
    label: the row's label in the tables and figures.
    workdir: the run's directory.
    variance: its gradient variance (NaN: not measured).
    evaluations: headline numbers of its evaluations, by key.

  Returns:
    A dict: `label`, `test` (test bound), `best_valid`, `wall_time_s`,
    `steps_per_s` (the last logged rate), `grad_variance`,
    `eval_num_samples`, `results` (results.json), `records`
    (metrics.jsonl), `evaluations` and `seed` (config.json's; None
    without one).
  """
  with open(os.path.join(workdir, "results.json")) as fh:
    results = json.load(fh)
  seed = writers.read_json(os.path.join(workdir, "config.json"), {}).get(
      "seed")
  records = writers.read_metrics(workdir)
  valid = [r["valid_log_likelihood"] for r in records
           if r.get("valid_log_likelihood") is not None]
  rates = [r["steps_per_s"] for r in records if "steps_per_s" in r]
  return {"label": label, "test": results["test_log_likelihood"],
          "best_valid": max(valid) if valid else float("nan"),
          "wall_time_s": results["wall_time_s"],
          "steps_per_s": rates[-1] if rates else float("nan"),
          "grad_variance": variance,
          "eval_num_samples": results["eval_num_samples"],
          "results": results, "records": records,
          "evaluations": dict(evaluations or {}), "seed": seed}


def directory_name(label: str) -> str:
  """A run directory for a row label ("rbm,layers=2" -> "rbm_layers-2")."""
  return label.replace(",", "_").replace("=", "-")


# -- columns -------------------------------------------------------------------


def number(value) -> float | None:
  """`value` as a float; None when it is missing, not a number (a string,
  a bool) or not finite."""
  if (value is None or isinstance(value, bool)
      or not isinstance(value, (int, float, np.number))
      or not np.isfinite(value)):
    return None
  return float(value)


def _no_stderr(summary: dict) -> None:
  del summary  # unused
  return None


class Column(NamedTuple):
  """A column of the tables: its header, the format of one number, the
  number of a run (a `summarise` dict; None when it has none) and that
  number's standard error within the run (comparison.md shows it as
  "value ± stderr"; None when there is none)."""
  header: str
  fmt: str
  value: Callable[[dict], float | None]
  stderr: Callable[[dict], float | None] = _no_stderr


TEST_BOUND = Column("test bound", "{:.2f}", lambda s: s["test"])
BEST_VALID = Column("best valid bound", "{:.2f}", lambda s: s["best_valid"])
STEPS = Column("steps", "{:.0f}", lambda s: s["results"]["num_steps"])
WALL_TIME = Column("wall time (s)", "{:.0f}", lambda s: s["wall_time_s"])
STEPS_PER_S = Column("steps/s", "{:.1f}", lambda s: s["steps_per_s"])
GRAD_VARIANCE = Column("grad variance", "{:.3e}", lambda s: s["grad_variance"])


def last_diagnostic(summary: dict, key: str) -> float | None:
  """The run's last logged gradient diagnostic `key` (e.g.
  "grad/all/variance", `training.gradient_diagnostics`), None without."""
  for record in reversed(summary["records"]):
    if key in record:
      return record[key]
  return None


# The training-time diagnostics of the whole gradient at the last measured
# step (the compare launcher turns them on for its rows).
TRAIN_VARIANCE = Column("train grad variance", "{:.3e}",
                        lambda s: last_diagnostic(s, "grad/all/variance"))
TRAIN_SNR = Column("train grad SNR", "{:.3f}",
                   lambda s: last_diagnostic(s, "grad/all/snr"))

# results.json entries that are not further numbers to tabulate.
_NOT_COLUMNS = ("test_log_likelihood",)


def result_column(key: str) -> Column:
  """The column of results.json's number `key`, with its `<key>_stderr`."""
  return Column(key, "{:.2f}", lambda s: s["results"].get(key),
                lambda s: s["results"].get(f"{key}_stderr"))


def result_columns(summaries) -> list[Column]:
  """A column per `test_*` number that some run's results.json reports
  (e.g. `test_kl`, `test_log_z`, the XOR flows' `test_greedy_log_likelihood`),
  in the order they first appear; standard errors are folded in."""
  keys = []
  for s in summaries:
    for key, value in s["results"].items():
      if (key.startswith("test_") and key not in _NOT_COLUMNS
          and not key.endswith("_stderr") and key not in keys
          and number(value) is not None):
        keys.append(key)
  return [result_column(k) for k in keys]


def present(columns: Sequence[Column], summaries) -> list[Column]:
  """The `columns` that some run of `summaries` has a value for."""
  return [c for c in columns
          if any(number(c.value(s)) is not None for s in summaries)]


def comparison_columns(summaries, extra: Sequence[Column] = ()
                       ) -> list[Column]:
  """comparison.md's columns: the bounds, the results' further numbers,
  `extra` (the evaluations'), steps, wall time, rate, the gradient
  variance and the last training-time gradient diagnostics, each when some
  run has it."""
  return present([TEST_BOUND, BEST_VALID, *result_columns(summaries), *extra,
                  STEPS, WALL_TIME, STEPS_PER_S, GRAD_VARIANCE,
                  TRAIN_VARIANCE, TRAIN_SNR], summaries)


def seeds_columns(summaries, extra: Sequence[Column] = ()) -> list[Column]:
  """seeds.md's columns: the test bound, the results' further numbers,
  `extra` (the evaluations'), the rate, the gradient variance and the last
  training-time gradient diagnostics, each when some run has it."""
  return present([TEST_BOUND, *result_columns(summaries), *extra,
                  STEPS_PER_S, GRAD_VARIANCE, TRAIN_VARIANCE, TRAIN_SNR],
                 summaries)


def cell(column: Column, summary: dict) -> str:
  """One run's value of `column` ("" when it has none), with its standard
  error within the run when there is one."""
  value = number(column.value(summary))
  if value is None:
    return ""
  stderr = number(column.stderr(summary))
  text = column.fmt.format(value)
  return text if stderr is None else f"{text} ± {column.fmt.format(stderr)}"


def markdown_row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def comparison_table(summaries, extra: Sequence[Column] = ()) -> list[str]:
  """The lines of comparison.md: one line per run, best test bound first.

  Args:
    summaries: `summarise` dicts, one per row.
    extra: further columns (the evaluations').
  """
  columns = comparison_columns(summaries, extra)
  lines = [markdown_row(["row", *[c.header for c in columns]]),
           "|" + "---|" * (1 + len(columns))]
  for s in sorted(summaries, key=lambda s: -s["test"]):
    lines.append(markdown_row([s["label"], *[cell(c, s) for c in columns]]))
  return lines


def write_markdown(lines, path: str) -> str:
  """Joins `lines`, writes them to `path` and returns the text."""
  text = "\n".join(lines) + "\n"
  with open(path, "w") as fh:
    fh.write(text)
  return text


# -- several seeds -------------------------------------------------------------


def mean_and_stderr(values) -> tuple[float, float | None]:
  r"""The mean of `values` and its standard error over them.

  $\mathrm{SE} = s / \sqrt{n}$ with $s$ the sample standard deviation
  (ddof = 1): the standard error of a mean over n independent seeds.

  Args:
    values: n >= 1 finite numbers (one per seed).

  Returns:
    `(mean, stderr)`, stderr None for a single value (no spread to measure).

  Raises:
    ValueError: for no values or a non-finite one.
  """
  values = np.asarray(values, np.float64)  # [n]
  if values.ndim != 1 or values.size == 0:
    raise ValueError(f"mean_and_stderr needs a non-empty list, got {values}.")
  if not np.all(np.isfinite(values)):
    raise ValueError(f"mean_and_stderr got a non-finite value: {values}.")
  if values.size == 1:
    return float(values[0]), None
  return (float(np.mean(values)),
          float(np.std(values, ddof=1) / np.sqrt(values.size)))


def stat_cell(values, fmt: str) -> str:
  """"mean ± SE" over a row's seeds (`mean_and_stderr`) of the values
  present: just the value for one, "" for none, and "(n=k)" after it when
  only k of the seeds have one."""
  found = [v for v in map(number, values) if v is not None]
  if not found:
    return ""
  mean, stderr = mean_and_stderr(found)
  text = fmt.format(mean)
  if stderr is not None:
    text += " ± " + fmt.format(stderr)
  if len(found) < len(values):
    text += f" (n={len(found)})"
  return text


def seeds_tables(runs: dict, seeds: list[int],
                 extra: Sequence[Column] = ()) -> list[str]:
  """Markdown lines of two tables: mean ± SE over seeds, one line per row
  (in `runs` order), then every seed's values.

  Args:
    runs: row label -> one `summarise` dict per seed.
    seeds: the seeds, in the order of each row's summaries.
    extra: further columns (the evaluations').
  """
  columns = seeds_columns([s for row in runs.values() for s in row], extra)
  headers = [c.header for c in columns]
  lines = [markdown_row(["row", "n", *headers]),
           "|" + "---|" * (2 + len(columns))]
  for label, summaries in runs.items():
    lines.append(markdown_row(
        [label, str(len(summaries)),
         *[stat_cell([c.value(s) for s in summaries], c.fmt)
           for c in columns]]))
  lines += ["", "Per seed:", "", markdown_row(["row", "seed", *headers]),
            "|" + "---|" * (2 + len(columns))]
  for label, summaries in runs.items():
    for seed, s in zip(seeds, summaries):
      values = [number(c.value(s)) for c in columns]
      lines.append(markdown_row(
          [label, str(seed), *["" if v is None else c.fmt.format(v)
                               for c, v in zip(columns, values)]]))
  return lines


# A difference of two rows counts as resolved at this budget when its mean
# is more than this many standard errors from 0.
RESOLVED_SE = 2.0


def paired_differences(runs: dict) -> list[str]:
  """Markdown lines of a table of test-bound differences between every two
  rows (`runs`: row -> one summary per seed), paired by seed (seed s of
  both rows shares the data draw and the initial key, so pairing removes
  that shared variation): the mean ± SE of (row A - row B) over the seeds
  both have, and whether it is resolved (|mean| > RESOLVED_SE standard
  errors); empty with fewer than 2 rows or 2 common seeds. Summaries are
  matched by their `seed` (by position for summaries without one)."""
  def tests_by_seed(summaries) -> dict:
    return {i if s.get("seed") is None else s["seed"]: number(s["test"])
            for i, s in enumerate(summaries)}
  labels = list(runs)
  lines = []
  for i, a in enumerate(labels):
    for b in labels[i + 1:]:
      ta, tb = tests_by_seed(runs[a]), tests_by_seed(runs[b])
      diffs = [ta[seed] - tb[seed] for seed in ta
               if seed in tb and ta[seed] is not None
               and tb[seed] is not None]
      if len(diffs) < 2:
        continue
      mean, stderr = mean_and_stderr(diffs)
      resolved = abs(mean) > RESOLVED_SE * stderr if stderr else False
      lines.append(markdown_row(
          [a, b, str(len(diffs)), f"{mean:+.2f} ± {stderr:.2f}",
           "yes" if resolved else "no"]))
  if not lines:
    return []
  return ["Test-bound differences, paired by seed (A - B, mean ± standard "
          f"error over the common seeds; resolved: |mean| > {RESOLVED_SE:g} "
          "standard errors):", "",
          markdown_row(["A", "B", "n", "A - B", "resolved"]),
          "|---|---|---|---|---|", *lines]


def seeds_markdown(runs: dict, seeds: list[int], *, config_file: str,
                   steps: int, command: str, commit: str, figure: str,
                   extra: Sequence[Column] = (),
                   notes: Sequence[str] = ()) -> list[str]:
  """The lines of seeds.md: what made it, what the numbers are, the
  tables (`seeds_tables`), the paired differences and a link to `figure`.

  Args:
    runs, seeds, extra: as for `seeds_tables`.
    config_file: the compared config file (the title).
    steps: training steps per run.
    command: the command line that made the table.
    commit: the git commit it was made at (`git_commit`).
    figure: the file name of the learning-curve figure.
    notes: sentences on further columns (the evaluations').
  """
  samples = sorted({s["eval_num_samples"] for row in runs.values()
                    for s in row})
  return [
      f"# {config_file}: rows x seeds at equal steps", "",
      f"Made by `{command}` at commit `{commit}`.", "",
      f"n = {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
      f"{steps} training steps per run. Test bound: the "
      f"{'/'.join(map(str, samples))}-sample importance-weighted bound of "
      "the best-validation checkpoint on the test split; `test_*`: the "
      "further test numbers of the runs' results.json. Each cell: mean ± "
      "standard error over seeds (sample standard deviation, ddof = 1, / "
      "sqrt(n)). steps/s as the training loop logs it (compilation and "
      "periodic evaluation included)." + "".join(f" {n}" for n in notes), "",
      *seeds_tables(runs, seeds, extra), "",
      *paired_differences(runs), "",
      f"![validation bound vs steps, mean ± standard error over seeds]"
      f"({figure})"]


def seed_curves(records_per_seed: list[list[dict]],
                key: str = "valid_log_likelihood"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
  """One row's learning curve over seeds: `key` at the steps every seed's
  run evaluated, its mean and its standard error (`mean_and_stderr`).

  Args:
    records_per_seed: each seed's metrics.jsonl records (`summarise`'s
      "records"); a step logged twice counts with its last value.
    key: the evaluated quantity.

  Returns:
    `(steps [S], mean [S], stderr [S] or None for one seed)`, S the number
    of steps evaluated in every run (0 when none is).

  Raises:
    ValueError: for no seeds.
  """
  if not records_per_seed:
    raise ValueError("seed_curves needs the records of at least one seed.")
  per_seed = [{r["step"]: r[key] for r in records if r.get(key) is not None}
              for records in records_per_seed]
  steps = sorted(set.intersection(*[set(v) for v in per_seed]))
  values = np.array([[v[s] for s in steps] for v in per_seed],
                    np.float64).reshape(len(per_seed), len(steps))  # [n, S]
  stderr = (values.std(0, ddof=1) / np.sqrt(len(per_seed))
            if len(per_seed) > 1 else None)
  return np.asarray(steps, np.int64), values.mean(0), stderr


# -- what made a table --------------------------------------------------------


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


# -- figures ------------------------------------------------------------------


def _save(plt, fig, path: str) -> None:
  """Writes `fig` to `path` (100 dpi) and closes it."""
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_samples(summaries, workdirs, path: str) -> bool:
  """One panel per run that wrote a samples.png: that grid, titled with the
  row's label; writes `path` only when some run has one, and says whether
  it did."""
  panels = [(s["label"], os.path.join(d, "samples.png"))
            for s, d in zip(summaries, workdirs)
            if os.path.exists(os.path.join(d, "samples.png"))]
  if not panels:
    return False
  plt = writers.pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
  for ax, (label, image_path) in zip(np.atleast_1d(axes), panels):
    ax.imshow(plt.imread(image_path), cmap="gray")
    ax.set_title(label, fontsize=8)
    ax.axis("off")
  _save(plt, fig, path)
  return True


def plot(summaries, path: str) -> None:
  """Validation bound vs steps and vs wall-clock time, one line per run."""
  plt = writers.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for s in summaries:
    points = [(p["step"], p["wall_time_s"], p["valid_log_likelihood"])
              for p in s["records"]
              if p.get("valid_log_likelihood") is not None]
    if not points:
      continue
    steps, times, values = zip(*points)
    axes[0].plot(steps, values, "o-", label=s["label"], markersize=3)
    axes[1].plot(times, values, "o-", label=s["label"], markersize=3)
  axes[0].set_xlabel("step")
  axes[1].set_xlabel("wall-clock time (s)")
  for ax in axes:
    ax.set_ylabel("validation bound (nats)")
    ax.grid(alpha=0.3)
  if axes[1].get_legend_handles_labels()[0]:
    axes[1].legend(fontsize=7)
  _save(plt, fig, path)


# Diagnostics named kl_* that are weights, not KLs.
NOT_KLS = ("kl_weight", "kl_balance_min", "kl_balance_max")


def kl_curves(records: list[dict]) -> dict:
  """{name: (steps, nats per example)} of every `diag/kl_*` KL in a run's
  metrics.jsonl records (e.g. the conv DVAE++'s `kl_global` or
  `kl_global_without_log_z` and `kl_local_<j>`), sorted by name."""
  curves = {}
  for r in records:
    for key, value in r.items():
      name = key.removeprefix("diag/")
      if (key.startswith("diag/kl_") and name not in NOT_KLS
          and value is not None):
        steps, values = curves.setdefault(name, ([], []))
        steps.append(r["step"])
        values.append(value)
  return dict(sorted(curves.items()))


def plot_kls(summaries, path: str) -> bool:
  """One panel per run: each KL term vs steps (`kl_curves`); writes `path`
  only when some run has KL curves, and says whether it did."""
  curves = [kl_curves(s["records"]) for s in summaries]
  if not any(curves):
    return False
  plt = writers.pyplot()
  fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 3.6),
                           squeeze=False)
  for ax, s, run_curves in zip(axes[0], summaries, curves):
    for name, (steps, values) in run_curves.items():
      ax.plot(steps, values, "o-" if "local" in name else "s--",
              markersize=3, label=name.removeprefix("kl_"))
    ax.set_title(s["label"], fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("KL (nats per example)")
    ax.grid(alpha=0.3)
    if run_curves:
      ax.legend(fontsize=7)
  _save(plt, fig, path)
  return True


def plot_seeds(curves: dict, path: str) -> None:
  """Validation bound vs steps, one line per row: the mean over seeds with
  a shaded band of +-1 standard error.

  Args:
    curves: row label -> `seed_curves` output (in legend order).
    path: the PNG to write.
  """
  plt = writers.pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for label, (steps, mean, stderr) in curves.items():
    if not len(steps):
      continue
    line, = ax.plot(steps, mean, "o-", markersize=3, label=label)
    if stderr is not None:
      ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.25,
                      color=line.get_color(), linewidth=0)
  ax.set_xlabel("step")
  ax.set_ylabel("validation bound (nats)")
  ax.set_title("mean over seeds, band: \u00b11 standard error", fontsize=9)
  ax.grid(alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7)
  _save(plt, fig, path)
