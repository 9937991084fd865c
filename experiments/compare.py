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

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from discrete_vi import estimators
from discrete_vi.training import estimator_spec
from discrete_vi.training import loop
from discrete_vi.training import validation
from experiments import comparison
from experiments import launcher

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
  """`base` with estimator `name`; options set in `base.estimator` that it
  does not take are unset (logged), so one command line can compare
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
  return comparison.write_markdown(lines, path)


def main(argv):
  launcher.prepare(argv)
  base = _CONFIG.value
  configs = {name: config_for(base, name) for name in _ESTIMATORS.value}
  for config in configs.values():  # every config is checked before any run
    validation.validate_config(config)
  rows = []
  for name, config in configs.items():
    workdir = os.path.join(_WORKDIR.value, name)
    logging.info("=== %s ===", name)
    loop.train_and_evaluate(config, workdir)
    variance = comparison.gradient_variance(config, workdir,
                                            _VARIANCE_DRAWS.value)
    rows.append(comparison.summarise(name, workdir, variance))
  table = write_table(rows, os.path.join(_WORKDIR.value, "comparison.md"), base)
  comparison.plot(rows, os.path.join(_WORKDIR.value, "comparison.png"))
  print(table)
  print(f"written to {_WORKDIR.value}/comparison.md and comparison.png")


if __name__ == "__main__":
  app.run(main)
