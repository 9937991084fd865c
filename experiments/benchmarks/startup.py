"""`startup`: seconds from a documented command to its first train step.

Each documented `python -m experiments.main` command (the list of
`experiments.commands`; by default the first one of each config file, as
the tests' default tier trains) runs as a user runs it, in a subprocess
with a fresh workdir, twice on one compilation-cache folder
(`DISCRETE_VI_COMPILATION_CACHE`): "cold" on an empty folder (every
program compiled), "warm" on the folder the cold run filled. A run is timed
from its start to the training loop's log line `loop.FIRST_CALL_MESSAGE`
(after the first call of the fused train steps: imports, data, model
initialisation, tracing and compilation or cache loading, one call of
steps), and then stopped. Other jobs on the machine slow both alike (the
header gives the load).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

from discrete_vi.training import loop
from experiments import commands as commands_lib
from experiments import launcher

TIMEOUT_S = 900.0


class Command(NamedTuple):
  """A documented `experiments.main` command (`commands.main_command`)."""
  text: str  # as documented, without an install before it
  settings: dict  # VAR=value environment settings before it
  args: list  # the arguments after `python -m experiments.main`


def main_commands(everything: bool = False) -> list[Command]:
  """The documented `experiments.main` commands: the first of each config
  file, or all of them with `everything`."""
  out, files = [], set()
  for _, line in commands_lib.commands():
    parsed = commands_lib.main_command(line)
    if parsed is None:
      continue
    settings, args = parsed
    config = commands_lib.config_file(args)
    if everything or config not in files:
      files.add(config)
      text = " ".join([*(f"{k}={v}" for k, v in settings.items()),
                       *commands_lib.MAIN_WORDS, *args])
      out.append(Command(text, settings, args))
  return out


def time_to_first_step(command: Command, cache_dir: str,
                       workdir: str) -> float:
  """Seconds from starting `command` (its `--workdir` replaced by
  `workdir`) to the loop's first-train-call line, with the compilation
  cache in `cache_dir`; the run is then stopped.

  Raises:
    RuntimeError: if the run ends, or `TIMEOUT_S` passes, first.
  """
  env = dict(os.environ, **command.settings,
             **{launcher.CACHE_ENV: cache_dir})
  argv = [sys.executable, "-m", "experiments.main",
          *[a for a in command.args if not a.startswith("--workdir=")],
          f"--workdir={workdir}"]
  start = time.perf_counter()
  process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True,
                             cwd=commands_lib.ROOT)
  tail = []
  try:
    for line in process.stderr:
      if loop.FIRST_CALL_MESSAGE in line:
        return time.perf_counter() - start
      tail = (tail + [line])[-20:]
      if time.perf_counter() - start > TIMEOUT_S:
        break
  finally:
    process.kill()
    process.wait()
  raise RuntimeError(f"{command.text} ended or timed out before its first "
                     f"train step; its last lines:\n{''.join(tail)}")


def measure(command: Command) -> tuple[float, float]:
  """(cold, warm) seconds to the first train step of one command."""
  root = tempfile.mkdtemp(prefix="discrete_vi_startup_")
  try:
    cache = os.path.join(root, "cache")
    return tuple(time_to_first_step(command, cache, os.path.join(root, run))
                 for run in ("cold", "warm"))
  finally:
    shutil.rmtree(root, ignore_errors=True)


def report(*args: str) -> str:
  """ARGS: `all` times every documented `experiments.main` command, not
  only the first of each config file."""
  unknown = [a for a in args if a != "all"]
  if unknown:
    raise SystemExit(f"startup: unknown arguments {unknown}; the only one "
                     "is `all`.")
  rows = ["| command | cold (s) | warm (s) | warm / cold |",
          "|---|---|---|---|"]
  for command in main_commands(everything="all" in args):
    cold, warm = measure(command)
    rows.append(f"| `{command.text}` | {cold:.1f} | {warm:.1f} | "
                f"{warm / cold:.2f} |")
    print(rows[-1], flush=True)
  return "\n".join([
      "## Time to the first train step, cold and warm compilation cache",
      "",
      "Seconds from starting each documented command to the end of its "
      "first call of the fused train steps, in a fresh process and "
      "workdir: cold on an empty compilation cache, warm on the cache the "
      "cold run filled (module docstring of "
      "`experiments/benchmarks/startup.py`).",
      "", *rows, ""])
