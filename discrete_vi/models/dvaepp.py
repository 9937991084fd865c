r"""VAEs with binary latents and smoothing transformations (DVAE++, Secs. 4-5).

G = 1 or 2 groups of `latent_dim` binary units z_g, each paired with a
smoothed \zeta_g ~ r(\zeta_g|z_g) (`distributions.overlapping`). Every
dependency on a binary group goes through its \zeta (Fig. 2c-d, g of
Vahdat et al., 2018):

  inference   q(z_1|x) r(\zeta_1|z_1) q(z_2|x, \zeta_1) r(\zeta_2|z_2)
              (`hierarchical`; otherwise q(z_2|x): one factorial layer),
  generative  p(z_1, z_2) r(\zeta_1|z_1) r(\zeta_2|z_2) p(x|\zeta_1, \zeta_2),

with the prior p(z) one of

* `factorial`: \prod_g Bernoulli(\sigma(a_g)), learned logits a_g;
* `directed`: p(z_1) p(z_2|\zeta_1), a link from \zeta_1 to the logits of
  z_2 (Sec. 4, Fig. 2c);
* `rbm`: p(z_1, z_2) = e^{-E(z_1, z_2)} / Z, E = -a_1^T z_1 - a_2^T z_2 -
  z_1^T W z_2 (Sec. 5, Fig. 2g), parameters starting at zero.

Every conditional is a factorial Bernoulli whose logits come from a
`layers.Link` of the "Tucker setup" (one affine map, or two tanh layers of
200 and an affine map); the encoder sees x - mean(x_train) (and \zeta_1 for
q(z_2|x, \zeta_1), concatenated), the decoder's output bias starts at
logit(clip(mean(x_train), 1e-3, 0.999)).

Training objectives (maximised; KL weight w = min(step / warm-up, 1)):

* joint ELBO (Eq. 4): E_q[\log p(x|\zeta)] - w [KL(q(z_1|x) || p(z_1)) +
  E_{q(\zeta_1|x)} KL(q(z_2|x,\zeta_1) || p(z_2|\zeta_1))], closed-form
  factorial KLs (`latents.Bernoulli.kl`), group 2's at the sampled \zeta_1;
* marginal ELBO (Eq. 5): the KLs between the smoothed mixtures q(\zeta) and
  p(\zeta) by one Monte Carlo sample (`dvaepp_bounds.marginal_kl`);
* RBM prior: the joint ELBO with the KL of Eq. (7), \nu_1 = q(z_1 = 1|x,
  \zeta_1) the draw's `posterior_logits` (`latents.Bernoulli.mass_point`).
  Everything about the RBM is the part `stochastic.rbm_prior.RBMPrior`
  that the model holds: the KL minus log Z (`kl_without_log_z`); log Z,
  unknown during training, enters only through its gradient
  (`training_terms`: value 0, gradient the mean of -\nabla E over
  persistent block-Gibbs chains carried in the model state; Appendix E's
  idea), plus an L2 weight decay on W (the authors'; or on a_1, a_2, W:
  `RBMPrior.weight_decay_on`). So the sampled training
  objective of an RBM model (`ModelAux.objective`, "train_objective" in
  the metrics) is the ELBO PLUS log Z, reported also as the diagnostic
  `elbo_plus_log_z`.

The groups are chained by `stochastic.chain`, as every model's layers:
the inference pass (`_pass`) offers each group's logits with the part
`latents.Bernoulli` to a sampler. The estimator must be a smoothing one
(`estimators.smoothing`: overlapping exponential by default, spike-and-exp
for the DVAE column of Table 2); these are pathwise, so
`chain.training_pass` draws every group's \zeta_g (with logit q(z_g = 1 |
\zeta_g), Sec. 5) in one pass, and the surrogate is the integrand above at
those draws: training is fully pathwise. `ModelAux.objective` is that
sampled relaxed objective (`hard_objective=False`: the discrete model is
evaluated by `log_likelihood`, and its value on the hard path would cost
another forward pass).

Evaluation is on the discrete model (beta = infinity, \zeta = z): hard
z_1 ~ q(z_1|x), z_2 ~ q(z_2|x, z_1), the prior's Bernoulli probabilities at
the hard parents, the decoder at the hard z, and the importance-weighted
bound of `objectives.iwae`. For the RBM prior `prepare_evaluation` first
computes log Z (`RBMPrior.prepare_evaluation`: exact enumeration when a half
has <= 20 units, else AIS) and reports it with its standard error and
method.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Rolfe (2017), Discrete variational autoencoders. ICLR.
  Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), REBAR.
  Tieleman (2008), persistent contrastive divergence.
"""

