"""Measurements of a finished run that the comparison makes after each run.

    python -m experiments.compare ... --evaluations=digit_identity

Each entry of `EVALUATIONS` checks up front that it applies to a config (so
that a command that cannot be measured fails before anything trains),
measures a run's directory, writes its result next to the run
(`<run_dir>/<name>.json` and `<name>.md`) and gives the headline numbers
that become columns of comparison.md and seeds.md. A result is measured
again only when the run's results.json or the evaluation's settings
changed. Adding an evaluation is a module of flag-free functions and one
entry below.
"""

import json
import os
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from discrete_vi.training import writers
from experiments import comparison
from experiments import digit_identity


class Evaluation(NamedTuple):
  """One evaluation of a finished run.

  Attributes:
    check: `check(config)` raises ValueError, saying why, when the
      evaluation does not apply to a run of `config` (reads the config
      only).
    measure: `measure(run_dir, **settings)` -> the JSON-serialisable result
      of the run in `run_dir` (which it does not write).
    settings: the keyword arguments of `measure`.
    headline: `headline(result)` -> the numbers the tables show, by key
      (`<key>_stderr`: the standard error of `<key>`).
    markdown: `markdown(result)` -> the result as markdown.
    columns: `(key, header, format)` of each headline number, in table
      order.
    note: a sentence for seeds.md on what the columns are.
  """
  check: Callable[[Any], None]
  measure: Callable[..., dict]
  settings: Mapping[str, Any]
  headline: Callable[[dict], dict]
  markdown: Callable[[dict], str]
  columns: Sequence[tuple[str, str, str]]
  note: str


EVALUATIONS = {
    "digit_identity": Evaluation(
        check=digit_identity.check_config,
        measure=digit_identity.run,
        settings={"rows": 100, "seed": 0, "k": 5, "num_shuffles": 1000},
        headline=digit_identity.headline,
        markdown=digit_identity.markdown,
        columns=(("digit_purity", "digit purity", "{:.3f}"),
                 ("shuffled_purity", "shuffled purity", "{:.3f}"),
                 ("purity_p_value", "purity p-value", "{:.4f}")),
        note=("digit purity: the mean over 100 rows of samples (one global "
              "sample each) of the share of a row's samples that carry its "
              "majority 5-NN mnist5k label; shuffled purity: the same of "
              "rows shuffled across global samples (1000 shuffles); purity "
              "p-value: the permutation test of the two "
              "(`experiments/digit_identity.py`; each run's "
              "digit_identity.md has the details).")),
}


def parse_names(names: Sequence[str]) -> list[str]:
  """The evaluations of `--evaluations` (its comma-separated items).

  Raises:
    ValueError: naming an unknown or repeated evaluation.
  """
  out = []
  for name in names:
    if name not in EVALUATIONS:
      raise ValueError(f"--evaluations: unknown evaluation {name!r}; "
                       f"known: {', '.join(sorted(EVALUATIONS))}.")
    if name in out:
      raise ValueError(f"--evaluations: {name!r} is repeated.")
    out.append(name)
  return out


def check(names: Sequence[str], config) -> None:
  """Raises ValueError when an evaluation of `names` does not apply to a
  run of `config`."""
  for name in names:
    EVALUATIONS[name].check(config)


def columns(names: Sequence[str]) -> list[comparison.Column]:
  """The table columns of the evaluations `names` (their headline numbers
  in a `comparison.summarise` dict's `evaluations`)."""
  out = []
  for name in names:
    for key, header, fmt in EVALUATIONS[name].columns:
      out.append(comparison.Column(
          header, fmt, lambda s, key=key: s["evaluations"].get(key),
          lambda s, key=key: s["evaluations"].get(f"{key}_stderr")))
  return out


def evaluate(name: str, run_dir: str) -> dict:
  """Evaluation `name` of the finished run in `run_dir`: measured and
  written to `<run_dir>/<name>.json` (with the run's results.json and the
  settings it was measured at) and `<name>.md`, or read back from there
  when both are unchanged.

  Returns:
    Its headline numbers.
  """
  evaluation = EVALUATIONS[name]
  results = writers.read_json(os.path.join(run_dir, "results.json"))
  settings = dict(evaluation.settings)
  path = os.path.join(run_dir, f"{name}.json")
  saved = writers.read_json(path)
  if (saved is not None and saved["run_results"] == results
      and saved["settings"] == settings):
    return evaluation.headline(saved["result"])
  result = evaluation.measure(run_dir, **settings)
  with open(path, "w") as fh:
    json.dump({"run_results": results, "settings": settings,
               "result": result}, fh, indent=1)
  with open(os.path.join(run_dir, f"{name}.md"), "w") as fh:
    fh.write(evaluation.markdown(result))
  return evaluation.headline(result)
