r"""HD-VAE's training gradient against the gradient of the objective it
claims, on one-layer models small enough to enumerate (N = 2, K = 4: 16
configurations), for every categorical estimator HD-VAE accepts.

Two parameter settings of one tiny model:

* "rate": memory values 0, so log p(x | z) does not depend on z and the
  encoder's gradient is the rate's alone; keys and query biases scaled so
  that q and p are peaked and differ (KL 0.72 nats). The rate terms are
  linear in z (Eq. 15), so:
  - `gumbel_softmax` (default `log_mass`) is unbiased for the relaxed
    objective E_{q^tau}[F(\tilde z)], checked against an independent
    estimator of that gradient: the score function of the Concrete density
    (F's own gradient at a fixed \tilde z plus (F - b) grad log q^tau(y)),
    which needs no derivative in \tilde z;
  - `log_mass="hard"` (Eq. 14 at H(\tilde z), the old default) makes the
    relaxed rate exactly -KL(q || p), yet its pathwise encoder gradient
    has mean zero: documented, and tested to differ from the exact one;
  - stochastic `straight_through` with Eq. 15 is exactly unbiased for
    linear f on a factorial q, so its full gradient matches enumeration.
* "full": the initialised model (the decoder sees z). Unbiased estimators
  (`rloo`, `reinforce` with a self-critic, `vimco` for its 2-sample bound)
  match the exact gradient of every parameter; `enumerate` equals it. The
  straight-through family is biased for the encoder; what it claims is
  tested: a hard forward value, so the gradients of the parameters that do
  not shape q (decoder, prior) are unbiased for the exact ELBO gradient,
  and Gumbel-Rao has the mean of ST-Gumbel-softmax.

Statistics: the full parameter gradient is projected on 3 fixed random
unit directions per parameter array; each projection's Monte Carlo mean
must be within 4 standard errors (of the difference, when the reference is
itself Monte Carlo) of the reference. The default run keeps the rate
model's checks and one unbiased estimator; the rest are `slow`.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.distributions import concrete
from discrete_vi.models import hdvae
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents

MEAN = np.full(784, 0.2, np.float32)
X = (np.random.RandomState(0).rand(1, 784) < 0.2).astype(np.float32)
TAU = 0.5
# 5k draws (references 2x): each comparison is within 4 standard errors,
# and a missing gradient (the rate defect these tests guard) is off by far
# more than that at this many draws.
NUM_DRAWS = 5_000
CHUNK = 5_000
NUM_PROJECTIONS = 3
# Parameters that do not shape q(z|x) in the one-layer ladder: the decoder
# (embedding, top-down stack and output) and the prior's query net.
GENERATIVE_ONLY = ("embed_0", "embed_0_out", "up_0", "up_out", "pixel_bias",
                   "query_prior", "query_proj_prior_0")
# Parameters that shape q(z|x) only: the bottom-up encoder and the
# posterior's query net (`top` and the memory's keys are shared).
ENCODER_ONLY = ("stem_0", "stem_1", "query_posterior",
                "query_proj_posterior_0")


def tiny_model(log_mass: str = "relaxed") -> hdvae.HDVAE:
  return hdvae.HDVAE(MEAN, num_variables=(2,), num_classes=(4,), filters=2,
                     num_blocks=0, dropout=0.0, key_dim=2, value_dim=2,
                     query_channels=2, freebits=0.0, log_mass=log_mass)


@functools.cache
def full_params():
  return tiny_model().init(jax.random.PRNGKey(0), X)


def rate_params():
  """Memory values 0; sub-keys x3 and random query biases (peaked q, p)."""
  p = full_params()
  latent = dict(p["latent_0"])
  latent["values"] = jnp.zeros_like(latent["values"])
  for name in ("sub_keys_1", "sub_keys_2"):
    latent[name] = 3.0 * latent[name]
  for name, seed in (("query_posterior", 11), ("query_prior", 12)):
    net = dict(latent[name])
    net["bias"] = 1.5 * jax.random.normal(jax.random.PRNGKey(seed),
                                          net["bias"].shape)
    latent[name] = net
  return dict(p, latent_0=latent)


PARAMS = {"full": full_params, "rate": rate_params}


class Projector:
  """Fixed random unit directions, `NUM_PROJECTIONS` per parameter array."""

  def __init__(self, params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    rng = np.random.RandomState(7)
    self.directions, self.names = [], []
    for path, leaf in flat:
      d = rng.randn(NUM_PROJECTIONS, leaf.size)
      self.directions.append(d / np.linalg.norm(d, axis=1, keepdims=True))
      self.names += [f"{jax.tree_util.keystr(path)}#{i}"
                     for i in range(NUM_PROJECTIONS)]

  def __call__(self, grads) -> np.ndarray:
    """`[n, columns]` of a gradient tree batched `[n, ...]`."""
    leaves = jax.tree_util.tree_leaves(grads)
    return np.concatenate(
        [np.asarray(g).reshape(g.shape[0], -1) @ d.T
         for g, d in zip(leaves, self.directions)], -1)

  def columns(self, prefixes) -> list[int]:
    return [i for i, name in enumerate(self.names)
            if any(f"['{p}']" in name for p in prefixes)]


def mc_moments(surrogate, params, seed: int, num_draws: int = NUM_DRAWS):
  """Mean and standard error of the projected gradient of
  `surrogate(params, key)` (a scalar to maximise) over independent keys."""
  project = Projector(params)
  grad_fn = jax.jit(jax.vmap(jax.grad(surrogate), in_axes=(None, 0)))
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  total, total_sq = 0.0, 0.0
  for i in range(0, num_draws, CHUNK):
    cols = project(grad_fn(params, keys[i:i + CHUNK]))
    total, total_sq = total + cols.sum(0), total_sq + np.square(cols).sum(0)
  mean = total / num_draws
  var = np.maximum(total_sq / num_draws - np.square(mean), 0.0)
  return mean, np.sqrt(var / (num_draws - 1))


def exact_projection(objective, params) -> np.ndarray:
  # jitted: the enumeration run op by op compiles each primitive (~15 s).
  grads = jax.jit(jax.grad(objective))(params)
  return Projector(params)(jax.tree_util.tree_map(lambda g: g[None],
                                                  grads))[0]


def model_surrogate(estimator, log_mass: str = "relaxed"):
  """-loss of `HDVAE.loss` (what training differentiates)."""
  model = tiny_model(log_mass)
  return lambda p, key: -model.loss(p, key, X, estimator=estimator,
                                    state=None)[0]


# -- exact objectives by enumeration ------------------------------------------


def log_weights_and_log_q(p):
  """`[16]` log p(x, z) - log q(z|x) and log q(z|x) of every z."""
  model = tiny_model()
  idx = jnp.array(list(itertools.product(range(4), repeat=2)))
  zs = jax.nn.one_hot(idx, 4)[:, None]  # [16, 1, 2, 4]

  def terms(z):
    return model._path(p, X, chain.fixed_sampler([z]),
                       lambda path, h, xs: model._terms(
                           p, xs, path, h, "hard", None, None))
  t = jax.vmap(terms)(zs)
  return (t.log_px - (t.log_q[0] - t.log_p[0]))[:, 0], t.log_q[0][:, 0]


def exact_elbo(p):
  log_w, log_q = log_weights_and_log_q(p)
  return jnp.sum(jnp.exp(log_q) * log_w)


def exact_two_sample_bound(p):
  log_w, log_q = log_weights_and_log_q(p)
  pair = jnp.logaddexp(log_w[:, None], log_w[None, :]) - jnp.log(2.0)
  return jnp.sum(jnp.exp(log_q[:, None] + log_q[None, :]) * pair)


# -- the relaxed objective's reference -----------------------------------------


def concrete_score_surrogate(log_mass: str, baseline: float):
  r"""Score function of the Concrete density for grad E_{q^tau}[F]:
  F's gradient at a fixed \tilde z plus (F - b) grad log q^tau(y), y the
  log-space sample (the map y -> \tilde z does not depend on the
  parameters)."""
  model = tiny_model(log_mass)

  def surrogate(p, key):
    def sampler(l, part, q, rest):
      del part
      noise = jax.random.gumbel(jax.random.fold_in(key, l), q.shape)
      y = jax.lax.stop_gradient(concrete.categorical_latent(q, noise, TAU))
      value = rest(latents.Draw(jnp.exp(y), concrete.harden_categorical(y),
                                y))
      log_density = jnp.sum(
          concrete.log_prob_categorical_latent(q, y, TAU), -1)
      return value + jax.lax.stop_gradient(value - baseline) * (
          log_density - jax.lax.stop_gradient(log_density))

    finish = lambda path, h, xs: model.objective(model._terms(
        p, xs, path, h, log_mass, TAU, None))
    return jnp.sum(model._path(p, X, sampler, finish))
  return surrogate


GUMBEL = estimators.make("gumbel_softmax", distribution="categorical",
                         temperature=TAU)


def relaxed_reference(params, log_mass: str):
  """Mean and SE of the Concrete score-function estimator, 2x the draws."""
  pilot = jax.jit(jax.vmap(
      lambda k: model_surrogate(GUMBEL, log_mass)(params, k)))(
          jax.random.split(jax.random.PRNGKey(3), 1000))
  surrogate = concrete_score_surrogate(log_mass, float(jnp.mean(pilot)))
  return mc_moments(surrogate, params, seed=2, num_draws=2 * NUM_DRAWS)


def far_columns(mean, se, reference, ref_se=0.0, columns=None):
  """The projections (name, mean, reference, SE) off by > 4 SE."""
  names = Projector(PARAMS["full"]()).names
  idx = range(len(names)) if columns is None else columns
  combined = np.sqrt(np.square(se) + np.square(ref_se))
  # (float32 rounding of gradients that do not depend on the sample)
  tolerance = 4 * combined + 1e-6 + 1e-5 * np.abs(reference)
  return [(names[i], float(mean[i]), float(reference[i]), float(combined[i]))
          for i in idx if abs(mean[i] - reference[i]) > tolerance[i]]


def assert_within(*args, **kwargs):
  bad = far_columns(*args, **kwargs)
  assert not bad, f"{len(bad)} projections off by > 4 SE: {bad[:6]}"


# -- the rate model ------------------------------------------------------------


@pytest.mark.parametrize("params_name", [
    "rate", pytest.param("full", marks=pytest.mark.slow)])
def test_gumbel_softmax_is_unbiased_for_the_relaxed_objective(params_name):
  """Default log_mass (Eq. 15): every parameter's gradient."""
  params = PARAMS[params_name]()
  mean, se = mc_moments(model_surrogate(GUMBEL), params, seed=1)
  ref_mean, ref_se = relaxed_reference(params, "relaxed")
  assert_within(mean, se, ref_mean, ref_se)


