r"""The RBM prior of DVAE++: parameters, training terms, log Z and samples.

  p(z_1, z_2) = e^{-E(z_1, z_2)} / Z,
  E(z_1, z_2) = -a_1^T z_1 - a_2^T z_2 - z_1^T W z_2

(Vahdat et al., 2018, Sec. 5, Fig. 2g), the prior over two halves of binary
units that `models.dvaepp` and `models.dvaepp_conv` share. The RBM's math
is in `distributions.rbm`; this module is the part a model holds, written
once:

* `RBMParameters`: the Flax module of a_1 `[n1]`, a_2 `[n2]`, W `[n1, n2]`,
  all zero at init (as the authors').
* `RBMPrior`: static settings (persistent chains, sweeps, log Z method and
  AIS sizes, weight decay) and the pure functions of a model's RBM prior:
  - training (Eq. 7 and Appendix E): the analytic KL minus log Z
    (`kl_without_log_z`); log Z through its gradient only,
    \nabla \log Z = E_p[-\nabla E], a Monte Carlo estimate over persistent
    block-Gibbs chains (Tieleman, 2008) carried in the model state
    (`init_state`, `update_state`, `log_z_surrogate`), plus an L2 weight
    decay (`weight_decay_loss`); `training_terms` is all of a step's;
  - evaluation: log Z by enumerating one half (<= 20 units) or by annealed
    importance sampling (`prepare_evaluation`), then the normalised
    log p(z) (`log_prob`);
  - sampling: block-Gibbs sweeps from fresh chains (`sample`).
* `config_section`, `from_config_section`: the RBM section of a run config
  (`config.model.rbm`, the fields of `RBMPrior` by name), shared by both
  models: `RBMPrior` is its one description.

The defaults are the authors' settings (from their public code; the
paper's Appendix E is not in our copy): 1000 chains, 40 sweeps per step,
weight decay 1e-4; AIS with 1024 chains and 1000 linearly spaced inverse
temperatures before every evaluation.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Tieleman (2008), Training restricted Boltzmann machines using
    approximations to the likelihood gradient.
  Neal (2001), Annealed importance sampling.
  Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief
    networks.
"""

import dataclasses
from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi import sums
from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import rbm
from discrete_vi.distributions import rbm_tempering
from discrete_vi.types import Array, ArrayLike, PRNGKey

LOG_Z_METHODS = ("exact", "ais", "auto")
WEIGHT_DECAY_ON = ("couplings", "all")
# The persistent state: `rbm.Chains`, or `rbm_tempering.TemperedChains`.
State = Any


class RBMParameters(nn.Module):
  """The RBM's parameters a1 `[n1]`, a2 `[n2]`, w `[n1, n2]`, zero at init.

  Attributes:
    n1: units of z_1.
    n2: units of z_2 (None: n1).
  """
  n1: int
  n2: Optional[int] = None

  @nn.compact
  def __call__(self) -> rbm.RBMParams:
    n1 = self.n1
    n2 = n1 if self.n2 is None else self.n2
    zeros = nn.initializers.zeros
    return rbm.RBMParams(self.param("a1", zeros, (n1,)),
                         self.param("a2", zeros, (n2,)),
                         self.param("w", zeros, (n1, n2)))


def log_z_method(method: str, num_units: tuple[int, int]) -> str:
  """"exact" or "ais": `method`, "auto" being exact when a half has at most
  `rbm.MAX_ENUMERATED_UNITS` (20) units.

  Raises:
    ValueError: for an unknown method, or "exact" when both halves are
      larger than that.
  """
  if method not in LOG_Z_METHODS:
    raise ValueError(f"log_z={method!r} is unknown; expected one of "
                     f"{LOG_Z_METHODS}.")
  small = min(num_units) <= rbm.MAX_ENUMERATED_UNITS
  if method == "exact" and not small:
    raise ValueError(f"log_z='exact' enumerates one half of the RBM, which "
                     f"must have at most {rbm.MAX_ENUMERATED_UNITS} units; "
                     f"got halves of {num_units}.")
  if method == "auto":
    return "exact" if small else "ais"
  return method


