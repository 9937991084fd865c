"""The stochastic parts and the chain: declared estimators, samplers,
training passes (states, probes, baselines, objectives). Gradients against
enumeration are in `stochastic_contract_test`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discrete_vi import estimators
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents

X = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # [B, 3]
BERNOULLI = latents.Bernoulli()


def two_layer_pass(params, sampler, with_baselines=False):
  """A two-layer Bernoulli chain (3 -> 2 -> 2 units), F per example."""
  def rest0(d0):
    logits1 = d0.z @ params["w1"]
    def rest1(d1):
      px = d0.z @ params["dec"]
      log_px = jnp.sum(X * jax.nn.log_sigmoid(px) +
                       (1 - X) * jax.nn.log_sigmoid(-px), -1)
      return (log_px + BERNOULLI.log_prob(jnp.zeros(2), d0) +
              BERNOULLI.log_prob(jnp.zeros(2), d1) -
              BERNOULLI.log_prob(logits0, d0) -
              BERNOULLI.log_prob(logits1, d1))
    baseline = jnp.sum(d0.z, -1) if with_baselines else None
    return sampler(1, BERNOULLI, logits1, rest1, baseline=baseline)
  logits0 = X @ params["w0"]
  baseline = jnp.sum(X, -1) if with_baselines else None
  return sampler(0, BERNOULLI, logits0, rest0, baseline=baseline)


PARAMS = {"w0": jnp.array([[0.5, -1.0], [0.2, 0.3], [-0.7, 0.9]]),
          "w1": jnp.array([[1.0, -0.5], [0.4, 0.8]]),
          "dec": jnp.array([[0.3, -0.2, 1.0], [-1.1, 0.6, 0.2]])}


# -- parts declare the estimators they accept ----------------------------------


@pytest.mark.parametrize("part,name,options,message", [
    (latents.Categorical(), "arm", {}, "cannot sample the categorical layer"),
    (latents.Categorical(), "rloo", {}, "needs distribution='categorical'"),
    (latents.Bernoulli(), "rloo", {"distribution": "categorical"},
     "needs distribution='bernoulli'"),
    (latents.Categorical("concrete"), "st_gumbel_softmax",
     {"distribution": "categorical"}, "relaxed samples"),
])
def test_parts_reject_estimators_naming_both(part, name, options, message):
  with pytest.raises(ValueError, match=message) as error:
    part.check_estimator(estimators.make(name, **options), 3)
  assert name in str(error.value) and "layer 3" in str(error.value)


def test_every_estimator_is_accepted_by_a_part_of_its_distributions():
  for name, distributions in estimators.DISTRIBUTIONS.items():
    for distribution in distributions:
      part = (latents.Bernoulli() if distribution == "bernoulli" else
              latents.Categorical())
      part.check_estimator(estimators.make(name, distribution=distribution))
  latents.Normal().check_estimator(estimators.make("arm"))


def test_declared_distributions_match_the_estimators_checks():
  """`estimators.DISTRIBUTIONS` is what each estimator accepts when run."""
  for name in estimators.ESTIMATORS:
    for distribution in ("bernoulli", "categorical"):
      declared = distribution in estimators.DISTRIBUTIONS[name]
      try:
        estimators.check_options(name, distribution=distribution)
        accepted = True
      except ValueError:
        accepted = False
      assert declared == accepted, (name, distribution)


def test_invalid_log_mass_names_the_value():
  with pytest.raises(ValueError, match="soft"):
    latents.Categorical("soft")


# -- samplers ------------------------------------------------------------------


def test_fixed_and_hard_samplers():
  zs = [jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[0.0, 0.0]] * 2)]
  collect = lambda params, sampler: two_layer_pass(params, sampler)
  fixed = two_layer_pass(PARAMS, chain.fixed_sampler(zs))
  # F written out for these draws: log p(x|z0) + log p(z0) + log p(z1)
  # - log q(z0|x) - log q(z1|z0), Bernoulli log-masses.
  log_bern = lambda l, z: jnp.sum(z * jax.nn.log_sigmoid(l) +
                                  (1 - z) * jax.nn.log_sigmoid(-l), -1)
  px = zs[0] @ PARAMS["dec"]
  by_hand = (log_bern(px, X) + log_bern(jnp.zeros(2), zs[0]) +
             log_bern(jnp.zeros(2), zs[1]) -
             log_bern(X @ PARAMS["w0"], zs[0]) -
             log_bern(zs[0] @ PARAMS["w1"], zs[1]))
  np.testing.assert_allclose(fixed, by_hand, rtol=1e-6)
  key = jax.random.PRNGKey(0)
  hard = jax.jit(lambda p: collect(p, chain.hard_sampler(key)))(PARAMS)
  # The hard sampler's draws: layer l keyed by fold_in(key, l).
  z0 = BERNOULLI.sample(jax.random.fold_in(key, 0), X @ PARAMS["w0"]).z
  z1 = BERNOULLI.sample(jax.random.fold_in(key, 1), z0 @ PARAMS["w1"]).z
  np.testing.assert_allclose(
      hard, two_layer_pass(PARAMS, chain.fixed_sampler([z0, z1])), rtol=1e-6)


def test_relaxed_sampler_pairs_relaxed_and_hard_draws_of_one_noise():
  logits = jnp.array([[3.0, -3.0, 0.1]])
  sampler = chain.relaxed_sampler(jax.random.PRNGKey(1), 0.1)
  hard_sampler = chain.relaxed_sampler(jax.random.PRNGKey(1), 0.1, hard=True)
  relaxed = sampler(0, BERNOULLI, logits, lambda d: d)
  hard = hard_sampler(0, BERNOULLI, logits, lambda d: d)
  np.testing.assert_array_equal(relaxed.hard, hard.z)
  np.testing.assert_array_equal(jnp.round(relaxed.z), hard.z)


# -- training passes -------------------------------------------------------------


def run_pass(params, with_baselines=False):
  return lambda sampler, hard: two_layer_pass(params, sampler,
                                              with_baselines)


def hard_path_of_the_noise(key):
  """F at the hard draws of each layer's own logistic noise (layer l's key
  fold_in(key, l)), given the hard layers above: built from the noise by
  hand, not by the chain's samplers."""
  z0 = (X @ PARAMS["w0"] + jax.random.logistic(
      jax.random.fold_in(key, 0), (2, 2)) > 0).astype(jnp.float32)
  z1 = (z0 @ PARAMS["w1"] + jax.random.logistic(
      jax.random.fold_in(key, 1), (2, 2)) > 0).astype(jnp.float32)
  return two_layer_pass(PARAMS, chain.fixed_sampler([z0, z1]))


