"""Tests of the XOR flows: models.xor_flow (entry), ste_flow, latent_flow.

Every exact quantity here (log p(x), the ELBO of Eq. 8 / 21, the special
case's bound of Eq. 13, the first term of Eq. 14a, and their gradients) is
computed by enumerating all transformations u of tiny models (D = 3 pixels,
L <= 2 layers, or D = 2, L = 3: at most 2^(D L) = 64 configurations; D = 6
for the STE flow). The enumeration uses only the per-layer network outputs
(`model.apply` of "conditioner", "posterior" and "base") and the formulas
of Hesselink & Aziz (2020) written out again below, never the model's own
log-probability, reward or ELBO helpers, so that a wrong formula in the
model is caught.
"""

import itertools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from configs import xor_flow as xor_flow_config
from discrete_vi import data as data_lib
from discrete_vi import estimators
from discrete_vi import training
from discrete_vi.estimators import baselines
from discrete_vi.models import xor_flow
from discrete_vi.models import registry

import stats
import budgets

D = 3
NUM_DRAWS = 20_000
KEY = jax.random.PRNGKey(0)


def binary_support(n):
  """All 2^n binary vectors, `[2^n, n]` (float)."""
  return jnp.asarray(list(itertools.product([0., 1.], repeat=n)))


ALL_X = binary_support(D)  # [8, 3]: every x at once
# The batch of the gradient tests. Not all 8 x: summed over x_d in {0, 1}
# (at fixed x_<d) some terms cancel exactly, e.g. Eq. 14a's second term,
# since sum_{x_d} r_d does not depend on u_d; a bug there would go unseen.
BATCH = jnp.array([[1., 0., 1.], [0., 1., 1.], [1., 1., 0.], [1., 1., 1.],
                   [0., 0., 1.], [1., 0., 0.]])


def tiny(variant, depth, data_dim=D, **kwargs):
  """A small flow with a learned base (so the base gradient is tested too)."""
  options = dict(hidden_dims=(4,), posterior_hidden=(4,), learn_base=True)
  options.update(kwargs)
  if variant != "sfe_full":
    del options["posterior_hidden"]
  return xor_flow.VARIANTS[variant].flow(data_dim, depth=depth, **options)


STE = estimators.make("straight_through", variant="deterministic")


def reinforce(baseline="none", **options):
  """The `reinforce` estimator whose signal processing the latent flows use."""
  return estimators.make("reinforce", baseline=baseline, **options)


# The old standardisation floor (1e-3, no warm-up), so that a warm state
# rescales the streams measurably (the default floor of 1 would leave the
# tiny models' signals, whose standard deviations are below 1, unscaled).
SMALL_FLOOR = dict(std_floor=1e-3, std_warmup=0)


def estimator_of(model):
  return STE if isinstance(model, xor_flow.STEFlow) else reinforce()


def random_params(model, seed=0, scale=0.8):
  """Initial params plus N(0, scale^2) noise on every leaf (biases too)."""
  params = model.init(jax.random.PRNGKey(seed),
                      jnp.zeros((1, model.data_dim)))
  flat, unravel = ravel_pytree(params)
  noise = jax.random.normal(jax.random.PRNGKey(seed + 1000), flat.shape)
  return unravel(flat + scale * noise)


# -- the independent reference ----------------------------------------------

def log_bern(logits, z):
  """log Bern(z | sigmoid(logits)) per unit."""
  return (z * jax.nn.log_sigmoid(logits) +
          (1. - z) * jax.nn.log_sigmoid(-logits))


def xor_ref(a, b):
  """a XOR b for 0/1 floats (a different formula from the model's)."""
  return jnp.abs(a - b)


# The per-layer network outputs: the only part of the model the reference
# uses. pylint: disable=protected-access

def base_logits(model, params):
  return model.apply(params, "base")


def conditioner(model, params, layer, u, context=None):
  args = (layer, u) if context is None else (layer, u, context)
  return model.apply(params, "conditioner", *args)


def posterior(model, params, layer, h):
  return model.apply(params, "posterior", layer, h)

# pylint: enable=protected-access


def ste_reference(model, params, x):
  """log p(x) of the STE flow (Eqs. 2, 4, 5): thresholds, XORs, base."""
  h = x
  for layer in range(model.depth):
    o = jax.nn.sigmoid(conditioner(model, params, layer, h))
    h = xor_ref(h, (o > 0.5).astype(h.dtype))  # Eq. 5
  return jnp.sum(log_bern(base_logits(model, params), h), -1)


def enumerate_latents(model, params, x):
  """Every u = (u^(1), ..., u^(L)) against every x in the batch.

  Generative model (Eqs. 15-17): layer 1's conditioner sees u^(1) and x,
  layer l >= 2 sees u^(l) and u^(l-1). Posterior (Eqs. 18-20): layer l is
  Bern(g(u^(l-1))), u^(0) = x.

  Returns:
    dict of `us` (L arrays `[S, B, D]`), `log_p` (L arrays `[S, B, D]`:
    log p(u_d^(l) | ...)), `log_q` (same, sfe_full only) and `r`
    (`[S, B, D]`: log p_Y(x_d + u_d^(1) + ... + u_d^(L)), addition mod 2).
  """
  depth, d, b = model.depth, model.data_dim, x.shape[0]
  u_all = binary_support(depth * d).reshape(-1, depth, d)  # [S, L, D]
  s = u_all.shape[0]
  xs = jnp.broadcast_to(x, (s, b, d))
  us = [jnp.broadcast_to(u_all[:, None, l], (s, b, d)) for l in range(depth)]
  log_p, log_q, q_logits, context = [], [], [], xs
  for layer, u in enumerate(us):
    log_p.append(log_bern(conditioner(model, params, layer, u, context), u))
    if model.variant == "sfe_full":
      q_logits.append(posterior(model, params, layer, context))
      log_q.append(log_bern(q_logits[-1], u))
    context = u
  y = xs
  for u in us:
    y = xor_ref(y, u)
  r = log_bern(base_logits(model, params), y)
  return dict(us=us, log_p=log_p, log_q=log_q, q_logits=q_logits, r=r)