class LogZ(NamedTuple):
  """log Z of an RBM for evaluating the discrete model (a pytree: the
  evaluation context of a model with an RBM prior, `prepare_evaluation`).

  Attributes:
    value: scalar, the exact log Z or an AIS estimate of it.
    stderr: scalar, its standard error (0 for the exact value).
  """
  value: Array
  stderr: Array


class TrainingTerms(NamedTuple):
  """What one training step adds for the RBM prior (`training_terms`).

  Attributes:
    loss: scalar to add to minus the bound: kl_weight * (log Z surrogate)
      + weight decay; its value is the weight decay.
    chains: the persistent state after this step's sweeps (`rbm.Chains`,
      or `rbm_tempering.TemperedChains` with tempering).
    diagnostics: `rbm_weight_decay_loss`, `chains_mean_z1`,
      `chains_mean_z2` (no gradient).
  """
  loss: Array
  chains: rbm.Chains
  diagnostics: dict


def check_settings(settings: dict, prefix: str = "") -> None:
  """ValueError naming the bad one of `RBMPrior`'s settings (a dict of
  every field) as `<prefix><field>=<value>`."""
  for name in ("gibbs_chains", "gibbs_sweeps", "sample_sweeps"):
    checks.check_int(prefix + name, settings[name], 1)
  checks.check_one_of(prefix + "log_z", settings["log_z"], LOG_Z_METHODS)
  for name in ("ais_num_chains", "ais_num_temperatures"):
    checks.check_int(prefix + name, settings[name], 2)
  checks.check_nonnegative(prefix + "weight_decay", settings["weight_decay"])
  checks.check_one_of(prefix + "weight_decay_on", settings["weight_decay_on"],
                      WEIGHT_DECAY_ON)
  checks.check_int(prefix + "tempering_temperatures",
                   settings["tempering_temperatures"], 1)
  checks.check_in_range(prefix + "tempering_base_beta",
                        settings["tempering_base_beta"], 0.0, 1.0,
                        low_open=True, high_open=True)
  checks.check_int(prefix + "chain_gap_sweeps", settings["chain_gap_sweeps"],
                   1)


