"""Tests of discrete_vi.models.made: masked autoencoders and their masks.

The autoregressive and context properties are checked on the network itself,
by exact zeros (and generic non-zeros) of its Jacobian at a random input with
every parameter (biases too) randomised, not only by reading the masks.
"""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi.models import made as made_lib

D = 5
ORDERS = ["natural", 3]


def random_params(made, d=D, with_context=False, seed=0, scale=0.7):
  """Params of `made` on D = d, every leaf (biases too) random normal."""
  x = jnp.zeros((d,))
  shapes = jax.eval_shape(made.init, jax.random.PRNGKey(seed), x,
                          x if with_context else None)["params"]
  leaves, tree = jax.tree_util.tree_flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(tree, [
      jnp.asarray(scale * rng.standard_normal(leaf.shape), jnp.float32)
      for leaf in leaves])


def random_input(shape, seed):
  """Non-binary inputs of both signs, so no ReLU is dead everywhere."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape),
                     jnp.float32)


@functools.lru_cache(maxsize=None)
def jacobians(made):
  """`(params, x [B, D], c) -> d out / d x` (and `d out / d c`), batched."""
  def f(params, x, c):
    return made.apply({"params": params}, x, c).reshape(x.shape[-1], -1)
  argnums = 1 if made.context is None else (1, 2)
  return jax.vmap(jax.jacfwd(f, argnums), in_axes=(None, 0, 0))


def dependence(made, params, x, c=None, wrt="x"):
  """`[D_out, D_in]` bool: at some input of the batch `x` (`[B, D]`) some
  output of unit d has a non-zero derivative in x_j (or c_j: wrt="c")."""
  jac = jacobians(made)(params, x, c)  # [B, D, n, D] (a pair with context)
  if made.context is not None:
    jac = jac[0 if wrt == "x" else 1]
  return np.any(np.asarray(jac) != 0, axis=(0, 2))


def hidden_path(masks, first=None):
  """`[D_in, D_out]` bool: a masked path from input (or `first`) to output."""
  conn = masks.hidden[0] if first is None else first
  for mask in masks.hidden[1:]:
    conn = conn @ mask
  return (conn @ masks.output) > 0


def earlier(m):
  """`[D_out, D_in]`: m(j) < m(d), the inputs output d may see."""
  return m[None, :] < m[:, None]


# -- the autoregressive property -------------------------------------------

@pytest.mark.parametrize("hidden_dims", [(), (16,), (12, 10)])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("num_outputs", [1, 3])
def test_output_depends_exactly_on_earlier_inputs(hidden_dims, order,
                                                  num_outputs):
  x = random_input((4, D), seed=4)
  # With the direct connection every earlier input is seen.
  made = made_lib.MADE(hidden_dims, num_outputs, order)
  allowed = earlier(made.masks(D).order)
  seen = dependence(made, random_params(made), x)
  np.testing.assert_array_equal(seen, allowed)
  if not hidden_dims:
    return
  # Through the hidden layers only: what the masks connect, never later.
  made = made_lib.MADE(hidden_dims, num_outputs, order, activation="tanh",
                       direct=False)
  masks = made.masks(D)
  seen = dependence(made, random_params(made), x)
  assert not np.any(seen & ~allowed), "output sees a later or its own input"
  np.testing.assert_array_equal(seen, hidden_path(masks).T)
  np.testing.assert_array_equal(seen, allowed)  # widths >= D - 1


@pytest.mark.parametrize("hidden_dims", [(16,), (12, 10)])
def test_relu_hidden_path_reaches_every_earlier_input(hidden_dims):
  made = made_lib.MADE(hidden_dims, direct=False)
  seen = dependence(made, random_params(made), random_input((4, D), seed=4))
  np.testing.assert_array_equal(seen, earlier(made.masks(D).order))


# -- context modes ---------------------------------------------------------

CONTEXT_ALLOWED = {
    "unmasked": lambda m: np.ones((len(m), len(m)), bool),
    "strict": earlier,
    "inclusive": lambda m: m[None, :] <= m[:, None],
}


@pytest.mark.parametrize("mode", made_lib.CONTEXT_MODES)
@pytest.mark.parametrize("hidden_dims", [(), (16,), (12, 10)])
@pytest.mark.parametrize("order", ORDERS)
def test_context_reaches_the_outputs_its_mode_allows(mode, hidden_dims, order):
  made = made_lib.MADE(hidden_dims, order=order, context=mode,
                       activation="tanh")
  masks = made.masks(D)
  allowed = CONTEXT_ALLOWED[mode](masks.order)
  params = random_params(made, with_context=True)
  x, c = random_input((4, D), seed=4), random_input((4, D), seed=5)
  seen = dependence(made, params, x, c, wrt="c")
  np.testing.assert_array_equal(seen, allowed)
  if mode == "unmasked":  # the first unit in order too
    assert np.all(seen[masks.order == 1])
  if mode == "inclusive":  # c_d reaches output d
    assert np.all(np.diag(seen))
  # The input masks are unchanged by the context.
  np.testing.assert_array_equal(dependence(made, params, x, c),
                                earlier(masks.order))
  if not hidden_dims:
    return
  # Through the hidden layers alone (direct context kernel zeroed).
  params["context_output"]["kernel"] = jnp.zeros((D, D))
  seen = dependence(made, params, x, c, wrt="c")
  assert not np.any(seen & ~allowed)
  np.testing.assert_array_equal(
      seen, hidden_path(masks, masks.context_hidden).T)


def test_strict_context_equal_to_the_input_keeps_the_model_autoregressive():
  """c = x (the XOR flow's first layer): output d still sees x_{<d} only."""
  made = made_lib.MADE((16,), order=3, context="strict")
  params = random_params(made, with_context=True)
  jac = jax.jit(jax.vmap(jax.jacfwd(
      lambda x: made.apply({"params": params}, x, x))))(
          random_input((4, D), seed=4))  # [B, D, D]
  np.testing.assert_array_equal(np.any(np.asarray(jac) != 0, 0),
                                earlier(made.masks(D).order))


# -- masks -----------------------------------------------------------------

@pytest.mark.parametrize("num_units", [1, 2, 3, 10, 784])
@pytest.mark.parametrize("widths", [(3, 9, 20, 256, 3), (1, 20), (20, 1, 5)])
def test_hidden_degrees_are_spread_evenly_over_one_to_d_minus_one(num_units,
                                                                  widths):
  top = max(num_units - 1, 1)
  degrees = made_lib.hidden_degrees(num_units, widths)
  assert [len(m) for m in degrees] == list(widths)
  low = 1
  for m in degrees:
    # Germain et al.: never below the smallest degree of the layer below.
    assert m.min() >= low and m.max() == top, m
    span = top - low + 1
    counts = np.bincount(m - low, minlength=span)
    if len(m) >= span:  # every degree, each as often as the others (+-1)
      assert counts.min() >= 1 and counts.max() - counts.min() <= 1, counts
    elif len(m) > 1:  # distinct, both ends, steps as equal as integers allow
      steps = np.diff(np.sort(m))
      assert counts.max() == 1 and m.min() == low, m
      assert steps.max() - steps.min() <= 1, steps
    low = int(m.min())


@pytest.mark.parametrize("context", [None, *made_lib.CONTEXT_MODES])
@pytest.mark.parametrize("order", ORDERS)
def test_masks_are_binary_and_follow_the_degree_rule(context, order):
  masks = made_lib.make_masks(6, (9, 7), order, context)
  m = masks.order
  np.testing.assert_array_equal(np.sort(m), np.arange(1, 7))
  np.testing.assert_array_equal(made_lib.make_masks(6, (9, 7), order).order, m)
  h1, h2 = made_lib.hidden_degrees(6, (9, 7))
  np.testing.assert_array_equal(masks.hidden[0], m[:, None] <= h1[None, :])
  np.testing.assert_array_equal(masks.hidden[1], h1[:, None] <= h2[None, :])
  np.testing.assert_array_equal(masks.output, h2[:, None] < m[None, :])
  np.testing.assert_array_equal(masks.direct, earlier(m).T)
  arrays = [*masks.hidden, masks.output, masks.direct]
  if context is None:
    assert masks.context_hidden is None and masks.context_output is None
  else:
    chex.assert_shape([masks.context_hidden, masks.context_output],
                      [(6, 9), (6, 6)])
    arrays += [masks.context_hidden, masks.context_output]
  for mask in arrays:
    assert mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}