def total(per_unit):
  """Sum over layers and units of L arrays `[S, B, D]` -> `[S, B]`."""
  return sum(jnp.sum(a, -1) for a in per_unit)


def exact_log_px(model, params, x):
  """log p(x) = log sum_u p_Y(t^{-1}(x; u)) p(u|x) (Eq. 6b), `[B]`."""
  e = enumerate_latents(model, params, x)
  return jax.scipy.special.logsumexp(jnp.sum(e["r"], -1) + total(e["log_p"]),
                                     0)


def exact_elbo(model, params, x):
  """E_q[log p_Y(t^{-1}(x;u)) + log p(u|x) - log q(u|x)] (Eq. 21), `[B]`."""
  e = enumerate_latents(model, params, x)
  log_q = total(e["log_q"])
  f = jnp.sum(e["r"], -1) + total(e["log_p"]) - log_q
  return jnp.sum(jnp.exp(log_q) * f, 0)


def exact_special_bound(model, params, x):
  """E_{p(u|x)}[log p_Y(t^{-1}(x; u))] (Eq. 13), `[B]`."""
  e = enumerate_latents(model, params, x)
  return jnp.sum(jnp.exp(total(e["log_p"])) * jnp.sum(e["r"], -1), 0)


def exact_special_first_term(model, params, x):
  """A function whose gradient is Eq. 14a's first term (plus the base part).

  sum_d E[r_d grad log p(u_d | u_<d)] with u_d = (u_d^(1), ..., u_d^(L)):
  log p(u_d | u_<d) = sum_l log p(u_d^(l) | ...), so the weights p(u|x) and
  r_d are held constant; the base enters through E[sum_d r_d]. Mean over
  the batch.
  """
  e = enumerate_latents(model, params, x)
  weight = jax.lax.stop_gradient(jnp.exp(total(e["log_p"])))  # [S, B]
  group = sum(e["log_p"])  # [S, B, D]: log p(u_d | u_<d)
  inner = (jnp.sum(e["r"], -1) +
           jnp.sum(jax.lax.stop_gradient(e["r"]) * group, -1))
  return jnp.mean(jnp.sum(weight * inner, 0))


def exact_missing_kl_next(model, params, x):
  """E_q[r(u^(2), u^(1)) grad log q(u^(1)|x)] as a function (Eq. 11b), L = 2.

  Its gradient is what the first posterior's estimator loses when the
  next-layer KL signal is dropped (kl_next_scale = 0). Mean over the batch.
  """
  e = enumerate_latents(model, params, x)
  weight = jax.lax.stop_gradient(jnp.exp(total(e["log_q"])))
  ratio = jax.lax.stop_gradient(jnp.sum(e["log_p"][1] - e["log_q"][1], -1))
  return jnp.mean(jnp.sum(weight * ratio * jnp.sum(e["log_q"][0], -1), 0))


def bernoulli_entropy(logits):
  """H(Bern(sigmoid(logits))) per unit."""
  p = jax.nn.sigmoid(logits)
  return -(p * jax.nn.log_sigmoid(logits) +
           (1. - p) * jax.nn.log_sigmoid(-logits))


def unit_scales(model):
  """Every stream's scale 1 (no standardisation)."""
  d, depth = model.data_dim, model.depth
  return {"recon": np.ones(d), "kl_local": [np.ones(d)] * depth,
          "kl_next": [1.0] * (depth - 1)}


def exact_scaled_full_objective(model, params, x, scales, kl_next_scale=1.0,
                                downstream="to_go"):
  """A function whose gradient is the expected full-posterior estimate with
  each score-function stream divided by a fixed scale. Mean over the batch.

  Baselines that do not depend on the sample drop out of the expectation;
  a stream's fixed divisor s stays: E[(v - b) / s grad log q] =
  E[v grad log q] / s. The streams (Hesselink & Aziz 2020, App. A-B):
  per-pixel rewards r_d / s_d with the score of u_d^(L) and, summed, with
  the whole score of each earlier layer (Eq. 25); per layer l the entropy
  gradient (Eqs. 12a, 30) and the suffix sums of log p(u_k^(l) | ...)
  unit by unit (Eqs. 12b, 31d); and the downstream log ratios with the
  score of u^(l): `downstream` "to_go" sums r(u^(k), u^(k-1)) over every
  k > l, "next" takes k = l + 1 only (Eq. 28f). Base and generative
  parameters get the pathwise E[grad (sum_d r_d + log p(u|x))].

  Args:
    scales: dict of `recon` `[D]`, `kl_local` L x `[D]`, `kl_next`
      (L - 1) x scalar; `unit_scales` gives the plain ELBO's estimator.
  """
  e = enumerate_latents(model, params, x)
  sg = jax.lax.stop_gradient
  depth, log_q, r = model.depth, e["log_q"], e["r"]
  weight = sg(jnp.exp(total(log_q)))  # [S, B]
  inner = jnp.sum(r, -1) + total(e["log_p"])  # pathwise (u fixed)
  inner += sum(jnp.sum(bernoulli_entropy(ql), -1) for ql in e["q_logits"])
  scaled = sg(r / scales["recon"])  # [S, B, D]
  inner += jnp.sum(scaled * log_q[-1], -1)
  ratios = [sg(jnp.sum(lp - lq, -1)) for lp, lq in zip(e["log_p"], log_q)]
  for layer in range(depth):
    later = jnp.cumsum(e["log_p"][layer][..., ::-1], -1)[..., ::-1]
    inner += jnp.sum(sg(later / scales["kl_local"][layer]) * log_q[layer], -1)
    if layer < depth - 1:
      signal = (sum(ratios[layer + 1:]) if downstream == "to_go" else
                ratios[layer + 1])
      inner += ((jnp.sum(scaled, -1) + kl_next_scale * signal /
                 scales["kl_next"][layer]) * jnp.sum(log_q[layer], -1))
  return jnp.mean(jnp.sum(weight * inner, 0))


