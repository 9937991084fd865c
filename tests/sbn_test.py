"""Tests of discrete_vi.models.sbn: sigmoid belief nets wired to estimators.

The exactness tests use tiny SBNs (4 pixels, 3 latents; or 2 + 2 latents in
two layers) whose ELBO, gradient and log-likelihood are computed here by
explicit enumeration, independently of the model's own code.
"""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from discrete_vi import estimators
from discrete_vi.models import sbn

import stats

PIXELS = 4
TINY_MEAN = np.array([0.2, 0.7, 0.5, 0.0], np.float32)  # clipped at 1e-3
TINY_X = jnp.array([[1., 0., 1., 0.], [0., 1., 1., 1.]])
MNIST_MEAN = np.random.RandomState(0).uniform(0.0, 1.0, 784).astype(np.float32)


def tiny(num_layers, latent_dim, **kwargs):
  return sbn.SigmoidBeliefNet(TINY_MEAN, data_dim=PIXELS, latent_dim=latent_dim,
                              num_layers=num_layers, baseline_hidden=4,
                              **kwargs)


def init_state(model, params, x, estimator):
  """`model.init_state`, jitted (one compile, no eager ops)."""
  return jax.jit(lambda p, k, x: model.init_state(k, p, x, estimator)
                 )(params, jax.random.PRNGKey(1), x)


def random_params(model, seed=0, scale=0.8):
  """Initialised params with every leaf (biases too) randomised."""
  params = jax.jit(model.init)(jax.random.PRNGKey(seed), TINY_X)
  flat, unravel = ravel_pytree(params)
  noise = jax.random.normal(jax.random.PRNGKey(seed + 1), flat.shape)
  return unravel(scale * noise)


# -- independent exact computations for the tiny linear SBNs ---------------

def log_bern(logits, z):
  return jnp.sum(z * jax.nn.log_sigmoid(logits) +
                 (1 - z) * jax.nn.log_sigmoid(-logits), -1)


def affine(p, h):
  return h @ p["out"]["kernel"] + p["out"]["bias"]


def binary_support(d):
  return jnp.asarray(list(itertools.product([0., 1.], repeat=d)))


def exact_one_layer(params, x):
  """(ELBO, log p(x)) per example of the one-layer linear SBN, `[B]`."""
  z = binary_support(params["prior_logits"].shape[0])[:, None, :]  # [S, 1, D]
  q_logits = affine(params["encoders_0"], x - TINY_MEAN)  # [B, D]
  log_q = log_bern(q_logits, z)  # [S, B]
  log_joint = (log_bern(params["prior_logits"], z) +
               log_bern(affine(params["decoders_0"], z), x))
  elbo = jnp.sum(jnp.exp(log_q) * (log_joint - log_q), 0)
  return elbo, jax.scipy.special.logsumexp(log_joint, 0)


def exact_two_layer(params, x, with_baselines=False):
  """(ELBO, log p(x), baseline regression loss) of the two-layer SBN, `[B]`."""
  d = params["prior_logits"].shape[0]
  z1 = binary_support(d)[:, None, None, :]  # [S1, 1, 1, D]
  z2 = binary_support(d)[None, :, None, :]  # [1, S2, 1, D]
  log_q1 = log_bern(affine(params["encoders_0"], x - TINY_MEAN), z1)  # [S1,1,B]
  log_q2 = log_bern(affine(params["encoders_1"], z1), z2)  # [S1, S2, 1]
  log_joint = (log_bern(params["prior_logits"], z2) +
               log_bern(affine(params["decoders_1"], z2), z1) +
               log_bern(affine(params["decoders_0"], z1), x))  # [S1, S2, B]
  f = log_joint - log_q1 - log_q2
  q = jnp.exp(log_q1 + log_q2)
  elbo = jnp.sum(q * f, (0, 1))
  log_px = jax.scipy.special.logsumexp(log_joint, (0, 1))
  if not with_baselines:
    return elbo, log_px, 0.0
  # NVIL baselines: E (F - b_1(x))^2 and E (F - b_2(z_1))^2, up to terms
  # without baseline parameters: (ELBO - b_1)^2 + E_{z1}(E[F|z1] - b_2(z1))^2.
  b1 = baseline_net(params["baselines_0"], x - TINY_MEAN)  # [B]
  b2 = baseline_net(params["baselines_1"], z1[:, 0])  # [S1, 1]
  g = jnp.sum(jnp.exp(log_q2) * f, 1)  # E[F | z1], [S1, B]
  # Only the baselines are trained by it: q and F enter as constants.
  weights = jax.lax.stop_gradient(jnp.exp(log_q1[:, 0]))
  reg = (jnp.square(jax.lax.stop_gradient(elbo) - b1) +
         jnp.sum(weights * jnp.square(jax.lax.stop_gradient(g) - b2), 0))
  return elbo, log_px, reg