import dataclasses
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.distributions import rbm
from discrete_vi.estimators import smoothing as smoothing_lib
from discrete_vi.models import _checks
from discrete_vi.models import base
from discrete_vi.models import dvaepp_bounds as bounds
from discrete_vi.models import layers
from discrete_vi.models import sections
from discrete_vi.models.base import ModelAux
from discrete_vi.objectives import elbo
from discrete_vi.objectives import iwae
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.stochastic import rbm_prior
from discrete_vi.types import Array, PRNGKey

PRIORS = ("factorial", "directed", "rbm")
ELBOS = ("joint", "marginal")
ARCHITECTURES = ("linear", "nonlinear")
MEAN_CLIP = (1e-3, 0.999)  # decoder bias init: logit(clip(mean_x, ...))


def prepare_rbm_evaluation(prior: Optional[rbm_prior.RBMPrior],
                           rbm_params_of, params, key: PRNGKey, state=None
                           ) -> tuple[Optional[rbm_prior.LogZ], dict]:
  """The evaluation context of a DVAE++ (dense or conv) and its info.

  Args:
    prior: the model's `rbm_prior.RBMPrior`, or None (factorial priors).
    rbm_params_of: `params -> rbm.RBMParams` (called with an RBM only).
    params: the model's parameters.
    key: PRNG key (AIS).
    state: the model state (the RBM's persistent chains), or None.

  Returns:
    With an RBM prior, its `rbm_prior.LogZ` and info {log_z, log_z_stderr,
    log_z_method} (`RBMPrior.prepare_evaluation`: exact enumeration of a
    half of <= 20 units, else AIS), with the chains' health (`chain_gap`,
    ...) when `state` is given; otherwise `(None, {})`.
  """
  if prior is None:
    return None, {}
  return prior.prepare_evaluation(key, rbm_params_of(params), state)