def test_hard_log_mass_gives_the_encoder_no_rate_gradient():
  """Eq. 14 at H(\\tilde z): the relaxed rate is exactly -KL (H(\\tilde z)
  ~ q), but the pathwise encoder gradient has mean zero."""
  params = rate_params()
  mean, se = mc_moments(model_surrogate(GUMBEL, "hard"), params, seed=1)
  encoder = Projector(params).columns(ENCODER_ONLY)
  exact = exact_projection(exact_elbo, params)
  assert far_columns(mean, se, exact, columns=encoder)
  assert_within(mean, se, np.zeros_like(mean), columns=encoder)


def test_straight_through_is_unbiased_for_a_rate_linear_in_z():
  params = rate_params()
  estimator = estimators.make("straight_through", distribution="categorical")
  mean, se = mc_moments(model_surrogate(estimator), params, seed=1)
  assert_within(mean, se, exact_projection(exact_elbo, params))


# -- the full model ------------------------------------------------------------

UNBIASED = {
    "rloo": (dict(num_samples=2), exact_elbo),
    "reinforce": (dict(baseline="self_critic"), exact_elbo),
    "vimco": (dict(num_samples=2), exact_two_sample_bound),
}


@pytest.mark.parametrize("name", [
    "rloo", pytest.param("reinforce", marks=pytest.mark.slow),
    pytest.param("vimco", marks=pytest.mark.slow)])
