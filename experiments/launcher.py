"""The start of every absl launcher (`main`, `compare`).

Besides logging, it turns on JAX's persistent compilation cache for user
runs, so that a run's jitted steps compiled once are read back on the next
run of the same command (the conv DVAE++ and HD-VAE quick commands spend
about a minute compiling before their first step). The cache folder is
`$DISCRETE_VI_COMPILATION_CACHE`, else `$XDG_CACHE_HOME/discrete_vi/jax`
(`~/.cache/discrete_vi/jax`); `DISCRETE_VI_COMPILATION_CACHE=off` (or 0,
false, none) turns it off. The tests never call `prepare`, so they
compile as before.
"""

import os
from typing import Optional

from absl import app
from absl import logging
import jax

CACHE_ENV = "DISCRETE_VI_COMPILATION_CACHE"
CACHE_OFF = ("", "0", "off", "false", "none", "no")


def compilation_cache_dir(environ=None) -> Optional[str]:
  """The persistent compilation cache folder of user runs, or None when
  the environment turns it off (module docstring)."""
  environ = os.environ if environ is None else environ
  value = environ.get(CACHE_ENV)
  if value is not None:
    if value.strip().lower() in CACHE_OFF:
      return None
    return os.path.expanduser(value)
  base = environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "discrete_vi", "jax")


def enable_compilation_cache(environ=None) -> Optional[str]:
  """Points JAX's persistent compilation cache at `compilation_cache_dir`
  (entries of programs that took at least 1 s to compile, JAX's default);
  returns the folder, or None when off."""
  path = compilation_cache_dir(environ)
  if path is not None:
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
  return path


def prepare(argv) -> None:
  """Rejects positional arguments, sets up absl logging and the
  compilation cache.

  Progress lines are logged at INFO; orbax's INFO lines (one per checkpoint
  read and write) are filtered out so that they do not drown them.

  Raises:
    app.UsageError: when `argv` has more than the program name.
  """
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(
      lambda record: "/orbax/" not in record.pathname)
  path = enable_compilation_cache()
  logging.info("JAX compilation cache: %s (%s=off to disable).",
               path or "off", CACHE_ENV)