def greedy_reference(model, params, x):
  """log p_Y(x + u*) with u* the arg max of p, pixel by pixel, layer by layer.

  Unit d of layer l is read off a full pass with u_{>=d} still zero; the
  masks make that pass see only the units already decided.
  """
  us = [jnp.zeros_like(x) for _ in range(model.depth)]
  for d in range(model.data_dim):
    context = x
    for layer in range(model.depth):
      logits = conditioner(model, params, layer, us[layer], context)
      us[layer] = us[layer].at[:, d].set((logits[:, d] > 0).astype(x.dtype))
      context = us[layer]
  y = x
  for u in us:
    y = xor_ref(y, u)
  return jnp.sum(log_bern(base_logits(model, params), y), -1)


def greedy_posterior_reference(model, params, x):
  """log p_Y(x + u*) with u* the layer-wise mode of q (the paper's column)."""
  h, y = x, x
  for layer in range(model.depth):
    h = (posterior(model, params, layer, h) > 0).astype(x.dtype)
    y = xor_ref(y, h)
  return jnp.sum(log_bern(base_logits(model, params), y), -1)


# -- Monte Carlo draws of the model's estimator ------------------------------

def make_draws(model, params, x, estimator):
  """Jitted `(flat, keys, state) -> (grads [n, P], (objectives [n], states))`.

  grads are the estimates of +grad mean(objective) (minus the gradient of
  the loss); objectives the batch means of `aux.objective`.
  """
  _, unravel = ravel_pytree(params)

  def one(flat, key, state):
    loss, aux = model.loss(unravel(flat), key, x, estimator=estimator,
                           state=state)
    return -loss, (jnp.mean(aux.objective), aux.state)

  grad = jax.grad(one, has_aux=True)
  return jax.jit(jax.vmap(grad, in_axes=(None, 0, None)))


def draw(fn, params, state=None, seed=1, num_draws=NUM_DRAWS):
  flat, _ = ravel_pytree(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  grads, (objectives, states) = fn(flat, keys, state)
  return np.asarray(grads), np.asarray(objectives), states


def warm_state(fn, model, params, estimator, x=None, steps=3):
  """The running statistics after `steps` loss calls (aux.state fed back)."""
  state = model.init_state(KEY, params, BATCH if x is None else x, estimator)
  for step in range(steps):
    _, _, states = draw(fn, params, state, seed=100 + step)
    state = jax.tree_util.tree_map(lambda s: s[0], states)
  return state


def flat_grad(fn, params):
  # jitted: the enumerations run op by op compile each primitive per shape.
  return np.asarray(ravel_pytree(jax.jit(jax.grad(fn))(params))[0])


def group_mask(params, prefixes):
  """Flat boolean mask of the parameters under top-level keys `prefixes`."""
  tree = {k: jax.tree_util.tree_map(
      lambda a, k=k: jnp.full(a.shape, float(k.startswith(prefixes))), v)
          for k, v in params.items()}
  return np.asarray(ravel_pytree(tree)[0]) > 0.5


def max_abs_z(draws, target):
  return float(np.max(np.abs(stats.z_scores(draws, target))))


# -- 1, 2: the deterministic (STE) flow ------------------------------------

@pytest.mark.parametrize("depth", [1, 3])
def test_ste_flow_normalises_inverts_and_samples(depth):
  model = tiny("ste", depth, data_dim=6, hidden_dims=(8,))
  params = random_params(model, seed=depth)
  xs = binary_support(6)  # all 64 x
  ref = ste_reference(model, params, xs)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(ref))), 1.0, atol=1e-5)
  # The model's exact log-likelihood (and the greedy one, the same flow).
  np.testing.assert_allclose(model.log_likelihood(params, KEY, xs), ref,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(model.greedy_log_likelihood(params, KEY, xs),
                             ref, rtol=1e-5, atol=1e-5)
  # The loss value is -mean log p(x) as well.
  loss, aux = model.loss(params, KEY, xs, estimator=STE)
  np.testing.assert_allclose(aux.objective, ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss, -jnp.mean(ref), rtol=1e-5, atol=1e-5)
  # t^{-1} and t are inverse bijections of {0,1}^6.
  y = model.to_base(params, xs)
  assert len({tuple(row) for row in np.asarray(y)}) == 64
  np.testing.assert_array_equal(model.from_base(params, y), xs)
  np.testing.assert_array_equal(
      model.to_base(params, model.from_base(params, xs)), xs)
  # Samples: binary, mapped forward to binary base points, and distributed
  # as exp(log p(x)) (frequencies within 4 binomial standard errors).
  n = 20_000
  samples = np.asarray(model.sample(params, jax.random.PRNGKey(7), n))
  assert samples.shape == (n, 6)
  assert set(np.unique(samples)) <= {0., 1.}
  assert set(np.unique(model.to_base(params, samples))) <= {0., 1.}
  index = samples @ (2 ** np.arange(5, -1, -1))  # row of binary_support
  freq = np.bincount(index.astype(int), minlength=64) / n
  p = np.exp(np.float64(ref))
  assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-4)


