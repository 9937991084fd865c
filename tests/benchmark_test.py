"""The benchmarks' building blocks run (what they measure is not tested:
tests never time things)."""

import jax
import numpy as np
import pytest

from configs import test as test_config
from discrete_vi import training
from discrete_vi.distributions import rbm
from experiments import benchmark
from experiments import commands as commands_lib
from experiments.benchmarks import compilation
from experiments.benchmarks import dvaepp
from experiments.benchmarks import evaluation
from experiments.benchmarks import measure
from experiments.benchmarks import startup
from experiments.benchmarks import xor_flow


def test_usage_lists_every_benchmark_and_a_bad_name_fails_naming_them(
    capsys):
  benchmark.main(["benchmark", "--help"])
  listed = capsys.readouterr().out
  for name, entry in benchmark.BENCHMARKS.items():
    assert f"  {name} " in listed and entry.output in listed
  with pytest.raises(SystemExit, match="(?s)usage: .*  estimators "):
    benchmark.main(["benchmark"])
  with pytest.raises(SystemExit, match="unknown benchmark 'nope'; choose "
                     "one of " + ", ".join(benchmark.BENCHMARKS)):
    benchmark.main(["benchmark", "nope"])


def test_fused_train_setup_runs_the_configs_steps():
  # `fused_train_setup` is the same code for every config (each family's
  # own training through the loop is tested in its test file).
  config = test_config.get_config("disarm")
  dataset = training.load_data(config)
  fused, state, xs = measure.fused_train_setup(config, dataset, 4)
  n = config.train.steps_per_jit
  assert xs.shape == (n, 4, 784)
  state, metrics = fused(state, xs)
  assert int(state.step) == n
  assert np.all(np.isfinite(jax.device_get(metrics["loss"])))


def test_memory_reads_xla_buffers_and_the_process_rss():
  compiled = jax.jit(lambda x: (x * 2).sum()).lower(
      jax.numpy.ones((64, 64))).compile()
  mem = measure.memory(compiled)
  assert mem["rss_peak"] > 2**20
  if "temp" in mem:  # absent on a backend without the analysis
    assert mem["argument"] == 64 * 64 * 4
    assert mem["peak"] == (mem["temp"] + mem["argument"] + mem["output"] -
                           mem["alias"])
  assert set(measure.memory()) == {"rss_peak"}


def test_header_names_the_command_commit_and_machine():
  text = measure.header("python -m experiments.benchmark x", "out.md")
  assert text.startswith("Made by `python -m experiments.benchmark x` at "
                         "commit `")
  assert "CPUs" in text and "load average" in text


def test_sampler_benchmark_draws_with_both_samplers():
  for incremental in (True, False):
    assert xor_flow.sampler_seconds(8, incremental) > 0


@pytest.mark.slow  # the RBM prior's three sections at small sizes, ~6 s
def test_dvaepp_benchmark_sections_run_small():
  lines = dvaepp.ais_table(small=(3, 4), big=(4, 4), chains_grid=(8,),
                           temperatures_grid=(5,))
  assert sum(line.startswith("| 8 | 5 |") for line in lines) == 1
  lines = dvaepp.memory_lines(num_chains=8, n1=4, n2=3, num_sweeps=2)
  assert "8 chains of 4 + 3 units" in lines[0]
  # AIS convergence: one row per number of temperatures, then the
  # difference of the means in standard errors, on an RBM whose exact log Z
  # the longer schedule must approach.
  params = dvaepp.random_rbm(jax.random.PRNGKey(3), 3, 4, 2.0)
  lines = dvaepp.ais_convergence(params, temperatures=(2, 200),
                                 num_chains=64, repeats=2)
  rows = [line.split("|") for line in lines if line.startswith("| 2")]
  assert [row[1].strip() for row in rows] == ["2", "200"]
  exact = float(rbm.exact_log_z(params))
  assert abs(float(rows[1][2]) - exact) < 0.1
  assert lines[-1].startswith("200 minus 2 temperatures:")


