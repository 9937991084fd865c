r"""Latent layers: what a model does with one stochastic layer's variables.

A latent part is a small immutable object (static configuration only) with
pure functions of the layer's distribution parameters:

* `check_estimator(estimator, layer)`: ValueError naming the estimator and
  the layer when the part cannot be sampled by it (one place for every
  model; see `ACCEPTS` of each part).
* `sample(key, params)`: an exact draw of q (hard for discrete parts).
* `pathwise(estimator, key, params)`: the draw a pathwise estimator
  evaluates f at (`estimators.PathwiseSample`: the value carrying the
  estimator's gradient, its hard sample, the log-space relaxed sample).
* `relaxed(key, params, temperature)`: the Concrete draw and the hard draw
  of the same noise (for relaxation-bias evaluations).
* `log_prob(params, draw, form)`: the log-mass (or density) of the draw,
  summed over the layer's variables, `[...]`.
* `kl(q_params, p_params)`: analytic KL(q || p) where one exists.

Parts: `Categorical` (N variables with K classes; the variational memory
layer of Lievin et al. (2019) is this part with logits from a
`models.memory.VariationalMemory`), `Normal` (factorial Gaussians,
reparameterised; the run's estimator does not apply).

`Draw` is `estimators.PathwiseSample`: (z, hard, log_space).
"""

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi import estimators as estimators_lib
from discrete_vi.distributions import categorical
from discrete_vi.distributions import concrete
from discrete_vi.distributions import normal
from discrete_vi.objectives import relaxed as relaxed_objectives
from discrete_vi.types import Array, Estimator, PRNGKey

Draw = estimators_lib.PathwiseSample


def hard_draw(z: Array) -> Draw:
  """A draw whose value is its own hard sample (exact samples of q)."""
  return Draw(z, jax.lax.stop_gradient(z))


def _layer_name(layer) -> str:
  return "" if layer is None else f" (layer {layer})"


@dataclasses.dataclass(frozen=True)
class Categorical:
  """N categorical variables with K classes; params: logits `[..., N, K]`.

  Attributes:
    log_mass: the form of log q and log p under training (Lievin et al.,
      2019, Eqs. 14-16; `objectives.relaxed.categorical_log_mass`):
      "relaxed" (Eq. 15, default: the rate gets its pathwise gradient),
      "straight_through", "hard" (Eq. 14: no rate gradient through the
      sample) or "concrete" (Eq. 16, relaxed-forward estimators only).
  """
  log_mass: str = "relaxed"

  distribution = "categorical"
  continuous = False

  def __post_init__(self):
    checks.check_one_of("log_mass", self.log_mass,
                        relaxed_objectives.LOG_MASS_FORMS)

  def check_estimator(self, estimator: Estimator, layer=None) -> None:
    """ValueError unless `estimator` samples categorical variables (and,
    for `log_mass="concrete"`, evaluates f at relaxed samples)."""
    where = _layer_name(layer)
    name = estimator.name
    bound = dict(estimator.options).get("distribution", "bernoulli")
    if "categorical" not in estimators_lib.DISTRIBUTIONS.get(name, ()):
      raise ValueError(f"estimator {name!r} cannot sample the categorical "
                       f"layer{where}: it supports distribution in "
                       f"{estimators_lib.DISTRIBUTIONS.get(name)}.")
    if bound != "categorical":
      raise ValueError(f"estimator {name!r} samples distribution={bound!r}; "
                       f"the categorical layer{where} needs "
                       f"distribution='categorical'.")
    if self.log_mass == "concrete" and not estimator.relaxed_forward:
      raise ValueError(f"log_mass='concrete' (Eq. 16) of the categorical "
                       f"layer{where} needs an estimator that evaluates f at "
                       f"relaxed samples (gumbel_softmax); got {name!r}.")

  def sample(self, key: PRNGKey, logits: Array) -> Draw:
    """One-hot z ~ Cat(softmax(logits)), `[..., N, K]`."""
    return hard_draw(categorical.sample(key, logits))

  def pathwise(self, estimator: Estimator, key: PRNGKey, logits: Array
               ) -> Draw:
    """The pathwise estimator's draw (`Estimator.sample`)."""
    return estimator.sample(key, logits)

  def relaxed(self, key: PRNGKey, logits: Array, temperature) -> Draw:
    """The Concrete draw (Eq. 4) and the hard draw of the same noise."""
    noise = jax.random.gumbel(key, logits.shape, logits.dtype)
    sample = concrete.relax_categorical(logits, noise, temperature)
    return Draw(sample.relaxed, sample.hard, sample.latent)

  def log_prob(self, logits: Array, draw: Draw, form: Optional[str] = None,
               temperature=None) -> Array:
    """log q (or p) of the draw in `form` (default `log_mass`), `[...]`."""
    return relaxed_objectives.categorical_log_mass(
        logits, draw.z, form or self.log_mass, temperature, draw.log_space)

  def kl(self, logits_q: Array, logits_p: Array) -> Array:
    """KL(q || p) summed over the N variables, `[...]`."""
    return jnp.sum(categorical.kl_divergence(logits_q, logits_p), -1)

  def squared_distance(self, draw: Draw) -> Array:
    r"""\|z - H(z)\|^2 over the layer (0 for hard draws), `[...]`."""
    return jnp.square(relaxed_objectives.relaxation_distance(draw.z))


@dataclasses.dataclass(frozen=True)
class Normal:
  """N factorial Gaussians; params `[..., N, 2]` = (mean, log std).

  Reparameterised: z = mean + exp(log std) eps, whatever the run's
  estimator (which applies to discrete layers only).
  """

  distribution = None
  continuous = True

  def check_estimator(self, estimator: Estimator, layer=None) -> None:
    """Any estimator: a normal layer is always reparameterised."""
    del estimator, layer

  def sample(self, key: PRNGKey, params: Array) -> Draw:
    """Reparameterised z `[..., N]` (its value is also its `hard`)."""
    z = normal.sample(key, params[..., 0], params[..., 1])
    return Draw(z, jax.lax.stop_gradient(z))

  def pathwise(self, estimator: Estimator, key: PRNGKey, params: Array
               ) -> Draw:
    del estimator
    return self.sample(key, params)

  def relaxed(self, key: PRNGKey, params: Array, temperature) -> Draw:
    del temperature
    return self.sample(key, params)

  def log_prob(self, params: Array, draw: Draw, form: Optional[str] = None,
               temperature=None) -> Array:
    """log N(z; mean, std^2) summed over N, `[...]` (`form` unused)."""
    del form, temperature
    return jnp.sum(normal.log_prob(params[..., 0], params[..., 1], draw.z),
                   -1)

  def kl(self, params_q: Array, params_p: Array) -> Array:
    """KL(q || p) summed over N, `[...]`."""
    return jnp.sum(normal.kl(params_q[..., 0], params_q[..., 1],
                             params_p[..., 0], params_p[..., 1]), -1)

  def squared_distance(self, draw: Draw) -> Array:
    return jnp.zeros(draw.z.shape[:-1], draw.z.dtype)
