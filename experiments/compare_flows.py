r"""Trains XOR-flow rows at the same wall-clock budget and compares them.

    python -m experiments.compare_flows --workdir=runs/compare_flows \
        --rows="ste,depth=1;ste,depth=2;sfe_full,baseline=self_critic;sfe_full,baseline=running_average;sfe_special,baseline=self_critic;sfe_special,baseline=running_average" \
        --time_budget_s=300

Each row is an argument of `configs/xor_flow.py` (quick protocol, embedded
`mnist5k`), trained for `--time_budget_s` seconds of training (periodic
evaluation excluded) or `--max_steps`, whichever comes first, with the same
seed. Writes `<workdir>/<row>/` (full runs, resumable), `comparison.md`
(test NLL of the best-validation checkpoint with the config's final number of
importance samples, the greedy-flow NLL where it applies, the arg max-of-q
score of the full posterior (not a likelihood), steps, wall time including
periodic evaluation, gradient variance), `comparison.png` (validation NLL vs steps and vs
wall-clock time) and `samples.png` (one sample grid per row).

Like `experiments.main`, this launcher defines its own flags; the library
defines none.
"""

import os

from absl import app
from absl import flags

from configs import xor_flow as xor_flow_config
from experiments import comparison
from experiments import launcher

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all runs.")
_ROWS = flags.DEFINE_string("rows", None,
                            "Semicolon-separated configs/xor_flow.py args.")
_BUDGET = flags.DEFINE_float("time_budget_s", 300.0,
                             "Training seconds per row.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 1_000_000,
                                  "Step limit per row (the budget usually "
                                  "stops first).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every_steps", 500,
                                   "Validation every this many steps.")
_VARIANCE_DRAWS = flags.DEFINE_integer(
    "variance_draws", 50, "Gradient draws for the variance column.")
flags.mark_flags_as_required(["workdir", "rows"])


def config_for(row: str):
  """The quick config of `row` with this comparison's budget."""
  config = xor_flow_config.get_config(row)
  config.train.num_steps = _MAX_STEPS.value
  config.train.time_budget_s = _BUDGET.value
  config.train.checkpoint_every_steps = _EVAL_EVERY.value
  config.eval.every_steps = _EVAL_EVERY.value
  return config


def write_table(rows, path: str) -> str:
  lines = ["| row | test NLL | greedy-flow NLL | argmax-q score | steps | "
           "wall time (s) | steps/s | grad variance |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    res = r["results"]
    greedy = res.get("test_greedy_log_likelihood")
    score = res.get("test_greedy_posterior_score")
    lines.append(
        f"| {r['estimator']} | {-res['test_log_likelihood']:.1f} | "
        f"{'' if greedy is None else f'{-greedy:.1f}'} | "
        f"{'' if score is None else f'{-score:.1f}'} | {res['num_steps']} | "
        f"{r['wall_time_s']:.0f} | {r['steps_per_s']:.1f} | "
        f"{r['grad_variance']:.3e} |")
  return comparison.write_markdown(lines, path)


def main(argv):
  launcher.prepare(argv)
  names = [r.strip() for r in _ROWS.value.split(";") if r.strip()]
  configs = {name: config_for(name) for name in names}
  rows, workdirs = comparison.train_rows(configs, _WORKDIR.value,
                                         _VARIANCE_DRAWS.value)
  table = write_table(rows, os.path.join(_WORKDIR.value, "comparison.md"))
  comparison.plot(rows, os.path.join(_WORKDIR.value, "comparison.png"))
  comparison.plot_samples(rows, workdirs,
                          os.path.join(_WORKDIR.value, "samples.png"))
  print(table)
  print(f"written to {_WORKDIR.value}/comparison.md, comparison.png and "
        "samples.png")


if __name__ == "__main__":
  app.run(main)