class DVAEPPModule(nn.Module):
  """Encoder links, decoder link and prior parameters (groups 0-indexed)."""
  data_mean: Any  # np.ndarray [data_dim]
  latent_dim: int
  num_groups: int
  hierarchical: bool
  prior: str
  hidden_dims: Sequence[int] = ()
  nonlinearity: str = "tanh"

  def setup(self):
    mean = np.clip(self.data_mean, *MEAN_CLIP)
    bias = np.log(mean) - np.log1p(-mean)  # logit
    link = lambda out, **kw: layers.Link(self.hidden_dims, out,
                                         self.nonlinearity, **kw)
    self.encoders = [link(self.latent_dim) for _ in range(self.num_groups)]
    self.decoder = link(self.data_mean.shape[-1],
                        bias_init=layers.constant_init(bias))
    n = self.latent_dim
    if self.prior == "rbm":
      self.rbm = rbm_prior.RBMParameters(n)
    else:
      self.prior_logits = [
          self.param(f"prior_logits_{g + 1}", nn.initializers.zeros, (n,))
          for g in range(1 if self.prior == "directed" else self.num_groups)]
    if self.prior == "directed":
      self.prior_link = link(n)

  def encode(self, group: int, x: Array, zeta1: Optional[Array]) -> Array:
    """Logits of q(z_g | x) or q(z_2 | x, zeta_1), `[..., n]`."""
    h = x - jnp.asarray(self.data_mean, x.dtype)
    if group == 1 and self.hierarchical:
      h = jnp.concatenate([h, jnp.broadcast_to(
          zeta1, h.shape[:-1] + zeta1.shape[-1:])], -1)
    return self.encoders[group](h)

  def decode(self, zetas: Sequence[Array]) -> Array:
    """Pixel logits of p(x | zeta_1, ..., zeta_G), `[..., data_dim]`."""
    return self.decoder(jnp.concatenate(list(zetas), -1))

  def prior_logits_of(self, group: int, zeta1: Optional[Array]) -> Array:
    """Logits of p(z_g) (`[n]`) or of p(z_2 | zeta_1) (`[..., n]`)."""
    if self.prior == "directed" and group == 1:
      return self.prior_link(zeta1)
    return self.prior_logits[group]

  def rbm_params(self) -> rbm.RBMParams:
    return self.rbm()

  def __call__(self, x: Array):
    """Touches every parameter once (for `init`)."""
    zetas = []
    for g in range(self.num_groups):
      zetas.append(jax.nn.sigmoid(self.encode(g, x, zetas[0] if g else None)))
    out = [self.decode(zetas)]
    if self.prior == "rbm":
      out.append(self.rbm_params())
    else:
      out += [self.prior_logits_of(g, zetas[0] if g else None)
              for g in range(self.num_groups)]
    return out


