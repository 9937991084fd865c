"""Test configuration: CPU only, float32, no preallocation, and a compilation
cache private to this test process.

Many tests build the same small networks again (every documented command,
every training-loop test), and JAX's in-memory cache cannot see that two
freshly traced functions lower to the same program. The persistent
compilation cache keys on the lowered program, so it can. Each process
(each xdist worker) gets its own temporary directory, removed at exit, so no
two processes ever read and write the same entry and no run sees another
run's entries. `DISCRETE_VI_TEST_COMPILATION_CACHE=0` turns it off.

Most tests run small programs once, so XLA's CPU compilation, not their
execution, is most of their time: the tests compile at LLVM optimisation
level 0 without the expensive passes (`TEST_XLA_FLAGS`, added to any
XLA_FLAGS of the environment; measured 20-25 % off the xor-flow, launcher
and conv DVAE++ tests). `DISCRETE_VI_TEST_FAST_COMPILE=0` compiles as
users' runs do. pytest's addopts hand tests to the xdist workers with
`--dist worksteal` (an idle worker takes queued tests from the other), so
the load evens out without a hand-kept table of per-file seconds; measured
on 2 cores, as fast as whole files per worker ordered by such a table.
"""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Launchers the tests start as subprocesses never read or fill the user's
# compilation cache (`experiments.launcher`): they compile cold, as on a
# fresh machine.
os.environ["DISCRETE_VI_COMPILATION_CACHE"] = "off"
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
TEST_XLA_FLAGS = ("--xla_backend_optimization_level=0 "
                  "--xla_llvm_disable_expensive_passes=true")
if os.environ.get("DISCRETE_VI_TEST_FAST_COMPILE", "1") != "0":
  os.environ["XLA_FLAGS"] = " ".join(
      f for f in (os.environ.get("XLA_FLAGS"), TEST_XLA_FLAGS) if f)


def require_installed_package() -> None:
  """A clear stop when pytest runs where the package is not installed (a
  bare `pytest` outside the environment of `pip install -e '.[test]'`)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  missing = [m for m in ("jax", "flax", "optax", "discrete_vi")
             if importlib.util.find_spec(m) is None]
  if missing:
    raise pytest.UsageError(
        f"the tests need the package and its test extra installed in this "
        f"Python ({missing} not found): pip install -e '.[test]' && pytest -q")


require_installed_package()


def use_private_compilation_cache() -> None:
  """Points JAX's persistent compilation cache at a fresh directory that is
  deleted when this process exits; caches every program, however small."""
  import jax  # pylint: disable=g-import-not-at-top
  directory = tempfile.mkdtemp(prefix="discrete_vi_jax_cache_")
  atexit.register(shutil.rmtree, directory, ignore_errors=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


if os.environ.get("DISCRETE_VI_TEST_COMPILATION_CACHE", "1") != "0":
  use_private_compilation_cache()
