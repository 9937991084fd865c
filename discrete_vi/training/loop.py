"""`train_and_evaluate(config, workdir)`: the whole life of one run.

Validates the config, loads the data and builds the model (all before the
workdir is written), resumes from the latest checkpoint if the workdir has
one, trains with
fused jitted steps, evaluates the importance-weighted bound on the validation
set (keeping the best checkpoint), stops at the first non-finite step with
the last good checkpoint intact, and finally writes the test/valid bounds of
the best checkpoint, sample and learning-curve PNGs and `results.json`.
"""

import json
import math
import os
import time
from typing import Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from discrete_vi import data as data_lib
from discrete_vi.distributions import discretized_logistic as dlogistic
from discrete_vi.models import registry
from discrete_vi.training import checkpoints
from discrete_vi.training import gradient_diagnostics
from discrete_vi.training import parallel
from discrete_vi.training import setup as setup_lib
from discrete_vi.training import steps as steps_lib
from discrete_vi.training import validation
from discrete_vi.training import writers

EVAL_SEED_OFFSET = 1_000_003


class NonFiniteError(FloatingPointError):
  """A training step produced NaN or inf; the last good checkpoint is kept."""


# -- evaluation ----------------------------------------------------------------


def evaluate_with_stderr(eval_step, params, context, split: np.ndarray, key,
                         batch_size: int) -> tuple[float, float]:
  """Mean of `eval_step(params, context, key, x)` over every example of
  `split`, and its standard error over the examples (sample std / sqrt(N);
  0 for one example)."""
  total, squares, count = 0.0, 0.0, 0
  for i, (x, mask) in enumerate(data_lib.eval_batches(split, batch_size)):
    values = np.asarray(
        eval_step(params, context, jax.random.fold_in(key, i), x),
        np.float64)[np.asarray(mask)]
    total += float(values.sum())
    squares += float(np.square(values).sum())
    count += values.size
  mean = total / count
  variance = max(squares / count - mean * mean, 0.0) * count / max(count - 1, 1)
  return mean, float(np.sqrt(variance / count))


def evaluate(eval_step, params, context, split: np.ndarray, key,
             batch_size: int) -> float:
  """Mean importance-weighted bound over every example of `split`."""
  return evaluate_with_stderr(eval_step, params, context, split, key,
                              batch_size)[0]


# -- the loop ------------------------------------------------------------------


def _crossed(chunk, every: int) -> bool:
  """Whether a chunk passed a multiple of `every` or is the run's last."""
  return chunk.last or chunk.after // every > chunk.before // every


# Logged once per invocation, after the first call of the fused train steps
# (the one that compiles them): `experiments.benchmark startup` times a
# documented command up to this line.
FIRST_CALL_MESSAGE = "first train call done: step"


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


# -- the run, step by step -------------------------------------------------------


class Progress(NamedTuple):
  """What a run knows about its past beyond the train state.

  Attributes:
    best: `{"valid_log_likelihood", "step"}` of the best checkpoint so far.
    wall_offset: training seconds of earlier invocations (resumed runs).
  """
  best: dict
  wall_offset: float


class Chunk(NamedTuple):
  """One fused call of several train steps, as the host sees it."""
  before: int  # the step count before the chunk
  after: int  # ... and after it
  elapsed: float  # seconds since this invocation started training
  metrics: dict  # chunk means of the step metrics
  last: bool  # all steps done, or the wall-clock budget spent


def prepare_workdir(config, workdir: str) -> None:
  """Creates `workdir` and writes `config.json` (after every check passed)."""
  os.makedirs(workdir, exist_ok=True)
  _write_json(os.path.join(workdir, "config.json"), config.to_dict())


def restore(state, ckpt: checkpoints.Checkpointer, workdir: str):
  """The latest checkpoint of `workdir` (or `state`) and the run's progress."""
  best = writers.read_json(os.path.join(workdir, "best.json"),
                    {"valid_log_likelihood": None, "step": None})
  start = ckpt.latest_step()
  if start is None:
    return state, Progress(best, 0.0)
  state = ckpt.restore(state, start)
  if is_primary():
    writers.truncate_metrics(workdir, start)
  previous = [r for r in writers.read_metrics(workdir) if "wall_time_s" in r]
  logging.info("Resuming from the checkpoint at step %d in %s.", start, workdir)
  return state, Progress(best, previous[-1]["wall_time_s"] if previous else 0.0)


