r"""A restricted Boltzmann machine over two halves z1 `[n1]`, z2 `[n2]`.

  p(z_1, z_2) = e^{-E(z_1, z_2)} / Z,
  E(z_1, z_2) = -a_1^T z_1 - a_2^T z_2 - z_1^T W z_2,

the prior of the DVAE++ model (Vahdat et al., 2018, Sec. 5). Everything is a
pure function of `RBMParams` (a pytree), jit- and vmap-compatible, with the
number of units static (read from the shapes):

* densities: `energy` (multilinear, so it also takes relaxed z), the
  conditionals `logits_z2_given_z1` / `logits_z1_given_z2`, the free energies
  `free_energy_z1` / `free_energy_z2` (one half summed out analytically);
* sampling: persistent block-Gibbs `Chains`, `init_chains`, `gibbs_sweeps`,
  `sample`;
* the partition function: `exact_log_z` (enumerating the smaller half, at most
  20 units), `ais_log_z` (annealed importance sampling), and
  `log_z_gradient_surrogate`, whose gradient is a Monte Carlo estimate of
  grad log Z from samples of the model (the idea of Appendix E of Vahdat et
  al., 2018), which is what the KL of Eq. (7) needs for training.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations.
  Tieleman (2008), Training restricted Boltzmann machines using
    approximations to the likelihood gradient (persistent chains).
  Neal (2001), Annealed importance sampling.
  Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief
    networks (AIS for RBMs with one half summed out).
"""

import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.types import Array, ArrayLike, PRNGKey

# Enumerating 2^20 configurations of the smaller half is the most
# `exact_log_z` does (about a second on a CPU for a few hundred other units).
MAX_ENUMERATED_UNITS = 20


class RBMParams(NamedTuple):
  """The parameters of an RBM (a pytree).

  Attributes:
    a1: `[n1]` biases of z1.
    a2: `[n2]` biases of z2.
    w: `[n1, n2]` couplings.
  """
  a1: Array
  a2: Array
  w: Array


class Chains(NamedTuple):
  """The states of C persistent block-Gibbs chains (a pytree).

  Attributes:
    z1: `[C, n1]` float 0/1.
    z2: `[C, n2]` float 0/1.
  """
  z1: Array
  z2: Array


class AISResult(NamedTuple):
  """An annealed-importance-sampling estimate of log Z.

  Attributes:
    log_z: scalar, log of the mean importance weight (a stochastic lower
      bound in expectation: E[Z-hat] = Z, so E[log Z-hat] <= log Z).
    stderr: scalar, delta-method standard error of `log_z`.
    log_weights: `[num_chains]` the log importance weights log w_i
      (log Z-hat = log mean_i w_i).
  """
  log_z: Array
  stderr: Array
  log_weights: Array


# ---------------------------------------------------------------- validation


def num_units(params: RBMParams) -> tuple[int, int]:
  """(n1, n2), read from the shape of `params.w`."""
  n1, n2 = np.shape(params.w)
  return n1, n2


def check_params(params: RBMParams) -> None:
  """Raises ValueError unless a1 `[n1]`, a2 `[n2]` and w `[n1, n2]` agree.

  Shapes are static, so this also works on traced parameters.
  """
  for name in ("a1", "a2", "w"):
    if not hasattr(params, name):
      raise ValueError(f"params must have fields a1, a2, w (an RBMParams); "
                       f"got params={params!r}.")
  w_shape = np.shape(params.w)
  if len(w_shape) != 2 or min(w_shape) < 1:
    raise ValueError(f"params.w must have shape [n1, n2] with n1, n2 >= 1; "
                     f"got params.w.shape={w_shape}.")
  for name, size in (("a1", w_shape[0]), ("a2", w_shape[1])):
    shape = np.shape(getattr(params, name))
    if shape != (size,):
      raise ValueError(f"params.{name} must have shape ({size},) to match "
                       f"params.w.shape={w_shape}; got params.{name}.shape="
                       f"{shape}.")


def _check_units(name: str, z: Array, size: int) -> None:
  if z.ndim < 1 or z.shape[-1] != size:
    raise ValueError(f"{name} must have shape [..., {size}]; got "
                     f"{name}.shape={z.shape}.")


