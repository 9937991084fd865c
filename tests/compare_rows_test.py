"""The generic row comparison: rows of a config file trained and tabulated."""

import json
import os
import re
import shlex
import shutil
import subprocess

from absl import app
from absl import flags
import numpy as np
import pytest

from experiments import compare_rows
from experiments import comparison


def test_rows_of_a_config_file_train_and_tabulate(tmp_path):
  # `run` is the launcher without its flags.
  table = compare_rows.run("configs/test.py", "disarm", str(tmp_path),
                           time_budget_s=60.0, max_steps=2,
                           eval_every_steps=2, variance_draws=2)
  lines = table.strip().splitlines()
  assert len(lines) == 3 and lines[2].split("|")[1].strip() == "disarm"
  assert lines[2].split("|")[-5].strip() == "2"  # steps
  assert float(lines[2].split("|")[-2]) > 0  # gradient variance
  for name in ("comparison.md", "comparison.png", "samples.png",
               "disarm/results.json"):
    assert os.path.exists(tmp_path / name)


def test_further_numbers_become_columns_with_their_standard_errors(tmp_path):
  def row(name, test, **results):
    return {"estimator": name, "test": test, "best_valid": test,
            "wall_time_s": 1.0, "steps_per_s": 2.0, "grad_variance": 0.5,
            "results": {"test_log_likelihood": test, "num_steps": 3,
                        **results}}
  rows = [row("a", -90.0, test_log_z=1.5, test_log_z_stderr=0.25,
              test_log_z_method="ais"),
          row("b", -80.0, test_kl=4.0)]
  table = compare_rows.write_table(rows, str(tmp_path / "comparison.md"))
  header, _, first, second = table.strip().splitlines()
  assert [c.strip() for c in header.split("|")[1:-1]] == [
      "row", "test bound", "best valid bound", "test_log_z", "test_kl",
      "steps", "wall time (s)", "steps/s", "grad variance"]
  assert first.startswith("| b | -80.00 |") and "| 4.00 |" in first
  assert "| 1.50 ± 0.25 |" in second
  assert open(tmp_path / "comparison.md").read() == table


def test_unmeasured_gradient_variance_is_not_a_column(tmp_path):
  row = {"estimator": "a", "test": -90.0, "best_valid": -91.0,
         "wall_time_s": 1.0, "steps_per_s": 2.0,
         "grad_variance": float("nan"),
         "results": {"test_log_likelihood": -90.0, "num_steps": 3}}
  table = compare_rows.write_table([row], str(tmp_path / "comparison.md"))
  header, _, line = table.strip().splitlines()
  assert header.split("|")[-2].strip() == "steps/s"
  assert "nan" not in line and line.split("|")[-2].strip() == "2.0"


def test_kl_curves_gather_every_kl_term_but_the_weights(tmp_path):
  from experiments import comparison  # pylint: disable=g-import-not-at-top
  records = [{"step": 100, "diag/kl_local_1": 2.0, "diag/kl_local_0": 1.0,
              "diag/kl_global_without_log_z": -3.0, "diag/kl_weight": 0.1,
              "diag/kl_balance_min": 0.5, "train_objective": -90.0},
             {"step": 150, "valid_log_likelihood": -95.0},
             {"step": 200, "diag/kl_local_0": 3.0, "diag/kl_local_1": 4.0,
              "diag/kl_global_without_log_z": -2.0}]
  curves = comparison.kl_curves(records)
  assert list(curves) == ["kl_global_without_log_z", "kl_local_0",
                          "kl_local_1"]
  assert curves["kl_local_0"] == ([100, 200], [1.0, 3.0])
  assert curves["kl_local_1"] == ([100, 200], [2.0, 4.0])
  assert curves["kl_global_without_log_z"] == ([100, 200], [-3.0, -2.0])
  path = tmp_path / "kl.png"
  without = {"estimator": "sbn", "records": records[1:2]}
  assert not comparison.plot_kls([without], str(path))
  assert not path.exists()  # no KL terms: no figure
  assert comparison.plot_kls([without, {"estimator": "conv",
                                        "records": records}], str(path))
  assert path.exists()


# -- several seeds at equal steps ----------------------------------------------


SEEDS = [0, 1]
COMMAND = "python -m experiments.compare_rows --seeds=0,1 (test)"