def jit_train_steps(config, run: setup_lib.Setup, mesh):
  """The run's jitted fused train steps, as training runs them.

  `fn(state, xs [n, B, D]) -> (state, metrics [n])`: n steps of `run`'s
  model, optimiser and estimator in one program (unrolled on a CPU for the
  families that declare it, `registry.unroll_steps`), the state donated
  and replicated over `mesh`, the batches split over it.
  """
  return parallel.jit_train_steps(steps_lib.fuse_steps(
      steps_lib.make_train_step(run.model, run.tx, run.estimator),
      unroll=registry.unroll_steps(config)), mesh)


def jit_eval_step(config, model, mesh, num_samples: int):
  """The run's jitted evaluation step over `mesh`:
  `eval_step(params, context, key, x [B, D]) -> [B]` the `num_samples`-
  sample bound in chunks of `config.eval.chunk_size` samples."""
  return parallel.shard_eval_step(
      steps_lib.make_eval_step(model, num_samples, config.eval.chunk_size),
      mesh, config.eval.batch_size)


def extra_step(fn, name: str = "evaluation") -> Callable:
  """An extra evaluation `fn(params, key, x, *, context)` as a jitted
  `eval_step(params, context, key, x)`, its program named `extra_<name>`
  (as compile logs and profiles show it)."""
  def eval_step(params, context, key, x):
    return fn(params, key, x, context=context)
  eval_step.__name__ = eval_step.__qualname__ = f"extra_{name}"
  return jax.jit(eval_step)


class Evaluation(NamedTuple):
  """The jitted programs of a run's evaluations, each built once per run so
  that each compiles once (validation and final evaluation share the
  bound's program when they use the same number of samples).

  Attributes:
    bound: the validation bound's step, `config.eval.num_samples` samples
      (`jit_eval_step`).
    final_bound: the final evaluation's, `config.eval.final_num_samples`
      (`bound` itself when the counts agree).
    extras: `{name: eval_step}` of the model's extra evaluations
      (`extra_step`), for both splits.
    sample: `sample(params, key, n)` of the model as one jitted program
      (`n` static).
  """
  bound: Callable
  final_bound: Callable
  extras: dict
  sample: Callable


def build_evaluation(config, model, mesh) -> Evaluation:
  """The run's `Evaluation` (nothing is compiled until first called)."""
  bound = jit_eval_step(config, model, mesh, config.eval.num_samples)
  final_bound = (bound if config.eval.final_num_samples ==
                 config.eval.num_samples else
                 jit_eval_step(config, model, mesh,
                               config.eval.final_num_samples))
  extras = {name: extra_step(fn, name)
            for name, fn in model.extra_evaluations().items()}
  return Evaluation(bound, final_bound, extras,
                    jax.jit(model.sample, static_argnums=2))


def train_chunk(fused, state, batches, mesh, num_steps: int, ckpt, workdir):
  """Runs `num_steps` fused train steps; stops at a non-finite one.

  Returns:
    `(state, metrics)` with metrics stacked `[num_steps]`.

  Raises:
    NonFiniteError: naming the first non-finite step, what went wrong and
      the last good checkpoint (kept in `workdir`).
  """
  step = int(state.step)
  xs = jnp.stack([next(batches) for _ in range(num_steps)])
  state, metrics = fused(state, parallel.shard_batch(xs, mesh, 1))
  metrics = jax.device_get(metrics)
  bad = _first_non_finite(metrics)
  if bad is not None:
    index, what = bad
    raise NonFiniteError(
        f"non-finite {what} at training step {step + index + 1} (the last "
        f"good checkpoint, step {ckpt.latest_step()}, is kept in {workdir}).")
  return state, metrics


def gradient_diagnostics_record(diagnose, state, chunk_seconds: float,
                                chunk_steps: int) -> tuple[dict, float]:
  """The gradient diagnostics at `state` (`gradient_diagnostics.
  make_measure`) as metrics, with their cost: `grad/seconds` and
  `grad/cost_steps`, the seconds as a multiple of one train step of the
  chunk just run (the first measurement includes its compilation).

  Returns:
    `(record, seconds)`.
  """
  start = time.time()
  values = jax.device_get(diagnose(state))
  seconds = time.time() - start
  record = {k: float(v) for k, v in values.items()}
  record["grad/seconds"] = seconds
  record["grad/cost_steps"] = seconds / max(chunk_seconds / chunk_steps,
                                            1e-9)
  return record, seconds


