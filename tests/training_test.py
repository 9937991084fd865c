"""Tests of the experiment framework: steps, loop, resume, errors, launcher."""

import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import sbn as sbn_config
from configs import test as test_config
from configs import xor_flow as xor_flow_config
from discrete_vi import training
from discrete_vi.models import registry
from discrete_vi.training import checkpoints
from discrete_vi.training import loop
from discrete_vi.training import optim
from discrete_vi.training import schedules
from discrete_vi.training import steps as steps_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_setup(estimator="reinforce", **options):
  config = test_config.get_config(estimator)
  for k, v in options.items():
    config.estimator[k] = v
  run = training.create_train_state(config, training.load_data(config))
  return run, run.model, run.tx, run.state, run.x_example


@pytest.mark.parametrize("name,options", [
    ("reinforce", {"baseline": "moving_average"}),
    ("vimco", {"num_samples": 3}),
    ("st_gumbel_softmax", {"temperature": 0.5}),
    ("disarm", {}),
])
def test_two_train_steps_change_params_and_stay_finite(name, options):
  run, model, tx, state, x = tiny_setup(name, **options)
  step = jax.jit(steps_lib.make_train_step(model, tx, run.estimator))
  new, metrics = step(state, x)
  new, metrics = step(new, x)
  assert int(new.step) == 2
  chex.assert_tree_all_finite(new.params)
  assert bool(metrics["grads_finite"]) and bool(metrics["loss_finite"])
  moved = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                                 state.params, new.params)
  assert max(jax.tree_util.tree_leaves(moved)) > 0


def test_train_step_compiles_once():
  run, model, tx, state, x = tiny_setup("reinforce", baseline="standardize")
  raw = steps_lib.make_train_step(model, tx, run.estimator)
  counted = jax.jit(chex.assert_max_traces(raw, n=1))
  for _ in range(3):
    state, _ = counted(state, x)
  assert int(state.step) == 3


def test_fused_steps_donate_the_state_given_its_own_buffers():
  """The loop's jitted steps reuse the input state's buffers; a fresh state
  whose leaves share a buffer (moving-average mean and var) is rejected by
  donation unless it goes through `own_buffers` first."""
  from discrete_vi.training import parallel  # pylint: disable=g-import-not-at-top
  run, model, tx, state, x = tiny_setup("reinforce",
                                           baseline="moving_average")
  pointers = [leaf.unsafe_buffer_pointer()
              for leaf in jax.tree_util.tree_leaves(state)]
  assert len(set(pointers)) < len(pointers)  # the aliasing this guards
  owned = steps_lib.own_buffers(state)
  owned_pointers = [leaf.unsafe_buffer_pointer()
                    for leaf in jax.tree_util.tree_leaves(owned)]
  assert len(set(owned_pointers)) == len(owned_pointers)
  chex.assert_trees_all_equal(owned, state)
  mesh = parallel.make_mesh(False)
  fused = parallel.jit_train_steps(
      steps_lib.fuse_steps(steps_lib.make_train_step(model, tx,
                                                     run.estimator)), mesh)
  xs = parallel.shard_batch(jnp.stack([x, x]), mesh, 1)
  new, _ = fused(owned, xs)
  assert int(new.step) == 2
  assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(owned))
  assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(state))