def _run_seeds(workdir, **kwargs):
  return compare_rows.run_seeds(
      "configs/test.py", "disarm", str(workdir), seeds=SEEDS, max_steps=4,
      eval_every_steps=2, command=COMMAND, **kwargs)


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
  """One tiny row x two seeds, 4 steps each: (workdir, results prefix,
  seeds.md)."""
  workdir = tmp_path_factory.mktemp("seeds")
  prefix = str(workdir / "published" / "seeds_test")
  return workdir, prefix, _run_seeds(workdir, results=prefix)


def _cells(line: str) -> list[str]:
  return [c.strip() for c in line.split("|")[1:-1]]


def _table(text: str, first: str) -> list[list[str]]:
  """The cells of the markdown table whose header starts with `first`."""
  lines = text.splitlines()
  start = [i for i, l in enumerate(lines) if l.startswith(f"| {first} |")][0]
  rows = []
  for line in lines[start:]:
    if not line.startswith("|"):
      break
    rows.append(_cells(line))
  return [rows[0]] + rows[2:]  # without the |---| line


def _results(workdir, seed) -> dict:
  with open(workdir / "disarm" / f"seed_{seed}" / "results.json") as fh:
    return json.load(fh)


def test_seeds_train_one_full_run_per_seed_at_equal_steps(seeds_run):
  workdir, prefix, _ = seeds_run
  for seed in SEEDS:
    run_dir = workdir / "disarm" / f"seed_{seed}"
    for name in ("results.json", "metrics.jsonl", "best.json", "samples.png"):
      assert (run_dir / name).exists(), (run_dir, name)
    with open(run_dir / "config.json") as fh:
      config = json.load(fh)
    assert config["seed"] == seed and config["train"]["num_steps"] == 4
    assert config["train"]["time_budget_s"] is None
    assert _results(workdir, seed)["num_steps"] == 4
  # Different seeds, different runs.
  assert (_results(workdir, 0)["test_log_likelihood"]
          != _results(workdir, 1)["test_log_likelihood"])
  for path in (workdir / "seeds.md", workdir / "seeds.png",
               prefix + ".md", prefix + ".png"):
    assert os.path.exists(path)
  assert not (workdir / "comparison.md").exists()


def test_seeds_table_is_mean_and_standard_error_of_the_runs(seeds_run):
  workdir, _, text = seeds_run
  tests = [_results(workdir, s)["test_log_likelihood"] for s in SEEDS]
  rates = []
  for seed in SEEDS:
    with open(workdir / "disarm" / f"seed_{seed}" / "metrics.jsonl") as fh:
      records = [json.loads(line) for line in fh if line.strip()]
    rates.append([r["steps_per_s"] for r in records if "steps_per_s" in r][-1])
  header, line = _table(text, "row")
  # The tiny SBN reports no KL or chain gap: no such columns.
  assert header == ["row", "n", "test bound", "steps/s"]
  mean, se = np.mean(tests), np.std(tests, ddof=1) / np.sqrt(2)
  assert line == ["disarm", "2", f"{mean:.2f} ± {se:.2f}",
                  f"{np.mean(rates):.1f} ± "
                  f"{np.std(rates, ddof=1) / np.sqrt(2):.1f}"]
  per_seed = _table(text, "row | seed")
  assert per_seed[0] == ["row", "seed", "test bound", "steps/s"]
  assert [r[:3] for r in per_seed[1:]] == [
      ["disarm", str(s), f"{t:.2f}"] for s, t in zip(SEEDS, tests)]
  assert f"Made by `{COMMAND}` at commit `" in text
  assert "n = 2 seeds (0, 1), 4 training steps per run" in text
  assert "8-sample" in text  # configs/test.py's final_num_samples
  assert text.rstrip().endswith("(seeds.png)")
  assert open(workdir / "seeds.md").read() == text


def test_seeds_results_prefix_gets_the_same_table(seeds_run):
  workdir, prefix, text = seeds_run
  published = open(prefix + ".md").read()
  assert published.rstrip().endswith("(seeds_test.png)")
  assert (published.replace("(seeds_test.png)", "(seeds.png)") == text)


