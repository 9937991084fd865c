"""The comparison launcher: rows of a config file, crossed with estimators,
trained once or over seeds, tabulated with their evaluations."""

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

from configs import dvaepp as dvaepp_config
from configs import sbn as sbn_config
from discrete_vi.training import validation
from experiments import compare
from experiments import comparison
from experiments import evaluations


def _parse(argv) -> dict:
  """The launcher's flags after parsing `argv` as its command line."""
  flag_values = flags.FlagValues()
  defined = compare.define_flags(flag_values)
  flag_values(["compare", *argv])
  return defined


def _plan(*argv, workdir="runs/x") -> compare.Plan:
  return compare.plan_command(_parse([*argv, f"--workdir={workdir}"]))


def _run(*argv, workdir) -> str:
  return compare.execute(_plan(*argv, workdir=workdir))


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


def _measure_fake(run_dir: str, *, scale: float) -> dict:
  """A stand-in evaluation: the run's last digit (its seed) times `scale`."""
  digit = float(run_dir.rstrip("/")[-1]) if run_dir[-1].isdigit() else 1.0
  return {"score": scale * digit, "score_stderr": 0.125}


FAKE = evaluations.Evaluation(
    check=lambda config: None, measure=_measure_fake,
    settings={"scale": 0.5}, headline=dict,
    markdown=lambda result: f"score {result['score']}\n",
    columns=(("score", "fake score", "{:.3f}"),),
    note="fake score: a stand-in.")


@pytest.fixture(name="fake_evaluation")
def fake_evaluation_fixture(monkeypatch):
  monkeypatch.setitem(evaluations.EVALUATIONS, "fake", FAKE)


# -- one run per row --------------------------------------------------------------


def test_rows_train_and_tabulate_with_their_evaluations(tmp_path,
                                                        fake_evaluation):
  del fake_evaluation  # registered
  # The default row of configs/test.py crossed with one estimator: the row
  # is labelled by the estimator alone.
  table = _run("--config=configs/test.py", "--estimators=disarm",
               "--steps=2", "--eval_every_steps=2", "--variance_draws=2",
               "--evaluations=fake", workdir=tmp_path)
  header, line = _table(table, "row")
  assert header == ["row", "test bound", "best valid bound", "fake score",
                    "steps", "wall time (s)", "steps/s", "grad variance",
                    "train grad variance", "train grad SNR"]
  assert line[0] == "disarm" and line[3] == "0.500 ± 0.125"
  assert line[4] == "2"  # steps
  # The final checkpoint's gradient variance (2 draws), and the
  # training-time diagnostics at step 2 (the config's 16 draws).
  assert all(float(v) > 0 for v in line[-3:])
  for name in ("comparison.md", "comparison.png", "samples.png",
               "disarm/results.json", "disarm/fake.json", "disarm/fake.md"):
    assert os.path.exists(tmp_path / name), name
  with open(tmp_path / "disarm" / "config.json") as fh:
    config = json.load(fh)
  assert config["estimator"]["name"] == "disarm"
  assert config["train"]["num_steps"] == 2
  assert config["train"]["time_budget_s"] is None


def _summary(label, test, **results):
  return {"label": label, "test": test, "best_valid": test,
          "wall_time_s": 1.0, "steps_per_s": 2.0, "grad_variance": 0.5,
          "eval_num_samples": 8, "records": [], "evaluations": {},
          "results": {"test_log_likelihood": test, "num_steps": 3,
                      **results}}


def test_further_numbers_become_columns_with_their_standard_errors(tmp_path):
  rows = [_summary("a", -90.0, test_log_z=1.5, test_log_z_stderr=0.25,
                   test_log_z_method="ais"),
          _summary("b", -80.0, test_kl=4.0)]
  lines = comparison.comparison_table(rows)
  text = comparison.write_markdown(lines, str(tmp_path / "comparison.md"))
  header, _, first, second = text.strip().splitlines()
  assert _cells(header) == [
      "row", "test bound", "best valid bound", "test_log_z", "test_kl",
      "steps", "wall time (s)", "steps/s", "grad variance"]
  assert first.startswith("| b | -80.00 |") and "| 4.00 |" in first
  assert "| 1.50 ± 0.25 |" in second
  assert open(tmp_path / "comparison.md").read() == text


