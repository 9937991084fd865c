"""`train_and_evaluate(config, workdir)`: the whole life of one run.

Validates the config (before anything compiles), loads the data, builds the
model, resumes from the latest checkpoint if the workdir has one, trains with
fused jitted steps, evaluates the importance-weighted bound on the validation
set (keeping the best checkpoint), stops at the first non-finite step with
the last good checkpoint intact, and finally writes the test/valid bounds of
the best checkpoint, sample and learning-curve PNGs and `results.json`.
"""

import json
import os
import time
from typing import Any, Callable, Mapping, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from discrete_vi import data as data_lib
from discrete_vi.models import sbn
from discrete_vi.models import xor_flow_config
from discrete_vi.training import checkpoints
from discrete_vi.training import optim
from discrete_vi.training import parallel
from discrete_vi.training import schedules
from discrete_vi.training import steps as steps_lib
from discrete_vi.training import writers

ARCHITECTURES = ("linear", "nonlinear", "two_layer")
EVAL_SEED_OFFSET = 1_000_003


class NonFiniteError(FloatingPointError):
  """A training step produced NaN or inf; the last good checkpoint is kept."""


# -- validation ----------------------------------------------------------------


def _positive_int(config, field: str, minimum: int = 1) -> None:
  value = config
  for part in field.split("."):
    value = value[part]
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise ValueError(f"config.{field} must be an integer >= {minimum}; got "
                     f"{value!r}.")


def validate_config(config: Mapping[str, Any]) -> None:
  """Raises ValueError naming the first bad field (nothing compiles before)."""
  for field in ("train.num_steps", "train.batch_size", "train.steps_per_jit",
                "train.log_every_steps", "train.checkpoint_every_steps",
                "eval.every_steps", "eval.num_samples", "eval.final_num_samples",
                "eval.chunk_size", "eval.batch_size", "model.num_latents"):
    _positive_int(config, field)
  _positive_int(config, "train.kl_warmup_steps", 0)
  budget = config["train"].get("time_budget_s")
  if budget is not None and not (isinstance(budget, (int, float)) and
                                 budget > 0):
    raise ValueError(f"config.train.time_budget_s must be a number of seconds "
                     f"> 0 (or None); got {budget!r}.")
  _positive_int(config, "eval.num_image_samples", 0)
  if config["model"]["name"] not in MODELS:
    raise ValueError(f"config.model.name={config['model']['name']!r} is not "
                     f"one of {sorted(MODELS)}.")
  MODELS[config["model"]["name"]].validate(config)
  if config["data"]["name"] not in data_lib.DATASETS:
    raise ValueError(f"config.data.name={config['data']['name']!r} is not one "
                     f"of {sorted(data_lib.DATASETS)}.")
  if config["data"]["binarization"] not in data_lib.BINARIZATIONS:
    raise ValueError(f"config.data.binarization="
                     f"{config['data']['binarization']!r} is not one of "
                     f"{data_lib.BINARIZATIONS}.")
  optim_config = config["optim"]
  if optim_config["name"] not in optim.OPTIMIZERS:
    raise ValueError(f"config.optim.name={optim_config['name']!r} is not one "
                     f"of {optim.OPTIMIZERS}.")
  if optim_config["schedule"] not in schedules.LEARNING_RATE_SCHEDULES:
    raise ValueError(f"config.optim.schedule={optim_config['schedule']!r} is "
                     f"not one of {schedules.LEARNING_RATE_SCHEDULES}.")
  if not optim_config["learning_rate"] > 0:
    raise ValueError(f"config.optim.learning_rate must be > 0; got "
                     f"{optim_config['learning_rate']!r}.")
  steps_lib.validate_estimator_config(config["estimator"])
  parallel.validate_config(config)


# -- building ------------------------------------------------------------------