def test_ste_gradient_matches_hand_formula():
  model = tiny("ste", 1)
  params = random_params(model, seed=11)
  # Not all 8 x: over the uniform batch the conditioner's STE gradient
  # cancels exactly (x_d and 1 - x_d flip the sign of dy/du for the same
  # logits, which depend on x_<d only).
  x = jnp.array([[1., 0., 1.], [0., 1., 1.], [1., 1., 0.], [1., 1., 1.],
                 [0., 0., 1.]])
  b = x.shape[0]
  grads = jax.grad(lambda p: model.loss(p, KEY, x, estimator=STE)[0])(params)

  # loss = -mean_x sum_d log Bern(y_d | beta_d), y = x XOR u, u = h(o),
  # o = sigmoid(f(x)). d log Bern / d y_d = beta_d; y = x + u - 2xu gives
  # dy/du = 1 - 2x; STE: du/do = 1; do/df = o (1 - o).
  beta = params["base_logits"]
  logits, vjp = jax.vjp(
      lambda c: conditioner(model, {**params, "conditioners_0": c}, 0, x),
      params["conditioners_0"])
  o = jax.nn.sigmoid(logits)
  d_logits = -beta * (1. - 2. * x) * o * (1. - o) / b
  (by_hand,) = vjp(d_logits)
  chex.assert_trees_all_close(grads["conditioners_0"], by_hand, rtol=1e-5,
                              atol=1e-6)
  # d log Bern(y | beta) / d beta = y - sigmoid(beta).
  y = xor_ref(x, (o > 0.5).astype(x.dtype))
  np.testing.assert_allclose(grads["base_logits"],
                             -jnp.mean(y - jax.nn.sigmoid(beta), 0),
                             rtol=1e-5, atol=1e-6)
  assert max(float(jnp.max(jnp.abs(g))) for g in
             jax.tree_util.tree_leaves(by_hand)) > 1e-2


def test_ste_gradient_matches_hand_formula_at_depth_two():
  # Two layers: x1 = x XOR h(o1), o1 = sigmoid(f1(x)); y = x1 XOR h(o2),
  # o2 = sigmoid(f2(x1)); loss = -mean_x sum_d log Bern(y_d | beta_d).
  # With g = d(-loss)/dy = beta / B and the STE's dh/do = 1:
  #   layer 2: dy/du2 = 1 - 2 x1, so delta_f2 = g (1 - 2 x1) o2 (1 - o2);
  #   x1 reaches y directly (dy/dx1 = 1 - 2 u2) and through f2's input:
  #     delta_x1 = g (1 - 2 u2) + J_f2(x1)^T delta_f2;
  #   layer 1: dx1/du1 = 1 - 2 x, so delta_f1 = delta_x1 (1 - 2 x) o1 (1 - o1).
  # Each conditioner's parameter gradient is its VJP with its delta_f.
  model = tiny("ste", 2)
  params = random_params(model, seed=12)
  x = jnp.array([[1., 0., 1.], [0., 1., 1.], [1., 1., 0.], [1., 1., 1.],
                 [0., 0., 1.]])
  b = x.shape[0]
  grads = jax.grad(lambda p: model.loss(p, KEY, x, estimator=STE)[0])(params)
  beta = params["base_logits"]

  def layer(index, h):
    """(logits, vjp wrt (layer params, input h)) of conditioner `index`."""
    name = f"conditioners_{index}"
    return jax.vjp(lambda c, h: conditioner(model, {**params, name: c},
                                            index, h), params[name], h)

  logits1, vjp1 = layer(0, x)
  o1 = jax.nn.sigmoid(logits1)
  x1 = xor_ref(x, (o1 > 0.5).astype(x.dtype))
  logits2, vjp2 = layer(1, x1)
  o2 = jax.nn.sigmoid(logits2)
  u2 = (o2 > 0.5).astype(x.dtype)
  y = xor_ref(x1, u2)
  g = jnp.broadcast_to(beta, x.shape) / b  # d(-loss)/dy
  delta_f2 = g * (1. - 2. * x1) * o2 * (1. - o2)
  grad_c2, through_f2 = vjp2(delta_f2)
  delta_x1 = g * (1. - 2. * u2) + through_f2
  delta_f1 = delta_x1 * (1. - 2. * x) * o1 * (1. - o1)
  grad_c1, _ = vjp1(delta_f1)
  # The loss is -(...): its gradient is minus the deltas' VJPs.
  neg = lambda t: jax.tree_util.tree_map(jnp.negative, t)
  chex.assert_trees_all_close(grads["conditioners_1"], neg(grad_c2),
                              rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(grads["conditioners_0"], neg(grad_c1),
                              rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads["base_logits"],
                             -jnp.mean(y - jax.nn.sigmoid(beta), 0),
                             rtol=1e-5, atol=1e-6)
  # The path through f2's input matters (it is what nesting adds).
  assert float(jnp.max(jnp.abs(through_f2))) > 1e-3
  for tree in (grad_c1, grad_c2):
    assert max(float(jnp.max(jnp.abs(g))) for g in
               jax.tree_util.tree_leaves(tree)) > 1e-2


# -- 3: the latent flows are normalised --------------------------------------

# Depth 2 composes two layers and so covers depth 1's code; depth 1 runs
# under -m slow (the default run's budget).
@pytest.mark.parametrize("variant,depth", [
    pytest.param("sfe_full", 1, marks=pytest.mark.slow), ("sfe_full", 2),
    pytest.param("sfe_special", 1, marks=pytest.mark.slow), ("sfe_special", 2)])
def test_latent_flow_and_greedy_flow_normalise(variant, depth):
  model = tiny(variant, depth, hidden_dims=(8,), posterior_hidden=(8,))
  params = random_params(model, seed=20 + depth)
  log_px = exact_log_px(model, params, ALL_X)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(log_px))), 1.0,
                             atol=1e-5)
  greedy = model.greedy_log_likelihood(params, KEY, ALL_X)
  np.testing.assert_allclose(greedy, greedy_reference(model, params, ALL_X),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.sum(np.exp(np.float64(greedy))), 1.0,
                             atol=1e-5)
  # The model's per-unit log-probabilities and rewards agree with ours.
  e = enumerate_latents(model, params, ALL_X)
  for mine, theirs in zip(e["log_p"], model.generative_log_probs(
      params, jnp.broadcast_to(ALL_X, e["r"].shape), e["us"])):
    np.testing.assert_allclose(theirs, mine, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      model.rewards(params, jnp.broadcast_to(ALL_X, e["r"].shape), e["us"]),
      e["r"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", [1, 2])
def test_latent_flow_samples_follow_the_exact_marginal(depth):
  model = tiny("sfe_special", depth, hidden_dims=(8,))
  params = random_params(model, seed=30 + depth)
  p = np.exp(np.float64(exact_log_px(model, params, ALL_X)))
  n = 20_000
  samples = np.asarray(model.sample(params, jax.random.PRNGKey(8), n))
  assert set(np.unique(samples)) <= {0., 1.}
  freq = np.bincount((samples @ np.array([4, 2, 1])).astype(int),
                     minlength=8) / n
  assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n))