def test_seeds_rerun_skips_finished_runs_and_resumes_the_others(
    seeds_run, monkeypatch, tmp_path):
  workdir = tmp_path / "copy"  # the module's runs stay as they are
  shutil.copytree(seeds_run[0], workdir)
  text = (workdir / "seeds.md").read_text()
  real_train = compare_rows.loop.train_and_evaluate

  def must_not_train(config, run_dir):
    raise AssertionError(f"retrained {run_dir}")

  monkeypatch.setattr(compare_rows.loop, "train_and_evaluate", must_not_train)
  assert _run_seeds(workdir) == text  # every run finished: nothing trained
  # A run whose final evaluation is missing resumes from its checkpoint at
  # step 4: evaluated again, not trained again.
  run_dir = workdir / "disarm" / "seed_1"
  before = _results(workdir, 1)
  metrics = (run_dir / "metrics.jsonl").read_text()
  os.remove(run_dir / "results.json")
  called = []

  def train(config, run_dir):
    called.append(run_dir)
    return real_train(config, run_dir)

  monkeypatch.setattr(compare_rows.loop, "train_and_evaluate", train)
  _run_seeds(workdir)
  assert called == [str(run_dir)]
  assert (run_dir / "metrics.jsonl").read_text() == metrics  # no new steps
  after = _results(workdir, 1)
  assert after["num_steps"] == 4
  assert after["test_log_likelihood"] == pytest.approx(
      before["test_log_likelihood"], abs=1e-4)


def _parse(argv) -> dict:
  flag_values = flags.FlagValues()
  defined = compare_rows.define_flags(flag_values)
  flag_values(["compare_rows", *argv])
  return defined


BASE = ["--config_file=configs/test.py", "--rows=disarm"]


@pytest.mark.parametrize("extra,message", [
    (["--seeds=0,1"], "give --max_steps explicitly"),
    (["--seeds=0,1", "--max_steps=4", "--time_budget_s=10"],
     "--time_budget_s does not apply with --seeds"),
    (["--results=benchmark_results/x"], "give --seeds too"),
    (["--seeds=0,x", "--max_steps=4"], "'x' is not an integer"),
    (["--seeds=0,0", "--max_steps=4"], "seed 0 is repeated"),
    (["--seeds=-1", "--max_steps=4"], "-1 is negative"),
    (["--seeds=", "--max_steps=4"], "--seeds is empty"),
    (["--seeds=0", "--max_steps=4", "--results=out/seeds.md"],
     "must be a path prefix"),
])
def test_bad_seed_flags_fail_before_any_run_dir(extra, message, tmp_path):
  workdir = tmp_path / "runs"
  defined = _parse([*BASE, f"--workdir={workdir}", *extra])
  with pytest.raises(app.UsageError, match=re.escape(message)):
    compare_rows.run_flags(defined)
  assert not workdir.exists()


def test_command_line_reproduces_the_given_flags():
  defined = _parse([*BASE, "--rows=factorial,layers=2;rbm,layers=2",
                    "--workdir=runs/x", "--max_steps=10", "--seeds=0,1,2",
                    "--results=benchmark_results/seeds_x"])
  command = compare_rows.command_line(defined)
  assert command == (
      "python -m experiments.compare_rows --config_file=configs/test.py "
      "--workdir=runs/x --rows='factorial,layers=2;rbm,layers=2' "
      "--max_steps=10 --seeds=0,1,2 --results=benchmark_results/seeds_x")
  again = _parse(shlex.split(command)[3:])
  assert {n: h.value for n, h in again.items()} == {
      n: h.value for n, h in defined.items()}


def test_mean_and_stderr_with_made_up_numbers():
  mean, stderr = comparison.mean_and_stderr([1.0, 2.0, 6.0])
  assert mean == pytest.approx(3.0)
  # sample std sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7), over sqrt(3)
  assert stderr == pytest.approx(np.sqrt(7.0) / np.sqrt(3.0))
  assert comparison.mean_and_stderr([-90.5]) == (-90.5, None)
  for bad in ([], [1.0, float("nan")]):
    with pytest.raises(ValueError):
      comparison.mean_and_stderr(bad)


def test_stat_cell_formats_mean_stderr_and_missing_seeds():
  assert compare_rows.stat_cell([-90.0, -92.0], "{:.2f}") == "-91.00 ± 1.00"
  assert compare_rows.stat_cell([-90.0], "{:.2f}") == "-90.00"
  assert compare_rows.stat_cell([None, float("nan")], "{:.2f}") == ""
  assert (compare_rows.stat_cell([1.0, None, 3.0], "{:.1f}")
          == "2.0 ± 1.0 (n=2)")


def test_seed_curves_average_the_steps_every_seed_evaluated():
  records = [[{"step": 2, "valid_log_likelihood": -10.0},
              {"step": 3, "train_objective": 1.0},
              {"step": 4, "valid_log_likelihood": -8.0}],
             [{"step": 2, "valid_log_likelihood": -12.0},
              {"step": 4, "valid_log_likelihood": -6.0},
              {"step": 6, "valid_log_likelihood": -5.0}]]
  steps, mean, stderr = comparison.seed_curves(records)
  assert steps.tolist() == [2, 4]
  assert mean.tolist() == [-11.0, -7.0]
  assert stderr == pytest.approx([1.0, 1.0])  # std sqrt(2) / sqrt(2)
  steps, mean, stderr = comparison.seed_curves(records[:1])
  assert steps.tolist() == [2, 4] and stderr is None