def test_no_hidden_layer_masks():
  masks = made_lib.make_masks(4, (), context="strict")
  assert masks.hidden == () and masks.context_hidden is None
  chex.assert_shape(masks.output, (0, 4))
  np.testing.assert_array_equal(masks.context_output, masks.direct)


@pytest.mark.parametrize("hidden_dims", [(), (1,), (16,), (12, 10)])
@pytest.mark.parametrize("num_outputs", [1, 3])
def test_single_unit_gives_a_constant_bias(hidden_dims, num_outputs):
  made = made_lib.MADE(hidden_dims, num_outputs)
  masks = made.masks(1)
  for m in made_lib.hidden_degrees(1, hidden_dims):
    np.testing.assert_array_equal(m, 1)
  assert not np.any(masks.output) and not np.any(masks.direct)
  params = random_params(made, d=1)
  x = random_input((4, 1), seed=2)
  out = made.apply({"params": params}, x)
  expected = jnp.broadcast_to(params["output"]["bias"], (4, num_outputs))
  np.testing.assert_array_equal(out, expected.reshape(out.shape))
  chex.assert_shape(out, (4, 1) if num_outputs == 1 else (4, 1, num_outputs))


# -- hidden paths reach every input ----------------------------------------

N = 10  # D of these tests: widths below, equal to and above D - 1 = 9.
WIDE = [(9,), (20,), (9, 9), (20, 9), (9, 20)]  # every width >= D - 1
NARROW = [(3,), (4,), (3, 3), (20, 3), (3, 20)]  # one narrow width W < D - 1
MANY_ORDERS = ["natural", 0, 3, 7]