def _check_chains(params: RBMParams, chains: Chains) -> None:
  n1, n2 = num_units(params)
  for name, z, size in (("z1", chains.z1, n1), ("z2", chains.z2, n2)):
    shape = np.shape(z)
    if len(shape) != 2 or shape[1] != size:
      raise ValueError(f"chains.{name} must have shape [C, {size}]; got "
                       f"chains.{name}.shape={shape}.")
  if np.shape(chains.z1)[0] != np.shape(chains.z2)[0]:
    raise ValueError(f"chains.z1 and chains.z2 must hold the same number of "
                     f"chains; got chains.z1.shape={np.shape(chains.z1)}, "
                     f"chains.z2.shape={np.shape(chains.z2)}.")


def _as_params(params: RBMParams) -> RBMParams:
  check_params(params)
  return RBMParams(*(jnp.asarray(p) for p in (params.a1, params.a2, params.w)))


# ----------------------------------------------------------------- densities


def energy(params: RBMParams, z1: ArrayLike, z2: ArrayLike) -> Array:
  r"""E(z_1, z_2) = -a_1^T z_1 - a_2^T z_2 - z_1^T W z_2 (Sec. 5), `[...]`.

  Multilinear in (z1, z2), so relaxed (real-valued) z are accepted: at the
  means of a factorial q it is the cross-entropy term of Eq. (7) of Vahdat et
  al. (2018) up to log Z.

  Args:
    params: the RBM.
    z1: `[..., n1]`.
    z2: `[..., n2]` (leading shapes broadcast against z1's).

  Returns:
    `[...]` the energies.
  """
  params = _as_params(params)
  n1, n2 = num_units(params)
  z1 = jnp.asarray(z1, params.w.dtype)
  z2 = jnp.asarray(z2, params.w.dtype)
  _check_units("z1", z1, n1)
  _check_units("z2", z2, n2)
  coupling = jnp.sum((z1 @ params.w) * z2, -1)  # [...]
  return -(z1 @ params.a1 + z2 @ params.a2 + coupling)


def logits_z2_given_z1(params: RBMParams, z1: ArrayLike) -> Array:
  """Logits of the factorial p(z2 | z1): a2 + z1 W, `[..., n2]`."""
  params = _as_params(params)
  z1 = jnp.asarray(z1, params.w.dtype)
  _check_units("z1", z1, num_units(params)[0])
  return params.a2 + z1 @ params.w


def logits_z1_given_z2(params: RBMParams, z2: ArrayLike) -> Array:
  """Logits of the factorial p(z1 | z2): a1 + z2 W^T, `[..., n1]`."""
  params = _as_params(params)
  z2 = jnp.asarray(z2, params.w.dtype)
  _check_units("z2", z2, num_units(params)[1])
  return params.a1 + z2 @ params.w.T


def free_energy_z1(params: RBMParams, z1: ArrayLike) -> Array:
  r"""\log \sum_{z_2} e^{-E(z_1, z_2)} = a_1^T z_1 + \sum_j softplus(a_2 + z_1 W)_j.

  The unnormalised log marginal of z1 (minus the usual "free energy"),
  `[...]` for z1 `[..., n1]`; log p(z1) = free_energy_z1 - log Z.
  """
  params = _as_params(params)
  z1 = jnp.asarray(z1, params.w.dtype)
  _check_units("z1", z1, num_units(params)[0])
  return z1 @ params.a1 + jnp.sum(
      bernoulli.softplus(params.a2 + z1 @ params.w), -1)


def free_energy_z2(params: RBMParams, z2: ArrayLike) -> Array:
  r"""\log \sum_{z_1} e^{-E(z_1, z_2)} = a_2^T z_2 + \sum_i softplus(a_1 + z_2 W^T)_i, `[...]`."""
  params = _as_params(params)
  z2 = jnp.asarray(z2, params.w.dtype)
  _check_units("z2", z2, num_units(params)[1])
  return z2 @ params.a2 + jnp.sum(
      bernoulli.softplus(params.a1 + z2 @ params.w.T), -1)


def exact_log_prob(params: RBMParams, z1: ArrayLike, z2: ArrayLike,
                   log_z: ArrayLike) -> Array:
  """log p(z1, z2) = -E(z1, z2) - log Z, `[...]`, given log Z (e.g. exact)."""
  return -energy(params, z1, z2) - jnp.asarray(log_z)