def baseline_net(p, h):
  hidden = jnp.tanh(h @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"])
  return (hidden @ p["out"]["kernel"] + p["out"]["bias"])[..., 0]


def exact_one_layer_with_baseline(params, x):
  elbo, _ = exact_one_layer(params, x)
  b = baseline_net(params["baselines_0"], x - TINY_MEAN)
  return elbo, jnp.square(jax.lax.stop_gradient(elbo) - b)


def loss_and_grad(model, estimator, **kwargs):
  """Jitted `(params, key, x, state) -> ((loss, aux), grads)`."""
  def fn(params, key, x, state):
    return model.loss(params, key, x, step=0, estimator=estimator, state=state,
                      **kwargs)
  return jax.jit(jax.value_and_grad(fn, has_aux=True))


def loss_gradient_draws(model, params, estimator, num_draws, chunk=10_000):
  """`[num_draws, P]` gradients of the training loss, and the objectives."""
  flat, unravel = ravel_pytree(params)

  def one(key, flat):
    loss, aux = model.loss(unravel(flat), key, TINY_X, step=0,
                           estimator=estimator, state=None)
    return loss, aux.objective

  draw = jax.jit(jax.vmap(jax.grad(one, argnums=1, has_aux=True),
                          in_axes=(0, None)))
  keys = jax.random.split(jax.random.PRNGKey(42), num_draws)
  grads, objs = zip(*[draw(keys[i:i + chunk], flat)
                      for i in range(0, num_draws, chunk)])
  return np.concatenate(grads), np.concatenate(objs), unravel


# -- construction and validation -------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(nonlinearity="relu"), "nonlinearity='relu'"),
    (dict(num_layers=0), "num_layers=0"),
    (dict(latent_dim=0), "latent_dim=0"),
    (dict(hidden_dims=(200, 0)), r"hidden_dims=\(200, 0\)"),
    (dict(kl_warmup_steps=-1), "kl_warmup_steps=-1"),
])
def test_invalid_config_raises_naming_the_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    sbn.SigmoidBeliefNet(MNIST_MEAN, **kwargs)


def test_invalid_data_mean_raises():
  with pytest.raises(ValueError, match=r"data_mean.shape=\(783,\)"):
    sbn.linear(MNIST_MEAN[:-1])
  with pytest.raises(ValueError, match=r"data_mean.shape=\(4,\)"):
    sbn.linear(TINY_MEAN)  # data_dim defaults to 784
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    sbn.linear(MNIST_MEAN * 2)


def test_invalid_data_and_estimator_raise():
  model = tiny(1, 3)
  params = model.init(jax.random.PRNGKey(0), TINY_X)
  est = estimators.make("reinforce")
  with pytest.raises(ValueError, match=r"x.shape=\(2, 5\)"):
    model.loss(params, jax.random.PRNGKey(0), jnp.zeros((2, 5)), estimator=est)
  with pytest.raises(ValueError, match="binary data"):
    model.loss(params, jax.random.PRNGKey(0), TINY_X * 3, estimator=est)
  with pytest.raises(ValueError, match="one per layer"):
    model.loss(params, jax.random.PRNGKey(0), TINY_X, estimator=(est, est))


def test_architectures_and_decoder_bias_init():
  mean = MNIST_MEAN.copy()
  mean[:2] = [0.0, 1.0]
  shapes = lambda m: jax.tree_util.tree_map(jnp.shape, jax.eval_shape(
      m.init, jax.random.PRNGKey(0), jnp.zeros((1, 784))))
  lin = shapes(sbn.linear(mean))
  assert lin["encoders_0"] == {"out": {"kernel": (784, 200), "bias": (200,)}}
  assert lin["decoders_0"] == {"out": {"kernel": (200, 784), "bias": (784,)}}
  assert lin["prior_logits"] == (200,)
  nonlin = shapes(sbn.nonlinear(mean))
  assert set(nonlin["encoders_0"]) == {"hidden_0", "hidden_1", "out"}
  assert nonlin["encoders_0"]["hidden_0"]["kernel"] == (784, 200)
  two = shapes(sbn.two_layer(mean))
  assert two["encoders_1"]["out"]["kernel"] == (200, 200)
  assert two["decoders_1"]["out"]["kernel"] == (200, 200)
  params = sbn.linear(mean).init(jax.random.PRNGKey(0), jnp.zeros((1, 784)))
  clipped = np.clip(mean, 1e-3, 0.999)
  np.testing.assert_allclose(params["decoders_0"]["out"]["bias"],
                             np.log(clipped / (1 - clipped)), rtol=1e-5)
  assert np.all(np.isfinite(params["decoders_0"]["out"]["bias"]))


