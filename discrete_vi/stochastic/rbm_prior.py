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
* `validate_config`, `model_arguments`, `from_model_arguments`: the RBM
  fields of a run config (`config.model.gibbs_chains`, ...,
  `config.eval.log_z`, ...) and the models' keyword arguments they become,
  shared by both models.

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
from discrete_vi.types import Array, ArrayLike, PRNGKey

LOG_Z_METHODS = ("exact", "ais", "auto")


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
    chains: the persistent `rbm.Chains` after this step's sweeps.
    diagnostics: `rbm_weight_decay_loss`, `chains_mean_z1`,
      `chains_mean_z2` (no gradient).
  """
  loss: Array
  chains: rbm.Chains
  diagnostics: dict


@dataclasses.dataclass(frozen=True)
class RBMPrior:
  """The static settings of an RBM prior and its pure functions.

  Every method takes the RBM's parameters (`rbm.RBMParams`, from the
  model's `RBMParameters`); the number of units is read from their shapes.

  Attributes:
    gibbs_chains: persistent block-Gibbs chains (authors: 1000).
    gibbs_sweeps: sweeps of every chain per training step (authors: 40).
    sample_sweeps: sweeps from fresh chains for `sample`.
    log_z: "exact", "ais" or "auto" (exact when a half has <= 20 units).
    ais_num_chains: AIS runs for log Z (authors: 1024).
    ais_num_temperatures: linearly spaced AIS temperatures (1000).
    weight_decay: L2 rate on (a1, a2, W) (authors: 1e-4).

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

  def __post_init__(self):
    checks.check_int("gibbs_chains", self.gibbs_chains, 1)
    checks.check_int("gibbs_sweeps", self.gibbs_sweeps, 1)
    checks.check_int("sample_sweeps", self.sample_sweeps, 1)
    checks.check_one_of("log_z", self.log_z, LOG_Z_METHODS)
    checks.check_int("ais_num_chains", self.ais_num_chains, 2)
    checks.check_int("ais_num_temperatures", self.ais_num_temperatures, 2)
    checks.check_nonnegative("weight_decay", self.weight_decay)

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

  def init_state(self, key: PRNGKey, rbm_params: rbm.RBMParams) -> rbm.Chains:
    """`gibbs_chains` persistent chains drawn from the RBM's factorial base
    sigmoid(a1) x sigmoid(a2) (`rbm.init_chains`; the RBM itself at the
    all-zero initial parameters): z1 `[C, n1]`, z2 `[C, n2]`."""
    return rbm.init_chains(key, rbm_params, self.gibbs_chains)

  def update_state(self, key: PRNGKey, rbm_params: rbm.RBMParams,
                   chains: Optional[rbm.Chains]) -> rbm.Chains:
    """`gibbs_sweeps` block-Gibbs sweeps of the persistent chains, from fresh
    ones when `chains` is None (`rbm.advance_chains`; no gradient)."""
    return rbm.advance_chains(key, rbm_params, chains, self.gibbs_chains,
                              self.gibbs_sweeps)

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
    r"""(rate / 2) (|a_1|^2 + |a_2|^2 + |W|^2), gradient rate * params."""
    return 0.5 * self.weight_decay * sum(jnp.sum(jnp.square(p))
                                         for p in rbm_params)

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
    chains = self.update_state(key, rbm_params, chains)
    log_z = self.log_z_surrogate(rbm_params, chains)
    decay = self.weight_decay_loss(rbm_params)
    diagnostics = {"rbm_weight_decay_loss": jax.lax.stop_gradient(decay),
                   "chains_mean_z1": jnp.mean(chains.z1),
                   "chains_mean_z2": jnp.mean(chains.z2)}
    return TrainingTerms(kl_weight * log_z + decay, chains, diagnostics)

  # -- evaluation on the discrete model ------------------------------------

  def prepare_evaluation(self, key: PRNGKey, rbm_params: rbm.RBMParams
                         ) -> tuple[LogZ, dict]:
    """log Z for evaluating the discrete model, by enumeration or AIS.

    Args:
      key: PRNG key (AIS only).
      rbm_params: the RBM (under stop_gradient).

    Returns:
      `(LogZ, info)`: the estimate and its standard error (0 for the exact
      value, AIS's delta-method standard error otherwise, `rbm.ais_log_z`),
      and info {"log_z", "log_z_stderr", "log_z_method"} as Python floats
      and "exact" / "ais".
    """
    method = self.log_z_method_for(rbm.num_units(rbm_params))
    rbm_params = jax.lax.stop_gradient(rbm_params)
    if method == "exact":
      log_z = rbm.exact_log_z(rbm_params)
      stderr = jnp.zeros_like(log_z)
    else:
      log_z, stderr, _ = rbm.ais_log_z(
          key, rbm_params, num_chains=self.ais_num_chains,
          num_temperatures=self.ais_num_temperatures)
    info = {"log_z": float(log_z), "log_z_stderr": float(stderr),
            "log_z_method": method}
    return LogZ(log_z, stderr), info

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