def test_flow_numbers_are_ordinary_columns():
  # The XOR flows' greedy-flow NLL and arg max-of-q score: results numbers
  # like any other.
  row = _summary("sfe_full", -217.5, test_greedy_log_likelihood=-184.1,
                 test_greedy_log_likelihood_stderr=0.5,
                 test_greedy_posterior_score=-93.1)
  header, _, line = comparison.comparison_table([row])
  assert _cells(header)[3:5] == ["test_greedy_log_likelihood",
                                 "test_greedy_posterior_score"]
  assert _cells(line)[3:5] == ["-184.10 ± 0.50", "-93.10"]


def test_unmeasured_gradient_variance_is_not_a_column():
  row = _summary("a", -90.0)
  row["grad_variance"] = float("nan")
  header, _, line = comparison.comparison_table([row])
  assert _cells(header)[-1] == "steps/s"
  assert "nan" not in line and _cells(line)[-1] == "2.0"


def test_kl_curves_gather_every_kl_term_but_the_weights(tmp_path):
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
  without = {"label": "sbn", "records": records[1:2]}
  assert not comparison.plot_kls([without], str(path))
  assert not path.exists()  # no KL terms: no figure
  assert comparison.plot_kls([without, {"label": "conv",
                                        "records": records}], str(path))
  assert path.exists()


# -- rows, estimators and budgets -------------------------------------------------


def _configs(plan) -> dict:
  return {label: [r.config for r in runs] for label, runs in plan.runs.items()}


def test_estimators_cross_every_row():
  plan = _plan("--config=configs/sbn.py", "--rows=linear;nonlinear",
               "--estimators=disarm,gumbel_softmax")
  assert list(plan.runs) == ["linear+disarm", "linear+gumbel_softmax",
                             "nonlinear+disarm", "nonlinear+gumbel_softmax"]
  run = plan.runs["nonlinear+gumbel_softmax"][0]
  assert run.run_dir == os.path.join("runs/x", "nonlinear+gumbel_softmax")
  assert run.config.estimator.name == "gumbel_softmax"
  assert run.config.model.architecture == "nonlinear"
  assert run.seed is None and run.config.seed == 0


def test_crossing_unsets_the_options_an_estimator_does_not_take():
  base = sbn_config.get_config("linear")
  base.estimator.baseline = "self_critic"  # set for reinforce only
  dropped = compare.estimator_config(base, "disarm")
  assert dropped.estimator.name == "disarm"
  assert dropped.estimator.baseline is None
  validation.validate_config(dropped)
  assert compare.estimator_config(
      base, "reinforce").estimator.baseline == "self_critic"
  assert base.estimator.name == "reinforce"  # the base is unchanged
  base.estimator.beta, base.estimator.beta_end = 2.0, 4.0
  assert compare.estimator_config(
      base, "overlapping_exponential").estimator.beta == 2.0
  dropped = compare.estimator_config(base, "disarm")
  assert dropped.estimator.beta is None
  assert dropped.estimator.beta_end == 4.0  # a schedule field stays


def test_default_row_is_the_config_files_default():
  plan = _plan("--config=configs/sbn.py")
  (label, [run]), = plan.runs.items()
  assert label == "default"
  assert run.run_dir == os.path.join("runs/x", "default")
  assert run.config.to_dict() == compare.budget_config(
      sbn_config.get_config(None), steps=None, time_budget_s=None,
      eval_every_steps=1000).to_dict()
  crossed = _plan("--config=configs/sbn.py", "--estimators=rloo,disarm")
  assert list(crossed.runs) == ["rloo", "disarm"]
  assert crossed.runs["rloo"][0].run_dir == os.path.join("runs/x", "rloo")


@pytest.mark.parametrize("argv,num_steps,budget", [
    ((), 6, None),  # configs/test.py's own protocol
    (("--steps=3",), 3, None),
    (("--time_budget_s=5",), 6, 5.0),  # under the config's own steps
    (("--steps=3", "--time_budget_s=5"), 3, 5.0),
])
def test_budget_flags(argv, num_steps, budget):
  plan = _plan("--config=configs/test.py", "--eval_every_steps=2", *argv)
  config = plan.runs["default"][0].config
  assert config.train.num_steps == num_steps
  assert config.train.time_budget_s == budget
  assert config.train.checkpoint_every_steps == config.eval.every_steps == 2
  assert config.diagnostics.every_steps == 2  # on, at every validation