def _validate_sbn(config: Mapping[str, Any]) -> None:
  """The SBN's own fields of `config.model`."""
  if config["model"]["architecture"] not in ARCHITECTURES:
    raise ValueError(f"config.model.architecture="
                     f"{config['model']['architecture']!r} is not one of "
                     f"{ARCHITECTURES}.")
  if config["model"]["activation"] not in sbn.NONLINEARITIES:
    raise ValueError(f"config.model.activation={config['model']['activation']!r}"
                     f" is not one of {sbn.NONLINEARITIES}.")


def _build_sbn(config, data_mean):
  model_config = config["model"]
  architecture = model_config["architecture"]
  hidden = model_config["hidden_size"]
  return sbn.SigmoidBeliefNet(
      data_mean,
      latent_dim=model_config["num_latents"],
      num_layers=2 if architecture == "two_layer" else 1,
      hidden_dims=(hidden, hidden) if architecture == "nonlinear" else (),
      nonlinearity=model_config["activation"],
      input_baseline=model_config["input_baseline"],
      kl_warmup_steps=config["train"]["kl_warmup_steps"],
      data_dim=len(data_mean))


class ModelEntry(NamedTuple):
  """How the loop checks and builds one kind of model."""
  validate: Callable[[Mapping[str, Any]], None]  # ValueError naming the field
  build: Callable[[Any, Any], Any]  # (config, data_mean) -> model


# The one model registry, by config.model.name.
MODELS = {"sbn": ModelEntry(_validate_sbn, _build_sbn),
          "xor_flow": ModelEntry(xor_flow_config.validate,
                                 xor_flow_config.build)}


def build_model(config, data_mean):
  """The model of `config.model` for data with training mean `data_mean`.

  Args:
    config: the whole run config (models may read `config.train` /
      `config.estimator` settings, e.g. the SBN's KL warm-up).
    data_mean: `[data_dim]` training-set mean of x.
  """
  return MODELS[config["model"]["name"]].build(config, data_mean)


def load_data(config) -> data_lib.Dataset:
  return data_lib.load_dataset(config.data.name, path=config.data.path,
                               binarization=config.data.binarization,
                               seed=config.seed)


def initial_state(config, model, tx, x_example) -> steps_lib.TrainState:
  key = jax.random.PRNGKey(config.seed)
  init_key, state_key, train_key = jax.random.split(key, 3)
  params = model.init(init_key, x_example)
  estimator = steps_lib.estimator_at(config.estimator, 0)
  estimator_state = model.init_estimator_state(params, state_key, x_example,
                                               estimator)
  return steps_lib.TrainState(params=params, opt_state=tx.init(params),
                              estimator_state=estimator_state,
                              step=jnp.zeros((), jnp.int32), key=train_key)


# -- evaluation ----------------------------------------------------------------


def evaluate(eval_step, params, split: np.ndarray, key, batch_size: int) -> float:
  """Mean importance-weighted bound over every example of `split`."""
  total, count = 0.0, 0
  for i, (x, mask) in enumerate(data_lib.eval_batches(split, batch_size)):
    bound = eval_step(params, jax.random.fold_in(key, i), x)
    total += float(jnp.sum(jnp.where(mask, bound, 0.0)))
    count += int(jnp.sum(mask))
  return total / count


# -- the loop ------------------------------------------------------------------


def _crossed(step_before: int, step_after: int, every: int) -> bool:
  return step_after // every > step_before // every


def _first_non_finite(metrics) -> tuple[int, str] | None:
  flags = {k: np.asarray(metrics[k]) for k in
           ("loss_finite", "grads_finite", "params_finite")}
  bad = ~(flags["loss_finite"] & flags["grads_finite"] & flags["params_finite"])
  if not bad.any():
    return None
  index = int(np.argmax(bad))
  what = [name.replace("_finite", "") for name, f in flags.items()
          if not f[index]]
  return index, " and ".join(what)


def _chunk_metrics(metrics) -> dict:
  skip = {"loss_finite", "grads_finite", "params_finite"}
  return {k: float(np.mean(v)) for k, v in metrics.items() if k not in skip}


