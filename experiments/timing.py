"""Wall-clock timing for the benchmarks (reports, never timed tests)."""

import time

import jax

from discrete_vi.models import registry
from discrete_vi.training import steps as steps_lib


def fused_train_step(config, run, model=None, *, donate: bool = True):
  """The training loop's fused train step of `config` (`loop.
  compile_steps` without the device mesh): `config.train.steps_per_jit`
  steps of `run`'s optimiser and estimator (`model`, default `run.model`)
  in one `lax.scan`, unrolled when the family declares it on a CPU
  (`registry.unroll_steps`), the state donated unless `donate=False`.
  `fn(state, xs [n, B, D]) -> (state, metrics)`."""
  step = steps_lib.make_train_step(model or run.model, run.tx, run.estimator)
  return jax.jit(steps_lib.fuse_steps(step, unroll=registry.unroll_steps(
      config)), donate_argnums=0 if donate else ())


def best_time(fn, *args, repeats: int = 3) -> float:
  """Best of `repeats` wall-clock seconds of fn(*args), after one warm-up
  call (which compiles)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def time_interleaved(calls, repeats: int = 9, per_repeat: int = 5
                     ) -> list[float]:
  """Best-of-repeats seconds per call of each `(fn, carry, args)`.

  Each `fn(carry, *args)` returns `(next carry, outputs)`; the carry is
  threaded from call to call and never reused, as jitted functions that
  donate it require. The functions are timed round-robin, so load from
  other processes on a shared machine hits all of them alike and their
  ratios stay meaningful.
  """
  carries = [steps_lib.own_buffers(carry) for _, carry, _ in calls]

  def call(i):
    fn, _, args = calls[i]
    carries[i], out = fn(carries[i], *args)
    return carries[i], out
  for i in range(len(calls)):
    jax.block_until_ready(call(i))  # compile
  best = [float("inf")] * len(calls)
  for _ in range(repeats):
    for i in range(len(calls)):
      start = time.perf_counter()
      for _ in range(per_repeat):
        out = call(i)
      jax.block_until_ready(out)
      best[i] = min(best[i], (time.perf_counter() - start) / per_repeat)
  return best


def compiled_memory(compiled) -> dict:
  """XLA's memory analysis of a compiled function, in bytes: "temp",
  "argument", "output", "alias" (outputs reusing donated arguments) and
  "peak" = temp + argument + output - alias, the working set XLA plans
  (not the process's RSS). Empty on a backend without the analysis."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return {}
  out = {"temp": analysis.temp_size_in_bytes,
         "argument": analysis.argument_size_in_bytes,
         "output": analysis.output_size_in_bytes,
         "alias": analysis.alias_size_in_bytes}
  out["peak"] = out["temp"] + out["argument"] + out["output"] - out["alias"]
  return out
