r"""The contract suite of the stochastic parts: every (latent part x
estimator it accepts), on a tiny two-layer model small enough to enumerate,
trained through `stochastic.chain.training_pass` exactly as the models are.

The model (per part): q(z_1) with free logits, q(z_2 | z_1) an affine map of
z_1; p(z_2) free logits, p(z_1 | z_2) affine, p(x | z_1) Bernoulli with
logits affine in z_1 for a fixed binary x of 3 pixels; F = log p(x, z) -
log q(z) in the part's log-mass form. Parameters: `enc` (q), `prior` (p of
z), `dec` (p of x).

The full parameter gradient of the training surrogate (state updates
excluded: each draw starts from the estimator's initial state) is checked
against the gradient of the objective the estimator claims, mean within 4
standard errors on every coordinate:

* estimators that nest (score-function family, control variates, ARM,
  enumeration): the exact ELBO, by enumeration; `vimco` on the first layer
  alone against the exact 2-sample bound (nested, its surrogate is not
  linear in f: documented in `models.sbn`);
* relaxed-forward pathwise estimators (Gumbel-softmax, the smoothing
  families): the relaxed objective E[F(\zeta)], against the score function
  of the relaxed density (each layer's \zeta drawn without gradient, F's own
  gradient at fixed \zeta plus (F - b) grad log q(\zeta), nested), which
  needs no derivative in \zeta;
* hard-forward pathwise estimators (straight-through family): biased for
  the encoder; the decoder's and the prior's gradients are unbiased for the
  exact ELBO gradient, and the forward value is F at hard samples.

The normal part is reparameterised whatever the estimator: a one-layer
linear-Gaussian model whose ELBO is closed-form.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.distributions import concrete
from discrete_vi.distributions import overlapping
from discrete_vi.estimators import smoothing
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents

X = jnp.array([1.0, 0.0, 1.0])
NUM_DRAWS = 20_000
TAU = 0.6
# Units per layer: Bernoulli D = 2 (16 configurations of two layers),
# categorical one variable with K = 3 (9 configurations).
SHAPES = {"bernoulli": (2,), "categorical": (1, 3)}
PARTS = {"bernoulli": latents.Bernoulli(), "categorical": latents.Categorical()}
# Options so that every estimator samples at the model's temperature.
OPTIONS = {"gumbel_softmax": dict(temperature=TAU),
           "st_gumbel_softmax": dict(temperature=TAU),
           "gumbel_rao": dict(temperature=TAU, num_samples=3),
           "rebar": dict(temperature=TAU)}
# The default run checks one estimator of each kind per part; the rest of
# the registry runs with `-m slow`.
DEFAULT_RUN = {"bernoulli": ("reinforce", "disarm", "gumbel_softmax",
                             "overlapping_exponential", "st_gumbel_softmax"),
               "categorical": ("rloo", "gumbel_softmax", "straight_through")}


def init_params(distribution: str) -> dict:
  size = int(np.prod(SHAPES[distribution]))
  keys = jax.random.split(jax.random.PRNGKey(0), 6)
  n = lambda k, shape, s=1.0: s * jax.random.normal(k, shape)
  return {"enc": {"logits": n(keys[0], SHAPES[distribution]),
                  "w": n(keys[1], (size, size)), "b": jnp.zeros(size)},
          "prior": {"logits": n(keys[2], SHAPES[distribution]),
                    "w": n(keys[3], (size, size)), "b": jnp.zeros(size)},
          "dec": {"w": n(keys[4], (size, 3), 1.5), "b": n(keys[5], (3,))}}


def affine(net, z, shape):
  flat = z.reshape(z.shape[:-len(shape)] + (-1,))
  return (flat @ net["w"] + net["b"]).reshape(flat.shape[:-1] + shape)


def model_pass(distribution: str, params, sampler, form=None,
               num_layers: int = 2):
  """F along the chain z_1 | x, z_2 | z_1 (or z_1 alone), `[]`."""
  part, shape = PARTS[distribution], SHAPES[distribution]

  def objective(draws):
    z1 = draws[0]
    logits_x = affine(params["dec"], z1.z, (3,))
    log_px = jnp.sum(X * jax.nn.log_sigmoid(logits_x) +
                     (1 - X) * jax.nn.log_sigmoid(-logits_x))
    top = params["prior"]["logits"]
    if num_layers == 1:
      return log_px + part.log_prob(top, z1, form)
    return (log_px + part.log_prob(affine(params["prior"], draws[1].z,
                                          shape), z1, form) +
            part.log_prob(top, draws[1], form))

  def layer(l, logits, draws, log_q):
    def rest(draw):
      new_log_q = log_q + part.log_prob(logits, draw, form)
      if l == num_layers - 1:
        return objective(draws + (draw,)) - new_log_q
      return layer(l + 1, affine(params["enc"], draw.z, shape),
                   draws + (draw,), new_log_q)
    return sampler(l, part, logits, rest)

  return layer(0, params["enc"]["logits"], (), 0.0)


def configurations(distribution: str, num_layers: int):
  """Every joint configuration: a list of per-layer hard values."""
  shape = SHAPES[distribution]
  if distribution == "bernoulli":
    values = [jnp.array(v, jnp.float32)
              for v in itertools.product([0, 1], repeat=shape[0])]
  else:
    values = [jax.nn.one_hot(jnp.array([k]), shape[1])
              for k in range(shape[1])]
  return list(itertools.product(values, repeat=num_layers))


def log_q_of(distribution, params, zs):
  part, shape = PARTS[distribution], SHAPES[distribution]
  total, logits = 0.0, params["enc"]["logits"]
  for z in zs:
    total = total + part.log_prob(logits, latents.hard_draw(z))
    logits = affine(params["enc"], z, shape)
  return total


def exact_elbo(distribution, num_layers=2):
  def elbo(params):
    total = 0.0
    for zs in configurations(distribution, num_layers):
      f = model_pass(distribution, params, chain.fixed_sampler(zs),
                     num_layers=num_layers)
      total = total + jnp.exp(log_q_of(distribution, params, zs)) * f
    return total
  return elbo


def exact_two_sample_bound(distribution):
  def bound(params):
    configs = configurations(distribution, 1)
    fs = [model_pass(distribution, params, chain.fixed_sampler(zs),
                     num_layers=1) for zs in configs]
    qs = [jnp.exp(log_q_of(distribution, params, zs)) for zs in configs]
    return sum(qa * qb * (jnp.logaddexp(fa, fb) - jnp.log(2.0))
               for qa, fa in zip(qs, fs) for qb, fb in zip(qs, fs))
  return bound


def flat(tree) -> jnp.ndarray:
  return jnp.concatenate([jnp.ravel(l) for l in jax.tree_util.tree_leaves(
      tree)])


def columns(params, groups) -> np.ndarray:
  """Indices of `flat(params)` that belong to the top-level groups."""
  sizes = {k: flat(v).size for k, v in params.items()}
  out, start = [], 0
  for k in sorted(params):  # tree_leaves order: sorted dict keys
    if k in groups:
      out += list(range(start, start + sizes[k]))
    start += sizes[k]
  return np.array(out)


def moments(surrogate, params, seed=1, num_draws=NUM_DRAWS):
  """Mean and standard error of grad surrogate(params, key), flattened."""
  grad = jax.jit(jax.vmap(lambda k: flat(jax.grad(surrogate)(params, k))))
  draws = np.asarray(grad(jax.random.split(jax.random.PRNGKey(seed),
                                           num_draws)), np.float64)
  return draws.mean(0), draws.std(0) / np.sqrt(num_draws)


def assert_within(mean, se, reference, ref_se=0.0, index=None):
  idx = np.arange(mean.size) if index is None else index
  combined = np.sqrt(np.square(se) + np.square(ref_se))
  tolerance = 4 * combined + 1e-6 + 1e-5 * np.abs(reference)
  bad = [(int(i), float(mean[i]), float(reference[i]), float(combined[i]))
         for i in idx if abs(mean[i] - reference[i]) > tolerance[i]]
  assert not bad, f"{len(bad)} coordinates off by > 4 SE: {bad[:6]}"


def make(name, distribution):
  return estimators.make(name, distribution=distribution,
                         **OPTIONS.get(name, {}))


def training_surrogate(estimator, distribution, num_layers=2):
  def surrogate(params, key):
    states = tuple(estimator.init(key, jnp.zeros(SHAPES[distribution]))
                   for _ in range(num_layers))
    result = chain.training_pass(
        lambda sampler, hard: model_pass(distribution, params, sampler,
                                         "hard" if hard else None,
                                         num_layers),
        estimator, key, states)
    return result.surrogate
  return surrogate


def relaxed_draw(name, distribution, key, logits):
  """A draw of the estimator's relaxed distribution, without gradient, and
  its log density (in the logits, with the draw held fixed)."""
  if name == "gumbel_softmax":
    sample = estimators.make(name, distribution=distribution,
                             **OPTIONS[name]).sample(key, logits)
    y = jax.lax.stop_gradient(sample.log_space)
    if distribution == "bernoulli":
      draw = latents.Draw(jax.nn.sigmoid(y), sample.hard, y)
      density = concrete.log_prob_binary_latent(logits, y, TAU)
    else:
      draw = latents.Draw(jnp.exp(y), sample.hard, y)
      density = concrete.log_prob_categorical_latent(logits, y, TAU)
    return draw, jnp.sum(density)
  family, beta = smoothing.family_and_beta(estimators.make(name))
  zeta = jax.lax.stop_gradient(estimators.make(name).sample(key, logits).z)
  posterior = (overlapping.posterior_logits(family, logits, zeta, beta)
               if family.name in smoothing.POSTERIOR_FAMILIES else logits)
  draw = latents.Draw(zeta, (zeta > 0.5).astype(zeta.dtype),
                      posterior_logits=posterior)
  return draw, jnp.sum(overlapping.log_prob(family, logits, zeta, beta))


def score_reference(name, distribution, baseline):
  def surrogate(params, key):
    def sampler(l, part, logits, rest, baseline_value=None):
      del part, baseline_value
      draw, log_density = relaxed_draw(name, distribution,
                                       jax.random.fold_in(key, l), logits)
      value = rest(draw)
      return value + jax.lax.stop_gradient(value - baseline) * (
          log_density - jax.lax.stop_gradient(log_density))
    return model_pass(distribution, params, sampler)
  return surrogate


def cases():
  out = []
  for distribution in PARTS:
    for name in sorted(estimators.ESTIMATORS):
      if distribution not in estimators.DISTRIBUTIONS[name]:
        continue
      marks = () if name in DEFAULT_RUN[distribution] else (pytest.mark.slow,)
      out.append(pytest.param(distribution, name, marks=marks,
                              id=f"{distribution}-{name}"))
  return out


@pytest.mark.parametrize("distribution,name", cases())
def test_gradient_matches_the_claimed_objective(distribution, name):
  params = init_params(distribution)
  estimator = make(name, distribution)
  PARTS[distribution].check_estimator(estimator)
  if name == "vimco":
    mean, se = moments(training_surrogate(estimator, distribution, 1), params)
    exact = flat(jax.grad(exact_two_sample_bound(distribution))(params))
    assert_within(mean, se, np.asarray(exact))
    return
  exact = np.asarray(flat(jax.grad(exact_elbo(distribution))(params)))
  mean, se = moments(training_surrogate(estimator, distribution), params)
  if estimator.sample is None:  # nested: unbiased for the ELBO
    assert_within(mean, se, exact)
  elif estimator.relaxed_forward:  # the relaxed objective
    pilot = jax.vmap(lambda k: training_surrogate(estimator, distribution)(
        params, k))(jax.random.split(jax.random.PRNGKey(9), 500))
    reference = score_reference(name, distribution, float(jnp.mean(pilot)))
    ref_mean, ref_se = moments(reference, params, seed=2,
                               num_draws=4 * NUM_DRAWS)
    assert_within(mean, se, ref_mean, ref_se)
  else:  # hard forward: the generative parameters are unbiased
    assert_within(mean, se, exact, index=columns(params, ("dec", "prior")))


@pytest.mark.parametrize("distribution", sorted(PARTS))
def test_hard_forward_value_is_f_at_hard_samples(distribution):
  """For a hard-forward estimator the training pass's objective is its
  surrogate's value, and equals F at the draws' hard samples."""
  params = init_params(distribution)
  estimator = make("st_gumbel_softmax", distribution)
  key = jax.random.PRNGKey(3)
  result = chain.training_pass(
      lambda sampler, hard: model_pass(distribution, params, sampler), estimator,
      key)
  # The hard draws of each layer's own noise, from `concrete` by hand.
  def noise_hard_sampler(l, part, logits, rest, baseline=None):
    del part, baseline
    noise = concrete.sample_noise(jax.random.fold_in(key, l), logits.shape,
                                  distribution)
    return rest(latents.hard_draw(
        concrete.relax(logits, noise, TAU, distribution).hard))
  hard = model_pass(distribution, params, noise_hard_sampler)
  np.testing.assert_allclose(result.objective, hard, rtol=1e-6)
  np.testing.assert_allclose(result.surrogate, hard, rtol=1e-6)


def test_normal_part_is_reparameterised_and_unbiased():
  """z ~ N(m, s^2), x ~ N(w z, 1), p(z) = N(0, 1): the ELBO in closed form;
  the chain's reparameterised gradient (any estimator) matches it."""
  part, x = latents.Normal(), 0.7
  params = {"q": jnp.array([[0.3, -0.4], [-0.5, 0.2]]), "w": jnp.array(1.3)}

  def run(p, sampler):
    def rest(draw):
      z = draw.z
      log_px = jnp.sum(-0.5 * jnp.square(x - p["w"] * z) -
                       0.5 * jnp.log(2 * jnp.pi))
      prior = jnp.zeros_like(p["q"])
      return log_px + part.log_prob(prior, draw) - part.log_prob(p["q"], draw)
    return sampler(0, part, p["q"], rest)

  def elbo(p):
    m, s = p["q"][:, 0], jnp.exp(p["q"][:, 1])
    expected_log_px = jnp.sum(-0.5 * (jnp.square(x - p["w"] * m) +
                                      jnp.square(p["w"] * s)) -
                              0.5 * jnp.log(2 * jnp.pi))
    return expected_log_px - part.kl(p["q"], jnp.zeros_like(p["q"]))

  estimator = make("reinforce", "bernoulli")  # not applied to normal layers
  surrogate = lambda p, k: chain.training_pass(
      lambda sampler, hard: run(p, sampler), estimator, k).surrogate
  mean, se = moments(surrogate, params)
  assert_within(mean, se, np.asarray(flat(jax.grad(elbo)(params))))