def test_encoder_sees_mean_centred_input():
  model = tiny(1, 3)
  params = random_params(model)
  logits = model.module.apply({"params": params}, 0, TINY_X,
                              method=sbn.SBNModule.encode)
  np.testing.assert_allclose(
      logits, affine(params["encoders_0"], TINY_X - TINY_MEAN), rtol=1e-5)


# -- shapes and finiteness at the papers' sizes ----------------------------

@pytest.mark.parametrize("factory,kwargs", [
    (sbn.linear, {}),
    (sbn.nonlinear, dict(nonlinearity="leaky_relu", input_baseline=True)),
    (sbn.two_layer, {}),
])
def test_loss_gradients_and_samples_are_finite(factory, kwargs):
  model = factory(MNIST_MEAN, **kwargs)
  x = (np.random.RandomState(1).uniform(size=(3, 784)) < MNIST_MEAN
       ).astype(np.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
  est = estimators.make("reinforce", baseline="moving_average")
  state = init_state(model, params, x, est)
  (loss, aux), grads = loss_and_grad(model, est)(
      params, jax.random.PRNGKey(2), x, state)
  chex.assert_shape(loss, ())
  chex.assert_shape(aux.objective, (3,))
  chex.assert_tree_all_finite((loss, aux.objective, grads, aux.diagnostics))
  chex.assert_trees_all_equal_shapes(grads, params)
  chex.assert_trees_all_equal_structs(state, aux.state)
  assert float(loss) > 0  # -ELBO of binary data (plus a baseline loss)
  if model.num_layers == 1:
    return
  assert isinstance(aux.state, tuple) and len(aux.state) == 2
  sample = jax.jit(model.sample, static_argnums=2, static_argnames="binary")
  samples = sample(params, jax.random.PRNGKey(3), 5)
  chex.assert_shape(samples, (5, 784))
  assert np.all((samples >= 0) & (samples <= 1))
  binary = sample(params, jax.random.PRNGKey(3), 5, binary=True)
  assert set(np.unique(binary)) <= {0.0, 1.0}


# Estimators run through the model: (name, options, stochastic layers).
# Two layers nest the estimator inside itself (see the sbn docstring).
FAST = [("gumbel_softmax", dict(temperature=0.5), 2),
        ("vimco", dict(num_samples=3), 1)]
SLOW = [("vimco", dict(num_samples=3), 2), ("rloo", dict(num_samples=2), 2),
        ("disarm", {}, 2), ("arm", {}, 2), ("muprop", {}, 2),
        ("straight_through", {}, 2), ("st_gumbel_softmax", {}, 2),
        ("gumbel_rao", dict(num_samples=2), 2), ("rebar", {}, 2),
        ("relax", {}, 2), ("overlapping_exponential", {}, 2),
        ("spike_and_exp", {}, 2), ("power_function", {}, 2)]


def _works(name, options):
  """False for placeholder estimators (traced only, nothing is compiled)."""
  est = estimators.make(name, **options)
  logits = jnp.zeros((2, 3))
  try:
    jax.eval_shape(lambda l: est.estimate(jax.random.PRNGKey(0), l,
                                          lambda z: jnp.sum(z, -1),
                                          est.init(jax.random.PRNGKey(0), l)),
                   logits)
  except (NotImplementedError, AttributeError):
    return False
  return True


@pytest.mark.parametrize("name,options,num_layers", FAST + [
    pytest.param(*case, marks=pytest.mark.slow) for case in SLOW])
def test_estimators_run_through_the_model(name, options, num_layers):
  if not _works(name, options):
    pytest.skip(f"{name} is not implemented yet")
  model = tiny(num_layers, 3, hidden_dims=(5,))
  params = random_params(model)
  est = estimators.make(name, **options)
  state = init_state(model, params, TINY_X, est)
  (loss, aux), grads = loss_and_grad(model, est)(
      params, jax.random.PRNGKey(2), TINY_X, state)
  chex.assert_shape(aux.objective, (2,))
  chex.assert_tree_all_finite((loss, grads, aux.objective))
  chex.assert_trees_all_equal_structs(state, aux.state)


# -- exactness on tiny SBNs ------------------------------------------------

def test_enumerate_nesting_gives_the_exact_elbo_and_gradient():
  # `enumerate` nested in itself sums over both layers: the loss, objective
  # and gradient must equal the explicit double sum. (The one-layer model's
  # exact value is checked in the KL-weight test.)
  model = tiny(2, 2)
  params = random_params(model)
  (loss, aux), grads = loss_and_grad(model, estimators.make("enumerate"))(
      params, jax.random.PRNGKey(0), TINY_X, None)

  @jax.jit
  def exact(p):
    elbo = exact_two_layer(p, TINY_X)[0]
    return elbo, jax.grad(lambda q: -jnp.mean(exact_two_layer(q, TINY_X)[0]))(p)

  elbo, exact_grads = exact(params)
  np.testing.assert_allclose(loss, -jnp.mean(elbo), rtol=1e-5)
  np.testing.assert_allclose(aux.objective, elbo, rtol=1e-5)
  chex.assert_trees_all_close(grads, exact_grads, atol=1e-5, rtol=1e-4)


def test_kl_weight_and_warmup_scale_the_kl_term():
  model = tiny(1, 3, kl_warmup_steps=100)
  params = random_params(model)
  enum = estimators.make("enumerate")
  @jax.jit
  def reconstruction_and_kl(params):
    z = binary_support(3)[:, None, :]
    log_q = log_bern(affine(params["encoders_0"], TINY_X - TINY_MEAN), z)
    recon = log_bern(affine(params["decoders_0"], z), TINY_X)
    kl = log_q - log_bern(params["prior_logits"], z)
    return jnp.sum(jnp.exp(log_q) * recon, 0), jnp.sum(jnp.exp(log_q) * kl, 0)

  recon, kl = reconstruction_and_kl(params)
  _, aux = jax.jit(functools.partial(model.loss, estimator=enum,
                                     kl_weight=0.5))(
                                         params, jax.random.PRNGKey(0), TINY_X,
                                         step=25)
  np.testing.assert_allclose(aux.objective, recon - 0.125 * kl, rtol=1e-5)
  np.testing.assert_allclose(aux.diagnostics["kl_weight"], 0.125)


def test_one_layer_reinforce_is_unbiased_for_elbo_and_all_gradients():
  # REINFORCE with a self-critic baseline and NVIL's input-dependent
  # baseline: the ELBO and the gradient wrt the encoder, decoder and prior
  # are unbiased, and the baseline net gets its regression gradient.
  model = tiny(1, 3, input_baseline=True)
  params = random_params(model, seed=3)
  est = estimators.make("reinforce", baseline="self_critic")
  grads, objectives, unravel = loss_gradient_draws(model, params, est, 20_000)

  def target(p):
    elbo, regression = exact_one_layer_with_baseline(p, TINY_X)
    return -jnp.mean(elbo) + jnp.mean(regression)

  stats.assert_unbiased(objectives, jax.jit(exact_one_layer)(params, TINY_X)[0])
  exact = ravel_pytree(jax.jit(jax.grad(target))(params))[0]
  assert np.all(np.abs(exact) > 1e-4)  # every parameter matters
  stats.assert_unbiased(grads, exact)


def test_two_layer_nesting_reaches_every_layer_unbiasedly():
  # Both layers use REINFORCE with NVIL input baselines: the learning signal
  # of layer 1 must be the full ELBO integrand (nesting), layer 2 must get
  # its own score term, and both baselines their regression gradients.
  model = tiny(2, 2, input_baseline=True)
  params = random_params(model, seed=5)
  est = estimators.make("reinforce")
  grads, objectives, unravel = loss_gradient_draws(model, params, est, 30_000)

  def target(p):
    elbo, _, regression = exact_two_layer(p, TINY_X, with_baselines=True)
    return -jnp.mean(elbo) + jnp.mean(regression)

  stats.assert_unbiased(objectives, jax.jit(exact_two_layer)(params, TINY_X)[0])
  exact = ravel_pytree(jax.jit(jax.grad(target))(params))[0]
  stats.assert_unbiased(grads, exact)


def joint_elbo_without_decoder_weights(params, x):
  """log p(x | decoder bias) - KL(q(z|x) || p(z)), closed form, `[B]`.

  DVAE++'s joint ELBO (Vahdat et al., 2018, Eq. 4) of the one-layer SBN when
  the decoder kernel is zero, so that the decoder ignores z and zeta.
  """
  l = affine(params["encoders_0"], x - TINY_MEAN)  # [B, D]
  a = params["prior_logits"]
  q = jax.nn.sigmoid(l)
  kl = jnp.sum(q * (jax.nn.log_sigmoid(l) - jax.nn.log_sigmoid(a)) +
               (1 - q) * (jax.nn.log_sigmoid(-l) - jax.nn.log_sigmoid(-a)), -1)
  return log_bern(params["decoders_0"]["out"]["bias"], x) - kl


@pytest.mark.parametrize("name", ["overlapping_exponential", "power_function",
                                  "overlapping_logistic", "spike_and_exp"])
def test_smoothing_trains_the_joint_elbo_with_the_closed_form_kl(name):
  # Issue 3: with the log-masses evaluated at zeta, the relaxed KL term of
  # the overlapping families was biased by m_0 sum (1 - 2q)(a - l), which
  # grows without bound in |l|. With the decoder kernel at zero, the relaxed
  # objective must average to log p(x | bias) - KL exactly, and its gradient
  # wrt the encoder, the prior and the decoder bias must be unbiased for it.
  model = tiny(1, 3)
  params = random_params(model, seed=11)
  params["encoders_0"] = jax.tree.map(lambda v: 4.0 * v, params["encoders_0"])
  params["decoders_0"]["out"]["kernel"] = jnp.zeros_like(
      params["decoders_0"]["out"]["kernel"])
  flat, unravel = ravel_pytree(params)
  est = estimators.make(name)

  def loss(key, flat):
    return model.loss(unravel(flat), key, TINY_X, step=0, estimator=est)[0]

  keys = jax.random.split(jax.random.PRNGKey(3), 20_000)
  losses, grads = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=1),
                                   in_axes=(0, None)))(keys, flat)
  target = lambda f: -jnp.mean(joint_elbo_without_decoder_weights(unravel(f),
                                                                  TINY_X))
  logits = affine(params["encoders_0"], TINY_X - TINY_MEAN)
  assert np.max(np.abs(logits)) > 5  # where the old bias was large
  stats.assert_unbiased(np.asarray(losses), target(flat))
  exact = jax.grad(target)(flat)
  mask = ravel_pytree(jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.full(v.shape, "kernel" not in str(path) or
                               "decoders" not in str(path)), params))[0]
  stats.assert_unbiased(np.asarray(grads)[:, mask], np.asarray(exact)[mask])


