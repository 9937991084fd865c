"""What every benchmark measures with (reports, never timed tests).

* `fused_train_step`, `fused_train_setup`: the training loop's own jitted
  train step (`loop.jit_train_steps`: fused, unrolled where the loop
  unrolls it, the state donated), the only way a benchmark builds one.
* `time_interleaved` (and `best_time`, the same loop for one function):
  best-of-repeats wall-clock seconds per call; `compile_timed`: the
  seconds of one XLA compilation.
* `memory`: XLA's planned buffers of a compiled program and the process's
  peak resident set size.
* `header`: the command, commit and machine at the top of every report.
"""

import datetime
import os
import platform
import resource
import time

import jax
import jax.numpy as jnp

from discrete_vi.training import loop
from discrete_vi.training import parallel
from discrete_vi.training import setup
from discrete_vi.training import steps as steps_lib

MIB = 2.0**20


# -- the loop's train step --------------------------------------------------------


def fused_train_step(config, run: setup.Setup, model=None):
  """The training loop's jitted fused train steps of `config` on one
  device (`loop.jit_train_steps`), with `model` (default `run.model`) in
  place of the run's model, e.g. a variant with a part switched off.

  `fn(state, xs [n, B, D]) -> (state, metrics)`; the state is donated, so
  thread it from call to call (`time_interleaved` does).
  """
  if model is not None:
    run = run._replace(model=model)
  return loop.jit_train_steps(config, run, parallel.make_mesh(False))


def first_batches(dataset, batch: int, num_steps: int) -> jax.Array:
  """`[num_steps, batch, D]`: the first training images, in order."""
  return jnp.asarray(dataset.train[:batch * num_steps]).reshape(
      num_steps, batch, -1)


def fused_train_setup(config, dataset, batch: int | None = None):
  """The loop's fused train step of `config`, its initial state and inputs.

  Args:
    config: a run config (its batch size set to `batch` when given).
    dataset: the run's data.
    batch: the batch size (None: the config's).

  Returns:
    `(fused, state, xs)`: `fused(state, xs)` runs `config.train.
    steps_per_jit` steps on `xs  # [steps_per_jit, batch, D]`, the first
    training images; `state` is the run's initial train state, its leaves
    in buffers of their own (`fused` donates it).
  """
  if batch is not None:
    with config.unlocked():
      config.train.batch_size = batch
  run = setup.create_train_state(config, dataset)
  xs = first_batches(dataset, config.train.batch_size,
                     config.train.steps_per_jit)
  return fused_train_step(config, run), steps_lib.own_buffers(run.state), xs


# -- time ---------------------------------------------------------------------------


def time_interleaved(calls, repeats: int = 9, per_repeat: int = 5
                     ) -> list[float]:
  """Best-of-repeats seconds per call of each `(fn, carry, args)`.

  Each `fn(carry, *args)` returns `(next carry, outputs)`; the carry is
  threaded from call to call and never reused, as jitted functions that
  donate it require. The functions are timed round-robin, so load from
  other processes on a shared machine hits all of them alike and their
  ratios stay meaningful. One call of each, first, compiles.
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


def compile_timed(lowered) -> tuple:
  """`(compiled, seconds)`: XLA's compilation of a lowered program
  (`jax.jit(f).lower(...)`) and its wall-clock seconds."""
  start = time.perf_counter()
  compiled = lowered.compile()
  return compiled, time.perf_counter() - start


def best_time(fn, *args, repeats: int = 3) -> float:
  """Best of `repeats` wall-clock seconds of `fn(*args)` after one call
  that compiles (`time_interleaved` of a function without a carry)."""
  def carried(carry, *args):
    return carry, fn(*args)
  return time_interleaved([(carried, None, args)], repeats, per_repeat=1)[0]


# -- memory -------------------------------------------------------------------------


def memory(compiled=None) -> dict:
  """Bytes: the process's peak resident set size so far ("rss_peak",
  Linux's ru_maxrss), and with `compiled` (a `jax.stages.Compiled`) XLA's
  planned buffers: "temp", "argument", "output", "alias" (outputs reusing
  donated arguments) and "peak" = temp + argument + output - alias, the
  working set XLA plans (absent on a backend without the analysis)."""
  out = {"rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
  analysis = None if compiled is None else compiled.memory_analysis()
  if analysis is not None:
    out.update(temp=analysis.temp_size_in_bytes,
               argument=analysis.argument_size_in_bytes,
               output=analysis.output_size_in_bytes,
               alias=analysis.alias_size_in_bytes)
    out["peak"] = (out["temp"] + out["argument"] + out["output"] -
                   out["alias"])
  return out


# -- provenance -----------------------------------------------------------------------


def machine() -> str:
  """One line: OS, CPUs, JAX and its devices, and the load average (other
  jobs on the machine slow every timing; ratios in one run still
  compare)."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as fh:
      names = [l.split(":", 1)[1].strip() for l in fh
               if l.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
  return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
          f"({cpu}), {len(os.sched_getaffinity(0))} usable by this process; "
          f"jax {jax.__version__} on {jax.local_device_count()} "
          f"{jax.default_backend()} device(s); load average {load} at the "
          "end")


def header(command: str, output: str) -> str:
  """The report's first lines: the command, the commit (`comparison.
  git_commit`, "+dirty" when tracked files other than `output` differ)
  and `machine()`."""
  from experiments import comparison  # pylint: disable=g-import-not-at-top
  commit = comparison.git_commit(written=[output])
  date = datetime.date.today().isoformat()
  return (f"Made by `{command}` at commit `{commit}` on {date}; {machine()}."
          "\n\n")