def test_seed_configs_and_directories_are_those_of_existing_workdirs():
  # Finished multi-seed runs are recognised by config.json equality (but
  # for the diagnostics, which change nothing): the configs stay the row's
  # config with exactly these five fields set, and diagnostics on.
  plan = _plan("--config=configs/dvaepp.py",
               "--rows=rbm,layers=2;factorial,layers=2", "--seeds=0,2",
               "--steps=10000", "--eval_every_steps=1000",
               workdir="runs/seeds_dvaepp")
  for row in ("rbm,layers=2", "factorial,layers=2"):
    for seed, run in zip((0, 2), plan.runs[row]):
      expected = dvaepp_config.get_config(row)
      expected.train.num_steps = 10000
      expected.train.time_budget_s = None
      expected.train.checkpoint_every_steps = 1000
      expected.eval.every_steps = 1000
      expected.seed = seed
      expected.diagnostics.every_steps = 1000
      assert run.config.to_dict() == expected.to_dict()
      assert run.run_dir == os.path.join(
          "runs/seeds_dvaepp", row.replace(",", "_").replace("=", "-"),
          f"seed_{seed}")


# -- bad values --------------------------------------------------------------------


BASE = ["--config=configs/test.py", "--rows=disarm"]


@pytest.mark.parametrize("argv,message", [
    ([*BASE, "--seeds=0,1"], "give --steps"),
    ([*BASE, "--seeds=0,1", "--steps=4", "--time_budget_s=10"],
     "--time_budget_s=10 does not apply with --seeds"),
    ([*BASE, "--results=benchmark_results/x"], "give --seeds too"),
    ([*BASE, "--seeds=0,x", "--steps=4"], "'x' is not an integer"),
    ([*BASE, "--seeds=0,0", "--steps=4"], "seed 0 is repeated"),
    ([*BASE, "--seeds=-1", "--steps=4"], "-1 is negative"),
    ([*BASE, "--seeds=", "--steps=4"], "--seeds is empty"),
    ([*BASE, "--seeds=0", "--steps=4", "--results=out/seeds.md"],
     "must be a path prefix"),
    ([*BASE, "--steps=0"], "--steps=0"),
    ([*BASE, "--time_budget_s=-1"], "--time_budget_s=-1"),
    ([*BASE, "--eval_every_steps=0"], "--eval_every_steps=0"),
    ([*BASE, "--variance_draws=1"], "--variance_draws=1"),
    (["--config=configs/sbn.py", "--rows=linear;lineer"], "'lineer'"),
    (["--config=configs/sbn.py", "--rows=linear,depth=2"], "'depth=2'"),
    (["--config=configs/sbn.py", "--rows=;"], "names no row"),
    (["--config=configs/sbn.py:linear"], "--config=configs/sbn.py --rows"),
    (["--config=configs/nothing.py"], "no such config file"),
    (["--config=sbn.py"], "must be a .py file of configs/"),
    (["--config=configs/sbn.py", "--rows=linear;linear"],
     "share the directory 'linear'"),
    ([*BASE, "--estimators=disarm,no_such"], "unknown estimator 'no_such'"),
    ([*BASE, "--estimators=disarm,disarm"], "'disarm' is repeated"),
    (["--config=configs/xor_flow.py", "--rows=sfe_full",
      "--estimators=reinforce,disarm"],
     "row 'sfe_full+disarm': config.estimator.name='disarm'"),
    ([*BASE, "--evaluations=no_such"], "unknown evaluation 'no_such'"),
    ([*BASE, "--evaluations=digit_identity"], "config.model.sample_columns"),
    (["--config=configs/dvaepp_conv.py", "--rows=mixed,data=omniglot",
      "--evaluations=digit_identity"], "config.data.name='omniglot'"),
    ([*BASE, "--config.train.num_steps=3"], "config.train.num_steps"),
])
def test_bad_values_fail_naming_them_before_any_run_dir(argv, message,
                                                        tmp_path):
  workdir = tmp_path / "runs"
  with pytest.raises((app.UsageError, flags.Error), match=re.escape(message)):
    compare.execute(compare.plan_command(
        _parse([*argv, f"--workdir={workdir}"])))
  assert not workdir.exists()


