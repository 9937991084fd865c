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

from discrete_vi.training import loop
from experiments import commands as commands_lib
from experiments import launcher

MAIN = ("python", "-m", "experiments.main")
TIMEOUT_S = 900.0


def main_commands(everything: bool = False) -> list[tuple[str, list[str]]]:
  """`(command, words)` of the documented `experiments.main` commands: the
  first of each config file, or all of them with `everything`. The words
  keep any leading `VAR=value` environment settings; an install before
  `&&` is dropped."""
  out, files = [], set()
  for _, line in commands_lib.commands():
    words = commands_lib.arguments(line)
    if "&&" in words:
      words = words[len(words) - words[::-1].index("&&"):]
    settings = [w for w in words[:3] if "=" in w and not w.startswith("-")]
    rest = words[len(settings):]
    if tuple(rest[:3]) != MAIN:
      continue
    config = [w.split("=", 1)[1].split(":", 1)[0] for w in rest
              if w.startswith("--config=")][0]
    if everything or config not in files:
      files.add(config)
      out.append((" ".join(words), words))
  return out


def time_to_first_step(words: list[str], cache_dir: str,
                       workdir: str) -> float:
  """Seconds from starting `words` (a documented command; its `--workdir`
  replaced by `workdir`) to the loop's first-train-call line, with the
  compilation cache in `cache_dir`; the run is then stopped.

  Raises:
    RuntimeError: if the run ends, or `TIMEOUT_S` passes, first.
  """
  env = dict(os.environ, **{launcher.CACHE_ENV: cache_dir})
  argv = []
  for w in words:
    if not argv and "=" in w and not w.startswith("-"):
      key, value = w.split("=", 1)
      env[key] = value
    elif w.startswith("--workdir="):
      argv.append(f"--workdir={workdir}")
    else:
      argv.append(sys.executable if w == "python" and not argv else w)
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
  raise RuntimeError(f"{' '.join(words)} ended or timed out before its first "
                     f"train step; its last lines:\n{''.join(tail)}")


def measure(words: list[str]) -> tuple[float, float]:
  """(cold, warm) seconds to the first train step of one command."""
  root = tempfile.mkdtemp(prefix="discrete_vi_startup_")
  try:
    cache = os.path.join(root, "cache")
    return tuple(time_to_first_step(words, cache, os.path.join(root, run))
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
  for command, words in main_commands(everything="all" in args):
    cold, warm = measure(words)
    rows.append(f"| `{command}` | {cold:.1f} | {warm:.1f} | "
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
