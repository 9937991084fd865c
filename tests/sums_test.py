"""Tests of discrete_vi.sums: the CPU-fast sums equal jnp.sum."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import sums


@pytest.mark.parametrize("shape", [(7,), (3, 784), (2, 5, 200), (1, 1)])
def test_sum_last_and_sum_all_equal_jnp_sum(shape):
  a = jax.random.normal(jax.random.PRNGKey(0), shape) * 10
  np.testing.assert_allclose(sums.sum_last(a), jnp.sum(a, -1), rtol=1e-5,
                             atol=1e-4)
  np.testing.assert_allclose(jax.jit(sums.sum_all)(a), jnp.sum(a), rtol=1e-5,
                             atol=1e-3)
  chex.assert_shape(sums.sum_last(a), shape[:-1])


def test_sum_all_of_a_scalar():
  assert float(sums.sum_all(jnp.float32(2.5))) == 2.5


def test_gradients_are_ones():
  a = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(
      jax.grad(lambda x: jnp.sum(sums.sum_last(x) * jnp.arange(3.0)))(a),
      jnp.broadcast_to(jnp.arange(3.0)[:, None], (3, 4)))
  np.testing.assert_array_equal(jax.grad(sums.sum_all)(a), jnp.ones((3, 4)))


@pytest.mark.parametrize("bad, expected", [(jnp.nan, "nan"), (jnp.inf, "inf"),
                                           (-jnp.inf, "-inf")])
def test_non_finite_elements_propagate_as_in_jnp_sum(bad, expected):
  a = jnp.ones((4, 300)).at[2, 123].set(bad)
  last = np.asarray(jax.jit(sums.sum_last)(a))
  assert str(last[2]) == expected and np.all(last[[0, 1, 3]] == 300.0)
  assert str(float(jax.jit(sums.sum_all)(a))) == expected


def test_cpu_lowering_takes_the_matrix_product_branch():
  """The speed-up is the point of the module: on CPU the sums must lower to
  a dot, not to a reduction of the whole array."""
  if jax.default_backend() != "cpu":
    pytest.skip("the product branch is the CPU one")
  a = jnp.ones((24, 784))
  hlo = jax.jit(sums.sum_last).lower(a).as_text()
  assert "dot_general" in hlo or "dot(" in hlo
  reference = jax.jit(lambda x: jnp.sum(x, -1)).lower(a).as_text()
  assert "dot_general" not in reference and "dot(" not in reference
