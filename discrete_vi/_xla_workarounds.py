"""Workarounds for known miscompilations of the installed jaxlib.

jaxlib 0.10.2's CPU backend silently returns wrong values for some fused
reductions that XLA hands to YNNPACK (`sum(a * b)` rewritten as a dot):
e.g. `jnp.sum(t * z, -1) + z[..., 0] * z[..., 1]` on `[2, 16385, 3]`
arrays is off by up to 6 under `jit` (jax-ml/jax#39103; 0.10.1 is
correct). Turning off YNNPACK's reduction fusion
(`--xla_cpu_experimental_ynn_fusion_type=-reduce`) gives the right values
(`tests/xla_workarounds_test.py`). XLA reads `XLA_FLAGS` when JAX creates
its first backend, so `discrete_vi` applies the flag on import, before any
computation; a flag the user set for that option is left alone.
"""

import os

from absl import logging

# jaxlib version -> XLA flags that avoid its known miscompilations.
FLAGS_BY_JAXLIB = {
    "0.10.2": ("--xla_cpu_experimental_ynn_fusion_type=-reduce",),
}


def _jaxlib_version() -> str:
  try:
    from jaxlib import version  # pylint: disable=g-import-not-at-top
  except ImportError:
    return ""
  return version.__version__


def _backend_started() -> bool:
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return bool(getattr(xla_bridge, "_backends", None))


def apply(environ=os.environ) -> tuple[str, ...]:
  """Adds the flags of `FLAGS_BY_JAXLIB` for the installed jaxlib to
  `XLA_FLAGS` (unless that option is already set there).

  Returns:
    The flags added (empty when none apply).
  """
  version = _jaxlib_version()
  current = environ.get("XLA_FLAGS", "")
  added = tuple(f for f in FLAGS_BY_JAXLIB.get(version, ())
                if f.split("=")[0] not in current)
  if not added:
    return ()
  if _backend_started():  # too late: XLA has read its flags
    logging.warning(
        "jaxlib %s miscompiles some CPU reductions (jax-ml/jax#39103) and "
        "JAX's backend started before discrete_vi was imported: set "
        "XLA_FLAGS=%s before the first JAX computation.", version,
        " ".join(added))
    return ()
  environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added