def _load_json(path: str, default):
  if not os.path.exists(path):
    return default
  with open(path) as fh:
    return json.load(fh)


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0 of a multi-host
  run; always true on one host). Orbax coordinates checkpoints itself."""
  return jax.process_index() == 0


def _write_json(path: str, value) -> None:
  if not is_primary():
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as fh:
    json.dump(value, fh, indent=2, sort_keys=True)
  os.replace(tmp, path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains and evaluates; returns the contents of results.json.

  Raises:
    ValueError: for a bad config (before anything is compiled).
    NonFiniteError: when a step goes non-finite (checkpoints stay intact).
  """
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  _write_json(os.path.join(workdir, "config.json"), config.to_dict())
  dataset = load_data(config)
  model = build_model(config, dataset.train_mean)
  num_steps = config.train.num_steps
  x_example = jnp.asarray(dataset.train[:config.train.batch_size])
  params0 = model.init(jax.random.PRNGKey(config.seed), x_example)
  tx = optim.make_optimizer(config.optim.to_dict(), params0, num_steps)
  # Data parallel over a 1-D mesh: state replicated (so are restored
  # checkpoints, shaped like it), batches split over the devices.
  mesh = parallel.make_mesh(config.train.data_parallel)
  state = parallel.replicate(initial_state(config, model, tx, x_example), mesh)

  ckpt = checkpoints.Checkpointer(workdir)
  best_path = os.path.join(workdir, "best.json")
  best = _load_json(best_path, {"valid_log_likelihood": None, "step": None})
  start = ckpt.latest_step()
  wall_offset = 0.0
  if start is not None:
    state = ckpt.restore(state, start)
    if is_primary():
      writers.truncate_metrics(workdir, start)
    previous = [r for r in writers.read_metrics(workdir) if "wall_time_s" in r]
    wall_offset = previous[-1]["wall_time_s"] if previous else 0.0
    logging.info("Resuming from the checkpoint at step %d in %s.", start,
                 workdir)
  step = int(state.step)
  # The fused steps donate their input state (no copy of the parameters and
  # optimiser moments per call), so its leaves need buffers of their own.
  state = steps_lib.own_buffers(state)

  train_step = steps_lib.make_train_step(model, tx, config.estimator)
  fused = parallel.jit_train_steps(steps_lib.fuse_steps(train_step), mesh)
  eval_step = parallel.shard_eval_step(
      steps_lib.make_eval_step(model, config.eval.num_samples,
                               config.eval.chunk_size),
      mesh, config.eval.batch_size)
  eval_key = jax.random.PRNGKey(config.seed + EVAL_SEED_OFFSET)
  valid = data_lib.evaluation_split(dataset, "valid")
  writer = writers.MetricWriter(workdir, enabled=is_primary())
  batches = data_lib.train_batches(
      dataset, config.train.batch_size,
      jax.random.fold_in(jax.random.PRNGKey(config.seed), 7), start_batch=step)

  start_time = time.time()
  start_step = step
  # Optional wall-clock budget of this invocation's training (periodic
  # evaluations excluded): seconds, or None for no limit.
  budget = config.train.get("time_budget_s")
  eval_seconds = 0.0
  while step < num_steps:
    n = min(config.train.steps_per_jit, num_steps - step)
    xs = jnp.stack([next(batches) for _ in range(n)])
    state, metrics = fused(state, parallel.shard_batch(xs, mesh, 1))
    metrics = jax.device_get(metrics)
    bad = _first_non_finite(metrics)
    if bad is not None:
      index, what = bad
      raise NonFiniteError(
          f"non-finite {what} at training step {step + index + 1} (the last "
          f"good checkpoint, step {ckpt.latest_step()}, is kept in {workdir}).")
    before, step = step, step + n
    elapsed = time.time() - start_time
    # The last chunk: all steps done, or the wall-clock budget spent.
    last = step == num_steps or (
        budget is not None and elapsed - eval_seconds >= budget)
    record = None
    if _crossed(before, step, config.train.log_every_steps) or last:
      rate = (step - start_step) / max(elapsed, 1e-9)
      record = {"wall_time_s": wall_offset + elapsed, "steps_per_s": rate,
                **_chunk_metrics(metrics)}
      logging.info("step %d/%d  %.1f steps/s  ETA %.0f s  objective %.3f",
                   step, num_steps, rate, (num_steps - step) / max(rate, 1e-9),
                   record["train_objective"])
    if _crossed(before, step, config.eval.every_steps) or last:
      eval_start = time.time()
      value = evaluate(eval_step, state.params, valid,
                       jax.random.fold_in(eval_key, step), config.eval.batch_size)
      eval_seconds += time.time() - eval_start
      record = record or {"wall_time_s": wall_offset + elapsed,
                          **_chunk_metrics(metrics)}
      record["valid_log_likelihood"] = value
      logging.info("step %d  valid %d-sample bound %.3f", step,
                   config.eval.num_samples, value)
      if best["valid_log_likelihood"] is None or value > best["valid_log_likelihood"]:
        ckpt.save_best(step, state)
        best = {"valid_log_likelihood": value, "step": step}
        _write_json(best_path, best)
    if record is not None:
      writer.write(step, record)
    if (_crossed(before, step, config.train.checkpoint_every_steps) or
        last):
      ckpt.save(step, state)
    if last:
      break
  writer.close()
  results = final_evaluation(config, workdir, model, dataset, state, ckpt,
                             best, wall_offset + time.time() - start_time)
  ckpt.close()
  return results