def hidden_dependence(hidden_dims, order, d=N):
  """Masks, and the `[D_out, D_in]` Jacobian support of the hidden paths."""
  made = made_lib.MADE(hidden_dims, order=order, activation="tanh",
                       direct=False)
  seen = dependence(made, random_params(made, d=d),
                    random_input((4, d), seed=4))
  return made.masks(d), seen


@pytest.mark.parametrize("hidden_dims", WIDE + NARROW)
@pytest.mark.parametrize("order", MANY_ORDERS)
def test_every_input_reaches_a_hidden_unit_and_every_output_reads_one(
    hidden_dims, order):
  masks = made_lib.make_masks(N, hidden_dims, order)
  m = masks.order
  assert np.all(masks.hidden[0][m < N].any(1)), "input reaches no unit"
  path = hidden_path(masks)  # [D_in, D_out]
  assert np.all(path[m < N].any(1)), "input reaches no output"
  assert np.all(path[:, m > 1].any(0)), "output reads no hidden unit"
  for into, out_of in zip(masks.hidden, masks.hidden[1:] + (masks.output,)):
    assert np.all(into.any(0)) and np.all(out_of.any(1)), "a dead unit"


@pytest.mark.parametrize("hidden_dims", WIDE)
@pytest.mark.parametrize("order", MANY_ORDERS)
def test_wide_hidden_layers_connect_every_earlier_input(hidden_dims, order):
  masks, seen = hidden_dependence(hidden_dims, order)
  allowed = earlier(masks.order)
  np.testing.assert_array_equal(hidden_path(masks).T, allowed)
  np.testing.assert_array_equal(seen, allowed)


@pytest.mark.parametrize("hidden_dims", NARROW)
@pytest.mark.parametrize("order", MANY_ORDERS)
def test_narrow_hidden_layers_connect_inputs_a_degree_gap_apart(hidden_dims,
                                                                order):
  """W < D - 1 units cannot hold every degree, so some x_{d-1} -> output d
  pair has no hidden path; W degrees spread over 1..D-1 still connect every
  input ceil((D - 2) / (W - 1)) or more places earlier."""
  masks, seen = hidden_dependence(hidden_dims, order)
  m = masks.order
  gap = math.ceil((N - 2) / (min(hidden_dims) - 1))
  np.testing.assert_array_equal(seen, hidden_path(masks).T)
  assert not np.any(seen & ~earlier(m)), "output sees a later input"
  assert np.all(seen[m[:, None] - m[None, :] >= gap])


