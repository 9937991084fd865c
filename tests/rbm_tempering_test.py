"""Tests of discrete_vi.distributions.rbm_tempering against float64
enumeration of p_beta proportional to exp(-beta E): the swap acceptance is
the Metropolis ratio of the tempered densities and its kernel leaves their
product invariant (and the sign-flipped rule does not); swaps happen with
that probability, only between the pairs of the sweep's parity, which
alternates across calls; replicas start at p_beta without couplings and,
started at the tempered distributions, stay there; on a bimodal RBM, in the
+-1 coding (modes v and its complement) and in the 0/1 coding with large
negative biases (modes all-0 and all-1), parallel tempering from one mode
reaches the exact distribution where plain Gibbs has not left the mode;
`chain_gap` is zero for exact draws and positive for chains far from the
model; validation."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from discrete_vi.distributions import rbm
from discrete_vi.distributions import rbm_tempering as tempering
from rbm_test import random_params  # pylint: disable=g-bad-import-order
from rbm_test import states

# A chi-squared p-value below this rejects a sampler (fixed keys: the tests
# are deterministic).
SIGNIFICANCE = 1e-3


def all_pairs(n1, n2):
  """Every (z1, z2) in the order of `tempered_probs(...).ravel()`."""
  z1 = np.repeat(states(n1), 2**n2, 0)  # [2^(n1+n2), n1]
  z2 = np.tile(states(n2), (2**n1, 1))  # [2^(n1+n2), n2]
  return z1, z2


def energies(params, z1, z2):
  """E(z1, z2) = -(a1.z1 + a2.z2 + z1.W.z2), `[...]` float64."""
  a1, a2, w = (np.asarray(p, np.float64) for p in params)
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  return -(z1 @ a1 + z2 @ a2 + np.sum((z1 @ w) * z2, -1))


def tempered_log_probs(params, beta):
  """log p_beta(z1, z2) for every state, `[2^(n1 + n2)]` float64, with
  p_beta proportional to exp(-beta E) = exp(beta (a1.z1 + a2.z2 + z1.W.z2))."""
  log_joint = -beta * energies(params, *all_pairs(*np.shape(params.w)))
  top = log_joint.max()
  return log_joint - top - np.log(np.sum(np.exp(log_joint - top)))


def exact_draws(params, beta, num, seed):
  """`num` exact samples of p_beta by enumeration, `[num, n1]`, `[num, n2]`."""
  probs = np.exp(tempered_log_probs(params, beta))
  z1, z2 = all_pairs(*np.shape(params.w))
  index = np.random.default_rng(seed).choice(probs.size, num,
                                             p=probs / probs.sum())
  return (jnp.asarray(z1[index], jnp.float32),
          jnp.asarray(z2[index], jnp.float32))


def state_index(z1, z2):
  """The index of (z1, z2) in `tempered_log_probs(...)`, `[C]`."""
  bits = np.concatenate([np.asarray(z1), np.asarray(z2)], -1).astype(int)
  return bits @ (2 ** np.arange(bits.shape[-1])[::-1])


def pooled_chi_squared_p_value(counts, probs):
  """Chi-squared p-value of `counts` against `probs`, cells with an
  expected count below 5 pooled into one."""
  expected = probs * counts.sum()
  large = expected >= 5
  observed = np.append(counts[large], counts[~large].sum())
  expected = np.append(expected[large], expected[~large].sum())
  if expected[-1] == 0:
    observed, expected = observed[:-1], expected[:-1]
  return stats.chisquare(observed, expected).pvalue


def ladder_chains(z1, z2, sweeps_done=0):
  return tempering.TemperedChains(jnp.asarray(z1, jnp.float32),
                                  jnp.asarray(z2, jnp.float32),
                                  jnp.asarray(sweeps_done, jnp.int32))


# -------------------------------------------------------------------- ladder


def test_beta_ladder_spacings():
  geometric = np.asarray(tempering.beta_ladder(5, 0.0625))
  np.testing.assert_allclose(geometric, [0.0625, 0.125, 0.25, 0.5, 1.],
                             rtol=1e-6)
  linear = np.asarray(tempering.beta_ladder(5, 0., spacing="linear"))
  np.testing.assert_allclose(linear, [0., 0.25, 0.5, 0.75, 1.], atol=1e-7)
  for ladder in (geometric, linear):
    assert ladder.dtype == np.float32 and ladder[-1] == 1.
    tempering.check_betas(ladder)


# --------------------------------------------------------------------- swaps

SWAP_PARAMS = random_params(0, 2, 2, scale=1.5)  # 16 states
SWAP_BETAS = np.array([0.3, 1.0])


def swap_kernel(log_alpha):
  """The swap move as a matrix on pairs (x at beta_0, y at beta_1),
  `[256, 256]`: (x, y) -> (y, x) with probability min(1, alpha(x, y))."""
  num = 16
  accept = np.exp(np.minimum(log_alpha, 0.)).reshape(num, num)  # [x, y]
  kernel = np.zeros((num, num, num, num))
  x, y = np.meshgrid(np.arange(num), np.arange(num), indexing="ij")
  kernel[x, y, y, x] += accept
  kernel[x, y, x, y] += 1. - accept
  return kernel.reshape(num * num, num * num)


def test_swap_acceptance_is_the_metropolis_ratio_and_keeps_the_product():
  z1, z2 = all_pairs(2, 2)  # [16, 2] each
  # Column c = (x, y) = divmod(c, 16): x at beta_0, y at beta_1.
  x, y = np.divmod(np.arange(256), 16)
  log_alpha = tempering.swap_log_acceptance(
      SWAP_PARAMS, jnp.asarray(np.stack([z1[x], z1[y]]), jnp.float32),
      jnp.asarray(np.stack([z2[x], z2[y]]), jnp.float32),
      jnp.asarray(SWAP_BETAS, jnp.float32))
  assert log_alpha.shape == (1, 256)
  log_alpha = np.asarray(log_alpha[0], np.float64)
  log_p0 = tempered_log_probs(SWAP_PARAMS, SWAP_BETAS[0])  # [16]
  log_p1 = tempered_log_probs(SWAP_PARAMS, SWAP_BETAS[1])
  metropolis = log_p0[y] + log_p1[x] - log_p0[x] - log_p1[y]
  assert np.ptp(metropolis) > 5  # a nontrivial test
  np.testing.assert_allclose(log_alpha, metropolis, atol=1e-4)
  # The product p_0(x) p_1(y) is stationary under the swap kernel ...
  product = np.exp(log_p0[x] + log_p1[y])  # [256]
  np.testing.assert_allclose(product @ swap_kernel(log_alpha), product,
                             atol=1e-7)
  # ... and under the sign-flipped rule it is not.
  assert np.max(np.abs(product @ swap_kernel(-log_alpha) - product)) > 1e-2


def test_swap_neighbours_swaps_the_pairs_of_its_parity_with_probability_alpha():
  params = random_params(1, 2, 3, scale=1.5)
  betas = np.array([0.2, 0.6, 1.0])
  rng = np.random.default_rng(2)
  base_z1 = rng.integers(0, 2, (3, 4, 2)).astype(np.float32)  # [R, 4, 2]
  base_z2 = rng.integers(0, 2, (3, 4, 3)).astype(np.float32)
  repeats = 5000
  z1 = jnp.asarray(np.repeat(base_z1, repeats, 1))  # [3, 20000, 2]
  z2 = jnp.asarray(np.repeat(base_z2, repeats, 1))
  energy = energies(params, base_z1, base_z2)  # [R, 4]
  for parity in (0, 1):
    moved, accept_prob = tempering.swap_neighbours(
        jax.random.PRNGKey(parity), params, z1, z2,
        jnp.asarray(betas, jnp.float32), parity)
    i = parity  # the one proposed pair (i, i + 1) for R = 3
    expected = np.exp(np.minimum(
        (betas[i] - betas[i + 1]) * (energy[i] - energy[i + 1]), 0.))
    np.testing.assert_allclose(accept_prob[i].reshape(4, repeats)[:, 0],
                               expected, rtol=1e-5)
    assert not np.any(accept_prob[1 - i])  # the other pair: not proposed
    swapped = np.any(np.asarray(moved.z1[i]) != np.asarray(z1[i]), -1) | (
        np.any(np.asarray(moved.z2[i]) != np.asarray(z2[i]), -1))
    same = np.all(base_z1[i] == base_z1[i + 1], -1) & np.all(
        base_z2[i] == base_z2[i + 1], -1)
    assert not np.any(same)  # every swap is visible
    frequency = swapped.reshape(4, repeats).mean(1)
    se = np.sqrt(expected * (1 - expected) / repeats) + 1e-3
    assert np.all(np.abs(frequency - expected) < 5 * se), (frequency,
                                                           expected)
    # A swap exchanges whole states: (z1, z2) at i and i + 1 trade places.
    for z, new in ((z1, moved.z1), (z2, moved.z2)):
      z, new = np.asarray(z), np.asarray(new)
      np.testing.assert_array_equal(np.where(swapped[:, None], z[i + 1], z[i]),
                                    new[i])
      np.testing.assert_array_equal(np.where(swapped[:, None], z[i], z[i + 1]),
                                    new[i + 1])
      np.testing.assert_array_equal(new[2 - 2 * i], z[2 - 2 * i])  # untouched


def test_even_odd_alternation_carries_over_calls():
  params = random_params(3, 2, 2)
  betas = tempering.beta_ladder(4, 0.2)
  chains = tempering.init_tempered(jax.random.PRNGKey(0), params, 6, betas)
  assert chains.z1.shape == (4, 6, 2) and int(chains.sweeps_done) == 0
  proposals = []
  for call in range(3):
    chains, stats_ = tempering.tempered_sweeps(jax.random.PRNGKey(call),
                                               params, chains, betas, 1)
    proposals.append(np.asarray(stats_.swap_proposals).tolist())
    proposed = np.asarray(stats_.swap_proposals) > 0
    acceptance = np.asarray(stats_.swap_acceptance)
    assert np.all(np.isnan(acceptance[~proposed]))
    assert np.all((acceptance[proposed] >= 0) & (acceptance[proposed] <= 1))
  assert proposals == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
  assert int(chains.sweeps_done) == 3
  chains, stats_ = tempering.tempered_sweeps(jax.random.PRNGKey(3), params,
                                             chains, betas, 5)
  assert np.asarray(stats_.swap_proposals).tolist() == [2, 3, 2]
  assert int(chains.sweeps_done) == 8 and chains.z1.dtype == jnp.float32
  assert not np.any(np.isnan(np.asarray(stats_.swap_acceptance)))


def test_init_tempered_draws_each_replica_without_couplings():
  """Replica r ~ sigmoid(beta_r a1) x sigmoid(beta_r a2), p_beta_r at W = 0."""
  params = random_params(11, 3, 4, bias_scale=2.)
  betas = np.array([0., 0.5, 1.])
  num_chains = 20_000
  chains = tempering.init_tempered(jax.random.PRNGKey(12), params, num_chains,
                                   betas)
  assert chains.z1.shape == (3, num_chains, 3)
  assert chains.z2.shape == (3, num_chains, 4)
  assert int(chains.sweeps_done) == 0
  for r, beta in enumerate(betas):
    for z, a in ((chains.z1[r], params.a1), (chains.z2[r], params.a2)):
      expected = 1. / (1. + np.exp(-beta * np.asarray(a, np.float64)))
      se = np.sqrt(expected * (1. - expected) / num_chains)
      assert np.all(np.abs(np.mean(np.asarray(z), 0) - expected) < 5 * se)


def test_chains_at_the_tempered_distributions_stay_there():
  """Every replica starts at an exact draw of p_beta; after PT sweeps each is
  still distributed as p_beta (invariance of sweeps and swaps together)."""
  params = random_params(4, 3, 3, scale=1.5)
  betas = np.array([0., 0.4, 1.0])  # from the uniform distribution
  num_chains = 20_000
  draws = [exact_draws(params, b, num_chains, seed=r)
           for r, b in enumerate(betas)]
  chains = ladder_chains(np.stack([d[0] for d in draws]),
                         np.stack([d[1] for d in draws]))
  chains, _ = tempering.tempered_sweeps(jax.random.PRNGKey(5), params, chains,
                                        betas, 3)
  for r, beta in enumerate(betas):
    counts = np.bincount(state_index(chains.z1[r], chains.z2[r]),
                         minlength=64)
    probs = np.exp(tempered_log_probs(params, beta))
    assert pooled_chi_squared_p_value(counts, probs) > SIGNIFICANCE


def test_tempered_sweeps_under_jit_with_traced_betas():
  params = random_params(6, 2, 3)
  chains = tempering.init_tempered(jax.random.PRNGKey(0), params, 5,
                                   tempering.beta_ladder(3, 0.5))

  @jax.jit
  def run(key, chains, betas):
    return tempering.tempered_sweeps(key, params, chains, betas, 2)

  out, stats_ = run(jax.random.PRNGKey(1), chains, jnp.array([0., 0.5, 1.]))
  assert out.z1.shape == (3, 5, 2) and out.z2.shape == (3, 5, 3)
  assert set(np.unique(np.asarray(out.z2))) <= {0., 1.}
  assert stats_.swap_acceptance.shape == (2,)
  target = tempering.target_chains(out)
  np.testing.assert_array_equal(target.z1, out.z1[-1])
  np.testing.assert_array_equal(target.z2, out.z2[-1])


# ------------------------------------------------ the bimodal headline tests

# 6 + 6 units, no biases, W = s v v^T with v = (1, 1, 1, -1, -1, -1): with
# u = v.z in {-3..3}, -E = s u1 u2, so the two modes are z1 = z2 = (1,1,1,0,0,0)
# (u = 3) and its complement (u = -3), each of mass 0.485, separated by a
# barrier of 9 s = 18 nats through u = 0. Block Gibbs from a mode flips each
# unit with probability sigmoid(-3 s) = 0.0025 per sweep, and must flip
# three at once to cross: 1-3 of 2000 chains crossed in 100 sweeps (8 keys).
BIMODAL_SCALE = 2.0
BIMODAL_V = np.array([1., 1., 1., -1., -1., -1.])
BIMODAL_PARAMS = rbm.RBMParams(
    jnp.zeros(6), jnp.zeros(6),
    jnp.asarray(BIMODAL_SCALE * np.outer(BIMODAL_V, BIMODAL_V), jnp.float32))
# The modes coded by the biases, as in a sparse RBM: W = s 1 1^T and biases
# -s n / 2 = -3 s per unit (n = 6), so that with u = 1.z in {0..6},
# -E = s u1 u2 - 3 s (u1 + u2), 0 at both all-0 and all-1 (balanced modes)
# and -9 s = -18 nats at u1 = u2 = 3. It is the RBM above with the last
# three units of each half flipped (z -> 1 - z), which changes E by a
# constant only: tempering the whole energy treats both codings alike,
# while the coupling-only family sigmoid(a) at its hot end sits at all-0.
BIAS_CODED_PARAMS = rbm.RBMParams(
    jnp.full(6, -3 * BIMODAL_SCALE, jnp.float32),
    jnp.full(6, -3 * BIMODAL_SCALE, jnp.float32),
    jnp.full((6, 6), BIMODAL_SCALE, jnp.float32))  # not weakly typed: no
# recompilation of the sweeps compiled for BIMODAL_PARAMS
NUM_BIMODAL_CHAINS = 2000
NUM_BIMODAL_SWEEPS = 100
BIMODAL_BETAS = tempering.beta_ladder(8, 0.1)  # geometric


def projection_distribution(params, v, beta=1.):
  """Exact distribution of (u1, u2) = (v.z1, v.z2) under p_beta, `[7 * 7]`,
  for 6 + 6 units and v = BIMODAL_V (u in -3..3) or all ones (u in 0..6)."""
  log_probs = tempered_log_probs(params, beta)
  return projection_counts(*all_pairs(6, 6), v, weights=np.exp(log_probs))


def projection_counts(z1, z2, v, weights=None):
  """Histogram of (u1, u2) = (v.z1, v.z2) on the 7 x 7 grid of u values."""
  u1 = np.rint(np.asarray(z1, np.float64) @ v).astype(int)
  u2 = np.rint(np.asarray(z2, np.float64) @ v).astype(int)
  offset = 3 if np.any(v < 0) else 0  # all-ones v: u in 0..6
  cells = (u1 + offset) * 7 + (u2 + offset)
  return np.bincount(cells, weights=weights, minlength=49)


def total_variation(counts, probs):
  return 0.5 * np.sum(np.abs(counts / counts.sum() - probs))


def run_pt_and_gibbs(params, v, start):
  """PT and plain Gibbs for the same sweeps and chains, all from `start`:
  projection counts of the beta = 1 replicas, of the hottest replicas and
  of the Gibbs chains, and the swap statistics."""
  num_replicas = BIMODAL_BETAS.shape[0]
  z = np.broadcast_to(start, (num_replicas, NUM_BIMODAL_CHAINS, 6))
  tempered, stats_ = tempering.tempered_sweeps(
      jax.random.PRNGKey(0), params, ladder_chains(z, z), BIMODAL_BETAS,
      NUM_BIMODAL_SWEEPS)
  gibbs = rbm.gibbs_sweeps(jax.random.PRNGKey(1), params,
                           rbm.Chains(jnp.asarray(z[-1]), jnp.asarray(z[-1])),
                           NUM_BIMODAL_SWEEPS)
  target = tempering.target_chains(tempered)
  return (projection_counts(target.z1, target.z2, v),
          projection_counts(tempered.z1[0], tempered.z2[0], v),
          projection_counts(gibbs.z1, gibbs.z2, v), stats_)


def check_tempering_reaches_what_gibbs_misses(params, v, start):
  """From one mode, the beta = 1 replicas of PT (and its hottest replicas)
  match the exact distribution; plain Gibbs has not left the mode."""
  probs = projection_distribution(params, v)
  pt_counts, hot_counts, gibbs_counts, stats_ = run_pt_and_gibbs(params, v,
                                                                 start)
  pt_tv = total_variation(pt_counts, probs)
  gibbs_tv = total_variation(gibbs_counts, probs)
  pt_p = pooled_chi_squared_p_value(pt_counts, probs)
  hot_p = pooled_chi_squared_p_value(
      hot_counts, projection_distribution(params, v,
                                          float(BIMODAL_BETAS[0])))
  acceptance = np.asarray(stats_.swap_acceptance)
  print(f"PT TV {pt_tv:.4f} (p {pt_p:.3g}, hottest replica p {hot_p:.3g}), "
        f"Gibbs TV {gibbs_tv:.4f}, swap acceptance {np.round(acceptance, 3)}")
  assert pt_p > SIGNIFICANCE and hot_p > SIGNIFICANCE
  assert pt_tv < 0.06
  assert gibbs_tv > 0.4
  assert pooled_chi_squared_p_value(gibbs_counts, probs) < SIGNIFICANCE
  assert np.all(acceptance > 0.3)


def test_parallel_tempering_crosses_the_barrier_that_stops_gibbs():
  """Modes v and its complement (no biases), PT started at the first."""
  # Measured (JAX 0.10, CPU): PT TV 0.013 (exact draws of 2000: 0.004-0.019
  # over 8 seeds; PT over 8 keys at most 0.042), chi-squared p = 0.29,
  # hottest replica p = 0.90; Gibbs TV 0.4999; acceptance 0.52-0.94.
  check_tempering_reaches_what_gibbs_misses(
      BIMODAL_PARAMS, BIMODAL_V, (BIMODAL_V > 0).astype(np.float32))


def test_parallel_tempering_crosses_between_modes_coded_by_the_biases():
  """Modes all-0 and all-1 (large negative biases), PT started at all-0."""
  ones = np.ones(6)
  probs = projection_distribution(BIAS_CODED_PARAMS, ones).reshape(7, 7)
  assert probs[0, 0] > 0.45 and probs[6, 6] > 0.45  # 0.485 each
  u_sum = np.add.outer(np.arange(7), np.arange(7))  # [7, 7] u1 + u2
  assert probs[(u_sum >= 3) & (u_sum <= 9)].sum() < 1e-3  # 1.9e-4 between
  z1, z2 = all_pairs(6, 6)
  halfway = z1.sum(-1) + z2.sum(-1) == 6
  barrier = energies(BIAS_CODED_PARAMS, z1[halfway], z2[halfway]).min()
  np.testing.assert_allclose(barrier, 9 * BIMODAL_SCALE)  # E = 0 at modes
  # Measured (JAX 0.10, CPU): PT TV 0.014 (exact draws of 2000: 0.005-0.017
  # over 8 seeds; PT over 8 keys at most 0.023), chi-squared p = 0.60,
  # hottest replica p = 0.63; Gibbs TV 0.4997; acceptance 0.52-0.93.
  check_tempering_reaches_what_gibbs_misses(BIAS_CODED_PARAMS, ones,
                                            np.zeros(6, np.float32))


# ----------------------------------------------------------------- chain gap


def test_chain_gap_of_exact_draws_is_zero_within_error():
  params = random_params(7, 3, 4, scale=1.5)
  z1, z2 = exact_draws(params, 1., 20_000, seed=8)
  gap = tempering.chain_gap(jax.random.PRNGKey(9), params, rbm.Chains(z1, z2),
                            extra_sweeps=5)
  np.testing.assert_allclose(gap.energy, np.mean(rbm.energy(params, z1, z2)),
                             rtol=1e-5)
  np.testing.assert_allclose(gap.gap, gap.energy - gap.energy_after,
                             rtol=1e-4, atol=1e-6)
  assert 0 < float(gap.stderr) < 0.05
  assert abs(float(gap.gap)) < 4 * float(gap.stderr), gap


def test_chain_gap_of_chains_far_from_the_model_is_positive():
  """All-zero chains of an RBM whose mass is near all-ones (energy 0 there,
  about -25 at equilibrium)."""
  params = rbm.RBMParams(jnp.full(3, 1.), jnp.full(4, 1.),
                         jnp.full((3, 4), 1.5))
  zeros = rbm.Chains(jnp.zeros((2000, 3)), jnp.zeros((2000, 4)))
  gap = tempering.chain_gap(jax.random.PRNGKey(10), params, zeros,
                            extra_sweeps=3)
  assert float(gap.energy) == 0.
  assert float(gap.gap) > 10. and float(gap.gap) > 20 * float(gap.stderr)


# --------------------------------------------------------------- validation


def test_bad_ladders_raise_naming_the_value():
  cases = [
      (lambda: tempering.beta_ladder(1, 0.1), "num_temperatures=1"),
      (lambda: tempering.beta_ladder(2.0, 0.1), "num_temperatures=2.0"),
      (lambda: tempering.beta_ladder(4, 1.0), "base_beta=1.0"),
      (lambda: tempering.beta_ladder(4, -0.5, spacing="linear"),
       "base_beta=-0.5"),
      (lambda: tempering.beta_ladder(4, 0.),  # geometric
       r"geometric ladder needs base_beta > 0 .*base_beta=0\.0"),
      (lambda: tempering.beta_ladder(4, 0.1, spacing="cubic"),
       "spacing='cubic'"),
      (lambda: tempering.check_betas([1.]), r"betas\.shape=\(1,\)"),
      (lambda: tempering.check_betas([[0.5, 1.]]), r"betas\.shape=\(1, 2\)"),
      (lambda: tempering.check_betas([0.5, 0.5, 1.]),
       r"increasing; got betas=\[0\.5, 0\.5, 1\.0\]"),
      (lambda: tempering.check_betas([0.2, 0.9]), r"betas\[-1\]=0\.9"),
      (lambda: tempering.check_betas([-0.5, 1.]), "betas="),
      (lambda: tempering.check_betas([0.5, np.nan, 1.]), "betas=")]
  for call, match in cases:
    with pytest.raises(ValueError, match=match):
      call()


def test_bad_chains_and_arguments_raise_naming_the_value():
  params = random_params(0, 3, 4)
  key = jax.random.PRNGKey(0)
  betas = tempering.beta_ladder(3, 0.25)
  chains = tempering.init_tempered(key, params, 2, betas)
  cases = [
      (lambda: tempering.tempered_sweeps(key, params, chains,
                                         tempering.beta_ladder(4, 0.25), 1),
       r"R=3 replicas; got betas\.shape=\(4,\)"),
      (lambda: tempering.tempered_sweeps(key, params, chains,
                                         [0.1, 0.3, 0.9], 1),
       r"betas\[-1\]=0\.9"),
      (lambda: tempering.tempered_sweeps(key, params, chains,
                                         [0.5, 0.2, 1.], 1), "increasing"),
      (lambda: tempering.tempered_sweeps(key, params, chains, betas, 0),
       "num_sweeps=0"),
      (lambda: tempering.tempered_sweeps(key, params, chains._replace(
          z1=chains.z1[0]), betas, 1), r"chains\.z1\.shape=\(2, 3\)"),
      (lambda: tempering.tempered_sweeps(key, params, chains._replace(
          z2=jnp.zeros((3, 2, 3))), betas, 1), r"chains\.z2\.shape"),
      (lambda: tempering.tempered_sweeps(key, params, chains._replace(
          z2=jnp.zeros((3, 5, 4))), betas, 1), r"chains\.z2\.shape=\(3, 5"),
      (lambda: tempering.tempered_sweeps(key, params, chains._replace(
          sweeps_done=jnp.zeros(2)), betas, 1), r"sweeps_done\.shape"),
      (lambda: tempering.init_tempered(key, params, 0, betas),
       "num_chains=0"),
      (lambda: tempering.init_tempered(key, params, 2, [0.5, 0.7]),
       r"betas\[-1\]"),
      (lambda: tempering.chain_gap(key, params, tempering.target_chains(
          chains), 0), "extra_sweeps=0"),
      (lambda: tempering.chain_gap(key, params, rbm.Chains(
          jnp.zeros((1, 3)), jnp.zeros((1, 4))), 1), "C >= 2"),
      (lambda: tempering.chain_gap(key, params, rbm.Chains(
          jnp.zeros((2, 4)), jnp.zeros((2, 4))), 1), r"chains\.z1")]
  for call, match in cases:
    with pytest.raises(ValueError, match=match):
      call()