# ------------------------------------------------------------------ sampling


def init_chains(key: PRNGKey, params: RBMParams, num_chains: int) -> Chains:
  """`num_chains` draws from the factorial sigmoid(a1) x sigmoid(a2) (W ignored).

  This is the RBM at zero coupling, the base distribution of `ais_log_z`;
  run `gibbs_sweeps` to move the chains towards the RBM.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    num_chains: C >= 1 (static).

  Returns:
    `Chains` with z1 `[C, n1]`, z2 `[C, n2]`.
  """
  checks.check_int("num_chains", num_chains, 1)
  params = jax.lax.stop_gradient(_as_params(params))
  return _draw_factorial(key, params, num_chains)


def _draw_factorial(key: PRNGKey, params: RBMParams, num_chains: int) -> Chains:
  """Both halves as 1[noise < a] from one logistic draw `[C, n1 + n2]`."""
  n1, _ = num_units(params)
  dtype = params.w.dtype
  noise = _logistic_noise(key, (num_chains, n1 + params.a2.shape[0]), dtype)
  return Chains((noise[:, :n1] < params.a1).astype(dtype),
                (noise[:, n1:] < params.a2).astype(dtype))


def _logistic_noise(key: PRNGKey, shape: tuple[int, ...], dtype) -> Array:
  """Standard logistic noise of `shape`, drawn flat and reshaped.

  Same distribution as `jax.random.logistic(key, shape)`; on XLA's CPU
  backend (JAX 0.10, partitionable threefry) a multi-dimensional draw
  compiles several times slower than a flat one of the same size (2.9 s vs
  0.4 s for [500, 10]), and random bits dominate the compile time here.
  """
  return jax.random.logistic(key, (math.prod(shape),), dtype).reshape(shape)


def _sweep(key: PRNGKey, params: RBMParams, z1: Array, beta) -> Chains:
  """One block-Gibbs sweep at coupling scale beta: z2 | z1, then z1 | z2.

  Both halves are drawn as 1[noise < logits] (as `bernoulli.sample`) from
  one logistic draw `[C, n2 + n1]`: one random-bits computation per sweep
  instead of three (a key split and two draws).
  """
  n1, n2 = num_units(params)
  noise = _logistic_noise(key, z1.shape[:-1] + (n2 + n1,), z1.dtype)
  z2 = (noise[..., :n2] < params.a2 + beta * (z1 @ params.w)).astype(z1.dtype)
  z1 = (noise[..., n2:] < params.a1 + beta * (z2 @ params.w.T)).astype(z1.dtype)
  return Chains(z1, z2)  # [C, n1], [C, n2]


def gibbs_sweeps(key: PRNGKey, params: RBMParams, chains: Chains,
                 num_sweeps: int, beta: ArrayLike = 1.0) -> Chains:
  r"""Runs `num_sweeps` block-Gibbs sweeps on every chain.

  A sweep draws z_2 ~ p_\beta(z_2|z_1), then z_1 ~ p_\beta(z_1|z_2), where
  p_\beta \propto \exp(a_1^T z_1 + a_2^T z_2 + \beta z_1^T W z_2) (beta scales
  the couplings only), so that the chains leave p_\beta invariant; beta = 1 is
  the RBM, beta = 0 its factorial base. The incoming `chains.z2` is not used
  (the sweep starts by redrawing it). A `lax.scan` over sweeps.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    chains: `Chains` z1 `[C, n1]`, z2 `[C, n2]`.
    num_sweeps: >= 1 (static).
    beta: inverse temperature >= 0 on the couplings (may be traced).

  Returns:
    The new `Chains` (float, same shapes).
  """
  checks.check_int("num_sweeps", num_sweeps, 1)
  checks.check_nonnegative("beta", beta)
  params = _as_params(params)
  _check_chains(params, chains)
  return _gibbs_scan(key, params, chains, beta, num_sweeps)