def test_unrolled_steps_equal_scanned_steps():
  """`fuse_steps(..., unroll=True)` (straight-line steps, for conv models on
  CPU) runs the same steps as the scan: same states, same stacked metrics."""
  run, model, tx, state, x = tiny_setup("reinforce",
                                           baseline="moving_average")
  step = steps_lib.make_train_step(model, tx, run.estimator)
  xs = jnp.stack([x, 1.0 - x, x])
  scanned = jax.jit(steps_lib.fuse_steps(step))(state, xs)
  unrolled = jax.jit(steps_lib.fuse_steps(step, unroll=True))(state, xs)
  assert int(unrolled[0].step) == 3
  assert unrolled[1]["loss"].shape == (3,)
  chex.assert_trees_all_close(unrolled, scanned, rtol=1e-5, atol=1e-6)
  jaxpr = str(jax.make_jaxpr(steps_lib.fuse_steps(step, unroll=True))(
      state, xs))
  assert "scan" not in jaxpr and "while" not in jaxpr
  # The conv families declare unrolled steps on a CPU, the others do not.
  unrolled_families = {name for name, entry in registry.MODELS.items()
                       if entry.unroll_on_cpu}
  assert unrolled_families == {"dvaepp_conv", "hdvae"}
  on_cpu = jax.default_backend() == "cpu"
  assert registry.unroll_steps({"model": {"name": "hdvae"}}) == on_cpu
  assert not registry.unroll_steps({"model": {"name": "sbn"}})


def test_annealed_temperature_is_traced_not_retraced():
  run, model, tx, state, x = tiny_setup(
      "gumbel_softmax", temperature=1.0, temperature_end=0.5, anneal_steps=4)
  raw = steps_lib.make_train_step(model, tx, run.estimator)
  counted = jax.jit(chex.assert_max_traces(raw, n=1))
  for _ in range(3):
    state, metrics = counted(state, x)
  assert bool(metrics["loss_finite"])


def test_schedules():
  lr = schedules.dvae_piecewise(1.0, 1000)
  np.testing.assert_allclose(
      [lr(0), lr(19), lr(20), lr(599), lr(600), lr(750), lr(950), lr(999)],
      [0.1, 0.1, 1.0, 1.0, 1 / 3, 0.1, 1 / 33, 1 / 33], rtol=1e-6)
  assert schedules.linear_anneal(5, 1.0, None, 10) == 1.0
  np.testing.assert_allclose(schedules.linear_anneal(5, 1.0, 0.5, 10), 0.75)
  np.testing.assert_allclose(schedules.linear_anneal(50, 1.0, 0.5, 10), 0.5)


def test_optimizer_groups_route_parameters():
  params = {"prior": {"logits": jnp.ones(3)}, "enc": {"w": jnp.ones(3)}}
  tx = optim.make_optimizer(
      {"name": "adam", "learning_rate": 1e-3,
       "groups": {"prior": {"name": "sgd", "learning_rate": 0.5}}}, params, 10)
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["prior"]["logits"], -0.5)  # plain SGD
  np.testing.assert_allclose(updates["enc"]["w"], -1e-3, rtol=1e-3)  # Adam
  with pytest.raises(ValueError, match="nothing_here"):
    optim.make_optimizer({"name": "adam", "learning_rate": 1e-3,
                          "groups": {"nothing_here": {"name": "sgd"}}},
                         params, 10)


@pytest.mark.parametrize("field,value,match", [
    ("estimator.name", "not_an_estimator", "config.estimator.name"),
    ("estimator.temperature", 0.5, "config.estimator.temperature"),
    ("train.batch_size", 0, "config.train.batch_size"),
    ("data.name", "cifar", "config.data.name"),
    ("optim.name", "rmsprop", "config.optim.name"),
    ("model.architecture", "deep", "config.model.architecture"),
])
def test_bad_config_values_are_named(tmp_path, field, value, match):
  config = test_config.get_config()
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    training.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")


def test_bad_estimator_value_is_named(tmp_path):
  config = test_config.get_config("gumbel_softmax")
  config.estimator.temperature = -1.0
  with pytest.raises(ValueError, match="temperature"):
    training.train_and_evaluate(config, str(tmp_path))


def test_sbn_config_parses_and_validates():
  for arg in ("linear", "nonlinear", "two_layer", "nonlinear,protocol=dvaepp",
              "linear,protocol=disarm", "linear,protocol=rebar"):
    training.validate_config(sbn_config.get_config(arg))
  with pytest.raises(ValueError, match="deep"):
    sbn_config.get_config("deep")
  with pytest.raises(ValueError, match="paper"):
    sbn_config.get_config("linear,protocol=paper")