SCORE_SEED = 0  # sum of exp(score) = 2.195 over the 8 x


def test_greedy_posterior_score_is_not_normalised():
  # The arg max of q sees all of x, so x -> x + u*(x) need not be a
  # bijection. With these (fixed) params the score sums to clearly != 1.
  model = tiny("sfe_full", 1, hidden_dims=(8,), posterior_hidden=(8,))
  params = random_params(model, seed=SCORE_SEED)
  score = model.greedy_posterior_score(params, KEY, ALL_X)
  np.testing.assert_allclose(
      score, greedy_posterior_reference(model, params, ALL_X), rtol=1e-5,
      atol=1e-5)
  assert np.all(np.isfinite(score))
  total_mass = float(np.sum(np.exp(np.float64(score))))
  assert abs(total_mass - 1.0) > 0.05, total_mass
  # The special case has no posterior, hence no such score.
  special = tiny("sfe_special", 1)
  assert not hasattr(special, "greedy_posterior_score")
  assert set(special.extra_evaluations()) == {"greedy_log_likelihood"}
  assert set(model.extra_evaluations()) == {"greedy_log_likelihood",
                                            "greedy_posterior_score"}


# -- 4: the full posterior: exact ELBO and unbiased gradients ---------------

FULL_PARAMS_SEED = 40


def full_setup(**kwargs):
  """The depth-2 full-posterior flow, its params and the exact gradient."""
  model = tiny("sfe_full", 2, **kwargs)
  params = random_params(model, seed=FULL_PARAMS_SEED)
  exact = flat_grad(lambda p: jnp.mean(exact_elbo(model, p, BATCH)), params)
  return model, params, exact


def test_full_posterior_objective_and_gradient_are_unbiased():
  model, params, exact = full_setup()
  grads, objectives, _ = draw(make_draws(model, params, BATCH, reinforce()),
                              params)
  elbo = float(jnp.mean(exact_elbo(model, params, BATCH)))
  stats.assert_unbiased(objectives[:, None], np.array([elbo]))
  # Every group (both conditioners, both posteriors, the base) is reached.
  for prefix in ("conditioners_0", "conditioners_1", "posteriors_0",
                 "posteriors_1", "base_logits"):
    assert np.max(np.abs(exact[group_mask(params, (prefix,))])) > 1e-3, prefix
  stats.assert_unbiased(grads, exact)
  # The ELBO is a bound: below the exact log-likelihood.
  assert elbo < float(jnp.mean(exact_log_px(model, params, BATCH)))


@pytest.mark.parametrize("baseline,greedy", [
    ("self_critic", True),  # the paper's greedy self-critic
    pytest.param("self_critic", False, marks=pytest.mark.slow)])
def test_full_posterior_self_critic_is_unbiased(baseline, greedy):
  model, params, exact = full_setup()
  estimator = reinforce(baseline, greedy=greedy)
  grads, _, _ = draw(make_draws(model, params, BATCH, estimator), params)
  stats.assert_unbiased(grads, exact)