def test_command_line_reproduces_the_given_flags():
  defined = _parse([*BASE, "--rows=factorial,layers=2;rbm,layers=2",
                    "--workdir=runs/x", "--steps=10", "--seeds=0,1,2",
                    "--results=benchmark_results/seeds_x",
                    "--evaluations=digit_identity"])
  command = compare.command_line(defined)
  assert command == (
      "python -m experiments.compare --config=configs/test.py "
      "--workdir=runs/x --rows='factorial,layers=2;rbm,layers=2' "
      "--seeds=0,1,2 --steps=10 --results=benchmark_results/seeds_x "
      "--evaluations=digit_identity")
  again = _parse(shlex.split(command)[3:])
  assert {n: h.value for n, h in again.items()} == {
      n: h.value for n, h in defined.items()}


# -- several seeds at equal steps ----------------------------------------------


SEEDS = [0, 1]
SEEDS_ARGS = ("--config=configs/test.py", "--rows=disarm", "--seeds=0,1",
              "--steps=4", "--eval_every_steps=2")


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
  """One tiny row x two seeds, 4 steps each: (workdir, results prefix,
  seeds.md)."""
  workdir = tmp_path_factory.mktemp("seeds")
  prefix = str(workdir / "published" / "seeds_test")
  return workdir, prefix, _run(*SEEDS_ARGS, f"--results={prefix}",
                               workdir=workdir)


def _without_command(text: str) -> str:
  return "\n".join(l for l in text.splitlines()
                   if not l.startswith("Made by"))


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
  workdir, prefix, text = seeds_run
  tests = [_results(workdir, s)["test_log_likelihood"] for s in SEEDS]
  rates = []
  for seed in SEEDS:
    with open(workdir / "disarm" / f"seed_{seed}" / "metrics.jsonl") as fh:
      records = [json.loads(line) for line in fh if line.strip()]
    rates.append([r["steps_per_s"] for r in records if "steps_per_s" in r][-1])
  header, line = _table(text, "row")
  # The tiny SBN reports no further test numbers: no such columns; the
  # training-time gradient diagnostics are on.
  diagnostics = ["train grad variance", "train grad SNR"]
  assert header == ["row", "n", "test bound", "steps/s", *diagnostics]
  mean, se = np.mean(tests), np.std(tests, ddof=1) / np.sqrt(2)
  assert line[:4] == ["disarm", "2", f"{mean:.2f} ± {se:.2f}",
                      f"{np.mean(rates):.1f} ± "
                      f"{np.std(rates, ddof=1) / np.sqrt(2):.1f}"]
  per_seed = _table(text, "row | seed")
  assert per_seed[0] == ["row", "seed", "test bound", "steps/s",
                         *diagnostics]
  assert [r[:3] for r in per_seed[1:]] == [
      ["disarm", str(s), f"{t:.2f}"] for s, t in zip(SEEDS, tests)]
  command = compare.command_line(_parse(
      [*SEEDS_ARGS, f"--results={prefix}", f"--workdir={workdir}"]))
  assert command.startswith("python -m experiments.compare --config=")
  assert f"Made by `{command}` at commit `" in text
  assert "n = 2 seeds (0, 1), 4 training steps per run" in text
  assert "8-sample" in text  # configs/test.py's final_num_samples
  assert text.rstrip().endswith("(seeds.png)")
  assert open(workdir / "seeds.md").read() == text


def test_seeds_results_prefix_gets_the_same_table(seeds_run):
  _, prefix, text = seeds_run
  published = open(prefix + ".md").read()
  assert published.rstrip().endswith("(seeds_test.png)")
  assert published.replace("(seeds_test.png)", "(seeds.png)") == text