@pytest.mark.slow  # four model compilations, ~20 s
def test_dvaepp_step_table_runs_small():
  dataset = training.load_data(test_config.get_config())
  lines = dvaepp.step_table(dataset, chain_grid=((4, 1),), batch=4)
  assert lines[-1].startswith("| 4 x 1 |") and lines[-1].count("|") == 9


def test_estimator_benchmark_covers_every_binary_estimator():
  from discrete_vi import estimators  # pylint: disable=g-import-not-at-top
  from experiments.benchmarks import estimators as benchmark_estimators  # pylint: disable=g-import-not-at-top
  names = {e.name for e in benchmark_estimators.entries()}
  assert names == {n for n, ds in estimators.DISTRIBUTIONS.items()
                   if "bernoulli" in ds}


# A benchmark's smoke run (a run of the loop, ~5 s): `-m slow`.
@pytest.mark.slow
def test_compile_benchmark_charges_each_program_to_its_phase():
  config = test_config.get_config()
  config.eval.num_samples, config.eval.final_num_samples = 4, 8
  config.eval.chunk_size, config.eval.batch_size = 4, 8
  config.eval.num_image_samples = 4
  with compilation.compile_log() as events:
    pass
  assert events == []
  run_programs, wall = compilation.measure_run(compilation.shrink(config),
                                              small_seconds=0.0)
  phases = {p.phase for p in run_programs}
  assert {"init", "train step", "validation",
          "final evaluation"} <= phases, phases
  named = {(p.phase, p.name) for p in run_programs}
  assert ("train step", "train_steps") in named
  assert wall > 0
  lines = compilation.table("test", "", run_programs, wall)
  assert lines[0] == "### `configs/test.py:`" and len(lines) == 6 + len(
      run_programs)



def test_evaluation_benchmark_reports_each_row_against_its_twin():
  rows = (evaluation.Row("test", "reinforce"),
          evaluation.Row("test", "disarm", "reinforce"))
  results = evaluation.measure_family(rows, chunks=1, time_calls=False)
  assert results["disarm"]["settings"] == "250 x 4 (4 per chunk)"
  lines = evaluation.table_lines("SBN", rows, results)
  assert [line.split(" | ")[4] for line in lines] == ["", "reinforce"]
  assert all(line.count("|") == evaluation.HEADER[0].count("|")
             for line in lines)
  for family in evaluation.FAMILIES.values():
    args = {row.arg for row in family}
    assert all(row.twin in args for row in family if row.twin)
  with pytest.raises(ValueError, match="unknown family 'nope'"):
    evaluation.report("nope")


@pytest.mark.slow  # one tiny training run, ~10 s
def test_dvaepp_ais_benchmark_restores_a_finished_runs_rbm(tmp_path):
  from configs import dvaepp as dvaepp_config  # pylint: disable=g-import-not-at-top
  config = dvaepp_config.get_config(dvaepp.AIS_CONVERGENCE_ROW)
  config.model.rbm.gibbs_chains, config.model.rbm.gibbs_sweeps = 4, 1
  config.model.rbm.ais_num_chains = 4
  config.model.rbm.ais_num_temperatures = 2
  config.train.num_steps = config.train.steps_per_jit = 1
  config.eval.every_steps = 1
  config.eval.num_samples = config.eval.final_num_samples = 2
  config.eval.chunk_size, config.eval.max_examples = 2, 4
  config.eval.num_image_samples = 0
  training.train_and_evaluate(config, str(tmp_path))
  params = dvaepp.trained_rbm(str(tmp_path))  # restored, not trained again
  assert params.w.shape == (config.model.num_latents,) * 2