def test_full_posterior_moving_average_is_unbiased_with_a_warm_state():
  model, params, exact = full_setup()
  estimator = reinforce("moving_average")
  fn = make_draws(model, params, BATCH, estimator)
  state = warm_state(fn, model, params, estimator)
  assert int(state["recon"][0].count) == 3
  for stream in (state["recon"][0], state["kl_local"][1],
                 state["kl_next"][0]):
    mean, _ = baselines.corrected_stats(stream, baselines.DEFAULT_DECAY)
    assert np.max(np.abs(np.asarray(mean))) > 0.1, mean
  grads, _, _ = draw(fn, params, state)
  stats.assert_unbiased(grads, exact)


def test_full_posterior_standardize_leaves_generative_gradients_unbiased():
  # Standardisation rescales each posterior stream by its running standard
  # deviation, so the posterior gradient is NOT the plain ELBO gradient
  # (checked finite, and measurably different at this warm state). The
  # conditioners and the base are untouched: still unbiased.
  model, params, exact = full_setup()
  estimator = reinforce("standardize", **SMALL_FLOOR)
  fn = make_draws(model, params, BATCH, estimator)
  state = warm_state(fn, model, params, estimator)
  grads, _, _ = draw(fn, params, state)
  assert np.all(np.isfinite(grads))
  generative = group_mask(params, ("conditioners", "base_logits"))
  stats.assert_unbiased(grads[:, generative], exact[generative])
  assert max_abs_z(grads[:, ~generative], exact[~generative]) > 4.0


def test_full_posterior_without_next_layer_kl_is_biased():
  # kl_next_scale = 0 drops Eq. 11b: layer 1's posterior loses
  # E[r(u2, u1) grad log q(u1|x)], which is not zero.
  model, params, exact = full_setup(kl_next_scale=0.0)
  grads, _, _ = draw(make_draws(model, params, BATCH, reinforce()), params)
  missing = flat_grad(lambda p: exact_missing_kl_next(model, p, BATCH),
                      params)
  first = group_mask(params, ("posteriors_0",))
  assert np.all(missing[~first] == 0)
  stats.assert_unbiased(grads, exact - missing)
  assert max_abs_z(grads[:, first], exact[first]) > 4.0


def stream_scales(estimator, state, data_dim):
  """Each stream's divisor at `state`, read off the estimator's processor
  (it depends on the state only, not on the signal)."""
  processor = baselines.from_estimator(estimator)

  def scale(entry, per_unit):
    value = jnp.zeros((1, data_dim) if per_unit else (1,))
    critic = jnp.zeros_like(value) if processor.needs_critic else None
    _, _, info = processor.apply(value, entry, critic=critic,
                                 per_unit=per_unit)
    return np.asarray(info["scale"][0])

  return {"recon": scale(state["recon"][0], True),
          "kl_local": [scale(s, True) for s in state["kl_local"]],
          "kl_next": [float(scale(s, False)) for s in state["kl_next"]]}


@pytest.mark.parametrize("baseline,greedy", [
    ("standardize", False),
    ("self_critic_standardize", True)])  # the paper's two rows
def test_full_posterior_standardizing_baselines_estimate_the_rescaled_gradient(
    baseline, greedy):
  # At a warm state each stream's divisor s is fixed (the statistics from
  # before the step), so every score-function stream is unbiased for its
  # exact contribution divided by s; the entropy, base and generative
  # gradients are not rescaled. The target is that rescaled gradient by
  # enumeration; with every s = 1 it is the ELBO gradient.
  model, params, exact = full_setup()
  reference = flat_grad(lambda p: exact_scaled_full_objective(
      model, p, BATCH, unit_scales(model)), params)
  np.testing.assert_allclose(reference, exact, rtol=1e-4, atol=1e-6)
  estimator = reinforce(baseline, greedy=greedy, **SMALL_FLOOR)
  fn = make_draws(model, params, BATCH, estimator)
  state = warm_state(fn, model, params, estimator)
  scales = stream_scales(estimator, state, model.data_dim)
  leaves = np.concatenate([np.ravel(v) for v in
                           jax.tree_util.tree_leaves(scales)])
  assert leaves.min() < 0.5 or leaves.max() > 2.0, scales  # not trivial
  target = flat_grad(lambda p: exact_scaled_full_objective(
      model, p, BATCH, scales), params)
  grads, _, _ = draw(fn, params, state)
  stats.assert_unbiased(grads, target)
  assert max_abs_z(grads, exact) > 4.0  # measurably not the ELBO gradient


D3_BATCH = jnp.array([[1., 0.], [0., 1.], [1., 1.]])  # D = 2, not all 4 x


