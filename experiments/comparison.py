"""Flag-free helpers shared by the comparison launchers.

`experiments.compare` (estimators on one model), `experiments.compare_rows`
(rows of any config file at a wall-clock budget, or at equal steps over
several seeds) and `experiments.compare_flows` (XOR-flow rows) summarise
finished runs, measure the gradient variance at the final checkpoint and
plot validation curves with these functions; over seeds, `mean_and_stderr`,
`seed_curves` and `plot_seeds` give means and their standard errors.
"""

import json
import os

from absl import logging
import jax
import numpy as np

from discrete_vi.training import checkpoints
from discrete_vi.training import loop
from discrete_vi.training import setup
from discrete_vi.training import validation
from discrete_vi.training import writers


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
                   for g in draws]).astype(np.float64)
  return float(np.mean(np.var(flat, axis=0, ddof=1)))


def summarise(name: str, workdir: str, variance: float) -> dict:
  """One comparison row of a finished run: its results.json (`results`),
  metrics, best validation bound, rate and the given gradient variance."""
  with open(os.path.join(workdir, "results.json")) as fh:
    results = json.load(fh)
  records = writers.read_metrics(workdir)
  valid = [r["valid_log_likelihood"] for r in records
           if r.get("valid_log_likelihood") is not None]
  rates = [r["steps_per_s"] for r in records if "steps_per_s" in r]
  return {"estimator": name, "test": results["test_log_likelihood"],
          "best_valid": max(valid) if valid else float("nan"),
          "wall_time_s": results["wall_time_s"],
          "steps_per_s": rates[-1] if rates else float("nan"),
          "grad_variance": variance,
          "eval_num_samples": results["eval_num_samples"],
          "results": results, "records": records}


def directory_name(row: str) -> str:
  """A run directory for a config argument ("rbm,layers=2" ->
  "rbm_layers-2")."""
  return row.replace(",", "_").replace("=", "-")


def train_rows(configs: dict, workdir: str, variance_draws: int
               ) -> tuple[list, list]:
  """Validates every config, then trains and summarises each in turn.

  Args:
    configs: row name -> run config (in table order).
    workdir: parent directory; row r runs in `<workdir>/<directory_name(r)>`.
    variance_draws: gradient draws for the variance column (0: skip, NaN).

  Returns:
    `(rows, workdirs)`: the `summarise` dicts and the run directories.
  """
  for config in configs.values():  # every config is checked before any run
    validation.validate_config(config)
  rows, workdirs = [], []
  for name, config in configs.items():
    run_dir = os.path.join(workdir, directory_name(name))
    logging.info("=== %s ===", name)
    loop.train_and_evaluate(config, run_dir)
    variance = (gradient_variance(config, run_dir, variance_draws)
                if variance_draws else float("nan"))
    rows.append(summarise(name, run_dir, variance))
    workdirs.append(run_dir)
  return rows, workdirs


def plot_samples(rows, workdirs, path: str) -> None:
  """One panel per row: that run's samples.png."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.6))
  for ax, r, run_dir in zip(np.atleast_1d(axes), rows, workdirs):
    image = plt.imread(os.path.join(run_dir, "samples.png"))
    ax.imshow(image, cmap="gray")
    ax.set_title(r["estimator"], fontsize=8)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot(rows, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for r in rows:
    points = [(p["step"], p["wall_time_s"], p["valid_log_likelihood"])
              for p in r["records"] if p.get("valid_log_likelihood") is not None]
    if not points:
      continue
    steps, times, values = zip(*points)
    axes[0].plot(steps, values, "o-", label=r["estimator"], markersize=3)
    axes[1].plot(times, values, "o-", label=r["estimator"], markersize=3)
  axes[0].set_xlabel("step")
  axes[1].set_xlabel("wall-clock time (s)")
  for ax in axes:
    ax.set_ylabel("validation bound (nats)")
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


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


def plot_kls(rows, path: str) -> bool:
  """One panel per row: each KL term vs steps (`kl_curves`); writes `path`
  only when some row has KL curves, and says whether it did."""
  curves = [kl_curves(r["records"]) for r in rows]
  if not any(curves):
    return False
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.6),
                           squeeze=False)
  for ax, r, row_curves in zip(axes[0], rows, curves):
    for name, (steps, values) in row_curves.items():
      ax.plot(steps, values, "o-" if "local" in name else "s--",
              markersize=3, label=name.removeprefix("kl_"))
    ax.set_title(r["estimator"], fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("KL (nats per example)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


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


def plot_seeds(curves: dict, path: str) -> None:
  """Validation bound vs steps, one line per row: the mean over seeds with
  a shaded band of +-1 standard error.

  Args:
    curves: row name -> `seed_curves` output (in legend order).
    path: the PNG to write.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for name, (steps, mean, stderr) in curves.items():
    if not len(steps):
      continue
    line, = ax.plot(steps, mean, "o-", markersize=3, label=name)
    if stderr is not None:
      ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.25,
                      color=line.get_color(), linewidth=0)
  ax.set_xlabel("step")
  ax.set_ylabel("validation bound (nats)")
  ax.set_title("mean over seeds, band: \u00b11 standard error", fontsize=9)
  ax.grid(alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