def log_progress(config, chunk: Chunk, start_step: int, wall_offset: float
                 ) -> dict:
  """The metrics record of a chunk: rate, ETA and the chunk's means."""
  rate = (chunk.after - start_step) / max(chunk.elapsed, 1e-9)
  num_steps = config.train.num_steps
  logging.info("step %d/%d  %.1f steps/s  ETA %.0f s  objective %.3f",
               chunk.after, num_steps, rate,
               (num_steps - chunk.after) / max(rate, 1e-9),
               chunk.metrics["train_objective"])
  return {"wall_time_s": wall_offset + chunk.elapsed, "steps_per_s": rate,
          **chunk.metrics}


def prepared_evaluation(model, state, key) -> tuple:
  """`model.prepare_evaluation` of a train state, its info made writable.

  Returns:
    `(context, info)`: the evaluation context (a pytree or None) and info
    mapping names to Python floats or strings (strings go to results.json
    only).
  """
  context, info = model.prepare_evaluation(state.params, key,
                                           state=state.model_state)
  info = {k: v if isinstance(v, str) else float(v) for k, v in info.items()}
  return context, info


def _numbers(info: dict) -> dict:
  return {k: v for k, v in info.items() if not isinstance(v, str)}


def evaluate_and_keep_best(config, model, eval_step, state, valid, eval_key,
                           ckpt, workdir: str, best: dict
                           ) -> tuple[float, dict, dict]:
  """The validation bound; saves the best checkpoint when it improves.

  Returns:
    `(bound, best, info)` with `best` updated and `info` the model's
    evaluation info (`prepare_evaluation`), keys prefixed by "valid_".
  """
  step = int(state.step)
  key = jax.random.fold_in(eval_key, step)
  prepare_key = jax.random.fold_in(key, EVAL_SEED_OFFSET)
  context, info = prepared_evaluation(model, state, prepare_key)
  value = evaluate(eval_step, state.params, context, valid, key,
                   config.eval.batch_size)
  logging.info("step %d  valid %d-sample bound %.3f %s", step,
               config.eval.num_samples, value, info or "")
  if best["valid_log_likelihood"] is None or value > best["valid_log_likelihood"]:
    ckpt.save_best(step, state)
    best = {"valid_log_likelihood": value, "step": step}
    _write_json(os.path.join(workdir, "best.json"), best)
  return value, best, {f"valid_{k}": v for k, v in info.items()}


# Config sections that change neither training nor results (the gradient
# diagnostics draw with keys of their own and update nothing; tested): two
# configs that differ only there describe the same run.
SECTIONS_WITHOUT_EFFECT = ("diagnostics",)


def _as_json(tree):
  return json.loads(json.dumps(tree, sort_keys=True))