def test_unbiased_estimators_match_the_exact_gradient(name):
  options, objective = UNBIASED[name]
  params = full_params()
  estimator = estimators.make(name, distribution="categorical", **options)
  mean, se = mc_moments(model_surrogate(estimator), params, seed=1)
  assert_within(mean, se, exact_projection(objective, params))


@pytest.mark.slow
def test_enumerate_gives_the_exact_gradient():
  params = full_params()
  surrogate = model_surrogate(
      estimators.make("enumerate", distribution="categorical"))
  got = exact_projection(lambda p: surrogate(p, jax.random.PRNGKey(0)),
                         params)
  np.testing.assert_allclose(got, exact_projection(exact_elbo, params),
                             rtol=1e-3, atol=1e-4)


ST_FAMILY = {
    "st_gumbel_softmax": dict(temperature=TAU),
    "gumbel_rao": dict(temperature=TAU, num_samples=4),
    "straight_through": {},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ST_FAMILY))
def test_straight_through_family_generative_gradient_is_unbiased(name):
  """Hard forward: the decoder's and the prior's gradients are those of F
  at z ~ q, unbiased for the exact ELBO gradient."""
  params = full_params()
  estimator = estimators.make(name, distribution="categorical",
                              **ST_FAMILY[name])
  mean, se = mc_moments(model_surrogate(estimator), params, seed=1)
  assert_within(mean, se, exact_projection(exact_elbo, params),
                columns=Projector(params).columns(GENERATIVE_ONLY))


@pytest.mark.slow
def test_gumbel_rao_has_the_mean_of_st_gumbel_softmax():
  params = full_params()
  st = estimators.make("st_gumbel_softmax", distribution="categorical",
                       temperature=TAU)
  rao = estimators.make("gumbel_rao", distribution="categorical",
                        temperature=TAU, num_samples=4)
  mean_st, se_st = mc_moments(model_surrogate(st), params, seed=1)
  mean_rao, se_rao = mc_moments(model_surrogate(rao), params, seed=2)
  assert_within(mean_rao, se_rao, mean_st, se_st)