def test_seeds_rerun_skips_finished_runs_and_resumes_the_others(
    seeds_run, monkeypatch, tmp_path):
  workdir = tmp_path / "copy"  # the module's runs stay as they are
  shutil.copytree(seeds_run[0], workdir)
  text = (workdir / "seeds.md").read_text()
  real_train = compare.loop.train_and_evaluate

  def must_not_train(config, run_dir):
    raise AssertionError(f"retrained {run_dir}")

  monkeypatch.setattr(compare.loop, "train_and_evaluate", must_not_train)
  # Every run finished: nothing trained, the same tables.
  assert (_without_command(_run(*SEEDS_ARGS, workdir=workdir))
          == _without_command(text))
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

  monkeypatch.setattr(compare.loop, "train_and_evaluate", train)
  _run(*SEEDS_ARGS, workdir=workdir)
  assert called == [str(run_dir)]
  assert (run_dir / "metrics.jsonl").read_text() == metrics  # no new steps
  after = _results(workdir, 1)
  assert after["num_steps"] == 4
  assert after["test_log_likelihood"] == pytest.approx(
      before["test_log_likelihood"], abs=1e-4)


def test_a_run_of_more_steps_is_not_taken_for_this_one(seeds_run, tmp_path):
  workdir = tmp_path / "copy"
  shutil.copytree(seeds_run[0], workdir)
  args = [a for a in SEEDS_ARGS if not a.startswith("--steps")]
  with pytest.raises(ValueError, match="holds a run of 4 steps, not 2"):
    _run(*args, "--steps=2", workdir=workdir)


def test_evaluations_of_finished_seeds_become_columns(seeds_run, tmp_path,
                                                      fake_evaluation):
  del fake_evaluation  # registered
  workdir = tmp_path / "copy"
  shutil.copytree(seeds_run[0], workdir)
  text = _run(*SEEDS_ARGS, "--evaluations=fake", workdir=workdir)
  header, line = _table(text, "row")
  assert header == ["row", "n", "test bound", "fake score", "steps/s",
                    "train grad variance", "train grad SNR"]
  # Seeds 0 and 1 score 0 and 0.5: mean 0.25, standard error 0.25.
  assert line[3] == "0.250 ± 0.250"
  assert _table(text, "row | seed")[2][3] == "0.500"
  assert "fake score: a stand-in." in text
  saved = json.loads((workdir / "disarm" / "seed_1" / "fake.json").read_text())
  assert saved["result"] == {"score": 0.5, "score_stderr": 0.125}
  assert saved["run_results"] == _results(workdir, 1)
  assert saved["settings"] == {"scale": 0.5}


def test_evaluations_are_measured_once_per_run_and_setting(
    tmp_path, monkeypatch):
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "results.json").write_text(json.dumps({"num_steps": 4}))
  measured = []

  def measure(run_dir, *, scale):
    measured.append(scale)
    return {"score": scale}

  monkeypatch.setitem(evaluations.EVALUATIONS, "fake",
                      FAKE._replace(measure=measure))
  assert evaluations.evaluate("fake", str(run_dir)) == {"score": 0.5}
  assert evaluations.evaluate("fake", str(run_dir)) == {"score": 0.5}
  assert measured == [0.5]  # read back
  assert (run_dir / "fake.md").read_text() == "score 0.5\n"
  monkeypatch.setitem(evaluations.EVALUATIONS, "fake",
                      FAKE._replace(measure=measure, settings={"scale": 2.0}))
  assert evaluations.evaluate("fake", str(run_dir)) == {"score": 2.0}
  (run_dir / "results.json").write_text(json.dumps({"num_steps": 5}))
  evaluations.evaluate("fake", str(run_dir))
  assert measured == [0.5, 2.0, 2.0]  # new settings, then a new run