def advance_chains(key: PRNGKey, params: RBMParams, chains: Optional[Chains],
                   num_chains: int, num_sweeps: int) -> Chains:
  """One training step's update of persistent chains (Tieleman, 2008):
  `num_sweeps` block-Gibbs sweeps, from fresh `init_chains(num_chains)`
  when `chains` is None.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    chains: the persistent `Chains`, or None.
    num_chains: chains to start when `chains` is None (static).
    num_sweeps: sweeps per call >= 1 (static).

  Returns:
    The new `Chains`.
  """
  init_key, sweep_key = jax.random.split(key)
  if chains is None:
    chains = init_chains(init_key, params, num_chains)
  return gibbs_sweeps(sweep_key, params, chains, num_sweeps)


@functools.partial(jax.jit, static_argnums=4)
def _gibbs_scan(key: PRNGKey, params: RBMParams, chains: Chains, beta,
                num_sweeps: int) -> Chains:
  """`gibbs_sweeps` after validation (jitted: eager calls hit the cache)."""
  params = jax.lax.stop_gradient(params)
  beta = jnp.asarray(beta, params.w.dtype)
  z1 = jax.lax.stop_gradient(jnp.asarray(chains.z1, params.w.dtype))
  z2 = jax.lax.stop_gradient(jnp.asarray(chains.z2, params.w.dtype))

  def step(state, sweep_key):
    return _sweep(sweep_key, params, state.z1, beta), None

  chains, _ = jax.lax.scan(step, Chains(z1, z2),
                           jax.random.split(key, num_sweeps))
  return chains


def sample(key: PRNGKey, params: RBMParams, num_samples: int,
           num_sweeps: int = 1000) -> tuple[Array, Array]:
  """Approximate samples: fresh `init_chains`, then `num_sweeps` Gibbs sweeps.

  Args:
    key: PRNG key.
    params: the RBM (enters under stop_gradient).
    num_samples: number of independent chains S >= 1 (static).
    num_sweeps: sweeps per chain >= 1 (static).

  Returns:
    (z1 `[S, n1]`, z2 `[S, n2]`), float 0/1.
  """
  checks.check_int("num_samples", num_samples, 1)
  checks.check_int("num_sweeps", num_sweeps, 1)
  init_key, sweep_key = jax.random.split(key)
  chains = init_chains(init_key, params, num_samples)
  chains = gibbs_sweeps(sweep_key, params, chains, num_sweeps)
  return chains.z1, chains.z2


# ------------------------------------------------------ partition function


def log_z_gradient_surrogate(params: RBMParams, chains: Chains) -> Array:
  r"""A scalar whose gradient estimates grad log Z from samples of the RBM.

  Returns mean_c -E(z_1^c, z_2^c) over the chains, held fixed by
  stop_gradient. Since \nabla \log Z = E_p[-\nabla E(z_1, z_2)], its gradient
  (a1: mean z1, a2: mean z2, w: mean z1 z2^T) is an unbiased estimate of
  grad log Z when the chains are exact samples of p, and a consistent one for
  well-mixed (persistent) Gibbs chains. Adding it to a loss in place of log Z
  lets autodiff produce the log Z part of the gradient of the KL of Eq. (7),
  the idea of Appendix E of Vahdat et al. (2018).

  Its VALUE is not log Z (it is minus the mean energy of the chains); see
  `log_z_with_surrogate_gradient` for a scalar with the value of a given
  log Z estimate and this gradient.

  Args:
    params: the RBM (differentiated).
    chains: `Chains` z1 `[C, n1]`, z2 `[C, n2]` (not differentiated).

  Returns:
    scalar.
  """
  params = _as_params(params)
  _check_chains(params, chains)
  z1 = jax.lax.stop_gradient(chains.z1)
  z2 = jax.lax.stop_gradient(chains.z2)
  return jnp.mean(-energy(params, z1, z2))


def log_z_with_surrogate_gradient(params: RBMParams, chains: Chains,
                                  log_z: ArrayLike) -> Array:
  """`log_z` (held fixed) in value, the gradient of `log_z_gradient_surrogate`.

  log_z + s - stop_gradient(s) with s = log_z_gradient_surrogate(params,
  chains): for reporting a bound with an estimated (or exact) log Z while
  training with the sampled gradient.
  """
  surrogate = log_z_gradient_surrogate(params, chains)
  return (jax.lax.stop_gradient(jnp.asarray(log_z, surrogate.dtype)) +
          surrogate - jax.lax.stop_gradient(surrogate))