@dataclasses.dataclass(frozen=True)
class RBMPrior:
  r"""The static settings of an RBM prior and its pure functions.

  Every method takes the RBM's parameters (`rbm.RBMParams`, from the
  model's `RBMParameters`); the number of units is read from their shapes.

  Attributes:
    gibbs_chains: persistent block-Gibbs chains (authors: 1000).
    gibbs_sweeps: sweeps of every chain per training step (authors: 40).
    sample_sweeps: sweeps from fresh chains for `sample`.
    log_z: "exact", "ais" or "auto" (exact when a half has <= 20 units).
    ais_num_chains: AIS runs for log Z (authors: 1024).
    ais_num_temperatures: linearly spaced AIS temperatures (1000).
    weight_decay: L2 rate (authors: 1e-4).
    weight_decay_on: "couplings" (W only: the authors' code,
      github.com/QuadrantAI/dvae rbm.py, `weight_decay * l2_loss(w)`;
      default) or "all" (a1, a2 and W).
    tempering_temperatures: R inverse temperatures of parallel tempering
      for the persistent chains (`distributions.rbm_tempering`: R replicas
      of the `gibbs_chains` chains under p_beta \propto e^{-beta E},
      neighbours swapped after each sweep; the beta = 1 replicas feed
      grad log Z); 1 (default): plain block Gibbs, as the authors.
    tempering_base_beta: the hottest inverse temperature, in (0, 1).
    chain_gap_sweeps: M, the extra sweeps of the chain-health check that
      `prepare_evaluation` reports (`chain_gap`).

  Raises:
    ValueError: at construction, naming the bad value.
  """
  gibbs_chains: int = 1000
  gibbs_sweeps: int = 40
  sample_sweeps: int = 1000
  log_z: str = "auto"
  ais_num_chains: int = 1024
  ais_num_temperatures: int = 1000
  weight_decay: float = 1e-4
  weight_decay_on: str = "couplings"
  tempering_temperatures: int = 1
  tempering_base_beta: float = 0.1
  chain_gap_sweeps: int = 100

  def __post_init__(self):
    check_settings(dataclasses.asdict(self))

  def log_z_method_for(self, num_units: tuple[int, int]) -> str:
    """The method ("exact" or "ais") `log_z` resolves to for halves of
    `num_units` (`log_z_method`; raises for "exact" on two large halves)."""
    return log_z_method(self.log_z, num_units)

  # -- training (Eq. 7, Appendix E) ----------------------------------------

  @staticmethod
  def kl_without_log_z(rbm_params: rbm.RBMParams, logits1: Array,
                       nu1: Array, logits2: Array) -> Array:
    r"""The KL of Eq. (7) minus log Z, at one sample \zeta_1, `[...]`.

    KL(q(z, \zeta | x) || p(z, \zeta)) = \log Z - H(q(z_1|x))
      - E_{q(\zeta_1|x)}[H(q(z_2|x,\zeta_1))] - a_1^T \mu_1
      - E_{q(\zeta_1|x)}[a_2^T \mu_2 + \nu_1^T W \mu_2]          (Eq. 7)

    with \mu_1 = q(z_1 = 1|x), \mu_2 = q(z_2 = 1|x, \zeta_1) and
    \nu_1 = q(z_1 = 1|x, \zeta_1) (Sec. 5); everything but log Z is
    analytic given the encoder's sample \zeta_1, so autodiff gives its
    gradient. With a non-hierarchical encoder (\mu_2 independent of
    \zeta_1) pass \nu_1 = \mu_1: the mean-field KL, exact in expectation
    since E[\nu_1] = \mu_1.

    Args:
      rbm_params: the RBM (a1 `[n1]`, a2 `[n2]`, w `[n1, n2]`).
      logits1: `[..., n1]` logits of q(z_1 = 1 | x).
      nu1: `[..., n1]` \nu_1 in [0, 1].
      logits2: `[..., n2]` logits of q(z_2 = 1 | x, \zeta_1).

    Returns:
      `[...]` cross-entropy minus entropy, log Z excluded.
    """
    mu1 = jax.nn.sigmoid(logits1)  # [..., n1]
    mu2 = jax.nn.sigmoid(logits2)  # [..., n2]
    entropy = (sums.sum_last(bernoulli.entropy(logits1)) +
               sums.sum_last(bernoulli.entropy(logits2)))
    cross_entropy = -(mu1 @ rbm_params.a1 + mu2 @ rbm_params.a2 +
                      jnp.sum((nu1 @ rbm_params.w) * mu2, -1))
    return cross_entropy - entropy

  @property
  def tempered(self) -> bool:
    """Whether the persistent chains run parallel tempering."""
    return self.tempering_temperatures > 1

  def betas(self) -> Array:
    """`[R]` the tempering ladder, geometric from `tempering_base_beta` to
    1 (`rbm_tempering.beta_ladder`)."""
    return rbm_tempering.beta_ladder(self.tempering_temperatures,
                                     self.tempering_base_beta)

  def init_state(self, key: PRNGKey, rbm_params: rbm.RBMParams) -> State:
    """The persistent chains: `gibbs_chains` chains drawn from the RBM's
    factorial base sigmoid(a1) x sigmoid(a2) (`rbm.init_chains`; the RBM
    itself at the all-zero initial parameters), z1 `[C, n1]`, z2
    `[C, n2]`; with tempering, `rbm_tempering.TemperedChains` of R such
    sets (`init_tempered`)."""
    if self.tempered:
      return rbm_tempering.init_tempered(key, rbm_params, self.gibbs_chains,
                                         self.betas())
    return rbm.init_chains(key, rbm_params, self.gibbs_chains)

  def update_state(self, key: PRNGKey, rbm_params: rbm.RBMParams,
                   chains: Optional[State]) -> tuple[State, dict]:
    """`gibbs_sweeps` sweeps of the persistent chains (block Gibbs, or
    parallel tempering), from fresh ones when `chains` is None; no
    gradient.

    Returns:
      The new state and diagnostics (with tempering: `tempering_min_swap`,
      the smallest mean swap acceptance over neighbour pairs this step).
    """
    if not self.tempered:
      return rbm.advance_chains(key, rbm_params, chains, self.gibbs_chains,
                                self.gibbs_sweeps), {}
    init_key, sweep_key = jax.random.split(key)
    if chains is None:
      chains = self.init_state(init_key, rbm_params)
    chains, stats = rbm_tempering.tempered_sweeps(
        sweep_key, rbm_params, chains, self.betas(), self.gibbs_sweeps)
    return chains, {"tempering_min_swap": jnp.nanmin(stats.swap_acceptance)}

  def target_chains(self, state: State) -> rbm.Chains:
    """The chains that are samples of the RBM: the state itself, or its
    beta = 1 replicas with tempering."""
    if self.tempered:
      return rbm_tempering.target_chains(state)
    return state

  @staticmethod
  def log_z_surrogate(rbm_params: rbm.RBMParams, chains: rbm.Chains
                      ) -> Array:
    r"""A scalar standing in for log Z in a training loss (Appendix E).

    Its value is 0 (log Z is unknown during training, so the sampled loss
    excludes it); its gradient is the mean of -\nabla E over the chains,
    an estimate of \nabla \log Z = E_p[-\nabla E(z_1, z_2)] (unbiased for
    exact samples of p; `rbm.log_z_with_surrogate_gradient`).
    """
    return rbm.log_z_with_surrogate_gradient(rbm_params, chains, 0.0)

  def weight_decay_loss(self, rbm_params: rbm.RBMParams) -> Array:
    r"""(rate / 2) |W|^2 (`weight_decay_on="couplings"`), or (rate / 2)
    (|a_1|^2 + |a_2|^2 + |W|^2) ("all"); gradient rate * params."""
    decayed = ((rbm_params.w,) if self.weight_decay_on == "couplings" else
               tuple(rbm_params))
    return 0.5 * self.weight_decay * sum(jnp.sum(jnp.square(p))
                                         for p in decayed)

  def training_terms(self, key: PRNGKey, rbm_params: rbm.RBMParams,
                     chains: Optional[rbm.Chains], kl_weight: ArrayLike
                     ) -> TrainingTerms:
    """One step's addition to a model's loss, and its moved chains.

    The KL of Eq. (7) is `kl_without_log_z` + log Z, so log Z takes the
    KL's weight: the model's loss is minus its bound (with
    `kl_without_log_z`) plus `loss` = kl_weight * `log_z_surrogate` (value
    0) + `weight_decay_loss`, the surrogate at the chains after this step's
    `gibbs_sweeps` sweeps.

    Args:
      key: PRNG key of the sweeps.
      rbm_params: the RBM (differentiated).
      chains: the persistent chains (None: fresh ones).
      kl_weight: the KL warm-up weight (may be traced).
    """
    state, diagnostics = self.update_state(key, rbm_params, chains)
    chains = self.target_chains(state)
    log_z = self.log_z_surrogate(rbm_params, chains)
    decay = self.weight_decay_loss(rbm_params)
    diagnostics.update({"rbm_weight_decay_loss": jax.lax.stop_gradient(decay),
                        "chains_mean_z1": jnp.mean(chains.z1),
                        "chains_mean_z2": jnp.mean(chains.z2)})
    return TrainingTerms(kl_weight * log_z + decay, state, diagnostics)

  # -- evaluation on the discrete model ------------------------------------

  def prepare_evaluation(self, key: PRNGKey, rbm_params: rbm.RBMParams,
                         state: Optional[State] = None) -> tuple[LogZ, dict]:
    """log Z for evaluating the discrete model, by enumeration or AIS, and
    the health of the persistent chains.

    Args:
      key: PRNG key (AIS, and the chain check's sweeps).
      rbm_params: the RBM (under stop_gradient).
      state: the persistent chains (`init_state`), or None (no check).

    Returns:
      `(LogZ, info)`: the estimate and its standard error (0 for the exact
      value, AIS's delta-method standard error otherwise, `rbm.ais_log_z`),
      and info {"log_z", "log_z_stderr", "log_z_method"} as Python floats
      and "exact" / "ais"; with `state`, also `chain_energy`,
      `chain_energy_after`, `chain_gap` and `chain_gap_stderr`
      (`chain_health`).
    """
    method = self.log_z_method_for(rbm.num_units(rbm_params))
    rbm_params = jax.lax.stop_gradient(rbm_params)
    key, gap_key = jax.random.split(key)
    if method == "exact":
      log_z = rbm.exact_log_z(rbm_params)
      stderr = jnp.zeros_like(log_z)
    else:
      log_z, stderr, _ = rbm.ais_log_z(
          key, rbm_params, num_chains=self.ais_num_chains,
          num_temperatures=self.ais_num_temperatures)
    info = {"log_z": float(log_z), "log_z_stderr": float(stderr),
            "log_z_method": method}
    if state is not None:
      info.update(self.chain_health(gap_key, rbm_params, state))
    return LogZ(log_z, stderr), info

  def chain_health(self, key: PRNGKey, rbm_params: rbm.RBMParams,
                   state: State) -> dict:
    """How far the persistent chains (the beta = 1 ones with tempering)
    sit above the RBM's equilibrium energy: their mean energy, the mean
    after `chain_gap_sweeps` further block-Gibbs sweeps, and the gap with
    its standard error (`rbm_tempering.chain_gap`; a gap of a few nats
    means the chains lag behind the model and bias grad log Z).

    Returns:
      {"chain_energy", "chain_energy_after", "chain_gap",
      "chain_gap_stderr"} as Python floats.
    """
    gap = rbm_tempering.chain_gap(key, rbm_params, self.target_chains(state),
                                  self.chain_gap_sweeps)
    return {"chain_energy": float(gap.energy),
            "chain_energy_after": float(gap.energy_after),
            "chain_gap": float(gap.gap),
            "chain_gap_stderr": float(gap.stderr)}

  @staticmethod
  def log_prob(rbm_params: rbm.RBMParams, z1: ArrayLike, z2: ArrayLike,
               log_z: Optional[LogZ]) -> Array:
    """log p(z1, z2) = -E(z1, z2) - log Z, `[...]` for z1 `[..., n1]`,
    z2 `[..., n2]`, given the `LogZ` from `prepare_evaluation`.

    Raises:
      ValueError: if `log_z` is not a `LogZ` (e.g. None: no context).
    """
    if not isinstance(log_z, LogZ):
      raise ValueError("the RBM prior's log p(z) needs log Z: pass the "
                       "evaluation context returned by prepare_evaluation "
                       f"(got {type(log_z).__name__}).")
    return rbm.exact_log_prob(rbm_params, z1, z2, log_z.value)

  # -- sampling -------------------------------------------------------------

  def sample(self, key: PRNGKey, rbm_params: rbm.RBMParams, n: int
             ) -> tuple[Array, Array]:
    """(z1 `[n, n1]`, z2 `[n, n2]`) ~ p approximately: `sample_sweeps`
    block-Gibbs sweeps from n fresh chains (`rbm.sample`)."""
    return rbm.sample(key, rbm_params, n, self.sample_sweeps)


