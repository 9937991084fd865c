"""The jaxlib miscompilation workaround (`discrete_vi._xla_workarounds`)."""

import jax
import jax.numpy as jnp
import numpy as np

import discrete_vi  # pylint: disable=unused-import  (applies the flags)
from discrete_vi import _xla_workarounds


def test_fused_reductions_are_right_under_jit():
  """jax-ml/jax#39103's shapes: jaxlib 0.10.2 without the workaround is off
  by ~6 here; the jitted values must equal numpy's."""
  f = lambda z, t: jnp.sum(t * z, -1) + z[..., 0] * z[..., 1]
  rng = np.random.RandomState(0)
  for shape in [(2, 16385, 3), (8, 8192, 3)]:
    z = (rng.rand(*shape) < 0.5).astype(np.float32)
    t = rng.randn(*shape[1:]).astype(np.float32)
    expected = np.sum(t * z, -1) + z[..., 0] * z[..., 1]
    np.testing.assert_allclose(jax.jit(f)(z, t), expected, rtol=1e-5,
                               atol=1e-5)


def test_flags_are_added_once_and_respect_the_users():
  environ = {"XLA_FLAGS": "--other=1"}
  original = (_xla_workarounds._jaxlib_version,
              _xla_workarounds._backend_started)
  try:
    _xla_workarounds._backend_started = lambda: False
    _xla_workarounds._jaxlib_version = lambda: "0.10.2"
    added = _xla_workarounds.apply(environ)
    assert added and all(f in environ["XLA_FLAGS"] for f in added)
    assert environ["XLA_FLAGS"].startswith("--other=1")
    assert _xla_workarounds.apply(environ) == ()
    users = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=all"}
    assert _xla_workarounds.apply(users) == ()
    _xla_workarounds._jaxlib_version = lambda: "0.10.1"
    assert _xla_workarounds.apply({}) == ()
    # Once JAX's backend runs, XLA has read its flags: nothing is set.
    _xla_workarounds._jaxlib_version = lambda: "0.10.2"
    _xla_workarounds._backend_started = lambda: True
    late = {}
    assert _xla_workarounds.apply(late) == () and "XLA_FLAGS" not in late
  finally:
    (_xla_workarounds._jaxlib_version,
     _xla_workarounds._backend_started) = original
