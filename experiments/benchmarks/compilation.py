"""`compile`: where a run's cold start goes, program by program.

For each documented quick command's config (`ROWS`), one run of the
training loop itself (`loop.train_and_evaluate`) shrunk to one fused call
of train steps, one validation and the final evaluation on one evaluation
batch per split (compilation does not depend on the number of batches),
with JAX's persistent compilation cache off and its in-memory caches
cleared first: every program is compiled cold, as in a user's first run.

JAX reports each compilation's tracing, lowering and XLA compile time with
the name of the jitted function (`jax.monitoring` duration events); each
is charged to the phase of the loop that triggered it (init, train step,
validation, final evaluation, and their `prepare_evaluation`) by the loop's
functions on the Python stack. Programs that take less than
`SMALL_SECONDS` each (op-by-op dispatch of single operations, small
helper jits) are summed per phase.
"""

import collections
import contextlib
import importlib
import sys
import tempfile
import time
from typing import NamedTuple

import jax

from discrete_vi.training import loop

# (config file, argument): the README's quick commands, one per family
# (HD-VAE's two latents differ in their evaluations).
ROWS = (("sbn", "linear"),
        ("xor_flow", "sfe_full,baseline=self_critic"),
        ("dvaepp", "rbm,layers=2"),
        ("dvaepp_conv", "mixed"),
        ("hdvae", "discrete"),
        ("hdvae", "normal"))
SMALL_SECONDS = 0.25
COMPILE_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration": "trace",
                  "/jax/core/compile/backend_compile_duration": "compile"}
# The loop's functions that name a phase, innermost last in a label.
PHASES = {"create_train_state": "init",
          "train_chunk": "train step",
          "evaluate_and_keep_best": "validation",
          "final_evaluation": "final evaluation",
          "prepared_evaluation": "prepare_evaluation"}


class Program(NamedTuple):
  """The compilations of one jitted function in one phase."""
  phase: str
  name: str
  count: int  # XLA compilations
  trace_s: float  # tracing and lowering to MLIR
  compile_s: float  # XLA's compilation


def phase_of(frame) -> str:
  """The loop's phase of the Python stack at `frame` ("other" outside
  every phase: data loading, checkpoints)."""
  names = []
  while frame is not None:
    if frame.f_code.co_name in PHASES:
      names.append(PHASES[frame.f_code.co_name])
    frame = frame.f_back
  return " / ".join(reversed(names)) or "other"


@contextlib.contextmanager
def compile_log():
  """Yields a list that receives `(phase, name, kind, seconds)` for every
  tracing ("trace") and XLA compilation ("compile") inside the block."""
  events = []

  def listener(event, duration, **kwargs):
    if event in COMPILE_EVENTS:
      name = str(kwargs.get("fun_name", "?"))
      if name.startswith("jit(") and name.endswith(")"):
        name = name[4:-1]
      events.append((phase_of(sys._getframe(1)), name,  # pylint: disable=protected-access
                     COMPILE_EVENTS[event], duration))
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield events
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def programs(events, small_seconds: float = SMALL_SECONDS) -> list[Program]:
  """Events summed per (phase, function), slowest first; functions under
  `small_seconds` of compile time per compilation summed per phase as one
  row."""
  totals = collections.defaultdict(lambda: [0, 0.0, 0.0])
  for phase, name, kind, seconds in events:
    entry = totals[(phase, name)]
    if kind == "compile":
      entry[0] += 1
      entry[2] += seconds
    else:
      entry[1] += seconds
  big, small = [], collections.defaultdict(lambda: [0, 0.0, 0.0])
  for (phase, name), (count, trace_s, compile_s) in totals.items():
    if trace_s + compile_s >= small_seconds * max(count, 1):
      big.append(Program(phase, name, count, trace_s, compile_s))
    else:
      rest = small[phase]
      rest[0] += count
      rest[1] += trace_s
      rest[2] += compile_s
  big += [Program(phase, "(small programs)", *rest)
          for phase, rest in small.items() if rest[0]]
  return sorted(big, key=lambda p: -(p.trace_s + p.compile_s))