# A statistical demonstration of why the estimator sums rewards to go (the
# depth-2 unbiasedness tests are the default run's): `-m slow`, ~8 s.
@pytest.mark.slow
def test_full_posterior_depth_three_needs_the_reward_to_go():
  # L = 3, D = 2 (2^6 = 64 transformations). Eq. 28f weights layer l's score
  # by r(u^(l), u^(l-1)) + r(u^(l+1), u^(l)) only, dropping r(u^(3), u^(2))
  # from layer 1's signal as "constant w.r.t. u^(1)" (Eq. 28d); but u^(2) is
  # drawn given u^(1), so the dropped term has a non-zero expectation. The
  # model's reward-to-go signal is unbiased; the paper's is measurably not.
  model = tiny("sfe_full", 3, data_dim=2)
  params = random_params(model, seed=73)  # |paper - exact| up to 0.06
  exact = flat_grad(lambda p: jnp.mean(exact_elbo(model, p, D3_BATCH)),
                    params)
  ones = unit_scales(model)
  to_go, paper = (flat_grad(lambda p, k=k: exact_scaled_full_objective(
      model, p, D3_BATCH, ones, downstream=k), params)
                  for k in ("to_go", "next"))
  np.testing.assert_allclose(to_go, exact, rtol=1e-4, atol=1e-6)
  first = group_mask(params, ("posteriors_0",))
  np.testing.assert_allclose(paper[~first], exact[~first], rtol=1e-4,
                             atol=1e-6)  # only layer 1 drops a term
  assert np.max(np.abs(paper[first] - exact[first])) > 1e-2
  for prefix in ("conditioners_2", "posteriors_2", "base_logits"):
    assert np.max(np.abs(exact[group_mask(params, (prefix,))])) > 1e-3, prefix

  grads, objectives, _ = draw(make_draws(model, params, D3_BATCH,
                                         reinforce()), params)
  elbo = float(jnp.mean(exact_elbo(model, params, D3_BATCH)))
  stats.assert_unbiased(objectives[:, None], np.array([elbo]))
  stats.assert_unbiased(grads, exact)
  assert max_abs_z(grads[:, first], paper[first]) > 4.0


# -- 5: the special case (q = p) -------------------------------------------

def special_setup(depth, **kwargs):
  model = tiny("sfe_special", depth, **kwargs)
  params = random_params(model, seed=50 + depth)
  exact = flat_grad(lambda p: jnp.mean(exact_special_bound(model, p, BATCH)),
                    params)
  return model, params, exact


SPECIAL_CASES = [(2, "same", "none"), (1, "independent", "self_critic")]
SPECIAL_SLOW = [(1, "same", "none"), (1, "same", "self_critic"),
                (1, "independent", "none"), (2, "same", "self_critic"),
                (2, "independent", "none"), (2, "independent", "self_critic")]


@pytest.mark.parametrize("depth,prefix_sample,baseline", SPECIAL_CASES + [
    pytest.param(*case, marks=pytest.mark.slow) for case in SPECIAL_SLOW])
def test_special_case_full_prefix_is_unbiased(depth, prefix_sample, baseline):
  model, params, exact = special_setup(depth, prefix_scale=1.0,
                                       prefix_sample=prefix_sample)
  grads, objectives, _ = draw(
      make_draws(model, params, BATCH, reinforce(baseline)), params)
  bound = float(jnp.mean(exact_special_bound(model, params, BATCH)))
  stats.assert_unbiased(objectives[:, None], np.array([bound]))
  assert np.max(np.abs(exact)) > 1e-2
  stats.assert_unbiased(grads, exact)


@pytest.mark.parametrize("depth", [2, pytest.param(1, marks=pytest.mark.slow)])
def test_special_case_without_prefix_is_the_first_term(depth):
  model, params, exact = special_setup(depth, prefix_scale=0.0)
  grads, _, _ = draw(make_draws(model, params, BATCH, reinforce()), params)
  first = flat_grad(lambda p: exact_special_first_term(model, p, BATCH),
                    params)
  stats.assert_unbiased(grads, first)
  assert max_abs_z(grads, exact) > 4.0


# -- 6: importance-weighted log-likelihood ----------------------------------
# (The STE flow's `log_likelihood` is exact: checked against the reference
# in test_ste_flow_normalises_inverts_and_samples.)

@pytest.mark.parametrize("variant", [
    "sfe_full", pytest.param("sfe_special", marks=pytest.mark.slow)])
def test_importance_weighted_bound_increases_with_samples(variant):
  model = tiny(variant, 2)
  params = random_params(model, seed=60)
  log_px = float(jnp.mean(exact_log_px(model, params, ALL_X)))
  bound = exact_elbo if variant == "sfe_full" else exact_special_bound
  one_sample = float(jnp.mean(bound(model, params, ALL_X)))

  def draws(k, n):
    fn = jax.jit(jax.vmap(lambda key: jnp.mean(model.log_likelihood(
        params, key, ALL_X, num_samples=k, chunk_size=50))))
    return np.asarray(fn(jax.random.split(jax.random.PRNGKey(k), n)),
                      np.float64)

  k1, k100 = draws(1, 4000), draws(100, 200)
  se = lambda a: a.std(ddof=1) / np.sqrt(a.size)
  assert abs(k1.mean() - one_sample) < 4 * se(k1)  # k = 1: the bound itself
  assert k100.mean() < log_px + 4 * se(k100)
  assert k100.mean() - k1.mean() > 4 * np.hypot(se(k1), se(k100))
  assert one_sample < log_px


# -- 7: bad inputs -----------------------------------------------------------

