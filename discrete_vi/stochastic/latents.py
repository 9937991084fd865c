r"""Latent layers: what a model does with one stochastic layer's variables.

A latent part is a small immutable object (static configuration only) with
pure functions of the layer's distribution parameters:

* `check_estimator(estimator, layer)`: ValueError naming the estimator and
  the layer when the part cannot be sampled by it (the one place where a
  part's accepted estimators are declared: `estimators.DISTRIBUTIONS` and
  the bound `distribution` option; continuous parts accept any, since the
  estimator does not apply to them); discrete parts also list them
  (`accepted_estimators`, what the model registry declares).
* `sample(key, params)`: an exact draw of q (hard for discrete parts).
* `pathwise(estimator, key, params)`: the draw a pathwise estimator
  evaluates f at (`Estimator.sample`).
* `relaxed(key, params, temperature)`: the Concrete draw and the hard draw
  of the same noise (for relaxation-bias evaluations).
* `log_prob(params, draw, form)`: the log-mass (or density) of the draw,
  summed over the layer's variables, `[...]`.
* `kl(q_params, p_params)`: analytic KL(q || p), summed over the layer.
* `squared_distance(draw)`: \|z - H(z)\|^2 over the layer.

Parts: `Bernoulli` (factorial binary units; every binary estimator, the
smoothing families of DVAE / DVAE++ / DVAE# included), `Categorical` (N
variables with K classes; the variational memory layer of Lievin et al.
(2019) is this part with logits from a `models.memory.VariationalMemory`),
`Normal` (factorial Gaussians, reparameterised).

`Draw` is `estimators.PathwiseSample`: (z, hard, log_space,
posterior_logits).
"""

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi import sums
from discrete_vi import estimators as estimators_lib
from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import categorical
from discrete_vi.distributions import concrete
from discrete_vi.distributions import normal
from discrete_vi.estimators import exact
from discrete_vi.objectives import relaxed as relaxed_objectives
from discrete_vi.types import Array, Estimator, PRNGKey

Draw = estimators_lib.PathwiseSample


def hard_draw(z: Array) -> Draw:
  """A draw whose value is its own hard sample (exact samples of q)."""
  return Draw(z, jax.lax.stop_gradient(z))


def _layer_name(layer) -> str:
  return "" if layer is None else f" (layer {layer})"


def _check_discrete_estimator(distribution: str, estimator: Estimator,
                              layer) -> None:
  """ValueError unless `estimator` is bound to sample `distribution`."""
  where = _layer_name(layer)
  name = estimator.name
  supported = estimators_lib.DISTRIBUTIONS.get(name, ())
  if distribution not in supported:
    raise ValueError(f"estimator {name!r} cannot sample the {distribution} "
                     f"layer{where}: it supports distribution in "
                     f"{supported}.")
  bound = dict(estimator.options).get("distribution", "bernoulli")
  if bound != distribution:
    raise ValueError(f"estimator {name!r} samples distribution={bound!r}; "
                     f"the {distribution} layer{where} needs "
                     f"distribution={distribution!r}.")


class _DiscretePart:
  """What the discrete parts share: the estimator draws them."""

  distribution: str
  continuous = False

  def check_estimator(self, estimator: Estimator, layer=None) -> None:
    """ValueError unless `estimator` samples this part's distribution."""
    _check_discrete_estimator(self.distribution, estimator, layer)

  def accepted_estimators(self, support: Optional[float] = None,
                          max_support: Optional[int] = None
                          ) -> tuple[str, ...]:
    """The names of the registry's estimators `check_estimator` accepts
    (bound to this part's distribution), sorted.

    Args:
      support: the number of configurations of one layer's variables (2^D,
        K^N), when known: estimators that enumerate it or sample it
        without replacement (those with a `max_support` option) are left
        out when it exceeds their limit, so that a model refuses them
        before a run starts rather than when its step is traced.
      max_support: that limit as the run's estimator options set it (None:
        the estimators' default, `exact.DEFAULT_MAX_SUPPORT`).
    """
    return tuple(sorted(name for name in estimators_lib.ESTIMATORS
                        if self.accepts(name, support, max_support)))

  def accepts(self, name: str, support: Optional[float] = None,
              max_support: Optional[int] = None) -> bool:
    """Whether estimator `name`, bound to this part's distribution, passes
    `check_estimator` (and, with `support`, can cover a layer of that many
    configurations: `accepted_estimators`)."""
    if self.distribution not in estimators_lib.DISTRIBUTIONS.get(name, ()):
      return False
    limit = exact.DEFAULT_MAX_SUPPORT if max_support is None else max_support
    if (support is not None and "max_support" in estimators_lib.options_of(
        name) and support > limit):
      return False
    try:
      self.check_estimator(estimators_lib.make(
          name, distribution=self.distribution))
    except ValueError:
      return False
    return True

  def pathwise(self, estimator: Estimator, key: PRNGKey, params: Array
               ) -> Draw:
    """The pathwise estimator's draw (`Estimator.sample`)."""
    return estimator.sample(key, params)

  def relaxed(self, key: PRNGKey, logits: Array, temperature) -> Draw:
    """The Concrete draw at `temperature` and the hard draw of the same
    noise (Maddison, Mnih & Teh, 2017; Jang, Gu & Poole, 2017; Lievin et
    al., 2019, Eq. 4), with its log-space value."""
    noise = concrete.sample_noise(key, logits.shape, self.distribution,
                                  logits.dtype)
    sample = concrete.relax(logits, noise, temperature, self.distribution)
    return Draw(sample.relaxed, sample.hard, sample.latent)


