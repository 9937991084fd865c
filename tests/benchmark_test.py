"""The benchmarks' building blocks run (what they measure is not tested:
tests never time things)."""

import jax
import numpy as np
import pytest

from configs import test as test_config
from configs import xor_flow as xor_flow_config
from discrete_vi import training
from discrete_vi.distributions import rbm
from experiments import benchmark_flows


def _shrunk_xor_config(row):
  config = xor_flow_config.get_config(row)
  config.model.hidden_dims = (8,)
  config.model.posterior_hidden = (8,)
  return config


def test_fused_train_setup_runs_the_configs_steps():
  dataset = training.load_data(test_config.get_config())
  # One dense and one flow config: `fused_train_setup` is the same code for
  # every config (the flows' own training is tested in xor_flow_test).
  for config in (test_config.get_config("disarm"),
                 _shrunk_xor_config("sfe_special,baseline=self_critic")):
    fused, state, xs = benchmark_flows.fused_train_setup(config, dataset, 4, 2)
    assert xs.shape == (2, 4, 784)
    state, metrics = fused(state, xs)
    assert int(state.step) == 2
    assert np.all(np.isfinite(jax.device_get(metrics["loss"])))


def test_sampler_benchmark_draws_with_both_samplers():
  for incremental in (True, False):
    assert benchmark_flows.sampler_seconds(8, incremental) > 0


def test_dvaepp_benchmark_sections_run_small():
  from experiments import benchmark_dvaepp  # pylint: disable=g-import-not-at-top
  lines = benchmark_dvaepp.ais_table(small=(3, 4), big=(4, 4),
                                     chains_grid=(8,), temperatures_grid=(5,))
  assert sum(line.startswith("| 8 | 5 |") for line in lines) == 1
  lines = benchmark_dvaepp.memory_lines(num_chains=8, n1=4, n2=3,
                                        num_sweeps=2)
  assert "8 chains of 4 + 3 units" in lines[0]
  # AIS convergence: one row per number of temperatures, then the
  # difference of the means in standard errors, on an RBM whose exact log Z
  # the longer schedule must approach.
  params = benchmark_dvaepp.random_rbm(jax.random.PRNGKey(3), 3, 4, 2.0)
  lines = benchmark_dvaepp.ais_convergence(params, temperatures=(2, 200),
                                           num_chains=64, repeats=2)
  rows = [line.split("|") for line in lines if line.startswith("| 2")]
  assert [row[1].strip() for row in rows] == ["2", "200"]
  exact = float(rbm.exact_log_z(params))
  assert abs(float(rows[1][2]) - exact) < 0.1
  assert lines[-1].startswith("200 minus 2 temperatures:")


@pytest.mark.slow  # four model compilations, ~20 s
def test_dvaepp_step_table_runs_small():
  from experiments import benchmark_dvaepp  # pylint: disable=g-import-not-at-top
  dataset = training.load_data(test_config.get_config())
  lines = benchmark_dvaepp.step_table(dataset, chain_grid=((4, 1),), batch=4)
  assert lines[-1].startswith("| 4 x 1 |") and lines[-1].count("|") == 9


def test_estimator_benchmark_covers_every_binary_estimator():
  from discrete_vi import estimators  # pylint: disable=g-import-not-at-top
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  names = {e.name for e in benchmark.entries()}
  assert names == {n for n, ds in estimators.DISTRIBUTIONS.items()
                   if "bernoulli" in ds}