def finished_results(config, workdir: str):
  """results.json of a finished run of exactly `config` in `workdir` (its
  config.json equal to `config` but for `SECTIONS_WITHOUT_EFFECT`, and
  its results at `config.train.num_steps`), or None."""
  results = writers.read_json(os.path.join(workdir, "results.json"), None)
  saved = writers.read_json(os.path.join(workdir, "config.json"), None)
  if results is None or saved is None:
    return None
  current = config.to_dict()
  for section in SECTIONS_WITHOUT_EFFECT:
    current.pop(section, None)
    saved.pop(section, None)
  same = _as_json(current) == _as_json(saved)
  if same and results.get("num_steps") == config.train.num_steps:
    return results
  return None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       reevaluate: bool = False) -> dict:
  """Trains and evaluates; returns the contents of results.json.

  Every check (config values, data files, model construction) runs before
  the workdir is created or written. A finished run of the same config in
  `workdir` is reported at once from its results.json (nothing is
  recompiled or evaluated again) unless `reevaluate`.

  Raises:
    ValueError: for a bad config or bad data (nothing written).
    NonFiniteError: when a step goes non-finite (checkpoints stay intact).
  """
  validation.validate_config(config)
  if not reevaluate:
    results = finished_results(config, workdir)
    if results is not None:
      logging.info("%s holds a finished run of this config (%d steps): its "
                   "results.json as it is (re-evaluate with reevaluate=True, "
                   "--reevaluate on the command line).", workdir,
                   results["num_steps"])
      return results
  dataset = setup_lib.load_data(config)
  run = setup_lib.create_train_state(config, dataset)
  prepare_workdir(config, workdir)
  # Data parallel over a 1-D mesh: state replicated (so are restored
  # checkpoints, shaped like it), batches split over the devices.
  mesh = parallel.make_mesh(config.train.data_parallel)
  ckpt = checkpoints.Checkpointer(workdir)
  state, progress = restore(parallel.replicate(run.state, mesh), ckpt, workdir)
  # The fused steps donate their input state (no copy of the parameters and
  # optimiser moments per call), so its leaves need buffers of their own.
  state = steps_lib.own_buffers(state)
  fused = jit_train_steps(config, run, mesh)
  evaluation = build_evaluation(config, run.model, mesh)
  diagnose = gradient_diagnostics.make_measure(config, run)  # None: off
  eval_key = jax.random.PRNGKey(config.seed + EVAL_SEED_OFFSET)
  valid = evaluation_examples(config, dataset, "valid")
  writer = writers.MetricWriter(workdir, enabled=is_primary())
  start_step = int(state.step)
  batches = data_lib.train_batches(
      dataset, config.train.batch_size,
      jax.random.fold_in(jax.random.PRNGKey(config.seed), 7),
      start_batch=start_step)
  # Optional wall-clock budget of this invocation's training, seconds or
  # None for no limit: periodic evaluations and the first chunk (which
  # compiles the fused train steps) are not counted.
  budget = config.train.get("time_budget_s")
  best, start_time, eval_seconds = progress.best, time.time(), 0.0
  compile_seconds = None
  step = start_step
  while step < config.train.num_steps:
    n = min(config.train.steps_per_jit, config.train.num_steps - step)
    chunk_start = time.time()
    state, metrics = train_chunk(fused, state, batches, mesh, n, ckpt,
                                 workdir)
    chunk_seconds = time.time() - chunk_start
    elapsed = time.time() - start_time
    if compile_seconds is None:
      compile_seconds = elapsed
      logging.info("%s %d (%.1f s in the loop)", FIRST_CALL_MESSAGE,
                   step + n, elapsed)
    trained = elapsed - eval_seconds - compile_seconds
    chunk = Chunk(step, step + n, elapsed, _chunk_metrics(metrics),
                  last=(step + n == config.train.num_steps or (
                      budget is not None and trained >= budget)))
    step = chunk.after
    record = {}
    if _crossed(chunk, config.train.log_every_steps):
      record = log_progress(config, chunk, start_step, progress.wall_offset)
    if _crossed(chunk, config.eval.every_steps):
      eval_start = time.time()
      value, best, info = evaluate_and_keep_best(
          config, run.model, evaluation.bound, state, valid, eval_key, ckpt,
          workdir, best)
      eval_seconds += time.time() - eval_start
      record = {"wall_time_s": progress.wall_offset + elapsed,
                **chunk.metrics, **record, "valid_log_likelihood": value,
                **_numbers(info)}
    if diagnose is not None and _crossed(chunk,
                                         config.diagnostics.every_steps):
      diagnostics, seconds = gradient_diagnostics_record(
          diagnose, state, chunk_seconds, n)
      eval_seconds += seconds  # not training time (the budget)
      record = {"wall_time_s": progress.wall_offset + elapsed, **record,
                **diagnostics}
    if record:
      writer.write(step, record)
    if _crossed(chunk, config.train.checkpoint_every_steps):
      ckpt.save(step, state)
    if chunk.last:
      break
  writer.close()
  results = final_evaluation(
      config, workdir, run.model, dataset, state, ckpt, best,
      progress.wall_offset + time.time() - start_time, evaluation)
  ckpt.close()
  return results


def save_samples(images: np.ndarray, path: str, model, dataset) -> None:
  """samples.png: `[N, D]` model samples as images of the data's shape, 8-bit
  values shown on 0..255, in rows of the model's `sample_columns` (e.g.
  one global sample per row, Vahdat et al., 2018, Fig. 4)."""
  writers.save_image_grid(
      images, path, model.sample_columns,
      image_shape=dataset.image_shape,
      max_value=255.0 if dataset.value_type == "uint8" else 1.0)


def evaluation_examples(config, dataset, split: str) -> np.ndarray:
  """The examples of `split` that bounds are evaluated on: all of
  `data.evaluation_split`, or its first `config.eval.max_examples`."""
  data = data_lib.evaluation_split(dataset, split)
  max_examples = config.eval.get("max_examples")
  return data if max_examples is None else data[:max_examples]


def bits_per_dim_entries(split: str, bound: float, stderr: float,
                         num_dims: int) -> dict:
  """`{split}_bits_per_dim` and its standard error: the mean bound in nats
  (PixelCNN++'s unit for 8-bit data, `discretized_logistic.
  nats_to_bits_per_dim`), D = `num_dims` values per example."""
  bits = float(dlogistic.nats_to_bits_per_dim(bound, num_dims))
  return {f"{split}_bits_per_dim": bits,
          f"{split}_bits_per_dim_stderr": stderr / (num_dims * math.log(2.0))}