def test_pathwise_pass_objective_is_f_on_the_hard_path():
  gumbel = estimators.make("gumbel_softmax", temperature=0.5)
  key = jax.random.PRNGKey(2)
  result = chain.training_pass(run_pass(PARAMS), gumbel, key)
  hard = hard_path_of_the_noise(key)
  np.testing.assert_allclose(result.objective, hard, rtol=1e-6)
  assert not np.allclose(result.surrogate, hard)  # relaxed forward
  cheap = chain.training_pass(run_pass(PARAMS), gumbel, key,
                              hard_objective=False)
  np.testing.assert_allclose(cheap.objective, result.surrogate, rtol=1e-6)


def test_nested_states_move_for_the_first_layer_and_by_probe_for_the_rest():
  estimator = estimators.make("reinforce", baseline="moving_average")
  states = tuple(estimator.init(None, jnp.zeros((2, 2))) for _ in range(2))
  key, probe_key = jax.random.PRNGKey(3), jax.random.PRNGKey(4)
  without = chain.training_pass(run_pass(PARAMS), estimator, key, states)
  assert set(without.states) == {0}
  result = chain.training_pass(run_pass(PARAMS), estimator, key, states,
                               probe_key=probe_key)
  assert set(result.states) == {0, 1} and set(result.diagnostics) == {0, 1}
  for l in (0, 1):
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.any(a != b)), result.states[l], states[l])
    assert any(jax.tree_util.tree_leaves(changed)), l
  # The nested first layer's objective is its estimator's honest value.
  np.testing.assert_allclose(result.objective, result.surrogate, rtol=1e-5)


def test_input_dependent_baselines_keep_values_and_train_by_regression():
  estimator = estimators.make("reinforce")
  key = jax.random.PRNGKey(5)
  plain = chain.training_pass(run_pass(PARAMS), estimator, key)
  centred = chain.training_pass(run_pass(PARAMS, True), estimator, key,
                                probe_key=jax.random.PRNGKey(6))
  np.testing.assert_allclose(centred.surrogate, plain.surrogate, rtol=1e-5)
  np.testing.assert_allclose(centred.objective, plain.objective, rtol=1e-5)
  first = (plain.objective - jnp.sum(X, -1)) ** 2
  assert np.all(np.asarray(centred.baseline_loss) >= np.asarray(first) - 1e-4)
  np.testing.assert_allclose(centred.diagnostics[0]["baseline_loss"], first,
                             rtol=1e-5)


def test_a_part_refuses_the_wrong_estimator_inside_a_pass():
  arm = estimators.make("arm")
  with pytest.raises(ValueError, match="categorical layer"):
    chain.training_pass(
        lambda sampler, hard: sampler(0, latents.Categorical(),
                                      jnp.zeros((2, 1, 3)),
                                      lambda d: jnp.zeros(2)),
        arm, jax.random.PRNGKey(0))