@pytest.mark.parametrize("num_layers,latent_dim", [
    (1, 3), pytest.param(2, 2, marks=pytest.mark.slow)])
def test_log_likelihood_is_a_bound_that_tightens_with_k(num_layers, latent_dim):
  model = tiny(num_layers, latent_dim)
  params = random_params(model, seed=7)
  exact = exact_one_layer if num_layers == 1 else exact_two_layer
  elbo, log_px = jax.jit(exact)(params, TINY_X)[:2]
  replicates = 200
  x = jnp.repeat(TINY_X, replicates, 0)  # independent estimates per row
  bound = jax.jit(model.log_likelihood, static_argnums=(3, 4))
  means, ses = {}, {}
  for k in (1, 1000):
    draws = np.asarray(bound(params, jax.random.PRNGKey(k), x, k, 100)
                       ).reshape(2, replicates)
    means[k] = draws.mean(1)
    ses[k] = draws.std(1) / np.sqrt(replicates)
    assert np.all(means[k] <= log_px + 4 * ses[k] + 1e-4), (k, means[k],
                                                           log_px)
  # E[L_1] = ELBO < log p(x), and L_1000 closes the gap.
  assert np.all(elbo < log_px - 0.1)
  np.testing.assert_array_less(np.abs(means[1] - elbo), 4 * ses[1])
  np.testing.assert_allclose(means[1000], log_px, atol=0.02)


# -- jit without retracing -------------------------------------------------

def test_jitted_training_step_does_not_retrace_and_updates_every_state():
  model = tiny(2, 3, hidden_dims=(4,))
  est = estimators.make("reinforce", baseline="moving_average")

  @jax.jit
  @chex.assert_max_traces(n=1)
  def train_step(params, state, key, step):
    (loss, aux), grads = jax.value_and_grad(model.loss, has_aux=True)(
        params, key, TINY_X, step=step, estimator=est, state=state)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
    return params, aux, loss

  params = jax.jit(model.init)(jax.random.PRNGKey(0), TINY_X)
  state = init_state(model, params, TINY_X, est)
  for step in range(3):
    params, aux, loss = train_step(params, state, jax.random.PRNGKey(step),
                                   jnp.asarray(step))
    # Both layers' states (layer 2's from the probe pass) are updated.
    for old, new in zip(state, aux.state):
      chex.assert_trees_all_equal_structs(old, new)
      assert any(bool(jnp.any(a != b)) for a, b in zip(
          jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new)))
    state = aux.state
  assert any(k.startswith("layer2/") for k in aux.diagnostics)
  assert np.isfinite(loss)