def _binary_configs(start: Array, size: int, num_bits: int, dtype) -> Array:
  """The configurations start, ..., start + size - 1 as bits, `[size, num_bits]`."""
  index = start + jnp.arange(size, dtype=jnp.int32)  # [size]
  bits = (index[:, None] >> jnp.arange(num_bits, dtype=jnp.int32)) & 1
  return bits.astype(dtype)


def exact_log_z(params: RBMParams, *, chunk_size: int = 4096) -> Array:
  r"""log Z by enumerating the smaller half and summing the other analytically.

  With z1 the enumerated half (n1 <= n2; otherwise the roles swap),
  log Z = logsumexp_{z_1 \in \{0,1\}^{n_1}} free_energy_z1(z_1). The 2^{n1}
  configurations are generated from their integer indices in chunks of
  `chunk_size` (a `lax.scan` with a running logsumexp, rematerialised in the
  backward pass so that memory is O(chunk_size * (n1 + n2)) for the value and
  the gradient alike). Sizes are static, so this works under jit and vmap.

  Args:
    params: the RBM (differentiable).
    chunk_size: configurations per chunk >= 1 (static).

  Returns:
    scalar log Z.

  Raises:
    ValueError: if both halves have more than 20 units, or for a bad
      `chunk_size` or bad parameter shapes.
  """
  params = _as_params(params)
  checks.check_int("chunk_size", chunk_size, 1)
  n1, n2 = num_units(params)
  if min(n1, n2) > MAX_ENUMERATED_UNITS:
    raise ValueError(f"exact_log_z enumerates the smaller half, which must "
                     f"have at most {MAX_ENUMERATED_UNITS} units; got n1={n1}, "
                     f"n2={n2}.")
  return _enumerate_log_z(params, chunk_size)