class DVAEPP:
  """A DVAE++ model and the pure functions of `models.base.Model`."""
  sample_columns = base.SAMPLE_COLUMNS

  def __init__(self, data_mean: Any, *, data_dim: int = 784,
               latent_dim: int = 200, prior: str = "factorial",
               num_groups: int = 1, hierarchical: bool = True,
               elbo_kind: str = "joint", hidden_dims: Sequence[int] = (),
               nonlinearity: str = "tanh", kl_warmup_steps: int = 0,
               rbm: Optional[rbm_prior.RBMPrior] = None):
    """Validates and stores the configuration.

    Args:
      data_mean: `[data_dim]` training-set mean of x, in [0, 1].
      data_dim: length of x (784 for MNIST).
      latent_dim: binary units per group (200 in the paper's Table 1).
      prior: "factorial", "directed" or "rbm" (module docstring).
      num_groups: G, 1 or 2; "directed" and "rbm" need 2 (the RBM's halves).
      hierarchical: q(z_2 | x, zeta_1) (two latent layers of Table 2) rather
        than q(z_2 | x) (one factorial layer); irrelevant for G = 1.
      elbo_kind: "joint" (Eq. 4) or "marginal" (Eq. 5; not for the RBM).
      hidden_dims: widths of the hidden layers of every link: () linear,
        (200, 200) nonlinear.
      nonlinearity: activation of the hidden layers (tanh in the paper).
      kl_warmup_steps: KL weight min(step / kl_warmup_steps, 1) (0: none).
      rbm: the RBM prior's settings (`rbm_prior.RBMPrior`; None: its
        defaults, the authors'), used when prior = "rbm".

    Raises:
      ValueError: naming the bad value.
    """
    checks.check_int("data_dim", data_dim, 1)
    mean = np.asarray(data_mean, np.float32)
    if mean.shape != (data_dim,) or not np.all((mean >= 0) & (mean <= 1)):
      raise ValueError(f"data_mean must have shape ({data_dim},) and values "
                       f"in [0, 1]; got data_mean.shape={mean.shape}.")
    checks.check_int("latent_dim", latent_dim, 1)
    checks.check_one_of("prior", prior, PRIORS)
    checks.check_one_of("num_groups", num_groups, (1, 2))
    checks.check_bool("hierarchical", hierarchical)
    checks.check_one_of("elbo_kind", elbo_kind, ELBOS)
    checks.check_ints("hidden_dims", hidden_dims)
    checks.check_one_of("nonlinearity", nonlinearity, sorted(layers.ACTIVATIONS))
    checks.check_int("kl_warmup_steps", kl_warmup_steps, 0)
    rbm_part = rbm_prior.RBMPrior() if rbm is None else rbm
    if not isinstance(rbm_part, rbm_prior.RBMPrior):
      raise ValueError(f"rbm must be an rbm_prior.RBMPrior; got "
                       f"{type(rbm).__name__}.")
    if prior != "factorial" and num_groups != 2:
      raise ValueError(f"prior={prior!r} needs num_groups=2 (two groups z1, "
                       f"z2); got num_groups={num_groups}.")
    if prior == "rbm" and elbo_kind != "joint":
      raise ValueError(f"elbo_kind={elbo_kind!r}: the RBM prior trains the "
                       f"joint bound with the KL of Eq. (7); use 'joint'.")
    if prior == "rbm":
      rbm_part.log_z_method_for((latent_dim, latent_dim))
    self.data_dim, self.latent_dim = data_dim, latent_dim
    self.prior, self.num_groups, self.elbo_kind = prior, num_groups, elbo_kind
    self.hierarchical = hierarchical and num_groups == 2
    self.kl_warmup_steps = kl_warmup_steps
    self.rbm_prior = rbm_part if prior == "rbm" else None
    self.part = latents.Bernoulli()  # every group of q (and of the prior)
    self.module = DVAEPPModule(mean, latent_dim, num_groups, self.hierarchical,
                               prior, tuple(hidden_dims), nonlinearity)
    arch = "nonlinear" if hidden_dims else "linear"
    layers_ = 2 if self.hierarchical else 1
    self.description = (f"dvaepp:{prior},{arch},layers={layers_},"
                        f"elbo={elbo_kind}")

  # -- parameters ----------------------------------------------------------

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters: `encoders_<g>`, `decoder`, and the prior's
    (`prior_logits_<g>`, `prior_link` for directed; `rbm` {a1, a2, w})."""
    x = self._check_data(x_example)
    return jax.jit(self.module.init)(key, x)["params"]  # one compile

  def _apply(self, params, method: str, *args):
    return self.module.apply({"params": params}, *args,
                             method=getattr(DVAEPPModule, method))

  def rbm_params(self, params) -> rbm.RBMParams:
    """The RBM prior's `RBMParams` (prior="rbm" only)."""
    return self._apply(params, "rbm_params")

  # -- the relaxed training objective -------------------------------------

  def _pass(self, params, x: Array, sampler: chain.Sampler, finish):
    r"""The inference pass q(z_1|x) r(\zeta_1|z_1) q(z_2|x, \zeta_1) ...
    through a `stochastic.chain` sampler (Fig. 2c-d, g).

    Group g's logits are offered to `sampler(g, part, logits, rest)` with
    the part `latents.Bernoulli`; the drawn \zeta_1 feeds q(z_2|x, \zeta_1)
    (`hierarchical`).

    Args:
      params: model parameters.
      x: `[..., data_dim]` data.
      sampler: a `chain.Sampler`.
      finish: `finish(path)` at the last group, with the path
        `((draw_1, q_logits_1), ...)`: each group's `latents.Draw` and the
        logits `[..., n]` of q it came from.

    Returns:
      What `finish` returns, through the sampler.
    """
    def q_logits(g, path):  # [..., n]
      return self._apply(params, "encode", g, x,
                         path[0][0].z if path else None)
    return chain.sequential(self.num_groups, self.part, q_logits, sampler,
                           finish)

  def kl(self, params, path, marginal=None) -> Array:
    r"""The per-sample KL term of the training bound (log Z excluded), `[...]`.

    Args:
      params: model parameters.
      path: `((draw_1, q_logits_1), ...)` (`_pass`), one entry per group:
        the `latents.Draw` the estimator drew (\zeta, hard z and logit
        q(z = 1 | \zeta), None for hard draws) and the logits of q it came
        from.
      marginal: None for the joint ELBO (Eq. 4), or the estimator's
        `(smoothing family, beta)` for the marginal ELBO (Eq. 5).
    """
    draw1 = path[0][0]
    if self.rbm_prior is not None:
      (_, logits1), (_, logits2) = path
      nu1 = (self.part.mass_point(draw1) if self.hierarchical else
             jax.nn.sigmoid(logits1))  # [..., n], Sec. 5
      return self.rbm_prior.kl_without_log_z(self.rbm_params(params), logits1,
                                             nu1, logits2)
    total = 0.0
    for g, (draw, q_logits) in enumerate(path):
      p_logits = self._apply(params, "prior_logits_of", g, draw1.z)
      total = total + bounds.group_kl(self.part, q_logits, p_logits, draw,
                                      marginal)
    return total

  def integrand(self, params, x, path, kl_weight, marginal=None) -> Array:
    r"""log p(x | \zeta) - kl_weight * KL (`kl`), `[...]`."""
    logits = self._apply(params, "decode", [draw.z for draw, _ in path])
    return (elbo.bernoulli_log_likelihood(logits, x) -
            kl_weight * self.kl(params, path, marginal))

  def loss(self, params, key: PRNGKey, x: Array, *, step=0, estimator,
           state=None) -> tuple[Array, ModelAux]:
    r"""The training loss: minus the relaxed bound (batch mean), plus for the
    RBM the log Z gradient surrogate and the weight decay.

    The groups are drawn by `chain.training_pass` in one pathwise pass
    (module docstring); group g's key is entry g of
    `jax.random.split(key', 2)`, key' the first half of `key` (its second
    half drives the RBM's chains).

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, data_dim]` binary data.
      step: training step (KL warm-up).
      estimator: a smoothing `Estimator` (`estimators.make`).
      state: the RBM's persistent `rbm.Chains` (`init_state`; None: fresh
        chains from the factorial base); None for the other priors.

    Returns:
      `(loss, ModelAux)`; `aux.objective` is the sampled relaxed objective
      per example (for the RBM log Z excluded), and for the RBM `aux.state`
      holds the chains after this step's sweeps (`RBMPrior.training_terms`).
    """
    x = self._check_data(x)
    smoothing = smoothing_lib.family_and_beta(estimator)  # a smoothing one
    marginal = smoothing if self.elbo_kind == "marginal" else None
    kl_weight = elbo.kl_warmup_factor(step, self.kl_warmup_steps)
    key, chain_key = jax.random.split(key)
    keys = jax.random.split(key, 2)  # group g's

    def run(sampler, hard):
      del hard  # hard_objective=False: the training pass only
      return self._pass(params, x, sampler, lambda path: self.integrand(
          params, x, path, kl_weight, marginal))

    result = chain.training_pass(run, estimator, None,
                                 layer_key=lambda _, g: keys[g],
                                 hard_objective=False)
    objective = result.objective  # [B], the relaxed objective
    loss = -jnp.mean(result.surrogate)
    diagnostics = {"kl_weight": kl_weight}
    new_state = state
    if self.rbm_prior is not None:
      terms = self.rbm_prior.training_terms(
          chain_key, self.rbm_params(params), state, kl_weight)
      loss, new_state = loss + terms.loss, terms.chains
      diagnostics.update(elbo_plus_log_z=jnp.mean(objective),
                         **terms.diagnostics)
    return loss, ModelAux(objective, new_state, diagnostics)

  def init_state(self, key: PRNGKey, params, x_example: Array, estimator):
    """The RBM's persistent chains (`RBMPrior.init_state`: `gibbs_chains`
    draws from its factorial base, which is the RBM at its all-zero initial
    parameters); None otherwise."""
    self._check_data(x_example)
    smoothing_lib.family_and_beta(estimator)
    if self.rbm_prior is None:
      return None
    return self.rbm_prior.init_state(key, self.rbm_params(params))

  # -- evaluation on the discrete model -------------------------------------

  def hard_path(self, params, key: PRNGKey, x: Array) -> tuple:
    """Hard ancestral samples of q at beta = infinity, `((z_g, logits_g),
    ...)` (`chain.hard_sampler`: group g's key `fold_in(key, g)`)."""
    return self._pass(params, x, chain.hard_sampler(key), lambda path: tuple(
        (draw.z, logits) for draw, logits in path))

  def log_prior(self, params, zs: Sequence[Array], context=None) -> Array:
    """log p(z) of the discrete prior at hard z, `[...]` (the RBM's needs
    its `rbm_prior.LogZ` as `context`, from `prepare_evaluation`)."""
    if self.rbm_prior is not None:
      return self.rbm_prior.log_prob(self.rbm_params(params), zs[0], zs[1],
                                     context)
    return sum(self.part.log_prob(
        self._apply(params, "prior_logits_of", g, zs[0]), latents.hard_draw(z))
               for g, z in enumerate(zs))

  def log_weight_at(self, params, x: Array, path, context=None) -> Array:
    """log p(x, z) - log q(z | x) at hard `path` = ((z_g, q_logits_g), ...)."""
    zs = [z for z, _ in path]
    log_q = sum(self.part.log_prob(logits, latents.hard_draw(z))
                for z, logits in path)
    log_px = elbo.bernoulli_log_likelihood(self._apply(params, "decode", zs), x)
    return log_px + self.log_prior(params, zs, context) - log_q

  def log_weights(self, params, key: PRNGKey, x: Array, num_samples: int,
                  context=None) -> Array:
    """`[n, B]` log importance weights at hard samples z ~ q(z | x)."""
    xs = jnp.broadcast_to(x, (num_samples,) + x.shape)
    return self.log_weight_at(params, xs, self.hard_path(params, key, xs),
                              context)

  def log_likelihood(self, params, key: PRNGKey, x: Array, num_samples: int = 100,
                     chunk_size: int = 100, context=None) -> Array:
    """`[B]` the k-sample importance-weighted bound of the discrete model
    (Burda et al., 2016), chunked (`objectives.iwae.iwae_bound`); `context`
    as returned by `prepare_evaluation` (the RBM's `LogZ`)."""
    x = self._check_data(x)
    return iwae.iwae_bound(
        lambda k, n: self.log_weights(params, k, x, n, context), key,
        num_samples, chunk_size)

  def prepare_evaluation(self, params, key: PRNGKey, *, state=None):
    """RBM prior: its `rbm_prior.LogZ` as the context, and info {log_z,
    log_z_stderr, log_z_method} and the chains' health with `state`
    (`RBMPrior.prepare_evaluation`); `(None, {})` for the other priors."""
    return prepare_rbm_evaluation(self.rbm_prior, self.rbm_params, params,
                                  key, state)

  def extra_evaluations(self) -> dict:
    """None beyond the bound (log Z is reported by prepare_evaluation)."""
    return {}

  def sample_latents(self, params, key: PRNGKey, n: int) -> list:
    """`[n, latent_dim]` hard z_g ~ p(z) per group (the RBM's by Gibbs)."""
    if self.rbm_prior is not None:
      return list(self.rbm_prior.sample(key, self.rbm_params(params), n))
    zs = []
    for g in range(self.num_groups):
      logits = self._apply(params, "prior_logits_of", g, zs[0] if zs else None)
      zs.append(self.part.sample(jax.random.fold_in(key, g), jnp.broadcast_to(
          logits, (n, self.latent_dim))).z)
    return zs

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """`[n, data_dim]` pixel probabilities sigmoid(decoder(z)), z ~ p(z)."""
    checks.check_int("n", n, 1)

    @jax.jit
    def sample(params, key):
      zs = self.sample_latents(params, key, n)
      return jax.nn.sigmoid(self._apply(params, "decode", zs))
    return sample(params, key)

  def _check_data(self, x) -> Array:
    return _checks.check_data(x, self.data_dim, exactly_binary=False)