def test_finished_run_is_reported_at_once_unless_reevaluated(tmp_path,
                                                             monkeypatch):
  config = test_config.get_config("reinforce")
  config.train.num_steps = 2
  config.eval.num_image_samples = 0
  workdir = str(tmp_path / "run")
  first = training.train_and_evaluate(config, workdir)
  calls = []
  original = loop.final_evaluation
  monkeypatch.setattr(loop, "final_evaluation",
                      lambda *a, **k: calls.append(1) or original(*a, **k))
  again = training.train_and_evaluate(config, workdir)
  assert again == first and calls == []  # nothing compiled or evaluated
  redone = training.train_and_evaluate(config, workdir, reevaluate=True)
  assert calls == [1] and redone["num_steps"] == 2
  num_samples = config.eval.num_samples
  config.eval.num_samples = num_samples + 1  # another config: not finished
  assert loop.finished_results(config, workdir) is None
  config.eval.num_samples = num_samples
  config.train.num_steps = 4  # more steps: training continues
  assert training.train_and_evaluate(config, workdir)["num_steps"] == 4


def _final_params(workdir, config):
  target = training.create_train_state(config,
                                       training.load_data(config)).state
  ckpt = checkpoints.Checkpointer(workdir)
  state = ckpt.restore(target)
  ckpt.close()
  return state


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
  config = test_config.get_config("reinforce")
  config.estimator.baseline = "moving_average"
  config.train.num_steps = 4
  config.eval.num_image_samples = 0
  straight = str(tmp_path / "straight")
  training.train_and_evaluate(config, straight)

  # "Killed" after step 2: run 2 steps, then the same command with 4 steps
  # (also the continuation of a finished run with a larger num_steps).
  resumed = str(tmp_path / "resumed")
  config.train.num_steps = 2
  training.train_and_evaluate(config, resumed)
  config.train.num_steps = 4
  results = training.train_and_evaluate(config, resumed)
  assert results["num_steps"] == 4

  a = _final_params(straight, config)
  b = _final_params(resumed, config)
  chex.assert_trees_all_close(a.params, b.params, rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(a.model_state, b.model_state)
  steps = [json.loads(l)["step"] for l in open(os.path.join(resumed,
                                                            "metrics.jsonl"))]
  assert steps == sorted(set(steps)), "resumed metrics repeat steps"


def test_non_finite_step_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
  config = test_config.get_config("reinforce")
  config.train.num_steps = 6
  original = registry.build_model

  def poisoned_model(*args, **kwargs):
    model = original(*args, **kwargs)
    loss = model.loss

    def nan_after_three(params, key, x, *, step, **kw):
      value, aux = loss(params, key, x, step=step, **kw)
      return jnp.where(step >= 3, jnp.nan, value), aux
    model.loss = nan_after_three
    return model

  monkeypatch.setattr(registry, "build_model", poisoned_model)
  with pytest.raises(training.NonFiniteError, match="step 4"):
    training.train_and_evaluate(config, str(tmp_path))
  ckpt = checkpoints.Checkpointer(str(tmp_path))
  assert ckpt.latest_step() == 2
  ckpt.close()


@pytest.mark.parametrize("case,expected", [
    ("finite", (True, True)),
    ("nan_grad", (False, True)),
    ("inf_grad", (False, True)),
    ("inf_param", (True, False)),
    ("nan_both", (False, False)),
    ("overflowing_norm", (True, True)),
])
def test_step_health_matches_exact_tree_checks(case, expected):
  grads = {"a": jnp.full((3, 4), 0.5), "b": jnp.arange(5.0)}
  params = {"a": jnp.ones((3, 4)), "b": jnp.zeros(5)}
  if case in ("nan_grad", "nan_both"):
    grads["b"] = grads["b"].at[2].set(jnp.nan)
  if case == "inf_grad":
    grads["a"] = grads["a"].at[1, 1].set(-jnp.inf)
  if case in ("inf_param", "nan_both"):
    params["a"] = params["a"].at[0, 3].set(jnp.inf)
  if case == "overflowing_norm":  # finite values whose squares overflow
    grads["b"] = jnp.full(5, 1e30)
  health = jax.jit(steps_lib.step_health)(jnp.float32(1.0), grads, params)
  assert (bool(health["grads_finite"]), bool(health["params_finite"])) == expected
  assert bool(health["grads_finite"]) == bool(steps_lib.tree_all_finite(grads))
  assert bool(health["loss_finite"])
  np.testing.assert_allclose(health["grad_norm"], optax.tree.norm(grads),
                             rtol=1e-6)


def test_main_writes_every_output(tmp_path):
  workdir = tmp_path / "run"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.main",
       "--config=configs/test.py", f"--workdir={workdir}",
       "--config.estimator.name=rloo", "--config.estimator.num_samples=2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ("config.json", "metrics.jsonl", "samples.png", "curves.png",
               "results.json"):
    assert (workdir / name).exists(), name
  assert any(p.name.startswith("events") for p in (workdir / "tensorboard").iterdir())
  results = json.loads((workdir / "results.json").read_text())
  for key in ("test_log_likelihood", "valid_log_likelihood", "train_objective",
              "eval_num_samples", "num_steps", "wall_time_s", "estimator"):
    assert key in results, key
  assert results["estimator"] == "rloo"
  assert np.isfinite(results["test_log_likelihood"])
  assert json.loads((workdir / "config.json").read_text())["estimator"][
      "num_samples"] == 2