@functools.partial(jax.jit, static_argnums=1)
def _enumerate_log_z(params: RBMParams, chunk_size: int) -> Array:
  """`exact_log_z` after validation (jitted: eager calls hit the cache)."""
  n1, n2 = num_units(params)
  if n1 <= n2:
    num_bits, log_marginal = n1, free_energy_z1
  else:
    num_bits, log_marginal = n2, free_energy_z2
  num_configs = 2**num_bits
  chunk_size = min(chunk_size, num_configs)
  num_chunks = -(-num_configs // chunk_size)
  dtype = params.w.dtype

  @jax.checkpoint
  def chunk_log_z(p, start):
    configs = _binary_configs(start, chunk_size, num_bits, dtype)
    values = log_marginal(p, configs)  # [chunk_size]
    valid = start + jnp.arange(chunk_size) < num_configs  # last chunk: padded
    return jax.nn.logsumexp(jnp.where(valid, values, -jnp.inf))

  def step(total, start):
    return jnp.logaddexp(total, chunk_log_z(params, start)), None

  starts = jnp.arange(num_chunks, dtype=jnp.int32) * chunk_size
  log_z, _ = jax.lax.scan(step, jnp.array(-jnp.inf, dtype), starts)
  return log_z


def base_log_z(params: RBMParams) -> Array:
  """log Z at zero coupling: sum softplus(a1) + sum softplus(a2)."""
  params = _as_params(params)
  return (jnp.sum(bernoulli.softplus(params.a1)) +
          jnp.sum(bernoulli.softplus(params.a2)))


def _softplus_difference(u: Array, d: Array) -> Array:
  r"""softplus(u + d) - softplus(u) without cancellation (elementwise).

  = log1p(\sigma(u) expm1(d)) for d >= 0 and d + log1p(\sigma(-u) expm1(-d))
  for d < 0: accurate to float32 relative precision in the (small) result,
  where the plain difference of two O(|u|) numbers has an absolute error
  ~1e-7 |u| per unit that accumulates over the thousands of AIS steps. The
  plain difference is used for |d| > 20 (expm1 would overflow near 88).
  Not differentiated (AIS runs under stop_gradient).
  """
  small = jnp.abs(d) <= 20.
  d_small = jnp.where(small, d, 0.)
  precise = jnp.where(
      d_small >= 0,
      jnp.log1p(jax.nn.sigmoid(u) * jnp.expm1(d_small)),
      d_small + jnp.log1p(jax.nn.sigmoid(-u) * jnp.expm1(-d_small)))
  plain = bernoulli.softplus(u + d) - bernoulli.softplus(u)
  return jnp.where(small, precise, plain)


def _ais_stderr(log_weights: Array, log_z: Array) -> Array:
  """std(w / mean w) / sqrt(C) (delta method), in log space; C >= 2."""
  ratios = jnp.exp(log_weights - log_z)  # w_i / mean(w) <= C: no overflow
  return jnp.std(ratios, ddof=1) / np.sqrt(log_weights.shape[0])


def ais_log_z(key: PRNGKey, params: RBMParams, *, num_chains: int = 1024,
              num_temperatures: int = 1000) -> AISResult:
  r"""Annealed importance sampling estimate of log Z, on the z1 marginal.

  Anneals the marginals f_b(z_1) = \log \sum_{z_2} p^*_b(z_1, z_2) =
  a_1^T z_1 + \sum_j softplus(a_2 + b\, z_1 W)_j of
  p^*_b(z_1, z_2) = \exp(a_1^T z_1 + a_2^T z_2 + b\, z_1^T W z_2), for
  b_0 = 0 < b_1 < ... < b_{K-1} = 1 evenly spaced (K = `num_temperatures`).
  Chains start at exact draws from the factorial p_0, with
  log Z_0 = sum softplus(a1) + sum softplus(a2); the log weight accumulates
  f_{b_k}(z_1) - f_{b_{k-1}}(z_1) at the state after one block-Gibbs sweep at
  b_{k-1} (which leaves p_{b_{k-1}}(z_1) invariant), and
  log Z-hat = log Z_0 + log mean_i w_i.

  Why the marginal and not the joint (whose increments are
  (b_k - b_{k-1}) z_1^T W z_2): the marginal increment is the log of the
  conditional expectation of the joint one's exponential given z1, so the
  same chains give lower-variance weights (Rao-Blackwellisation, as in
  Salakhutdinov & Murray, 2008), for one softplus over [C, n2] per step.

  The estimate is computed under stop_gradient (it is for evaluation; train
  with `log_z_gradient_surrogate`).

  Args:
    key: PRNG key.
    params: the RBM.
    num_chains: C >= 2 independent AIS runs (static).
    num_temperatures: K >= 2 values of b, both ends included (static);
      K - 2 Gibbs sweeps per chain.

  Returns:
    `AISResult(log_z, stderr, log_weights [C])`; stderr is the delta-method
    standard error std(w / mean w) / sqrt(C) of log Z-hat (sample std).

  References:
    Neal (2001); Salakhutdinov & Murray (2008).
  """
  checks.check_int("num_chains", num_chains, 2)
  checks.check_int("num_temperatures", num_temperatures, 2)
  return _anneal(key, _as_params(params), num_chains, num_temperatures)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _anneal(key: PRNGKey, params: RBMParams, num_chains: int,
            num_temperatures: int) -> AISResult:
  """`ais_log_z` after validation (jitted: eager calls hit the cache)."""
  params = jax.lax.stop_gradient(params)
  dtype = params.w.dtype
  betas = jnp.linspace(0., 1., num_temperatures, dtype=dtype)  # [K]
  init_key, anneal_key = jax.random.split(key)
  z1 = _draw_factorial(init_key, params, num_chains).z1  # [C, n1]

  def increment(coupling, b_prev, b):  # coupling = z1 W, [C, n2]
    return jnp.sum(_softplus_difference(params.a2 + b_prev * coupling,
                                        (b - b_prev) * coupling), -1)

  def step(carry, inputs):
    z1, log_w = carry
    sweep_key, b_prev, b = inputs
    z1 = _sweep(sweep_key, params, z1, b_prev).z1
    return (z1, log_w + increment(z1 @ params.w, b_prev, b)), None

  # k = 1: z1 is an exact draw from p_0, no sweep needed.
  log_w = increment(z1 @ params.w, betas[0], betas[1])  # [C]
  keys = jax.random.split(anneal_key, num_temperatures - 2)
  (_, log_w), _ = jax.lax.scan(step, (z1, log_w),
                               (keys, betas[1:-1], betas[2:]))
  log_weights = base_log_z(params) + log_w
  log_z = jax.nn.logsumexp(log_weights) - np.log(num_chains).astype(dtype)
  return AISResult(log_z, _ais_stderr(log_weights, log_z), log_weights)