@pytest.mark.parametrize("hidden_dims", [(1,), (1, 20), (3, 1)])
@pytest.mark.parametrize("order", ["natural", 3])
def test_width_one_layer_feeds_every_earlier_input_to_the_last_output(
    hidden_dims, order):
  masks, seen = hidden_dependence(hidden_dims, order)
  m = masks.order
  assert np.all(masks.hidden[0][m < N].any(1)), "input reaches no unit"
  expected = (m[:, None] == N) & (m[None, :] < N)  # [D_out, D_in]
  np.testing.assert_array_equal(hidden_path(masks).T, expected)
  np.testing.assert_array_equal(seen, expected)


@pytest.mark.parametrize("hidden_dims", [(1,), (3,), (3, 1)])
@pytest.mark.parametrize("order", ["natural", 3])
def test_two_units_the_second_sees_the_first_through_every_hidden_unit(
    hidden_dims, order):
  for m in made_lib.hidden_degrees(2, hidden_dims):
    np.testing.assert_array_equal(m, 1)
  masks, seen = hidden_dependence(hidden_dims, order, d=2)
  np.testing.assert_array_equal(seen, earlier(masks.order))


@pytest.mark.parametrize("order", ["natural", 0])
def test_a_256_wide_made_on_784_pixels_sees_every_pixel_but_the_last(order):
  masks = made_lib.make_masks(784, (256,), order)
  reached = masks.hidden[0].any(1)  # [D]
  assert reached.sum() == 783 and not reached[masks.order == 784]
  assert np.all(masks.output[:, masks.order > 1].any(0))


# -- incremental evaluation ------------------------------------------------

def run_incremental(inc, m, x, c=None, upfront=False):
  """Logits `[B, D]`: units in order, context d before logit d, input after."""
  state = inc.start(x.shape[:-1], c if upfront else None)
  logits = [None] * len(m)
  for d in np.argsort(m):
    if c is not None and not upfront:
      state = inc.add_context(state, d, c[..., d])
    logits[d] = inc.logit(state, d)
    state = inc.add_input(state, d, x[..., d])
  return jnp.stack(logits, -1)


@pytest.mark.parametrize("hidden_dims,direct", [((), True), ((16,), True),
                                                ((16,), False)])
@pytest.mark.parametrize("context", [None, *made_lib.CONTEXT_MODES])
@pytest.mark.parametrize("order", ORDERS)
def test_incremental_matches_the_full_pass(hidden_dims, direct, context,
                                           order):
  made = made_lib.MADE(hidden_dims, order=order, context=context,
                       direct=direct)
  params = random_params(made, with_context=context is not None)
  x = random_input((3, D), seed=6)
  c = None if context is None else random_input((3, D), seed=7)
  full = made.apply({"params": params}, x, c)
  inc = made_lib.IncrementalMADE.from_params(made, params, D)
  m = made.masks(D).order
  if context != "unmasked":  # unmasked context must be known upfront
    np.testing.assert_allclose(run_incremental(inc, m, x, c), full,
                               rtol=1e-5, atol=1e-5)
  if context is not None:  # masked weights are zero: early context is fine
    np.testing.assert_allclose(run_incremental(inc, m, x, c, upfront=True),
                               full, rtol=1e-5, atol=1e-5)