# -- the model registry's entry (`discrete_vi.models.registry`) -------------

SMOOTHING_ESTIMATORS = tuple(sorted(smoothing_lib.FAMILY_OF_ESTIMATOR))
LAYERS = (1, 2)
ACTIVATIONS = tuple(sorted(layers.ACTIVATIONS))


@dataclasses.dataclass(frozen=True)
class DVAEPPSection(sections.Section):
  """The dense DVAE++'s `config.model` fields (`configs/dvaepp.py`); the
  RBM prior's are `config.model.rbm` (`rbm_prior.config_section`)."""
  other_keys = ("name", "rbm")

  prior: str = sections.field(checks.check_one_of, PRIORS)
  architecture: str = sections.field(checks.check_one_of, ARCHITECTURES)
  layers: int = sections.field(checks.check_one_of, LAYERS)
  elbo: str = sections.field(checks.check_one_of, ELBOS)
  num_latents: int = sections.field(checks.check_int, 1)
  hidden_size: int = sections.field(checks.check_int, 1)
  activation: str = sections.field(checks.check_one_of, ACTIVATIONS)

  def __post_init__(self):
    super().__post_init__()
    if self.prior == "rbm" and self.elbo != "joint":
      raise ValueError(f"config.model.elbo={self.elbo!r}: the RBM prior "
                       f"trains the joint bound with the KL of Eq. (7); use "
                       f"'joint'.")

  def build_rbm_prior(self, model_config) -> Optional[rbm_prior.RBMPrior]:
    """The `RBMPrior` of `config.model.rbm` (defaults where the section
    omits fields; checked whatever the prior), or None unless prior =
    "rbm"."""
    is_rbm = self.prior == "rbm"
    prior = rbm_prior.from_config_section(
        model_config.get("rbm") or {},
        (self.num_latents,) * 2 if is_rbm else None)
    return prior if is_rbm else None