# (config row, section, field, value, match): every value is checked by
# `validate_config` (naming the field) and, for model fields, by the flow's
# constructor (naming the argument).
BAD_FIELDS = [
    ("ste", "model", "variant", "bogus_variant", "bogus_variant"),
    ("sfe_full", "estimator", "baseline", "bogus_baseline", "bogus_baseline"),
    ("ste", "model", "depth", 0, "depth=0"),
    ("sfe_full", "model", "depth", 1.5, "depth=1.5"),
    ("sfe_special", "model", "prefix_sample", "bogus_sample", "bogus_sample"),
    ("sfe_special", "model", "prefix_scale", -1.0, "prefix_scale=-1.0"),
    ("sfe_full", "model", "kl_next_scale", -0.5, "kl_next_scale=-0.5"),
    ("ste", "model", "base_prob", 1.5, "base_prob=1.5"),
    ("sfe_special", "model", "hidden_dims", (4, 0), r"hidden_dims=\(4, 0\)"),
    ("sfe_full", "model", "posterior_hidden", (0,), r"posterior_hidden=\(0,\)"),
    ("ste", "model", "activation", "bogus_act", "bogus_act"),
    ("sfe_full", "estimator", "decay", 1.0, "decay=1.0"),
    ("sfe_special", "estimator", "std_floor", 0.0, "std_floor=0.0"),
    ("sfe_full", "estimator", "name", "rloo", "config.estimator.name='rloo'"),
    ("sfe_special", "estimator", "name", "straight_through",
     "config.estimator.name='straight_through'"),
    ("ste", "estimator", "name", "reinforce", "config.estimator.name"),
    ("ste", "estimator", "variant", "stochastic", "config.estimator.variant"),
]


@pytest.mark.parametrize("row,section,field,value,match", BAD_FIELDS)
def test_invalid_config_raises_naming_the_value(row, section, field, value,
                                                match):
  config = xor_flow_config.get_config(row).to_dict()  # not type-checked
  config[section][field] = value
  with pytest.raises(ValueError, match=match) as error:
    registry.validate_model_config(config)  # the family's and the registry's
  if field not in ("name", "variant"):
    assert f"config.{section}.{field}" in str(error.value)
  if section == "model" and field != "variant":
    args = {f: config["model"][f] for f in xor_flow.VARIANTS[row].fields}
    with pytest.raises(ValueError, match=match):
      xor_flow.VARIANTS[row].flow(D, **args)


@pytest.mark.parametrize("arg,flow", [
    ("ste,depth=2", xor_flow.STEFlow),
    ("sfe_full,baseline=self_critic", xor_flow.FullPosteriorFlow),
    ("sfe_special,baseline=running_average", xor_flow.SpecialCaseFlow),
    ("sfe_full,protocol=paper", xor_flow.FullPosteriorFlow)])
def test_config_rows_validate_and_build(arg, flow):
  config = xor_flow_config.get_config(arg)
  xor_flow.validate_config(config)
  model = xor_flow.from_config(
      config, data_lib.DataSpec(np.full(D, 0.5, np.float32), (D, 1, 1)))
  assert type(model) is flow  # pylint: disable=unidiomatic-typecheck
  assert model.data_dim == D and model.depth == config.model.depth
  options = {k: v for k, v in config.estimator.items()
             if v is not None and k in estimators.options_of(
                 config.estimator.name)}
  estimator = estimators.make(config.estimator.name, **options)
  params = model.init(KEY, ALL_X)
  state = model.init_state(KEY, params, ALL_X, estimator)
  loss, aux = model.loss(params, KEY, ALL_X, estimator=estimator, state=state)
  assert np.isfinite(float(loss)) and aux.objective.shape == (8,)
  chex.assert_trees_all_equal_structs(aux.state, state)
  if flow is not xor_flow.STEFlow:
    processor = baselines.from_estimator(estimator)
    assert processor.baseline == config.estimator.baseline
    assert processor.greedy == config.estimator.greedy
  else:
    assert config.estimator.variant == "deterministic" and state is None


def test_latent_flow_rejects_a_foreign_estimator():
  model = tiny("sfe_full", 1)
  params = model.init(KEY, ALL_X)
  with pytest.raises(ValueError, match="reinforce"):
    model.loss(params, KEY, ALL_X, estimator=STE)


@pytest.mark.parametrize("variant", ["ste", "sfe_full", "sfe_special"])
def test_invalid_data_raises_naming_the_value(variant):
  model = tiny(variant, 1)
  params = model.init(KEY, ALL_X)
  estimator = estimator_of(model)
  with pytest.raises(ValueError, match="0.5"):
    model.loss(params, KEY, ALL_X * 0.5, estimator=estimator)
  with pytest.raises(ValueError, match=r"x.shape=\(8, 4\)"):
    model.loss(params, KEY, jnp.zeros((8, 4)), estimator=estimator)
  with pytest.raises(ValueError, match="2.0"):
    model.log_likelihood(params, KEY, ALL_X * 2.0)
  with pytest.raises(ValueError, match="n=0"):
    model.sample(params, KEY, 0)


# -- 8: the training loop on the configs' rows ------------------------------

def shrunk_config(arg):
  config = xor_flow_config.get_config(arg)
  config.model.hidden_dims = (16,)
  config.model.posterior_hidden = (16,)
  return budgets.tiny(config)


@pytest.mark.parametrize("arg", [
    "sfe_full,baseline=self_critic",
    pytest.param("ste,depth=2", marks=pytest.mark.slow),
    pytest.param("sfe_special,baseline=running_average",
                 marks=pytest.mark.slow)])
def test_training_loop_runs_each_config_row(tmp_path, arg):
  config = shrunk_config(arg)
  training.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / "results.json").read_text())
  keys = ["test_log_likelihood", "valid_log_likelihood"]
  if not arg.startswith("ste"):
    keys.append("test_greedy_log_likelihood")
  if arg.startswith("sfe_full"):
    keys.append("test_greedy_posterior_score")
  for key in keys:
    assert np.isfinite(results[key]), (key, results[key])
  assert os.path.exists(tmp_path / "samples.png")