def shrink(config):
  """`config` (in place) shrunk to one fused call of train steps, one
  validation and one evaluation batch per split."""
  config.train.num_steps = config.train.steps_per_jit
  config.train.checkpoint_every_steps = config.train.num_steps
  config.eval.every_steps = config.train.num_steps
  config.eval.max_examples = config.eval.batch_size
  return config


def measure_run(config, small_seconds: float = SMALL_SECONDS
                ) -> tuple[list[Program], float]:
  """`(programs, wall seconds)` of one cold run of `config` by the loop
  (`programs(..., small_seconds)`)."""
  previous = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  jax.clear_caches()
  try:
    with tempfile.TemporaryDirectory() as workdir, compile_log() as events:
      start = time.perf_counter()
      loop.train_and_evaluate(config, workdir)
      wall = time.perf_counter() - start
  finally:
    jax.config.update("jax_enable_compilation_cache", previous)
  return programs(events, small_seconds), wall


def table(config_file: str, arg: str, run_programs, wall: float
          ) -> list[str]:
  """The markdown lines of one row's programs."""
  total = sum(p.trace_s + p.compile_s for p in run_programs)
  lines = [f"### `configs/{config_file}.py:{arg}`", "",
           f"Cold run (one fused call of train steps, validation, final "
           f"evaluation): {wall:.1f} s wall, of which {total:.1f} s "
           f"({total / wall:.0%}) tracing and compiling.", "",
           "| phase | program | compilations | trace + lower (s) | "
           "XLA compile (s) | total (s) |", "|---|---|---|---|---|---|"]
  for p in run_programs:
    lines.append(f"| {p.phase} | `{p.name}` | {p.count} | {p.trace_s:.2f} "
                 f"| {p.compile_s:.2f} | {p.trace_s + p.compile_s:.2f} |")
  return lines


SUMMARY_PHASES = ("init", "train step", "validation", "final evaluation",
                  "other")


def summary_line(label: str, run_programs, wall: float) -> str:
  """One line of the summary: wall time, compile time in all and per
  phase (sub-phases such as `prepare_evaluation` in their phase)."""
  per_phase = collections.Counter()
  for p in run_programs:
    per_phase[p.phase.split(" / ")[0]] += p.trace_s + p.compile_s
  total = sum(per_phase.values())
  return (f"| `{label}` | {wall:.1f} | {total:.1f} | " +
          " | ".join(f"{per_phase[phase]:.1f}" for phase in SUMMARY_PHASES)
          + " |")


def report(*rows: str) -> str:
  """The markdown report for `rows` ("FILE:ARG", e.g. "hdvae:discrete";
  default `ROWS`)."""
  selected = [tuple(r.split(":", 1)) for r in rows] or ROWS
  for row in selected:
    if len(row) != 2:
      raise ValueError(f"a row is FILE:ARG, e.g. hdvae:discrete; got "
                       f"{':'.join(row)!r}.")
  summary = ["| config | cold run (s) | tracing + compiling (s) | " +
             " | ".join(SUMMARY_PHASES) + " |", "|---" * 8 + "|"]
  sections = []
  for config_file, arg in selected:
    config = importlib.import_module(f"configs.{config_file}").get_config(arg)
    run_programs, wall = measure_run(shrink(config))
    summary.append(summary_line(f"{config_file}:{arg}", run_programs, wall))
    sections += table(config_file, arg, run_programs, wall) + [""]
  return "\n".join(
      ["## Cold compile time of the quick commands", "",
       "Seconds of tracing and XLA compilation per phase of the loop, "
       "then per program (module docstring of "
       "`experiments/benchmarks/compilation.py`).", ""] + summary + [""]
      + sections)
