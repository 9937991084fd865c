r"""Trains one model per estimator with the same seed and budget, and compares.

    python -m experiments.compare --config=configs/sbn.py:linear \
        --estimators=reinforce,rloo,vimco,muprop,rebar,relax,arm,disarm,st_gumbel_softmax,gumbel_softmax,overlapping_exponential \
        --config.train.num_steps=5000 --workdir=runs/compare_linear

Writes `<workdir>/<estimator>/` (a full run each, resumable),
`<workdir>/comparison.md` (final test bound, best validation bound, wall
time, steps/s, gradient variance of the training loss at the final
parameters) and `<workdir>/comparison.png` (validation bound vs steps and vs
wall-clock time, one line per estimator).

Like `experiments.main`, this launcher defines its own flags (the comparison
needs the estimator list); the library defines none.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from discrete_vi import estimators
from discrete_vi.training import checkpoints
from discrete_vi.training import loop
from discrete_vi.training import optim
from discrete_vi.training import steps as steps_lib
from discrete_vi.training import writers

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Base config, e.g. configs/sbn.py:linear.",
    lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all runs.")
_ESTIMATORS = flags.DEFINE_list("estimators", None,
                                "Comma-separated registry names.")
_VARIANCE_DRAWS = flags.DEFINE_integer(
    "variance_draws", 100, "Gradient draws for the variance column.")
flags.mark_flags_as_required(["config", "workdir", "estimators"])


def config_for(base, name: str):
  """`base` with estimator `name`; options that it does not take are unset."""
  config = base.copy_and_resolve_references()
  accepted = estimators.options_of(name)
  with config.unlocked():
    config.estimator.name = name
    for field in list(config.estimator.keys()):
      if (field not in steps_lib.NON_OPTION_FIELDS and field not in accepted
          and config.estimator[field] is not None):
        logging.info("%s: dropping estimator option %s=%r it does not take.",
                     name, field, config.estimator[field])
        config.estimator[field] = None
  return config


def gradient_variance(config, workdir: str, num_draws: int) -> float:
  """Mean per-parameter variance of the training-loss gradient at the final
  checkpoint, over `num_draws` keys on one fixed training batch."""
  dataset = loop.load_data(config)
  model = loop.build_model(config, dataset.train_mean)
  x = jnp.asarray(dataset.train[:config.train.batch_size])
  params = model.init(jax.random.PRNGKey(config.seed), x)
  tx = optim.make_optimizer(config.optim.to_dict(), params,
                            config.train.num_steps)
  target = loop.initial_state(config, model, tx, x)
  ckpt = checkpoints.Checkpointer(workdir)
  state = ckpt.restore(target)
  ckpt.close()
  estimator = steps_lib.estimator_at(config.estimator, state.step)

  def grad(key):
    return jax.grad(lambda p: model.loss(
        p, key, x, step=state.step, estimator=estimator,
        state=state.estimator_state)[0])(state.params)

  keys = jax.random.split(jax.random.PRNGKey(123), num_draws)
  draws = [jax.jit(grad)(k) for k in keys]
  flat = np.stack([np.concatenate([np.ravel(a) for a in
                                   jax.tree_util.tree_leaves(g)])
                   for g in draws]).astype(np.float64)
  return float(np.mean(np.var(flat, axis=0, ddof=1)))


def summarise(name: str, workdir: str, variance: float) -> dict:
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
          "records": records}


def write_table(rows, path: str, config) -> str:
  lines = [f"Model `{config.model.name}:{config.model.architecture}` on "
           f"`{config.data.name}`, {config.train.num_steps} steps, batch "
           f"{config.train.batch_size}, seed {config.seed}; test bound with "
           f"{rows[0]['eval_num_samples']} samples at the best-validation "
           f"checkpoint; gradient variance: mean over all parameters of the "
           f"variance of the training-loss gradient at the final step.", "",
           "| estimator | test bound | best valid bound | wall time (s) | "
           "steps/s | grad variance |", "|---|---|---|---|---|---|"]
  for r in sorted(rows, key=lambda r: -r["test"]):
    lines.append(f"| {r['estimator']} | {r['test']:.2f} | "
                 f"{r['best_valid']:.2f} | {r['wall_time_s']:.0f} | "
                 f"{r['steps_per_s']:.0f} | {r['grad_variance']:.3e} |")
  text = "\n".join(lines) + "\n"
  with open(path, "w") as fh:
    fh.write(text)
  return text


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(
      lambda record: "/orbax/" not in record.pathname)
  base = _CONFIG.value
  configs = {name: config_for(base, name) for name in _ESTIMATORS.value}
  for config in configs.values():  # every config is checked before any run
    loop.validate_config(config)
  rows = []
  for name, config in configs.items():
    workdir = os.path.join(_WORKDIR.value, name)
    logging.info("=== %s ===", name)
    loop.train_and_evaluate(config, workdir)
    rows.append(summarise(name, workdir, gradient_variance(
        config, workdir, _VARIANCE_DRAWS.value)))
  table = write_table(rows, os.path.join(_WORKDIR.value, "comparison.md"), base)
  plot(rows, os.path.join(_WORKDIR.value, "comparison.png"))
  print(table)
  print(f"written to {_WORKDIR.value}/comparison.md and comparison.png")


if __name__ == "__main__":
  app.run(main)