# -- a run config's RBM section (both DVAE++ models) ------------------------


def config_section(**overrides: Any):
  """`config.model.rbm` of a run config: an `ml_collections.ConfigDict` of
  every `RBMPrior` field at its default (the authors' settings), with
  `overrides`; the RBM's settings are described once, by `RBMPrior`."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  section = ml_collections.ConfigDict(dataclasses.asdict(RBMPrior()))
  for name, value in overrides.items():
    if name not in section:
      raise ValueError(f"RBMPrior has no field {name!r}.")
    section[name] = value
  return section


def from_config_section(section, num_units: Optional[tuple[int, int]] = None,
                        prefix: str = "config.model.rbm") -> RBMPrior:
  """The `RBMPrior` of a config's RBM section (`config_section`), checked.

  Args:
    section: a mapping of `RBMPrior` field names to values (fields it omits
      keep their defaults).
    num_units: the RBM's halves when the model's prior is the RBM (then
      `log_z="exact"` must be able to enumerate one), else None.
    prefix: how errors name the section.

  Raises:
    ValueError: naming the bad field as `<prefix>.<field>=<value>`, or an
      unknown field.
  """
  known = {f.name for f in dataclasses.fields(RBMPrior)}
  unknown = sorted(set(section) - known)
  if unknown:
    raise ValueError(f"{prefix} has unknown field(s) {unknown}; RBMPrior's "
                     f"are {sorted(known)}.")
  settings = {**dataclasses.asdict(RBMPrior()), **dict(section)}
  check_settings(settings, prefix + ".")
  prior = RBMPrior(**settings)
  if num_units is not None and prior.log_z == "exact":
    try:
      prior.log_z_method_for(num_units)
    except ValueError as error:
      raise ValueError(f"{prefix}.log_z='exact': {error}") from None
  return prior