# -- tables over seeds --------------------------------------------------------------


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
  assert comparison.stat_cell([-90.0, -92.0], "{:.2f}") == "-91.00 ± 1.00"
  assert comparison.stat_cell([-90.0], "{:.2f}") == "-90.00"
  assert comparison.stat_cell([None, float("nan")], "{:.2f}") == ""
  assert (comparison.stat_cell([1.0, None, 3.0], "{:.1f}")
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


def _seed_summary(test, **results):
  summary = _summary("", test, **results)
  summary["grad_variance"] = float("nan")
  return summary


def test_optional_columns_appear_only_when_some_row_has_them(
    fake_evaluation):
  del fake_evaluation  # registered
  plain = {"a": [_seed_summary(-90.0), _seed_summary(-92.0)]}
  header = _table("\n".join(comparison.seeds_tables(plain, [0, 1])),
                  "row")[0]
  assert header == ["row", "n", "test bound", "steps/s"]
  # A KL and a chain gap in results.json, for one row only; an evaluation's
  # number for one seed only.
  runs = {"a": [_seed_summary(-90.0), _seed_summary(-92.0)],
          "rbm": [_seed_summary(-80.0, test_kl=10.0, test_chain_gap=0.5),
                  _seed_summary(-82.0, test_kl=12.0, test_chain_gap=0.25)]}
  runs["rbm"][0]["evaluations"] = {"score": 0.75}
  text = "\n".join(comparison.seeds_tables(runs, [3, 7],
                                           evaluations.columns(["fake"])))
  header, a, rbm = _table(text, "row")
  assert header == ["row", "n", "test bound", "test_kl", "test_chain_gap",
                    "fake score", "steps/s"]
  assert a == ["a", "2", "-91.00 ± 1.00", "", "", "", "2.0 ± 0.0"]
  assert rbm == ["rbm", "2", "-81.00 ± 1.00", "11.00 ± 1.00",
                 "0.38 ± 0.12", "0.750 (n=1)", "2.0 ± 0.0"]
  per_seed = _table(text, "row | seed")
  assert per_seed[3] == ["rbm", "3", "-80.00", "10.00", "0.50", "0.750",
                         "2.0"]
  assert per_seed[4] == ["rbm", "7", "-82.00", "12.00", "0.25", "", "2.0"]


def test_paired_differences_are_per_seed_and_say_when_resolved():
  # Seeds shift both rows alike (a shared data draw): paired, the
  # difference is exact, though each row's own spread is wide.
  runs = {"a": [_seed_summary(-90.0), _seed_summary(-100.0),
                _seed_summary(-95.0)],
          "b": [_seed_summary(-91.0), _seed_summary(-101.2),
                _seed_summary(-95.8)],
          "c": [_seed_summary(-89.0), _seed_summary(-102.0),
                _seed_summary(-96.5)]}
  text = "\n".join(comparison.paired_differences(runs))
  rows = {(r[0], r[1]): r[2:] for r in _table(text, "A | B")[1:]}
  diffs = np.array([1.0, 1.2, 0.8])
  se = diffs.std(ddof=1) / np.sqrt(3)
  assert rows[("a", "b")] == ["3", f"+{diffs.mean():.2f} ± {se:.2f}", "yes"]
  assert rows[("a", "c")][0] == "3" and rows[("a", "c")][2] == "no"
  assert set(rows) == {("a", "b"), ("a", "c"), ("b", "c")}
  assert comparison.paired_differences({"a": runs["a"]}) == []
  one_seed = {"a": runs["a"][:1], "b": runs["b"][:1]}
  assert comparison.paired_differences(one_seed) == []


def test_paired_differences_match_runs_by_their_seed_not_their_position():
  # Row b's runs listed in another order than a's, and b lacks seed 5.
  def seeded(test, seed):
    return dict(_seed_summary(test), seed=seed)
  runs = {"a": [seeded(-90.0, 0), seeded(-100.0, 1), seeded(-95.0, 5)],
          "b": [seeded(-101.0, 1), seeded(-91.0, 0)]}
  text = "\n".join(comparison.paired_differences(runs))
  ((a, b, n, diff, _),) = [r for r in _table(text, "A | B")[1:]]
  assert (a, b, n) == ("a", "b", "2")
  assert diff == "+1.00 ± 0.00", diff  # by position: +10.50 ± 0.50


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
  assert comparison.git_commit(str(repo)) == head
  (repo / "table.md").write_text("new\n")  # the table being rewritten
  assert comparison.git_commit(str(repo), [str(repo / "table.md")]) == head
  (repo / "code.py").write_text("x = 2\n")
  assert comparison.git_commit(str(repo)) == head + "+dirty"
  assert (comparison.git_commit(str(tmp_path / "not_a_repo"))
          == "unknown (git unavailable)")

  def no_git(*args, **kwargs):
    raise FileNotFoundError("git")

  monkeypatch.setattr(comparison.subprocess, "run", no_git)
  assert comparison.git_commit(str(repo)) == "unknown (git unavailable)"
