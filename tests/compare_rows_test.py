"""The generic row comparison: rows of a config file trained and tabulated."""

import os

from experiments import compare_rows


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
