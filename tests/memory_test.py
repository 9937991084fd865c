"""Variational memory layers (Lievin et al., 2019, Eq. 2) with product keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.models import memory

N, K, D1, D2, H = 3, 16, 8, 4, 5


@pytest.fixture(scope="module")
def layer():
  module = memory.VariationalMemory(N, K, D1, D2)
  h = jax.random.normal(jax.random.PRNGKey(0), (2, H))
  params = jax.jit(module.init)(jax.random.PRNGKey(1), h)["params"]
  return module, params, h


def _apply(module, params, method, *args):
  return module.apply({"params": params}, *args,
                      method=getattr(memory.VariationalMemory, method))


def test_product_key_logits_equal_the_explicit_keys_they_define(layer):
  module, params, h = layer
  logits = _apply(module, params, "logits", h, "posterior")  # [2, N, K]
  query = _apply(module, params, "query", h, "posterior")  # [2, N, D1]
  keys = memory.explicit_keys(params["sub_keys_1"], params["sub_keys_2"])
  assert keys.shape == (N, K, D1)
  # Slot a r + b holds the key [c1_a, c2_b].
  np.testing.assert_array_equal(keys[1, 2 * 4 + 3, :4],
                                params["sub_keys_1"][1, 2])
  np.testing.assert_array_equal(keys[1, 2 * 4 + 3, 4:],
                                params["sub_keys_2"][1, 3])
  np.testing.assert_allclose(logits, memory.key_logits(query, keys),
                             rtol=1e-5, atol=1e-5)
  assert "keys" not in params  # the K x d1 matrix is never a parameter


def test_explicit_keys_layer_matches_its_keys():
  module = memory.VariationalMemory(2, 5, 3, 2, product_keys=False)
  h = jnp.ones((1, H))
  params = jax.jit(module.init)(jax.random.PRNGKey(0), h)["params"]
  query = _apply(module, params, "query", h, "prior")
  np.testing.assert_allclose(_apply(module, params, "logits", h, "prior"),
                             jnp.einsum("bnd,nkd->bnk", query, params["keys"]),
                             rtol=1e-6)


def test_read_is_the_convex_combination_of_values(layer):
  module, params, _ = layer
  z = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(3), (2, N, K)))
  y = _apply(module, params, "read", z)  # [2, N * D2]
  expected = np.einsum("bnk,nkd->bnd", z, params["values"]).reshape(2, -1)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
  hard = jax.nn.one_hot(jnp.array([[1, 4, 15]]), K)
  np.testing.assert_allclose(
      _apply(module, params, "read", hard)[0].reshape(N, D2),
      params["values"][jnp.arange(N), jnp.array([1, 4, 15])])


def test_relaxed_output_tends_to_the_hard_output_as_tau_goes_to_zero(layer):
  module, params, h = layer
  logits = _apply(module, params, "logits", h, "posterior")
  key = jax.random.PRNGKey(7)
  hard, _ = memory.sample_output(key, logits, "hard")
  y_hard = _apply(module, params, "read", hard)
  gaps = []
  for tau in (1.0, 0.1, 0.01, 0.001):
    z, same_hard = memory.sample_output(key, logits, "relaxed", tau)
    np.testing.assert_array_equal(same_hard, hard)  # same noise, same H
    np.testing.assert_array_equal(memory.harden(z), hard)
    gaps.append(float(jnp.max(jnp.abs(_apply(module, params, "read", z) -
                                      y_hard))))
  assert all(a >= b for a, b in zip(gaps, gaps[1:])), gaps
  assert gaps[0] > 1e-2 and gaps[-1] < 1e-4, gaps


def test_straight_through_output_has_hard_value_relaxed_gradient(layer):
  _, _, _ = layer
  logits = jax.random.normal(jax.random.PRNGKey(2), (N, K))
  key, w = jax.random.PRNGKey(5), jax.random.normal(jax.random.PRNGKey(6),
                                                    (N, K))
  z, hard = memory.sample_output(key, logits, "straight_through", 0.5)
  np.testing.assert_array_equal(z, hard)
  grad_st = jax.grad(lambda l: jnp.sum(
      w * memory.sample_output(key, l, "straight_through", 0.5)[0]))(logits)
  grad_relaxed = jax.grad(lambda l: jnp.sum(
      w * memory.sample_output(key, l, "relaxed", 0.5)[0]))(logits)
  np.testing.assert_allclose(grad_st, grad_relaxed, rtol=1e-6)
  assert float(jnp.max(jnp.abs(grad_st))) > 1e-3


def test_gradients_reach_keys_values_and_query_net(layer):
  """Exact gradients of a relaxed read-out: values analytically, keys and
  the query net against the same function built from explicit keys."""
  module, params, h = layer
  key, tau = jax.random.PRNGKey(11), 0.7
  w = jax.random.normal(jax.random.PRNGKey(12), (2, N * D2))
  noise = jax.random.gumbel(key, (2, N, K))

  def objective(p):
    logits = _apply(module, p, "logits", h, "posterior")
    z = jax.nn.softmax((logits + noise) / tau)
    return jnp.sum(w * _apply(module, p, "read", z))

  def objective_explicit(p):
    query = h @ p["query_posterior"]["kernel"] + p["query_posterior"]["bias"]
    keys = memory.explicit_keys(p["sub_keys_1"], p["sub_keys_2"])
    logits = memory.key_logits(query.reshape(2, N, D1), keys)
    z = jax.nn.softmax((logits + noise) / tau)
    return jnp.sum(w.reshape(2, N, D2)[:, :, None, :] * z[..., None] *
                   p["values"][None])

  grads = jax.jit(jax.grad(objective))(params)
  grads_explicit = jax.jit(jax.grad(objective_explicit))(params)
  logits = _apply(module, params, "logits", h, "posterior")
  z = jax.nn.softmax((logits + noise) / tau)
  # d/dv_{n,k} sum_b w_{b,n} . sum_k z_{b,n,k} v_{n,k} = sum_b z_{b,n,k} w_{b,n}
  np.testing.assert_allclose(
      grads["values"], jnp.einsum("bnk,bnd->nkd", z, w.reshape(2, N, D2)),
      rtol=1e-4, atol=1e-6)
  for name in ("sub_keys_1", "sub_keys_2"):
    np.testing.assert_allclose(grads[name], grads_explicit[name], rtol=1e-4,
                               atol=1e-6)
    assert float(jnp.max(jnp.abs(grads[name]))) > 1e-3
  np.testing.assert_allclose(grads["query_posterior"]["kernel"],
                             grads_explicit["query_posterior"]["kernel"],
                             rtol=1e-4, atol=1e-6)
  assert float(jnp.max(jnp.abs(grads["query_posterior"]["kernel"]))) > 1e-3
  # A finite difference confirms one key entry.
  eps = 1e-2
  bump = jax.tree_util.tree_map(jnp.copy, params)
  bump["sub_keys_2"] = bump["sub_keys_2"].at[0, 1, 2].add(eps)
  fd = (objective(bump) - objective(params)) / eps
  np.testing.assert_allclose(fd, grads["sub_keys_2"][0, 1, 2], rtol=0.05,
                             atol=1e-3)


@pytest.mark.parametrize("name,options", [
    pytest.param("rloo", {"num_samples": 4}, marks=pytest.mark.slow),
    pytest.param("vimco", {"num_samples": 4}, marks=pytest.mark.slow),
    ("reinforce", {})])
def test_unbiased_estimators_train_the_memory(name, options):
  """The mean estimator gradient (keys, values, query net) over many draws
  equals the exact gradient of E_q[f] by enumeration: one variable, K = 4."""
  module = memory.VariationalMemory(1, 4, 2, 2, queries=("posterior",))
  h = jnp.array([[0.3, -1.0, 0.5]])
  params = module.init(jax.random.PRNGKey(0), h)["params"]
  target = jnp.array([0.5, -0.5])

  def f_of(p):
    return lambda z: -jnp.sum(jnp.square(
        _apply(module, p, "read", z) - target), -1)  # [1]

  def logits_of(p):
    return _apply(module, p, "logits", h, "posterior")  # [1, 1, 4]

  def exact(p):
    probs = jax.nn.softmax(logits_of(p))[0, 0]
    values = jax.vmap(lambda k: f_of(p)(jax.nn.one_hot(k, 4)[None, None]))(
        jnp.arange(4))[:, 0]
    return jnp.sum(probs * values)

  est = estimators.make(name, distribution="categorical", **options)
  if name == "vimco":  # VIMCO's objective is log-mean-exp of weights
    def exact(p):  # pylint: disable=function-redefined
      probs = jax.nn.softmax(logits_of(p))[0, 0]
      values = jax.vmap(lambda k: f_of(p)(jax.nn.one_hot(k, 4)[None, None]))(
          jnp.arange(4))[:, 0]
      idx = jnp.stack(jnp.meshgrid(*[jnp.arange(4)] * 4, indexing="ij"),
                      -1).reshape(-1, 4)
      log_mean = jax.nn.logsumexp(values[idx], -1) - jnp.log(4.0)
      return jnp.sum(jnp.prod(probs[idx], -1) * log_mean)

  def estimate(key):
    return jax.grad(lambda p: jnp.sum(
        est.estimate(key, logits_of(p), f_of(p))[0]))(params)

  keys = jax.random.split(jax.random.PRNGKey(1), 5_000)
  grads = jax.jit(jax.vmap(estimate))(keys)
  truth = jax.grad(lambda p: -exact(p))(params)
  for path in (("values",), ("sub_keys_1",), ("query_posterior", "kernel")):
    g = grads
    t = truth
    for part in path:
      g, t = g[part], t[part]
    mean = np.asarray(jnp.mean(g, 0))
    se = np.asarray(jnp.std(g, 0)) / np.sqrt(len(keys))
    assert np.all(np.abs(mean - np.asarray(t)) <= 4 * se + 1e-5), (path, mean,
                                                                 t, se)
    assert np.max(np.abs(np.asarray(t))) > 1e-3, path


def test_bad_shapes_fail_naming_the_value():
  with pytest.raises(ValueError, match="num_classes=10"):
    memory.check_memory_shape(10, 8, True)
  with pytest.raises(ValueError, match="key_dim=7"):
    memory.check_memory_shape(16, 7, True)
  assert memory.check_memory_shape(10, 7, False) == 0
  with pytest.raises(ValueError, match="output"):
    memory.sample_output(jax.random.PRNGKey(0), jnp.zeros((1, 4)), "soft")