def test_incremental_takes_traced_indices_under_jit():
  made = made_lib.MADE((16,), order=3, context="inclusive")
  params = random_params(made, with_context=True)
  x, c = random_input((3, D), seed=6), random_input((3, D), seed=7)
  inc = made_lib.IncrementalMADE.from_params(made, params, D)

  @jax.jit
  def scan(x, c):
    def step(state, d):
      state = inc.add_context(state, d, c[:, d])
      logit = inc.logit(state, d)
      return inc.add_input(state, d, x[:, d]), logit
    _, logits = jax.lax.scan(step, inc.start((3,)),
                             jnp.argsort(made.masks(D).order))
    return logits.T

  logits = scan(x, c)  # column k is the k-th unit in order
  order = np.argsort(made.masks(D).order)
  np.testing.assert_allclose(logits, made.apply({"params": params}, x, c)[
      :, order], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hidden_dims", [(3,), (1,), (3, 20), (20, 3)])
@pytest.mark.parametrize("context", [None, "strict", "unmasked"])
def test_unit_evaluator_matches_the_full_pass(hidden_dims, context):
  made = made_lib.MADE(hidden_dims, order=3, context=context,
                       activation="leaky_relu")
  params = random_params(made, d=N, with_context=context is not None)
  x = random_input((3, N), seed=6)
  c = None if context is None else random_input((3, N), seed=7)
  evaluator = made_lib.unit_evaluator(made, params, N)
  incremental = len(hidden_dims) == 1 and context != "unmasked"
  assert isinstance(evaluator, made_lib.IncrementalMADE) == incremental
  logits = run_incremental(evaluator, made.masks(N).order, x, c,
                           upfront=context == "unmasked")
  np.testing.assert_allclose(logits, made.apply({"params": params}, x, c),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(hidden_dims=(8, 8)), r"hidden_dims=\(8, 8\)"),
    (dict(hidden_dims=(8,), num_outputs=2), "num_outputs=2"),
])
def test_incremental_rejects_deep_or_multi_output(kwargs, match):
  made = made_lib.MADE(**kwargs)
  with pytest.raises(ValueError, match=match):
    made_lib.IncrementalMADE.from_params(made, random_params(made), D)


def test_incremental_rejects_unknown_activation():
  params = random_params(made_lib.MADE(hidden_dims=(8,)))
  with pytest.raises(ValueError, match="activation='swish'"):
    made_lib.IncrementalMADE.from_params(
        made_lib.MADE(hidden_dims=(8,), activation="swish"), params, D)


# -- validation ------------------------------------------------------------

@pytest.mark.parametrize("kwargs,with_context,match", [
    (dict(order="reverse"), False, "order='reverse'"),
    (dict(context="causal"), True, "context='causal'"),
    (dict(context="strict"), False,
     r"MADE\(context='strict'\) called with context=None"),
    (dict(), True, r"MADE\(context=None\) called with context=an array"),
    (dict(activation="swish"), False, "activation='swish'"),
])
def test_invalid_configuration_or_call_raises(kwargs, with_context, match):
  made = made_lib.MADE((8,), **kwargs)
  x = jnp.zeros((2, D))
  with pytest.raises(ValueError, match=match):
    made.init(jax.random.PRNGKey(0), x, x if with_context else None)


@pytest.mark.parametrize("args,kwargs,match", [
    ((D, (8,)), dict(context="causal"), "context='causal'"),
    ((D, (8,)), dict(order="reverse"), "order='reverse'"),
    ((D, (8,)), dict(order=-1), "order=-1"),
    ((D, (8,)), dict(order=True), "order=True"),
    ((D, (8,)), dict(order=1.5), "order=1.5"),
    ((0, (8,)), {}, "num_units=0"),
    ((D, (8, 0)), {}, r"hidden_dims=\(8, 0\)"),
    ((D, (8.0,)), {}, r"hidden_dims=\(8.0,\)"),
])
def test_invalid_masks_arguments_raise(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    made_lib.make_masks(*args, **kwargs)


def test_context_of_the_wrong_length_raises():
  made = made_lib.MADE((8,), context="strict")
  params = random_params(made, with_context=True)
  with pytest.raises(ValueError, match=r"D=5.*context.shape=\(2, 4\)"):
    made.apply({"params": params}, jnp.zeros((2, D)), jnp.zeros((2, D - 1)))


# -- transformations -------------------------------------------------------

def test_jit_and_vmap_agree_with_the_eager_pass():
  made = made_lib.MADE((12, 10), num_outputs=3, order=3, context="inclusive")
  x, c = random_input((2, 4, D), seed=8), random_input((2, 4, D), seed=9)
  params = random_params(made, with_context=True)
  apply = functools.partial(made.apply, {"params": params})
  eager = apply(x, c)
  chex.assert_shape(eager, (2, 4, D, 3))
  chex.assert_trees_all_close(jax.jit(made.apply)({"params": params}, x, c),
                              eager, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(jax.vmap(jax.jit(apply))(x, c), eager,
                              rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(jax.jit(jax.vmap(apply, in_axes=(1, 1),
                                               out_axes=1))(x, c), eager,
                              rtol=1e-5, atol=1e-6)