def validate_config(config) -> None:
  """Raises ValueError naming the bad field (`config.model.<field>=value`)."""
  section = DVAEPPSection.of(config["model"])
  section.build_rbm_prior(config["model"])


def accepted_estimators(config) -> tuple[str, ...]:
  """The smoothing estimators (DVAE, DVAE++, DVAE#): the model's bounds
  need the smoothed zeta of Eqs. (4)-(5) whatever the config."""
  del config
  return SMOOTHING_ESTIMATORS


def num_groups_of(prior: str, layers_: int) -> tuple[int, bool]:
  """(G, hierarchical) of a config row: the factorial prior has `layers`
  groups; directed and RBM priors two, hierarchical iff layers = 2."""
  if prior == "factorial":
    return layers_, layers_ == 2
  return 2, layers_ == 2


def from_config(config, spec) -> DVAEPP:
  """The model of `config.model` for the data of `spec` (a `data.DataSpec`)."""
  section = DVAEPPSection.of(config["model"])
  num_groups, hierarchical = num_groups_of(section.prior, section.layers)
  hidden = section.hidden_size
  return DVAEPP(
      spec.train_mean, data_dim=len(spec.train_mean),
      latent_dim=section.num_latents, prior=section.prior,
      num_groups=num_groups, hierarchical=hierarchical,
      elbo_kind=section.elbo,
      hidden_dims=(hidden, hidden) if section.architecture == "nonlinear"
      else (),
      nonlinearity=section.activation,
      kl_warmup_steps=config["train"]["kl_warmup_steps"],
      rbm=section.build_rbm_prior(config["model"]))
