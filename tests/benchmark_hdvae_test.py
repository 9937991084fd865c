"""Smoke test of experiments.benchmark_hdvae at tiny size (no timing)."""

import pytest

from discrete_vi import data as data_lib
from experiments import benchmark_hdvae


@pytest.mark.slow
def test_memory_table_at_tiny_size():
  dataset = data_lib.load_dataset("mnist5k")
  results = benchmark_hdvae.measure(dataset, layers=2, units=2, classes=4,
                                    batch=4, filters=4, time_steps=False)
  assert set(results) == {"discrete", "discrete_st", "normal"}
  for r in results.values():
    memory = r["memory"]
    if memory:
      assert memory["peak"] == (memory["temp"] + memory["argument"] +
                                memory["output"] - memory["alias"]) > 0
      # The new state reuses the donated one's buffers.
      assert memory["alias"] > 0
    assert r["parameters"] > 0
  assert "layers=2" in results["discrete"]["description"]
  lines = benchmark_hdvae.table(results)
  assert lines[0].startswith("| |") and len(lines) == 8
