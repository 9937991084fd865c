"""Piecewise-linear schedules of annealed estimator options."""

import numpy as np
import pytest

from configs import common
from discrete_vi.training import estimator_spec
from discrete_vi.training import schedules

HDVAE_KNOTS = ((0, 0.8), (200_000, 0.3), (400_000, 0.1))


def test_piecewise_linear_interpolates_and_holds():
  values = [schedules.piecewise_linear(s, HDVAE_KNOTS)
            for s in (0, 100_000, 200_000, 300_000, 400_000, 10**6)]
  np.testing.assert_allclose(values, [0.8, 0.55, 0.3, 0.2, 0.1, 0.1],
                             rtol=1e-6)
  assert schedules.piecewise_linear(7, ((0, 0.5),)) == 0.5


@pytest.mark.parametrize("knots,message", [
    (((1, 0.8),), "step 0"), (((0, 0.8), (0, 0.3)), "increase"),
    ((), "step 0"), (((0, "a"),), "pairs"), (((0, float("nan")),), "tau")])
def test_bad_knots_fail_naming_the_field(knots, message):
  with pytest.raises(ValueError, match="tau"):
    schedules.check_knots("tau", knots)
  with pytest.raises(ValueError, match=message):
    schedules.check_knots("tau", knots)


def _config(**estimator):
  config = common.base_config()
  config.train.num_steps = 1000
  config.estimator.name = "gumbel_softmax"
  config.estimator.distribution = "categorical"
  for k, v in estimator.items():
    config.estimator[k] = v
  return config


def test_resolved_knots_drive_the_temperature():
  spec = estimator_spec.resolve(_config(temperature_knots=HDVAE_KNOTS))
  assert spec.annealed["temperature"] == HDVAE_KNOTS
  np.testing.assert_allclose(
      float(spec.at(300_000).options["temperature"]), 0.2, rtol=1e-6)


def test_fraction_knots_scale_with_the_run_length():
  spec = estimator_spec.resolve(_config(
      temperature_knots=((0, 0.8), (0.5, 0.3), (1.0, 0.1)),
      knots_as_fractions=True))
  assert spec.annealed["temperature"] == ((0, 0.8), (500, 0.3), (1000, 0.1))


def test_preferred_knots_apply_only_to_their_estimator():
  config = _config()
  config.estimator_defaults.gumbel_softmax = {
      "temperature_knots": HDVAE_KNOTS}
  assert estimator_spec.resolve(config).annealed["temperature"] == HDVAE_KNOTS
  config.estimator.name = "rloo"  # no temperature: the preference is unused
  assert estimator_spec.resolve(config).annealed == {}


def test_linear_anneal_is_two_knots():
  spec = estimator_spec.resolve(_config(temperature=1.0, temperature_end=0.5,
                                        anneal_steps=10))
  assert spec.annealed["temperature"] == ((0, 1.0), (10, 0.5))
  np.testing.assert_allclose(float(spec.at(5).options["temperature"]), 0.75)


@pytest.mark.parametrize("estimator,field", [
    ({"temperature_knots": HDVAE_KNOTS, "temperature": 1.0},
     "config.estimator.temperature_knots"),
    ({"temperature_knots": ((0, 0.8), (1, -0.1))}, "temperature"),
    ({"temperature_knots": ((0, 0.8), (2.0, 0.1)),
      "knots_as_fractions": True}, "config.estimator.temperature_knots"),
])
def test_bad_schedules_fail_naming_the_field(estimator, field):
  with pytest.raises(ValueError, match=field):
    estimator_spec.resolve(_config(**estimator))


def test_knots_on_estimator_without_the_option_fail():
  config = _config(temperature_knots=HDVAE_KNOTS)
  config.estimator.name = "rloo"
  with pytest.raises(ValueError, match="temperature_knots"):
    estimator_spec.resolve(config)
