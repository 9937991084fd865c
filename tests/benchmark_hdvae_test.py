"""Smoke test of the `hdvae` benchmark at tiny size (no timing)."""

import pytest

from discrete_vi import data as data_lib
from experiments.benchmarks import hdvae


@pytest.mark.slow
def test_memory_table_at_tiny_size():
  dataset = data_lib.load_dataset("mnist5k")
  results = hdvae.measure_rows(dataset, layers=2, units=2, classes=4,
                               batch=4, filters=4, time_steps=False)
  assert set(results) == {row for row, *_ in hdvae.ROWS}
  for r in results.values():
    memory = r["memory"]
    if "temp" in memory:
      assert memory["peak"] == (memory["temp"] + memory["argument"] +
                                memory["output"] - memory["alias"]) > 0
      # The new state reuses the donated one's buffers.
      assert memory["alias"] > 0
    assert r["parameters"] > 0
  assert "layers=2" in results["discrete"]["description"]
  lines = hdvae.table(results)
  assert lines[0].startswith("| |") and len(lines) == 8
  assert lines[0].count("|") == lines[-1].count("|") == 2 * len(hdvae.ROWS) + 1