# -- a run config's RBM fields (both models' registry entries) -------------


def validate_config(config, num_units: Optional[tuple[int, int]]) -> None:
  """Checks the RBM prior's fields of a run config, naming the bad one.

  `config.model.{gibbs_chains, gibbs_sweeps, sample_sweeps,
  rbm_weight_decay}` and `config.eval.{log_z, ais_num_chains,
  ais_num_temperatures}` (the eval fields optional), whatever the prior.

  Args:
    config: the run config.
    num_units: the RBM's halves when the model's prior is the RBM (then
      `config.eval.log_z = "exact"` must be able to enumerate one), else
      None.
  """
  model, evaluation = config["model"], config["eval"]
  for name in ("gibbs_chains", "gibbs_sweeps", "sample_sweeps"):
    checks.check_int(f"config.model.{name}", model[name], 1)
  checks.check_nonnegative("config.model.rbm_weight_decay",
                           model["rbm_weight_decay"])
  checks.check_one_of("config.eval.log_z", evaluation.get("log_z", "auto"),
                      LOG_Z_METHODS)
  checks.check_int("config.eval.ais_num_chains",
                   evaluation.get("ais_num_chains", 1024), 2)
  checks.check_int("config.eval.ais_num_temperatures",
                   evaluation.get("ais_num_temperatures", 1000), 2)
  if num_units is not None and evaluation.get("log_z") == "exact":
    try:
      log_z_method("exact", num_units)
    except ValueError as error:
      raise ValueError(f"config.eval.log_z='exact': {error}") from None


def from_model_arguments(gibbs_chains: int, gibbs_sweeps: int,
                         rbm_weight_decay: float, log_z: str,
                         ais_num_chains: int, ais_num_temperatures: int,
                         sample_sweeps: int) -> RBMPrior:
  """The `RBMPrior` of a DVAE++ model's RBM keyword arguments (in the order
  of the models' signatures).

  Raises:
    ValueError: naming the bad value (the weight decay as
      `rbm_weight_decay`, the models' name).
  """
  checks.check_nonnegative("rbm_weight_decay", rbm_weight_decay)
  return RBMPrior(gibbs_chains=gibbs_chains, gibbs_sweeps=gibbs_sweeps,
                  sample_sweeps=sample_sweeps, log_z=log_z,
                  ais_num_chains=ais_num_chains,
                  ais_num_temperatures=ais_num_temperatures,
                  weight_decay=float(rbm_weight_decay))


def model_arguments(config) -> dict[str, Any]:
  """The DVAE++ models' RBM keyword arguments from a run config
  (`gibbs_chains`, `gibbs_sweeps`, `sample_sweeps`, `rbm_weight_decay`,
  `log_z`, `ais_num_chains`, `ais_num_temperatures`)."""
  model, evaluation = config["model"], config["eval"]
  return dict(gibbs_chains=model["gibbs_chains"],
              gibbs_sweeps=model["gibbs_sweeps"],
              sample_sweeps=model["sample_sweeps"],
              rbm_weight_decay=model["rbm_weight_decay"],
              log_z=evaluation.get("log_z", "auto"),
              ais_num_chains=evaluation.get("ais_num_chains", 1024),
              ais_num_temperatures=evaluation.get("ais_num_temperatures",
                                                  1000))