def final_evaluation(config, workdir, model, dataset, state, ckpt, best,
                     wall_time_s) -> dict:
  """Test and valid bounds of the best checkpoint, PNGs and results.json."""
  final_state = ckpt.restore_best(state) if ckpt.best_step() is not None else state
  eval_step = parallel.shard_eval_step(
      steps_lib.make_eval_step(model, config.eval.final_num_samples,
                               config.eval.chunk_size),
      parallel.make_mesh(config.train.data_parallel), config.eval.batch_size)
  key = jax.random.PRNGKey(config.seed + 2 * EVAL_SEED_OFFSET)
  bounds = {split: evaluate(eval_step, final_state.params,
                            data_lib.evaluation_split(dataset, split),
                            jax.random.fold_in(key, i), config.eval.batch_size)
            for i, split in enumerate(("valid", "test"))}
  extra = {}
  # Models with deterministic evaluations as well (the XOR flows' greedy
  # flows): name -> fn(params, x) -> [B].
  for name, fn in getattr(model, "deterministic_evaluations", dict)().items():
    fn = jax.jit(fn)
    for split in ("valid", "test"):
      extra[f"{split}_{name}"] = evaluate(
          lambda p, k, x, fn=fn: fn(p, x), final_state.params,
          data_lib.evaluation_split(dataset, split), key,
          config.eval.batch_size)
  records = writers.read_metrics(workdir)
  train_objectives = [r["train_objective"] for r in records
                      if "train_objective" in r]
  if config.eval.num_image_samples:
    images = model.sample(final_state.params, key, config.eval.num_image_samples)
    if is_primary():
      writers.save_image_grid(np.asarray(images), os.path.join(workdir,
                                                               "samples.png"))
  if is_primary():
    writers.plot_curves(records, os.path.join(workdir, "curves.png"))
  results = {
      "test_log_likelihood": bounds["test"],
      "valid_log_likelihood": bounds["valid"],
      "train_objective": train_objectives[-1] if train_objectives else None,
      "eval_num_samples": config.eval.final_num_samples,
      "num_steps": int(state.step),
      "best_step": best["step"],
      "wall_time_s": wall_time_s,
      "estimator": config.estimator.name,
      "model": getattr(model, "description",
                       f"{config.model.name}:{config.model.architecture}"),
      "data": config.data.name,
      **extra,
  }
  _write_json(os.path.join(workdir, "results.json"), results)
  logging.info("results: %s", json.dumps(results))
  return results