def _summary(test, *, steps_per_s=2.0, records=(), **results):
  return {"test": test, "steps_per_s": steps_per_s,
          "grad_variance": float("nan"), "eval_num_samples": 8,
          "records": list(records),
          "results": {"test_log_likelihood": test, "num_steps": 4,
                      "best_step": 4, **results}}


def test_optional_columns_appear_only_when_some_row_has_them():
  plain = {"a": [_summary(-90.0), _summary(-92.0)]}
  header = _table("\n".join(compare_rows.seeds_tables(plain, [0, 1])),
                  "row")[0]
  assert header == ["row", "n", "test bound", "steps/s"]
  # A KL in results.json; a chain gap in results.json for one seed and in
  # the best step's validation record for the other.
  runs = {"a": [_summary(-90.0), _summary(-92.0)],
          "rbm": [_summary(-80.0, test_kl=10.0, test_chain_gap=0.5),
                  _summary(-82.0, test_kl=12.0,
                           records=[{"step": 2, "valid_chain_gap": 9.0},
                                    {"step": 4, "valid_chain_gap": 0.25}])]}
  text = "\n".join(compare_rows.seeds_tables(runs, [3, 7]))
  header, a, rbm = _table(text, "row")
  assert header == ["row", "n", "test bound", "test KL", "steps/s",
                    "chain gap"]
  assert a == ["a", "2", "-91.00 ± 1.00", "", "2.0 ± 0.0", ""]
  assert rbm == ["rbm", "2", "-81.00 ± 1.00", "11.00 ± 1.00", "2.0 ± 0.0",
                 "0.375 ± 0.125"]
  per_seed = _table(text, "row | seed")
  assert per_seed[3] == ["rbm", "3", "-80.00", "10.00", "2.0", "0.500"]
  assert per_seed[4] == ["rbm", "7", "-82.00", "12.00", "2.0", "0.250"]


def test_paired_differences_are_per_seed_and_say_when_resolved():
  # Seeds shift both rows alike (a shared data draw): paired, the
  # difference is exact, though each row's own spread is wide.
  runs = {"a": [_summary(-90.0), _summary(-100.0), _summary(-95.0)],
          "b": [_summary(-91.0), _summary(-101.2), _summary(-95.8)],
          "c": [_summary(-89.0), _summary(-102.0), _summary(-96.5)]}
  text = "\n".join(compare_rows.paired_differences(runs))
  rows = {(r[0], r[1]): r[2:] for r in _table(text, "A | B")[1:]}
  diffs = np.array([1.0, 1.2, 0.8])
  se = diffs.std(ddof=1) / np.sqrt(3)
  assert rows[("a", "b")] == ["3", f"+{diffs.mean():.2f} ± {se:.2f}", "yes"]
  assert rows[("a", "c")][0] == "3" and rows[("a", "c")][2] == "no"
  assert set(rows) == {("a", "b"), ("a", "c"), ("b", "c")}
  assert compare_rows.paired_differences({"a": runs["a"]}) == []
  one_seed = {"a": runs["a"][:1], "b": runs["b"][:1]}
  assert compare_rows.paired_differences(one_seed) == []


def test_git_commit_marks_dirty_trees_and_degrades_without_git(
    tmp_path, monkeypatch):
  repo = tmp_path / "repo"
  repo.mkdir()
  git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
  (repo / "code.py").write_text("x = 1\n")
  (repo / "table.md").write_text("old\n")
  subprocess.run([*git, "init", "-q"], check=True)
  subprocess.run([*git, "add", "."], check=True)
  subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
  head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True,
                        capture_output=True, text=True).stdout.strip()
  assert compare_rows.git_commit(str(repo)) == head
  (repo / "table.md").write_text("new\n")  # the table being rewritten
  assert compare_rows.git_commit(str(repo), [str(repo / "table.md")]) == head
  (repo / "code.py").write_text("x = 2\n")
  assert compare_rows.git_commit(str(repo)) == head + "+dirty"
  assert (compare_rows.git_commit(str(tmp_path / "not_a_repo"))
          == "unknown (git unavailable)")

  def no_git(*args, **kwargs):
    raise FileNotFoundError("git")

  monkeypatch.setattr(compare_rows.subprocess, "run", no_git)
  assert compare_rows.git_commit(str(repo)) == "unknown (git unavailable)"
