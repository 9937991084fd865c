"""Table 3's rows of the convolutional DVAE++ (Vahdat et al., 2018, Sec. 6)
at the tiny sizes of `dvaepp_conv_test`: every row trains, the 8-bit model
runs through the training loop, and the training bound applies the KL
balancing rule it documents.

A file of its own so that the test runner's workers share the compilation
of these models with `dvaepp_conv_test` (whole files go to one worker).
"""

import json
import math
import os

import jax
import numpy as np
import pytest

from configs import dvaepp_conv as config_lib
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi.models import dvaepp_conv
from discrete_vi.training import loop
from discrete_vi.training import setup as setup_lib
import dvaepp_conv_test as base

UINT8_SHAPE = (8, 8, 3)


# The default run trains `all_continuous` (with the residual blocks) here
# and `mixed` in dvaepp_conv_test; the rows whose latents those two cover
# run with `-m slow`, for the default run's 6-minute budget: `mixed_rolfe`
# (mixed's model with the spike-and-exp estimator, its smoothed samples
# checked in dvaepp_conv_test), `rbm_bernoulli` (mixed's RBM over
# Bernoulli local groups, whose draws dvaepp_conv_test checks against the
# estimator) and `bernoulli_bernoulli`.
SLOW_ROWS = ("mixed_rolfe", "rbm_bernoulli", "bernoulli_bernoulli")
OTHER_ROWS = [pytest.param(row, marks=pytest.mark.slow)
              if row in SLOW_ROWS else row
              for row in sorted(set(config_lib.ROWS) - {"mixed"})]


# The row whose residual blocks (with squeeze-and-excitation) run here; the
# others train without residual blocks (about 40 % less compilation): the
# rows differ in their latents, not in the residual stacks.
BLOCKS_ROW = "all_continuous"


@pytest.mark.parametrize("row", OTHER_ROWS)
def test_every_row_runs_two_training_steps(row):
  """Each of Table 3's other rows (mixed: `dvaepp_conv_test.mixed_run`)
  trains every parameter in two steps."""
  config = base.tiny_row_config(row)
  if row == BLOCKS_ROW:
    assert config.model.num_blocks and config.model.squeeze_excitation
  else:
    config.model.num_blocks = 0
  _, params, history, _, _ = base.train_row(row, config)
  base.assert_every_parameter_moved(params, history[-1])


def uniform_uint8_dataset(num_train: int = 16, num_eval: int = 4,
                          seed: int = 0) -> data_lib.Dataset:
  """Independent uniform 8-bit images of shape `UINT8_SHAPE` for each split
  (valid and test unseen in training)."""
  rng = np.random.RandomState(seed)
  dim = int(np.prod(UINT8_SHAPE))
  train, valid, test = (rng.randint(0, 256, size=(n, dim)).astype(np.float32)
                        for n in (num_train, num_eval, num_eval))
  return data_lib.Dataset("uniform_uint8", train, valid, test, "none",
                          train.mean(0), image_shape=UINT8_SHAPE,
                          value_type="uint8")


def uint8_config():
  """The mixed row, multi-scale decoder (3 logistics per value), 2 steps."""
  config = base.tiny_row_config("mixed")
  config.model.decoder = "multiscale"
  config.model.num_mixtures = 3
  config.model.num_blocks = 0  # residual blocks: the rows' test
  # An 8-bit data set's name (its loader is replaced by the test's data).
  config.data.name, config.data.binarization = "cifar10", "none"
  config.train.update(num_steps=2, batch_size=8, log_every_steps=1,
                      checkpoint_every_steps=2)
  config.eval.update(every_steps=2, num_samples=4, final_num_samples=4,
                     chunk_size=2, batch_size=4, num_image_samples=0)
  return config


