r"""Parallel tempering for RBM chains, and a measure of how far chains lag.

Persistent block-Gibbs chains (Tieleman, 2008) of a strongly coupled RBM mix
slowly between modes, so during training they fall behind the model and the
Monte Carlo estimate of grad log Z is biased. This module provides

* parallel tempering (replica exchange; Swendsen & Wang, 1986; Geyer, 1991;
  for RBMs Desjardins et al., 2010, and Cho, Raiko & Ilin, 2010):
  `TemperedChains`, `beta_ladder`, `init_tempered`, `tempered_sweeps`, and
  its building blocks `swap_log_acceptance`, `swap_neighbours`;
* `chain_gap`: the drop in mean energy of chains under a few more Gibbs
  sweeps, a cheap number that is positive when the chains are behind.

The tempered family is the RBM's whole energy at inverse temperature beta,
the standard one (Swendsen & Wang, 1986; Desjardins et al., 2010):

  p_\beta(z_1, z_2) \propto \exp(-\beta E(z_1, z_2))
                    = \exp(\beta (a_1^T z_1 + a_2^T z_2 + z_1^T W z_2)),

so \beta = 1 is the RBM and \beta = 0 the uniform distribution over all
2^{n_1 + n_2} states, which a block-Gibbs sweep samples exactly in one
step. p_\beta is the RBM with parameters (\beta a_1, \beta a_2, \beta W),
so the sweep at \beta is the RBM's sweep with scaled parameters.

Why not scale the couplings only (\exp(a^T z + \beta z_1^T W z_2), the path
of `rbm.gibbs_sweeps(beta=...)` and of AIS from the factorial base): that
family ends at the factorial sigmoid(a_1) x sigmoid(a_2), which depends on
the 0/1 coding of the units (flipping a unit z -> 1 - z changes the biases,
not the RBM). With large negative biases (sparse codes) it sits at
all-zeros, and so do its hot replicas: for W = 2 1 1^T on 6 + 6 units with
biases -6, whose two modes all-0 and all-1 carry mass 0.485 each, the
hot replicas of that family stay at all-0 (its \beta = 0 end is
sigmoid(-6) per unit); they bring no states of all-1, and the beta = 1
chains cross no faster than plain Gibbs does (a few of 2000 in 100 sweeps),
while every swap is accepted (acceptance near 1 is no sign of mixing).
Flipping units changes E only by a constant, so the whole-energy family is
the same for every coding; its hot end flattens the energy itself, barriers
and mode preferences alike, and reaches every mode. The price is the usual
one: the energy's spread grows with the number of units n, and so does the
number of temperatures that keeps neighbouring swaps accepted (about
sqrt(n); Earl & Deem, 2005); `TemperingStats` reports the acceptances.

References:
  Swendsen & Wang (1986), Replica Monte Carlo simulation of spin glasses.
  Geyer (1991), Markov chain Monte Carlo maximum likelihood.
  Earl & Deem (2005), Parallel tempering: theory, applications, and new
    perspectives (the even-odd swap scheme, geometric ladders).
  Desjardins, Courville, Bengio, Vincent & Delalleau (2010), Tempered Markov
    chain Monte Carlo for training of restricted Boltzmann machines.
  Cho, Raiko & Ilin (2010), Parallel tempering is efficient for learning
    restricted Boltzmann machines.
  Tieleman (2008), Training restricted Boltzmann machines using
    approximations to the likelihood gradient.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.distributions import rbm
from discrete_vi.types import Array, ArrayLike, PRNGKey

LADDER_SPACINGS = ("geometric", "linear")

# Helpers of the sibling module `rbm` (validation, noise, one block-Gibbs
# sweep).
# pylint: disable=protected-access
_as_params = rbm._as_params
_check_chains = rbm._check_chains
_logistic_noise = rbm._logistic_noise
_sweep = rbm._sweep
# pylint: enable=protected-access


class TemperedChains(NamedTuple):
  """R replicas of C block-Gibbs chains, one replica per inverse temperature.

  Replica r runs at betas[r] (increasing; the last, r = R - 1, is beta = 1,
  the RBM itself). Column c of every replica forms one parallel-tempering
  system: swaps exchange the states of chain c between neighbouring
  temperatures, so the C columns are independent.

  Attributes:
    z1: `[R, C, n1]` float 0/1.
    z2: `[R, C, n2]` float 0/1.
    sweeps_done: int32 scalar, the sweeps run so far; its parity chooses the
      swap pairs of the next sweep, so that the even-odd alternation carries
      over from one `tempered_sweeps` call to the next (with one sweep per
      call, a parity restarted at every call would never propose the odd
      pairs).
  """
  z1: Array
  z2: Array
  sweeps_done: Array


class TemperingStats(NamedTuple):
  """Swap statistics of one `tempered_sweeps` call.

  Attributes:
    swap_acceptance: `[R - 1]`, for the pair (r, r + 1), the Metropolis
      acceptance probability min(1, alpha) averaged over chains and over the
      sweeps of this call that proposed the pair (the expected, not the
      realised, acceptance: lower variance, same mean). NaN for a pair this
      call did not propose, which happens only with num_sweeps = 1 (half the
      pairs per sweep); `swap_proposals` is 0 there, so averages over calls
      should weight by it.
    swap_proposals: `[R - 1]` int32, the sweeps of this call that proposed
      the pair.
  """
  swap_acceptance: Array
  swap_proposals: Array


class ChainGap(NamedTuple):
  """The result of `chain_gap` (scalars).

  Attributes:
    energy: mean energy of the given chains.
    energy_after: mean energy of the same chains after the extra sweeps.
    gap: energy - energy_after (> 0: the chains sit above equilibrium).
    stderr: standard error of `gap` from the per-chain differences
      (chains independent).
  """
  energy: Array
  energy_after: Array
  gap: Array
  stderr: Array


# ---------------------------------------------------------------- the ladder


def beta_ladder(num_temperatures: int, base_beta: float,
                spacing: str = "geometric") -> Array:
  r"""K increasing inverse temperatures from `base_beta` to 1.

  geometric: \beta_k = b^{1 - k/(K-1)}, constant ratio between neighbours,
  the usual default when the energy's variance changes slowly with \beta
  (Earl & Deem, 2005, Sec. 3); needs b > 0 (the ratio b^{-1/(K-1)} is
  infinite at b = 0: for a geometric ladder ending at the uniform
  distribution, prepend 0 to one from a small b > 0). linear:
  \beta_k = b + (1 - b) k/(K-1); allows b = 0, the uniform distribution,
  which a sweep samples exactly.

  Args:
    num_temperatures: K >= 2.
    base_beta: b, the smallest inverse temperature, in [0, 1) for linear
      and (0, 1) for geometric spacing; the ladder is a static setting.
    spacing: "geometric" or "linear".

  Returns:
    `[K]` float32, increasing, first b, last exactly 1.
  """
  checks.check_int("num_temperatures", num_temperatures, 2)
  checks.check_one_of("spacing", spacing, LADDER_SPACINGS)
  checks.check_in_range("base_beta", base_beta, 0., 1., high_open=True)
  base = float(base_beta)
  if spacing == "geometric" and base == 0.:
    raise ValueError(f"a geometric ladder needs base_beta > 0 (use "
                     f"spacing='linear' for a ladder from 0); got "
                     f"base_beta={base_beta!r}.")
  fraction = np.linspace(0., 1., num_temperatures)  # [K]
  if spacing == "geometric":
    ladder = base ** (1. - fraction)
  else:
    ladder = base + (1. - base) * fraction
  ladder[-1] = 1.
  return jnp.asarray(ladder, jnp.float32)


def check_betas(betas: ArrayLike, num_replicas: int | None = None) -> None:
  """Raises ValueError unless `betas` is a valid ladder (for R replicas).

  A valid ladder is `[R]` with R >= 2, finite, >= 0, strictly increasing,
  last entry 1. The shape is checked always; the values only when concrete
  (inside jit their producer keeps them valid).
  """
  shape = np.shape(betas)
  if len(shape) != 1 or shape[0] < 2:
    raise ValueError(f"betas must have shape [R] with R >= 2; got "
                     f"betas.shape={shape}.")
  if num_replicas is not None and shape[0] != num_replicas:
    raise ValueError(f"betas must have one entry per replica: the chains "
                     f"hold R={num_replicas} replicas; got betas.shape="
                     f"{shape}.")
  if checks.is_traced(betas):
    return
  checks.check_nonnegative("betas", betas)
  values = np.asarray(betas, np.float64)
  if not np.all(np.diff(values) > 0):
    raise ValueError(f"betas must be strictly increasing; got betas="
                     f"{values.tolist()}.")
  if values[-1] != 1.:
    raise ValueError(f"betas must end at 1 (the RBM itself); got betas[-1]="
                     f"{float(values[-1])!r}.")


def _check_tempered(params: rbm.RBMParams, chains: TemperedChains) -> None:
  """Raises ValueError unless the chains are `[R, C, n1]`, `[R, C, n2]`."""
  n1, n2 = rbm.num_units(params)
  for name, z, size in (("z1", chains.z1, n1), ("z2", chains.z2, n2)):
    shape = np.shape(z)
    if len(shape) != 3 or shape[2] != size:
      raise ValueError(f"chains.{name} must have shape [R, C, {size}]; got "
                       f"chains.{name}.shape={shape}.")
  if np.shape(chains.z1)[:2] != np.shape(chains.z2)[:2]:
    raise ValueError(f"chains.z1 and chains.z2 must hold the same replicas "
                     f"and chains; got chains.z1.shape={np.shape(chains.z1)}, "
                     f"chains.z2.shape={np.shape(chains.z2)}.")
  if np.shape(chains.sweeps_done) != ():
    raise ValueError(f"chains.sweeps_done must be a scalar; got "
                     f"chains.sweeps_done.shape="
                     f"{np.shape(chains.sweeps_done)}.")


# ------------------------------------------------------------ initialisation


def init_tempered(key: PRNGKey, params: rbm.RBMParams, num_chains: int,
                  betas: ArrayLike) -> TemperedChains:
  r"""R x C independent draws, replica r from p_{betas[r]} without W.

  Replica r starts at the factorial sigmoid(\beta_r a_1) x
  sigmoid(\beta_r a_2), which is p_{\beta_r} with the couplings set to 0:
  the beta = 1 replica as `rbm.init_chains`, a beta = 0 replica exactly
  uniform. Run `tempered_sweeps` to bring replica r to p_{betas[r]}.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    num_chains: C >= 1 (static).
    betas: `[R]` the ladder (validated; may be traced).

  Returns:
    `TemperedChains` z1 `[R, C, n1]`, z2 `[R, C, n2]`, sweeps_done 0.
  """
  checks.check_int("num_chains", num_chains, 1)
  check_betas(betas)
  params = jax.lax.stop_gradient(_as_params(params))
  n1, n2 = rbm.num_units(params)
  dtype = params.w.dtype
  beta = jnp.asarray(betas, dtype)[:, None, None]  # [R, 1, 1]
  noise = _logistic_noise(key, (beta.shape[0], num_chains, n1 + n2), dtype)
  return TemperedChains(
      (noise[..., :n1] < beta * params.a1).astype(dtype),  # [R, C, n1]
      (noise[..., n1:] < beta * params.a2).astype(dtype),  # [R, C, n2]
      jnp.zeros((), jnp.int32))


def target_chains(chains: TemperedChains) -> rbm.Chains:
  """The beta = 1 replicas, `rbm.Chains` z1 `[C, n1]`, z2 `[C, n2]`.

  These are the samples of the RBM, e.g. for
  `rbm.log_z_gradient_surrogate` (grad log Z) or `chain_gap`.
  """
  return rbm.Chains(chains.z1[-1], chains.z2[-1])


# --------------------------------------------------------------------- swaps


def swap_log_acceptance(params: rbm.RBMParams, z1: Array, z2: Array,
                        betas: Array) -> Array:
  r"""log alpha of exchanging the states of every pair of neighbours.

  For states x at \beta_i and y at \beta_j the Metropolis ratio of the swap
  (x, y) -> (y, x) under p_{\beta_i} \otimes p_{\beta_j}, with
  p_\beta(z) = e^{-\beta E(z)} / Z_\beta, is

    \frac{p_{\beta_i}(y) p_{\beta_j}(x)}{p_{\beta_i}(x) p_{\beta_j}(y)}
    = e^{-\beta_i E(y) - \beta_j E(x) + \beta_i E(x) + \beta_j E(y)},
    \quad
    \log\alpha = (\beta_i - \beta_j)(E(x) - E(y)),

  the normalisers Z_\beta cancelling. For neighbours j = i + 1
  (\beta_i < \beta_j) the swap is always accepted when the hotter state x
  has the lower energy, i.e. when it moves a better state towards
  \beta = 1.

  Args:
    params: the RBM.
    z1: `[R, C, n1]` the replicas, replica r at betas[r].
    z2: `[R, C, n2]`.
    betas: `[R]`.

  Returns:
    `[R - 1, C]`, entry (r, c) for the pair (r, r + 1) of chain c (may be
    > 0; the acceptance probability is min(1, exp(.))).
  """
  energy = rbm.energy(params, z1, z2)  # [R, C]
  delta_beta = betas[:-1] - betas[1:]  # [R - 1], < 0
  return delta_beta[:, None] * (energy[:-1] - energy[1:])  # [R - 1, C]


def swap_neighbours(key: PRNGKey, params: rbm.RBMParams, z1: Array,
                    z2: Array, betas: Array,
                    parity: ArrayLike) -> tuple[rbm.Chains, Array]:
  r"""Proposes the swaps (r, r + 1), r = parity, parity + 2, ..., per chain.

  The proposed pairs are disjoint, so all are decided at once, each
  accepted with probability min(1, alpha) (`swap_log_acceptance`); each is a
  Metropolis move on p_{\beta_r} \otimes p_{\beta_{r+1}}, so the product
  \prod_r p_{\beta_r} is left invariant (Geyer, 1991). Alternating the
  parity between sweeps is the deterministic even-odd scheme (Earl & Deem,
  2005, Sec. 2).

  Args:
    key: PRNG key.
    params: the RBM.
    z1: `[R, C, n1]`.
    z2: `[R, C, n2]`.
    betas: `[R]`.
    parity: 0 or 1 (may be traced).

  Returns:
    (`rbm.Chains` z1 `[R, C, n1]`, z2 `[R, C, n2]` after the swaps,
    `[R - 1, C]` the acceptance probabilities min(1, alpha), 0 for pairs
    not proposed).
  """
  log_alpha = swap_log_acceptance(params, z1, z2, betas)  # [R - 1, C]
  num_pairs, num_chains = log_alpha.shape
  proposed = (jnp.arange(num_pairs) % 2 == parity)[:, None]  # [R - 1, 1]
  accept_prob = jnp.where(proposed, jnp.exp(jnp.minimum(log_alpha, 0.)), 0.)
  uniform = jax.random.uniform(key, (num_pairs * num_chains,), z1.dtype)
  accept = uniform.reshape(num_pairs, num_chains) < accept_prob  # [R - 1, C]
  no_swap = jnp.zeros((1, num_chains), bool)
  take_above = jnp.concatenate([accept, no_swap])[..., None]  # [R, C, 1]
  take_below = jnp.concatenate([no_swap, accept])[..., None]  # [R, C, 1]

  def exchange(z):  # [R, C, n]
    return jnp.where(take_above, jnp.roll(z, -1, 0),
                     jnp.where(take_below, jnp.roll(z, 1, 0), z))

  return rbm.Chains(exchange(z1), exchange(z2)), accept_prob


# ------------------------------------------------------------------ sampling


def tempered_sweeps(key: PRNGKey, params: rbm.RBMParams,
                    chains: TemperedChains, betas: ArrayLike,
                    num_sweeps: int) -> tuple[TemperedChains, TemperingStats]:
  r"""Runs `num_sweeps` sweeps of parallel tempering (replica exchange).

  A sweep is one block-Gibbs sweep of every replica r under its own
  p_{\beta_r} \propto e^{-\beta_r E} (z_2 | z_1 then z_1 | z_2, logits
  \beta_r (a_2 + z_1 W) and \beta_r (a_1 + z_2 W^T): the sweep of
  `rbm.gibbs_sweeps` on the RBM (\beta_r a_1, \beta_r a_2, \beta_r W),
  vectorised over replicas; the incoming z2 is redrawn), then swaps of the
  states of neighbouring temperatures, pairs (0,1), (2,3), ... when
  `sweeps_done` is even and (1,2), (3,4), ... when odd, chain column by
  chain column, each accepted with probability min(1, \alpha),

    \log\alpha = (\beta_r - \beta_{r+1})(E_r - E_{r+1}),

  E_r the energy of the state at replica r (`swap_log_acceptance`: the
  Metropolis ratio of the exchange under p_{\beta_r} \otimes
  p_{\beta_{r+1}}, in which log Z_\beta cancels). Both moves leave
  \prod_r p_{\beta_r} invariant, so the beta = 1 replicas,
  `target_chains(chains)`, are samples of the RBM (the ones that feed
  grad log Z), which the hot replicas, mixing faster, feed with states
  from other modes. A `lax.scan` over sweeps; a sweep costs R times one of
  `rbm.gibbs_sweeps` on C chains.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    chains: `TemperedChains` z1 `[R, C, n1]`, z2 `[R, C, n2]`.
    betas: `[R]` increasing inverse temperatures ending at 1 (e.g.
      `beta_ladder`; may be traced, then its values are not checked).
    num_sweeps: >= 1 (static).

  Returns:
    (the new `TemperedChains`, sweeps_done advanced by num_sweeps;
    `TemperingStats` with swap_acceptance `[R - 1]`, swap_proposals
    `[R - 1]`).

  References:
    Geyer (1991); Earl & Deem (2005); Desjardins et al. (2010).
  """
  checks.check_int("num_sweeps", num_sweeps, 1)
  params = _as_params(params)
  _check_tempered(params, chains)
  check_betas(betas, np.shape(chains.z1)[0])
  return _temper_scan(key, params, chains, jnp.asarray(betas), num_sweeps)


@functools.partial(jax.jit, static_argnums=4)
def _temper_scan(key: PRNGKey, params: rbm.RBMParams, chains: TemperedChains,
                 betas: ArrayLike, num_sweeps: int
                 ) -> tuple[TemperedChains, TemperingStats]:
  """`tempered_sweeps` after validation (jitted: eager calls hit the cache)."""
  params = jax.lax.stop_gradient(params)
  dtype = params.w.dtype
  betas = jnp.asarray(betas, dtype)  # [R]
  z1 = jax.lax.stop_gradient(jnp.asarray(chains.z1, dtype))
  z2 = jax.lax.stop_gradient(jnp.asarray(chains.z2, dtype))
  start = jnp.asarray(chains.sweeps_done, jnp.int32)
  num_pairs = betas.shape[0] - 1
  beta = betas[:, None, None]  # [R, 1, 1]
  scaled_biases = rbm.RBMParams(beta * params.a1, beta * params.a2,
                                params.w)  # a1 [R, 1, n1], a2 [R, 1, n2]

  def step(state, inputs):
    z1, z2, accept_sum, proposals = state
    sweep_key, sweep_index = inputs
    gibbs_key, swap_key = jax.random.split(sweep_key)
    # _sweep redraws z2 from z1 with logits a2 + beta z1 W (and likewise
    # z1): with biases beta a [R, 1, n] and beta [R, 1, 1] these are the
    # logits beta (a2 + z1 W) of p_beta, for every replica at once.
    moved = _sweep(gibbs_key, scaled_biases, z1, beta)
    parity = sweep_index % 2
    swapped, accept_prob = swap_neighbours(swap_key, params, moved.z1,
                                           moved.z2, betas, parity)
    proposed = (jnp.arange(num_pairs) % 2 == parity).astype(jnp.int32)
    return (swapped.z1, swapped.z2, accept_sum + accept_prob.mean(-1),
            proposals + proposed), None

  init = (z1, z2, jnp.zeros(num_pairs, dtype),
          jnp.zeros(num_pairs, jnp.int32))
  inputs = (jax.random.split(key, num_sweeps),
            start + jnp.arange(num_sweeps, dtype=jnp.int32))
  (z1, z2, accept_sum, proposals), _ = jax.lax.scan(step, init, inputs)
  acceptance = jnp.where(proposals > 0, accept_sum / jnp.maximum(proposals, 1),
                         jnp.nan)
  return (TemperedChains(z1, z2, start + num_sweeps),
          TemperingStats(acceptance, proposals))


# ------------------------------------------------------------- chain health


def chain_gap(key: PRNGKey, params: rbm.RBMParams, chains: rbm.Chains,
              extra_sweeps: int) -> ChainGap:
  r"""How far above equilibrium energy the chains sit: E now - E later.

  Runs `extra_sweeps` plain block-Gibbs sweeps at beta = 1 from the given
  chains and returns the mean energies before and after and their
  difference. Gibbs sweeps leave p invariant, so for chains that are
  samples of p the two means agree in expectation (gap 0 within `stderr`).
  Chains that lag behind a model being trained sit in states the model has
  since made less likely, which typically have higher energy; further
  sweeps move them downhill, so gap > 0 signals lagging chains. A
  significantly negative gap means the chains are too low (e.g. started at
  a deep mode and still spreading out); either sign means not at
  equilibrium.

  Limits: the check is one-sided (gap ~ 0 is necessary for equilibrium,
  not sufficient). It sees only what a few sweeps can undo: the local
  relaxation of energy. Chains stuck in one mode whose mean energy matches
  the equilibrium mean (e.g. all chains in one of two symmetric modes) have
  gap ~ 0; and when Gibbs mixes slowly the extra sweeps recover only part
  of the excess energy, so the gap underestimates it. Parallel tempering's
  swap acceptances, or the spread of chains over modes, are the checks for
  mixing between modes.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    chains: `rbm.Chains` z1 `[C, n1]`, z2 `[C, n2]`, C >= 2 (e.g.
      `target_chains` of tempered chains).
    extra_sweeps: >= 1 (static).

  Returns:
    `ChainGap(energy, energy_after, gap, stderr)`, scalars.
  """
  checks.check_int("extra_sweeps", extra_sweeps, 1)
  params = _as_params(params)
  _check_chains(params, chains)
  num_chains = np.shape(chains.z1)[0]
  if num_chains < 2:
    raise ValueError(f"chain_gap needs C >= 2 chains for its standard error; "
                     f"got chains.z1.shape={np.shape(chains.z1)}.")
  return _energy_gap(key, params, chains, extra_sweeps)


@functools.partial(jax.jit, static_argnums=3)
def _energy_gap(key: PRNGKey, params: rbm.RBMParams, chains: rbm.Chains,
                extra_sweeps: int) -> ChainGap:
  """`chain_gap` after validation (jitted)."""
  params = jax.lax.stop_gradient(params)
  before = rbm.energy(params, chains.z1, chains.z2)  # [C]
  moved = rbm.gibbs_sweeps(key, params, chains, extra_sweeps)
  after = rbm.energy(params, moved.z1, moved.z2)  # [C]
  drop = before - after  # [C]
  stderr = jnp.std(drop, ddof=1) / np.sqrt(drop.shape[0])
  return ChainGap(jnp.mean(before), jnp.mean(after), jnp.mean(drop), stderr)