def final_evaluation(config, workdir, model, dataset, state, ckpt, best,
                     wall_time_s, evaluation: Evaluation | None = None
                     ) -> dict:
  """Test and valid bounds of the best checkpoint, PNGs and results.json.

  `evaluation`: the run's programs (`build_evaluation`; None builds them).
  """
  final_state = ckpt.restore_best(state) if ckpt.best_step() is not None else state
  if evaluation is None:
    evaluation = build_evaluation(
        config, model, parallel.make_mesh(config.train.data_parallel))
  key = jax.random.PRNGKey(config.seed + 2 * EVAL_SEED_OFFSET)
  bounds, extra = {}, {}
  for i, split in enumerate(("valid", "test")):
    # Prepared anew for each split (e.g. a fresh AIS estimate of log Z).
    context, info = prepared_evaluation(
        model, final_state, jax.random.fold_in(key, 200 + i))
    extra.update({f"{split}_{k}": v for k, v in info.items()})
    data = evaluation_examples(config, dataset, split)
    bounds[split], stderr = evaluate_with_stderr(
        evaluation.final_bound, final_state.params, context, data,
        jax.random.fold_in(key, i), config.eval.batch_size)
    if dataset.value_type == "uint8":  # the same bound in bits per dimension
      extra.update(bits_per_dim_entries(split, bounds[split], stderr,
                                        data.shape[1]))
    # The model's own further evaluations (e.g. the XOR flows' greedy flows).
    # Each reported with its standard error over the split's examples.
    for name, extra_eval_step in evaluation.extras.items():
      extra[f"{split}_{name}"], extra[f"{split}_{name}_stderr"] = (
          evaluate_with_stderr(extra_eval_step, final_state.params, context,
                               data, jax.random.fold_in(key, 100 + i),
                               config.eval.batch_size))
  records = writers.read_metrics(workdir)
  train_objectives = [r["train_objective"] for r in records
                      if "train_objective" in r]
  if config.eval.num_image_samples:
    images = evaluation.sample(final_state.params, key,
                               config.eval.num_image_samples)
    if is_primary():
      save_samples(np.asarray(images), os.path.join(workdir, "samples.png"),
                   model, dataset)
  if is_primary():
    writers.plot_curves(records, os.path.join(workdir, "curves.png"))
    writers.plot_gradients(records, os.path.join(workdir, "gradients.png"))
  results = {
      "test_log_likelihood": bounds["test"],
      "valid_log_likelihood": bounds["valid"],
      "train_objective": train_objectives[-1] if train_objectives else None,
      "eval_num_samples": config.eval.final_num_samples,
      "eval_max_examples": config.eval.get("max_examples"),
      "num_steps": int(state.step),
      "best_step": best["step"],
      "wall_time_s": wall_time_s,
      "estimator": config.estimator.name,
      "model": model.description,
      "data": config.data.name,
      **extra,
  }
  _write_json(os.path.join(workdir, "results.json"), results)
  logging.info("results: %s", json.dumps(results))
  return results


def restore_run(workdir: str):
  """The model, best-validation train state and config of a finished run.

  Rebuilds the run's initial state from its `config.json` (`setup.
  create_train_state`, as the loop does) and restores the `best/` checkpoint
  into it. Nothing in `workdir` is written.

  Args:
    workdir: a workdir of `experiments.main`.

  Returns:
    `(model, state, config)`: the `base.Model`, the restored `TrainState`
    and the run's `ConfigDict`.

  Raises:
    FileNotFoundError: without `config.json` or a best checkpoint.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: --workdir must be the "
                            "workdir of a trained run.")
  with open(path) as fh:
    config = ml_collections.ConfigDict(json.load(fh))
  validation.validate_config(config)
  if not os.path.isdir(os.path.join(workdir, "best")):
    raise FileNotFoundError(f"{workdir} has no best/ checkpoint.")
  run = setup_lib.create_train_state(config, setup_lib.load_data(config))
  ckpt = checkpoints.Checkpointer(workdir)
  try:
    if ckpt.best_step() is None:
      raise FileNotFoundError(f"{workdir}/best holds no checkpoint.")
    state = ckpt.restore_best(run.state)
  finally:
    ckpt.close()
  return run.model, state, config