# A full 8-bit run through the loop, ~13 s: `-m slow` (the conversion to
# bits per dimension is the next test's, in the default run).
@pytest.mark.slow
def test_uint8_run_reports_bits_per_dim_and_per_group_kl_curves(
    tmp_path, monkeypatch):
  """An 8-bit run through the loop: results.json has the test and valid
  bounds in bits per dimension (D = 192), the metrics have each local
  group's KL; the data are uniform, so no model beats 8 bits per value."""
  dataset = uniform_uint8_dataset()
  monkeypatch.setattr(setup_lib, "load_data", lambda config: dataset)
  workdir = str(tmp_path / "run")
  results = loop.train_and_evaluate(uint8_config(), workdir)
  dim = int(np.prod(UINT8_SHAPE))
  for split in ("valid", "test"):
    bits = results[f"{split}_bits_per_dim"]
    np.testing.assert_allclose(
        bits, -results[f"{split}_log_likelihood"] / (dim * math.log(2.0)),
        rtol=1e-6)
    # Cross-entropy >= entropy = 8 bits per value for unseen uniform data
    # (4 images x 192 values: the sampling spread of the bound's mean is
    # far below the 0.05 margin); a bound of a 2-step model is well below
    # 16 (a broken likelihood gives values far out).
    assert 8.0 - 0.05 < bits < 16.0, (split, bits)
    assert results[f"{split}_bits_per_dim_stderr"] > 0.0
  with open(os.path.join(workdir, "metrics.jsonl")) as fh:
    records = [json.loads(line) for line in fh]
  curves = [r["diag/kl_local_0"] for r in records if "diag/kl_local_0" in r]
  assert len(curves) == 2 and np.all(np.isfinite(curves)), records
  # The run restores from its workdir (e.g. for experiments.digit_identity).
  model, state, config = loop.restore_run(workdir)
  assert int(state.step) == results["best_step"] == 2
  assert model.value_type == "uint8" and config.model.decoder == "multiscale"


def test_bits_per_dim_entries_convert_the_bound_and_its_stderr():
  entries = loop.bits_per_dim_entries("test", -192 * math.log(2.0) * 3.0,
                                      192 * math.log(2.0) * 0.5, 192)
  np.testing.assert_allclose(entries["test_bits_per_dim"], 3.0, rtol=1e-6)
  np.testing.assert_allclose(entries["test_bits_per_dim_stderr"], 0.5,
                             rtol=1e-6)


WARMUP_STEPS = 10


@pytest.fixture(scope="module")
def balanced_losses():
  """The all-normal tiny model with 3 local groups and a 10-step KL warm-up:
  (loss, diagnostics) at steps 0, 3, 10 on one batch with one key."""
  model = base.tiny_model(global_prior="normal", num_local_groups=3,
                          kl_warmup_steps=WARMUP_STEPS, num_blocks=0)
  x = base.binary_data(8)
  params = model.init(jax.random.PRNGKey(21), x)
  estimator = estimators.make("overlapping_exponential")

  @jax.jit
  def loss_at(step):
    loss, aux = model.loss(params, jax.random.PRNGKey(22), x, step=step,
                           estimator=estimator)
    return loss, aux.diagnostics

  return {step: loss_at(step) for step in (0, 3, WARMUP_STEPS)}


def test_training_bound_applies_the_balanced_kl_weights(balanced_losses):
  """loss = -(E log p(x|.) - w KL_global - sum_j w gamma_j KL_j) with
  gamma_j = (1 - w) J KL_j / sum_k KL_k + w (module docstring of
  `models.dvaepp_conv`; KL_j + 0.01 nats), rebuilt from the diagnostics."""
  for step in (3, WARMUP_STEPS):
    loss, diag = balanced_losses[step]
    w = step / WARMUP_STEPS
    np.testing.assert_allclose(diag["kl_weight"], w, rtol=1e-6)
    kls = np.array([diag[f"kl_local_{j}"] for j in range(3)], np.float64)
    sizes = kls + dvaepp_conv.KL_BALANCE_EPS
    gammas = (1.0 - w) * 3 * sizes / sizes.sum() + w
    expected = -(diag["log_likelihood_term"] - w * diag["kl_global"]
                 - np.sum(w * gammas * kls))
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        [diag["kl_balance_min"], diag["kl_balance_max"]],
        [gammas.min(), gammas.max()], rtol=1e-5)
  _, diag = balanced_losses[3]
  assert diag["kl_balance_max"] - diag["kl_balance_min"] > 0.05  # uneven
  _, diag = balanced_losses[WARMUP_STEPS]  # warm-up over: every gamma_j = 1
  np.testing.assert_allclose([diag["kl_balance_min"], diag["kl_balance_max"]],
                             1.0, rtol=1e-6)
  loss, diag = balanced_losses[0]  # w = 0: the reconstruction term alone
  np.testing.assert_allclose(loss, -diag["log_likelihood_term"], rtol=1e-6)