@pytest.mark.slow  # every categorical estimator compiled twice, ~30 s
def test_categorical_benchmark_runs_small(monkeypatch):
  """The report at a tiny memory layer (N = 3, K = 4) and few draws: one
  line per entry, unbiased estimators near the exact gradient on (a), the
  support-limited ones marked n/a on (b)."""
  from experiments.benchmarks import categorical  # pylint: disable=g-import-not-at-top
  for name, value in (("N", 3), ("K", 4), ("BATCH", 2), ("HIDDEN", 8),
                      ("SMALL_DRAWS", 4000), ("LAYER_DRAWS", 3),
                      ("WARMUP_STEPS", 2)):
    monkeypatch.setattr(categorical, name, value)
  monkeypatch.setattr(categorical.binary, "TIMING_REPEATS", 1)
  monkeypatch.setattr(categorical.binary, "TIMING_CALLS", 1)
  text = categorical.report()
  rows = {line.split("|")[1].strip(): line.split("|")[2:-1]
          for line in text.splitlines() if line.startswith("| ")}
  assert set(rows) >= {e.label for e in categorical.entries()}
  for label in ("reinforce", "rloo[K=4]", "rebar", "relax", "indecater[M=1]",
                "unordered_set[k=4]"):
    assert float(rows[label][1]) < 5.0, (label, rows[label])
  assert "n/a" in rows["indecater[M=1]"][3]


def test_categorical_benchmark_covers_every_categorical_estimator():
  """Every registry entry that takes categorical variables, but VIMCO (its
  gradient is that of the K-sample bound log mean exp f, not of E[f])."""
  from discrete_vi import estimators  # pylint: disable=g-import-not-at-top
  from experiments.benchmarks import categorical  # pylint: disable=g-import-not-at-top
  names = {e.name for e in categorical.entries()}
  assert names == {n for n, ds in estimators.DISTRIBUTIONS.items()
                   if "categorical" in ds} - {"vimco"}


def test_startup_benchmark_takes_the_first_main_command_of_each_config():
  found = startup.main_commands()
  files = [commands_lib.config_file(c.args) for c in found]
  assert len(files) == len(set(files)) >= 5, files
  # The README's main command, its install before `&&` dropped.
  assert found[0].text.startswith(
      "python -m experiments.main --config=configs/sbn.py:linear"), found[0]
  everything = startup.main_commands(everything=True)
  assert len(everything) > len(found)
  # Environment settings are kept apart from the arguments.
  assert any("XLA_FLAGS" in c.settings and c.text.startswith("XLA_FLAGS=")
             for c in everything)


def test_main_command_splits_settings_install_and_arguments():
  line = "A=1 B=x python -m experiments.main --config=configs/t.py:r --w=2"
  assert commands_lib.main_command(line) == (
      {"A": "1", "B": "x"}, ["--config=configs/t.py:r", "--w=2"])
  assert commands_lib.main_command(
      "pip install -e . && python -m experiments.main --config=c/x.py") == (
          {}, ["--config=c/x.py"])
  assert commands_lib.main_command("python -m experiments.compare --x") is None
  assert commands_lib.main_command(
      "prose naming python -m experiments.main, it's not a command") is None
  assert commands_lib.config_file(["--seed=1", "--config=configs/a.py:b"]) == (
      "a.py")


def _test_command(*extra):
  return startup.Command("test", {}, ["--config=configs/test.py", *extra,
                                      "--workdir=/nonexistent/never_used"])


def test_startup_benchmark_stops_a_run_at_its_first_train_call(tmp_path):
  seconds = startup.time_to_first_step(
      _test_command(), str(tmp_path / "cache"), str(tmp_path / "run"))
  assert 0 < seconds < startup.TIMEOUT_S
  # Stopped after the first call of train steps: no final evaluation.
  assert (tmp_path / "run").is_dir()
  assert not (tmp_path / "run" / "results.json").exists()


def test_startup_benchmark_names_a_run_that_ends_early(tmp_path):
  with pytest.raises(RuntimeError, match="before its first train step"):
    startup.time_to_first_step(
        _test_command("--config.train.batch_size=-3"), str(tmp_path / "c"),
        str(tmp_path / "r"))


# The report end to end (two runs of a tiny command, ~8 s): `-m slow`.
@pytest.mark.slow
def test_startup_report_times_each_command_cold_then_warm(monkeypatch):
  monkeypatch.setattr(startup, "main_commands",
                      lambda everything=False: [_test_command()])
  report = startup.report()
  row = [line for line in report.splitlines() if line.startswith("| `test`")]
  cold, warm, ratio = (float(v) for v in row[0].strip("|").split("|")[1:])
  assert cold > 0 and warm > 0 and abs(ratio - warm / cold) < 0.05, row
  with pytest.raises(SystemExit, match="unknown arguments"):
    startup.report("everything")