@dataclasses.dataclass(frozen=True)
class Bernoulli(_DiscretePart):
  r"""D factorial binary units; params: logits `[..., D]`.

  Accepts every binary estimator of the registry, the smoothing families
  included (their draws \zeta carry logit q(z = 1 | \zeta), at which the
  log-masses are evaluated: `mass_point`). Log-masses are
  z log sigma(l) + (1 - z) log sigma(-l), linear in z, so a relaxed or
  straight-through draw gets the pathwise gradient of the rate terms.
  """

  distribution = "bernoulli"

  def sample(self, key: PRNGKey, logits: Array) -> Draw:
    """z ~ Bernoulli(sigmoid(logits)) in {0, 1}, `[..., D]`."""
    return hard_draw(bernoulli.sample(key, logits))

  def mass_point(self, draw: Draw) -> Array:
    r"""Where the log-masses are evaluated: \nu = q(z = 1 | \zeta) for a
    smoothing draw (Vahdat et al., 2018, Sec. 5), else z."""
    if draw.posterior_logits is not None:
      return jax.nn.sigmoid(draw.posterior_logits)
    return draw.z

  def log_prob(self, logits: Array, draw: Draw, form: Optional[str] = None,
               temperature=None) -> Array:
    """log q (or p) at the draw's mass point, summed over D, `[...]`."""
    del form, temperature
    return sums.sum_last(bernoulli.log_prob(logits, self.mass_point(draw)))

  def kl(self, logits_q: Array, logits_p: Array) -> Array:
    """KL(q || p) summed over D, `[...]`."""
    return sums.sum_last(bernoulli.kl_divergence(logits_q, logits_p))

  def squared_distance(self, draw: Draw) -> Array:
    r"""\|z - H(z)\|^2 over the layer, `[...]`."""
    return sums.sum_last(jnp.square(draw.z - draw.hard))


@dataclasses.dataclass(frozen=True)
class Categorical(_DiscretePart):
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

  def __post_init__(self):
    checks.check_one_of("log_mass", self.log_mass,
                        relaxed_objectives.LOG_MASS_FORMS)

  def check_estimator(self, estimator: Estimator, layer=None) -> None:
    """ValueError unless `estimator` samples categorical variables (and,
    for `log_mass="concrete"`, evaluates f at relaxed samples)."""
    super().check_estimator(estimator, layer)
    if self.log_mass == "concrete" and not estimator.relaxed_forward:
      raise ValueError(f"log_mass='concrete' (Eq. 16) of the categorical "
                       f"layer{_layer_name(layer)} needs an estimator that "
                       f"evaluates f at relaxed samples (gumbel_softmax); got "
                       f"{estimator.name!r}.")

  def sample(self, key: PRNGKey, logits: Array) -> Draw:
    """One-hot z ~ Cat(softmax(logits)), `[..., N, K]`."""
    return hard_draw(categorical.sample(key, logits))

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

  Reparameterised: z = mean + exp(log std) eps (Kingma & Welling, 2014,
  Sec. 2.4), whatever the run's estimator (which applies to discrete layers
  only). The Gaussian baseline of Lievin et al. (2019, Appendix A) and the
  continuous groups of the convolutional DVAE++ (Vahdat et al., 2018,
  Sec. 6).
  """

  distribution = None
  continuous = True

  def check_estimator(self, estimator: Estimator, layer=None) -> None:
    """Any estimator: a normal layer is always reparameterised."""
    del estimator, layer

  def sample(self, key: PRNGKey, params: Array) -> Draw:
    """Reparameterised z `[..., N]` (its value is also its `hard`)."""
    return hard_draw(normal.sample(key, params[..., 0], params[..., 1]))

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