def test_main_rejects_unknown_field(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.main", "--config=configs/test.py",
       f"--workdir={tmp_path}", "--config.estimator.no_such_field=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode != 0
  assert "no_such_field" in proc.stderr


def test_time_budget_stops_after_the_chunk_that_spends_it(tmp_path):
  config = test_config.get_config("reinforce")
  config.train.num_steps = 1000
  # The first fused chunk compiles and is not counted; the second spends it.
  config.train.time_budget_s = 1e-6
  results = training.train_and_evaluate(config, str(tmp_path))
  assert results["num_steps"] == 2 * config.train.steps_per_jit
  assert results["best_step"] == 2 * config.train.steps_per_jit
  ckpt = checkpoints.Checkpointer(str(tmp_path))
  assert ckpt.latest_step() == 2 * config.train.steps_per_jit
  ckpt.close()
  config.train.time_budget_s = -1.0
  with pytest.raises(ValueError, match="config.train.time_budget_s"):
    training.validate_config(config)


@pytest.mark.parametrize("field,value,match", [
    ("model.variant", "magic", "config.model.variant"),
    ("estimator.name", "disarm", "config.estimator.name"),
    ("model.depth", 0, "depth"),
    ("estimator.baseline", "median", "baseline"),
    ("model.prefix_sample", "twice", "prefix_sample"),
])
def test_bad_xor_flow_config_values_are_named(field, value, match):
  config = xor_flow_config.get_config("sfe_special")
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    training.validate_config(config)


def test_xor_flow_config_rows_parse_and_validate():
  for arg in ("ste,depth=4", "sfe_full,baseline=self_critic",
              "sfe_special,baseline=running_average,protocol=paper"):
    training.validate_config(xor_flow_config.get_config(arg))
  config = xor_flow_config.get_config("sfe_full,baseline=self_critic")
  assert config.estimator.baseline == "self_critic_standardize"
  assert config.estimator.greedy
  assert xor_flow_config.get_config("ste").estimator.variant == "deterministic"
  for bad in ("deep", "ste,depth=0", "sfe_full,baseline=median",
              "ste,width=3"):
    with pytest.raises(ValueError, match="configs/xor_flow.py"):
      xor_flow_config.get_config(bad)
  config = xor_flow_config.get_config("ste")
  config.estimator.variant = "stochastic"
  with pytest.raises(ValueError, match="config.estimator.variant"):
    training.validate_config(config)


def test_only_the_primary_process_writes_files(tmp_path, monkeypatch):
  # A non-primary process of a multi-host run trains and evaluates like the
  # others but leaves the workdir's files to process 0 (orbax coordinates
  # the checkpoints itself).
  monkeypatch.setattr(loop, "is_primary", lambda: False)
  config = test_config.get_config("reinforce")
  results = training.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(results["test_log_likelihood"])
  for name in ("config.json", "metrics.jsonl", "results.json", "best.json",
               "samples.png", "curves.png", "tensorboard"):
    assert not (tmp_path / name).exists(), name


def test_config_estimator_section_is_the_registry_options():
  from discrete_vi import estimators  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import estimator_spec  # pylint: disable=g-import-not-at-top
  config = sbn_config.get_config("linear")
  fields = set(config.estimator) - {"name", *estimator_spec.SCHEDULE_FIELDS}
  every_option = set().union(*(estimators.options_of(name)
                               for name in estimators.ESTIMATORS))
  assert fields == every_option - estimators.ARRAY_OPTIONS
  assert all(config.estimator[f] is None for f in fields)


@pytest.mark.parametrize("override", [
    ("relax", "hidden_size", 8), ("enumerate", "max_support", 256),
    ("reinforce", "decay", 0.9)])
def test_any_registry_option_can_be_set(override):
  name, option, value = override
  config = test_config.get_config()  # 8 latent units: 256 configurations
  config.estimator.name = name
  config.estimator[option] = value  # the config is locked: must exist
  spec = training.validate_config(config)
  assert spec.options[option] == value


def test_enumeration_beyond_its_support_is_refused_before_the_run():
  config = sbn_config.get_config("linear")  # 2^200 configurations a layer
  config.estimator.name = "enumerate"
  with pytest.raises(ValueError, match="'enumerate' is not accepted"):
    training.validate_config(config)
  config = test_config.get_config("enumerate")
  config.estimator.max_support = 255  # below 2^8
  with pytest.raises(ValueError, match="'enumerate' is not accepted"):
    training.validate_config(config)
  config.estimator.max_support = 256
  training.validate_config(config)


def test_switching_estimator_drops_the_config_files_preferences():
  config = sbn_config.get_config("linear")
  assert training.validate_config(config).options == {
      "baseline": "moving_average"}
  config.estimator.name = "vimco"
  assert training.validate_config(config).options == {}
  config.estimator.baseline = "self_critic"  # set, but not vimco's option
  with pytest.raises(ValueError, match="config.estimator.baseline"):
    training.validate_config(config)
  config.estimator.name = "reinforce"  # the set value wins over preference
  assert training.validate_config(config).options == {
      "baseline": "self_critic"}


def test_evaluate_with_stderr_is_the_mean_and_its_standard_error():
  values = np.random.default_rng(0).random((7, 3)).astype(np.float32)
  sums = lambda params, context, key, x: jnp.sum(x, -1)
  mean, stderr = loop.evaluate_with_stderr(sums, None, None, values,
                                           jax.random.PRNGKey(0), 3)
  per_example = values.astype(np.float64).sum(-1)
  np.testing.assert_allclose(mean, per_example.mean(), rtol=1e-6)
  np.testing.assert_allclose(stderr, per_example.std(ddof=1) / np.sqrt(7),
                             rtol=1e-5)


def test_max_examples_evaluates_the_first_examples_of_a_split():
  config = test_config.get_config()
  dataset = training.load_data(config)
  full = loop.evaluation_examples(config, dataset, "test")
  assert config.eval.max_examples is None and len(full) == 500
  config.eval.max_examples = 7
  np.testing.assert_array_equal(
      loop.evaluation_examples(config, dataset, "test"), full[:7])
  config.eval.max_examples = 10_000  # more than the split: all of it
  assert len(loop.evaluation_examples(config, dataset, "valid")) == 500
