"""Flag-free helpers shared by the comparison launchers.

`experiments.compare` (estimators on one model) and
`experiments.compare_flows` (XOR-flow rows at a wall-clock budget) both
summarise finished runs, measure the gradient variance at the final
checkpoint and plot validation curves with these functions.
"""

import json
import os

import jax
import numpy as np

from discrete_vi.training import checkpoints
from discrete_vi.training import setup
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


def write_markdown(lines, path: str) -> str:
  """Joins `lines`, writes them to `path` and returns the text."""
  text = "\n".join(lines) + "\n"
  with open(path, "w") as fh:
    fh.write(text)
  return text
