r"""The convolutional DVAE++: global binary latents, local continuous ones
(Vahdat et al., 2018, Sec. 6, Fig. 3, Table 3).

Generative model (Sec. 6.1):

  p(z, \zeta, h, x) = p(z) \prod_i r(\zeta_i | z_i)
                      \prod_j p(h_j | \zeta, h_{<j}) p(x | \zeta, h),

with z = (z_1, z_2) the global binary units (two halves of `num_global`),
p(z) an RBM (the part `stochastic.rbm_prior.RBMPrior`, parameters from
zero), r the smoothing of the run's smoothing estimator (overlapping
exponential by default), h_j J = `num_local_groups` groups of
`local_channels` factorial normal variables per location of the
intermediate scale (`stochastic.latents.Normal`), and p(x | \zeta, h) the
multi-scale decoder p(x_0 | .) \prod_i p(x_i | ., x_{<i}) over subsampled
scales from 4 x 4 to the full image, or one factorial p(x | \zeta, h)
(`decoder`; the scales, and why the product is a proper likelihood of x,
are in `dvaepp_conv_net`). Pixels are Bernoulli (binary data) or
discretised logistic mixtures (8-bit data, Salimans et al., 2017).

The J local groups' networks have the same shapes: their parameters are
stacked `[J, ...]` under `params["local_groups"]` and every pass over the
groups (training bound, evaluation, sampling) is one `jax.lax.scan`
(`scan_groups`), so XLA compiles one group's network, not J.

Inference (Sec. 6.2): q(z, \zeta, h | x) = \prod_g q(z_g | x, \zeta_{<g})
r(\zeta_g | z_g) \prod_j q(h_j | x, \zeta, h_{<j}), the global units in
`global_groups` = 1, 2 or 4 hierarchical factorial groups (with the RBM,
groups never straddle the halves: 2 groups are z_1, z_2; 4 split each).

Table 3's rows change the latents (`global_prior`, `local_latent`):
"rbm" + "normal" (ours, or Rolfe's with the spike-and-exp estimator), all
continuous ("normal" global units, N(0, I) prior, and normal local ones),
all discrete ("rbm" or "bernoulli" global, "bernoulli" local; Bernoulli
groups are smoothed like the global ones and their KLs are the marginal
ones of Sec. 4.2, Eq. 5).

Training bound (maximised), per example, with warm-up w = min(step / T, 1):

  \log p(x | \zeta, h) - w KL_global - w \sum_j \gamma_j KL_j.

KL_global: the RBM's Eq. (7) at the sampled \zeta (`RBMPrior.
kl_without_log_z`, \nu_1 = q(z_1 = 1 | x, \zeta_1) from the smoothed
posterior; log Z enters through its gradient on persistent block-Gibbs
chains carried in the model state, plus an L2 weight decay on the RBM:
`RBMPrior.training_terms`), or the sum of the groups' KLs for a factorial
prior (`dvaepp_bounds.group_kl`: marginal KLs, Eq. 5, for the Bernoulli
prior; closed-form normal KLs, `latents.Normal.kl`, for N(0, I)). KL_j:
closed-form KL(q(h_j|.) || p(h_j|.)) summed over the group at the sampled
h_{<j} (normal), or its marginal KL (Bernoulli), by the same function.

KL balancing (the paper's Appendix H, not in our copy; our rule, in the
spirit of NVAE's, Vahdat & Kautz, 2020): during the warm-up, the local
groups' KL weights are redistributed in proportion to their current size,

  \gamma_j = (1 - w) \hat\gamma_j + w,
  \hat\gamma_j = J (\bar K_j + \epsilon) / \sum_k (\bar K_k + \epsilon),

with \bar K_j the batch mean of KL_j (held fixed: no gradient), \epsilon =
`KL_BALANCE_EPS`. The \hat\gamma_j sum to J, so the total KL weight is w as
without balancing; a group with little KL is penalised little, so it is
cheap for it to start carrying information, and a group that carries much
pays more: no group collapses while the others are still learning. At the
end of the warm-up (w = 1) every \gamma_j = 1 and the objective is the
ELBO. The global KL is not balanced (the RBM's has no value without log Z).
Diagnostics `kl_global` (`kl_global_without_log_z` for the RBM) and
`kl_local_<j>` (nats per example) are logged every `log_every_steps` as
`diag/...` curves in `metrics.jsonl`, with the range of the \gamma_j.

Latent parts. Each group is drawn by its part (`stochastic.latents`):
`Bernoulli` for binary groups, `Normal` for continuous ones (reparameterised,
the network's log std clipped: `dvaepp_conv_net.latent_params`). The
smoothing estimators are pathwise: a Bernoulli group's \zeta, with logit
q(z = 1 | \zeta) (Sec. 5), is the estimator's own draw
(`latents.Bernoulli.pathwise`, i.e. `Estimator.sample`), whose
reparameterisation gradient is the estimator's pathwise gradient of any
objective evaluated at it. The global groups are chained by
`stochastic.chain` (`global_pass`: `chain.TrainingSampler` in training,
`chain.hard_sampler` in evaluation); the local groups, one step of a scan
each, are drawn by their part directly (same keys). The whole bound is
evaluated once at those draws, which has the value and gradient of nesting
it in the estimators' objectives (as `models.dvaepp` did) without their
evaluation of the objective at the hard sample too.

Evaluation on the discrete model (beta = infinity, \zeta = z): hard z ~ q,
normal h ~ q (hard Bernoulli h for Bernoulli groups), and the importance-
weighted bound (`objectives.iwae`) of log p(x, z, h) - log q(z, h | x),
with the RBM's exact or AIS log Z from `prepare_evaluation` (`RBMPrior.
prepare_evaluation`; for 8-bit data the training loop also reports that
bound in bits per dimension).

Samples (Fig. 4): `sample(params, key, n)` draws ceil(n / sample_columns)
global samples (the RBM's by `sample_sweeps` Gibbs sweeps from fresh
chains), each shared by `sample_columns` consecutive samples: sample k uses
global sample k // sample_columns, so a grid of `sample_columns` columns
shows one global sample per row (n = rows x columns). Returned values are
pixel probabilities of the last factor for binary data (its known pixels
the sampled coarser scales), sampled values 0..255 for 8-bit data.

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
  Rolfe (2017), Discrete variational autoencoders. ICLR.
  Salimans, Karpathy, Chen & Kingma (2017), PixelCNN++. ICLR.
  Vahdat & Kautz (2020), NVAE: A deep hierarchical variational autoencoder.
  Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders.
"""

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi import data as data_lib
from discrete_vi.distributions import rbm
from discrete_vi.estimators import smoothing as smoothing_lib
from discrete_vi.models import _checks
from discrete_vi.models import dvaepp
from discrete_vi.models import dvaepp_bounds as bounds
from discrete_vi.models import dvaepp_conv_net as net_lib
from discrete_vi.models import layers
from discrete_vi.models import sections
from discrete_vi.models.base import ModelAux
from discrete_vi.objectives import elbo
from discrete_vi.objectives import iwae
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.stochastic import rbm_prior
from discrete_vi.types import Array, PRNGKey

GLOBAL_PRIORS = ("rbm", "bernoulli", "normal")
LOCAL_LATENTS = ("normal", "bernoulli")
DECODERS = ("multiscale", "factorial")
GLOBAL_GROUPS = (1, 2, 4)
VALUE_TYPES = ("binary", "uint8")
KL_BALANCE_EPS = 0.01  # nats, keeps every group's weight above zero
LOCAL_GROUPS_KEY = "local_groups"  # params: the J groups' stacked networks
# The latent part of each kind of global and local latents.
GLOBAL_PARTS = {"rbm": latents.Bernoulli(), "bernoulli": latents.Bernoulli(),
                "normal": latents.Normal()}
LOCAL_PARTS = {"normal": latents.Normal(), "bernoulli": latents.Bernoulli()}


# -- densities ---------------------------------------------------------------


def units(params: Array) -> Array:
  """One local group's part parameters `[B, h, w, c(, 2)]` as
  `[B, h w c(, 2)]`: the group's variables as the units of its part."""
  return params.reshape((params.shape[0], -1) + params.shape[4:])


def balanced_kl_weights(kls: Array, kl_weight: Array, enabled: bool
                        ) -> Array:
  r"""w \gamma_j of each local group (module docstring), `[J]`.

  Args:
    kls: `[B, J]` per-example KL of each local group.
    kl_weight: the warm-up factor w in [0, 1].
    enabled: False gives \gamma_j = 1.
  """
  num_groups = kls.shape[-1]
  if not enabled or num_groups == 1:
    return jnp.full((num_groups,), kl_weight)
  sizes = jax.lax.stop_gradient(jnp.mean(kls, 0)) + KL_BALANCE_EPS
  sizes = jnp.maximum(sizes, KL_BALANCE_EPS)  # a one-sample estimate may be < 0
  balanced = num_groups * sizes / jnp.sum(sizes)
  return kl_weight * ((1.0 - kl_weight) * balanced + kl_weight)


class Path(NamedTuple):
  r"""The latents of one pass through the model (batch `[B]` first).

  Attributes:
    zeta: `[B, n]` global sample (\zeta, hard z, or normal z).
    global_kl: `[B]` KL_global (the RBM's without log Z), or log q - log p
      of the hard global sample (evaluation).
    local_kls: `[B, J]` KL_j, or log q - log p of each hard group.
    state: s_J `[B, h_L, w_L, channels]` for the decoder.
  """
  zeta: Array
  global_kl: Array
  local_kls: Array
  state: Array


class DVAEPPConv:
  """A convolutional DVAE++ and the pure functions of `models.base.Model`."""

  def __init__(self, image_shape, train_mean, *, value_type: str = "binary",
               kl_warmup_steps: int = 0,
               rbm: Optional[rbm_prior.RBMPrior] = None, **fields):
    """Validates and stores the configuration.

    Args:
      image_shape: (H, W, C) of the images.
      train_mean: the training mean of the data (any shape of H W C values).
      value_type: "binary" or "uint8".
      kl_warmup_steps: KL weight min(step / kl_warmup_steps, 1) (0: none).
      rbm: the RBM prior's settings (`rbm_prior.RBMPrior`; None: its
        defaults, the authors'), used when global_prior = "rbm".
      **fields: the `config.model` fields of `ConvSection` (its defaults
        where omitted: the paper's sizes).

    Raises:
      ValueError: naming the bad value.
    """
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
      raise ValueError(f"image_shape must be (H, W, C); got {image_shape}.")
    checks.check_one_of("value_type", value_type, VALUE_TYPES)
    mean = np.asarray(train_mean, np.float32).reshape(image_shape)
    checks.check_int("kl_warmup_steps", kl_warmup_steps, 0)
    section = ConvSection(**fields)
    check_local_level("config.model.local_level", section.local_level,
                      image_shape)
    rbm_part = rbm_prior.RBMPrior() if rbm is None else rbm
    if not isinstance(rbm_part, rbm_prior.RBMPrior):
      raise ValueError(f"rbm must be an rbm_prior.RBMPrior; got "
                       f"{type(rbm).__name__}.")
    global_prior, num_global = section.global_prior, section.num_global
    if global_prior == "rbm":
      rbm_part.log_z_method_for((num_global // 2,) * 2)
    self.section = section
    global_groups, local_latent = section.global_groups, section.local_latent
    num_local_groups = section.num_local_groups
    unroll_groups, kl_balancing = section.unroll_groups, section.kl_balancing
    sample_columns, decoder = section.sample_columns, section.decoder
    self.image_shape, self.value_type = image_shape, value_type
    self.data_dim = int(np.prod(image_shape))
    self.global_prior, self.local_latent = global_prior, local_latent
    self.num_global, self.global_groups = num_global, global_groups
    self.num_local_groups, self.unroll_groups = num_local_groups, unroll_groups
    self.kl_warmup_steps, self.kl_balancing = kl_warmup_steps, kl_balancing
    self.rbm_prior = rbm_part if global_prior == "rbm" else None
    self.global_part = GLOBAL_PARTS[global_prior]
    self.local_part = LOCAL_PARTS[local_latent]
    self.sample_columns = sample_columns
    size = num_global // global_groups
    self.net = net_lib.ConvDVAEPPNet(
        image_shape, value_type, mean,
        "normal" if global_prior == "normal" else "binary",
        (size,) * global_groups, global_prior == "rbm", num_local_groups,
        section.local_channels, local_latent, section.local_level, decoder,
        section.channels, section.num_blocks, section.global_hidden,
        section.num_mixtures, section.weight_norm,
        section.squeeze_excitation, section.activation)
    self.group_net = net_lib.local_group(self.net)
    self._jitted_init = jax.jit(self._init)  # compiled once per shape
    self._jitted_sample = jax.jit(self._sample, static_argnums=2)
    self.description = (f"dvaepp_conv:{global_prior}+{local_latent},"
                        f"{decoder},groups={global_groups}")

  # -- parameters ------------------------------------------------------------

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters of `ConvDVAEPPNet` (the RBM's under `rbm`) and,
    under `local_groups`, the J local groups' stacked `[J, ...]` (one jitted
    call; the initialisers draw from `layers.fast_key(key)`)."""
    images = self.images(x_example)[:1]
    return self._jitted_init(key, images)

  def _init(self, key: PRNGKey, images: Array) -> dict:
    # The ~100 initialisers draw from XLA's RngBitGenerator: their threefry
    # hashes take XLA 5x longer to compile on a CPU (28 s vs 5.5 s for the
    # tests' tiny model).
    key = layers.fast_key(key)
    net_key, groups_key = jax.random.split(key)
    params = dict(self.net.init(net_key, images)["params"])
    rows, cols = net_lib.level_shape(self.image_shape, self.net.local_level)
    state = jnp.zeros((1, rows, cols, self.net.channels))  # s_{j-1}, e(x)
    h = jnp.zeros((1, rows, cols, self.net.local_channels))
    init_group = lambda k: self.group_net.init(k, state, state, h)["params"]
    params[LOCAL_GROUPS_KEY] = jax.vmap(init_group)(
        jax.random.split(groups_key, self.num_local_groups))
    return params

  def apply(self, params, method: str, *args):
    """Calls the network's `method` (the local groups' entry is dropped
    from `params`)."""
    params = {k: v for k, v in params.items() if k != LOCAL_GROUPS_KEY}
    return self.net.apply({"params": params}, *args,
                          method=getattr(net_lib.ConvDVAEPPNet, method))

  def group_params(self, params, group) -> dict:
    """The parameters of local group `group` (an int or a traced index)."""
    return jax.tree_util.tree_map(lambda a: a[group],
                                  params[LOCAL_GROUPS_KEY])

  def apply_group(self, group_params, method: str, *args):
    """Calls `LocalGroup.<method>` (prior, posterior, absorb) with one
    group's parameters (`group_params`)."""
    return self.group_net.apply({"params": group_params}, *args,
                                method=getattr(net_lib.LocalGroup, method))

  def scan_groups(self, params, key: PRNGKey, state: Array, step_fn):
    r"""Runs the local groups in order in one `jax.lax.scan`, fully unrolled
    with `unroll_groups` (straight-line code: J copies to compile, but XLA's
    CPU convolutions run several times faster outside a loop body, see
    `training.steps.fuse_steps`).

    Args:
      params: model parameters.
      key: PRNG key; group j gets `fold_in(key, j)`.
      state: s_0 `[B, h_L, w_L, channels]`.
      step_fn: `(group_params, key_j, s_{j-1}) -> (s_j, out_j)`.

    Returns:
      `(s_J, outs)` with every leaf of `outs` stacked `[J, ...]`.
    """
    def body(state, group):
      group_params, j = group
      return step_fn(group_params, jax.random.fold_in(key, j), state)
    return jax.lax.scan(body, state, (params[LOCAL_GROUPS_KEY],
                                      jnp.arange(self.num_local_groups)),
                        unroll=self.num_local_groups if self.unroll_groups
                        else 1)

  def rbm_params(self, params) -> rbm.RBMParams:
    """The RBM prior's `RBMParams` (global_prior="rbm")."""
    return self.apply(params, "rbm_params")

  def images(self, x: Array) -> Array:
    """`[B, D]` (checked) -> `[B, H, W, C]`."""
    x = _checks.check_data(x, self.data_dim, value_type=self.value_type)
    return x.reshape((-1,) + self.image_shape)

  # -- the relaxed training bound ----------------------------------------------

  def global_pass(self, params, features: Array, sampler: chain.Sampler,
                  finish):
    r"""The global groups q(z_g | x, \zeta_{<g}), g = 0..G-1, through a
    `stochastic.chain` sampler (Sec. 6.2; group g's key under the chain's
    default `fold_in(key, g)`).

    Args:
      params: model parameters.
      features: `[B, F]` the encoder's global features.
      sampler: a `chain.Sampler`.
      finish: `finish(path)` after the last group, with the path
        `((draw_g, q_params_g), ...)`: each group's `latents.Draw` and its
        parameters of q (logits `[B, n_g]` or normal `[B, n_g, 2]`).
    """
    def q_params(g, path):  # [B, n_g(, 2)]
      previous = (jnp.concatenate([draw.z for draw, _ in path], -1)
                  if path else None)
      return self.apply(params, "global_params", g, features, previous)
    return chain.sequential(self.global_groups, self.global_part, q_params,
                            sampler, finish)

  def global_relaxed(self, params, key: PRNGKey, features: Array, estimator
                     ) -> tuple[Array, Array]:
    r"""(\zeta `[B, n]`, KL_global `[B]`, the RBM's without log Z), the
    groups drawn under the (pathwise) estimator."""
    marginal = smoothing_lib.family_and_beta(estimator)

    def finish(path):
      zeta = jnp.concatenate([draw.z for draw, _ in path], -1)
      return zeta, self.global_kl(params, path, marginal)
    return self.global_pass(params, features,
                            chain.TrainingSampler(estimator, key), finish)

  def global_kl(self, params, path, marginal) -> Array:
    r"""KL_global `[B]` along a relaxed global path (`global_pass`): the
    RBM's Eq. (7) minus log Z, or the sum of the factorial prior's group
    KLs (`dvaepp_bounds.group_kl`: marginal, Eq. 5, for Bernoulli groups;
    closed-form for normal ones).

    Args:
      params: model parameters.
      path: `((draw_g, q_params_g), ...)`.
      marginal: the estimator's `(smoothing family, beta)`.
    """
    if self.rbm_prior is not None:
      return self.rbm_kl(
          params, jnp.concatenate([q for _, q in path], -1),
          jnp.concatenate([draw.posterior_logits for draw, _ in path], -1))
    prior = self.apply(params, "global_prior_params")  # [num_global(, 2)]
    size = self.num_global // self.global_groups
    return sum(bounds.group_kl(self.global_part, q,
                               prior[g * size:(g + 1) * size], draw, marginal)
               for g, (draw, q) in enumerate(path))

  def rbm_kl(self, params, logits: Array, posteriors: Array) -> Array:
    r"""Eq. (7) minus log Z for `[B, n]` logits of q and posterior logits.

    z_1 is the first half of the units. \nu_1 is the smoothed posterior of
    z_1 when z_2 is inferred after \zeta_1 (2 or 4 groups), else \mu_1 (one
    factorial group: z_1, z_2 independent under q).
    """
    half = self.num_global // 2
    logits1, logits2 = logits[:, :half], logits[:, half:]
    nu1 = jax.nn.sigmoid(posteriors[:, :half] if self.global_groups > 1
                         else logits1)
    return self.rbm_prior.kl_without_log_z(self.rbm_params(params), logits1,
                                           nu1, logits2)

  def local_params(self, group_params, state: Array,
                   local: Optional[Array] = None):
    """p(h_j | .)'s part parameters `[B, U(, 2)]` (U = h_L w_L c units,
    `units`) from s_{j-1}, or with the encoder's `local` features the pair
    (q(h_j | .)'s, p(h_j | .)'s)."""
    prior = units(self.apply_group(group_params, "prior", state))
    if local is None:
      return prior
    return units(self.apply_group(group_params, "posterior", state,
                                  local)), prior

  def absorb(self, group_params, state: Array, draw: latents.Draw) -> Array:
    """s_j = s_{j-1} + conv(h_j), h_j the group's draw `[B, U]` reshaped to
    `[B, h_L, w_L, c]`."""
    h = draw.z.reshape(state.shape[:3] + (self.net.local_channels,))
    return self.apply_group(group_params, "absorb", state, h)

  def local_relaxed(self, params, key: PRNGKey, zeta: Array, local: Array,
                    estimator) -> tuple[Array, Array]:
    """(s_J, `[B, J]` KL_j) of the local groups drawn from q under the
    (pathwise) estimator; KL_j by `dvaepp_bounds.group_kl`."""
    marginal = smoothing_lib.family_and_beta(estimator)

    def step(group_params, group_key, state):
      q, p = self.local_params(group_params, state, local)  # [B, U(, 2)]
      draw = self.local_part.pathwise(estimator, group_key, q)
      kl = bounds.group_kl(self.local_part, q, p, draw, marginal)  # [B]
      return self.absorb(group_params, state, draw), kl
    state, kls = self.scan_groups(
        params, key, self.apply(params, "top_down_init", zeta), step)
    return state, kls.T  # [B, J]

  def relaxed_path(self, params, key: PRNGKey, images: Array, estimator
                   ) -> Path:
    """One reparameterised pass of the training bound."""
    global_key, local_key = jax.random.split(key)
    features, local = self.apply(params, "encode", images)
    zeta, global_kl = self.global_relaxed(params, global_key, features,
                                          estimator)
    state, local_kls = self.local_relaxed(params, local_key, zeta, local,
                                          estimator)
    return Path(zeta, global_kl, local_kls, state)

  def loss(self, params, key: PRNGKey, x: Array, *, step=0, estimator,
           state=None) -> tuple[Array, ModelAux]:
    """Minus the batch mean of the training bound (module docstring), plus
    for the RBM the log Z gradient surrogate and the weight decay.

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, D]` data (binary, or 0..255 for 8-bit data).
      step: the training step (KL warm-up).
      estimator: a smoothing `Estimator` (unused by all-normal latents).
      state: the RBM's persistent `rbm.Chains` (None: fresh chains); None
        for the other priors.

    Returns:
      `(loss, ModelAux)`; `aux.objective` is the sampled relaxed bound per
      example (for the RBM log Z excluded, i.e. the bound plus log Z).
    """
    images = self.images(x)
    smoothing_lib.family_and_beta(estimator)  # a smoothing estimator
    kl_weight = elbo.kl_warmup_factor(step, self.kl_warmup_steps)
    path_key, chain_key = jax.random.split(key)
    path = self.relaxed_path(params, path_key, images, estimator)
    log_px = self.apply(params, "data_log_prob", path.state, images)  # [B]
    weights = balanced_kl_weights(path.local_kls, kl_weight,
                                  self.kl_balancing)  # [J]
    objective = (log_px - kl_weight * path.global_kl -
                 path.local_kls @ weights)  # [B]
    loss = -jnp.mean(objective)
    diagnostics = self.kl_diagnostics(path, weights, kl_weight)
    diagnostics["log_likelihood_term"] = jnp.mean(log_px)
    new_state = state
    if self.rbm_prior is not None:
      terms = self.rbm_prior.training_terms(
          chain_key, self.rbm_params(params), state, kl_weight)
      loss, new_state = loss + terms.loss, terms.chains
      diagnostics.update(terms.diagnostics)
    return loss, ModelAux(jax.lax.stop_gradient(objective), new_state,
                          diagnostics)

  def kl_diagnostics(self, path: Path, weights: Array, kl_weight) -> dict:
    """Per-group KLs (nats per example) and the balancing weights' range."""
    name = ("kl_global_without_log_z" if self.rbm_prior is not None
            else "kl_global")
    out = {"kl_weight": kl_weight, name: jnp.mean(path.global_kl),
           "kl_balance_min": jnp.min(weights) / jnp.maximum(kl_weight, 1e-8),
           "kl_balance_max": jnp.max(weights) / jnp.maximum(kl_weight, 1e-8)}
    width = len(str(self.num_local_groups - 1))
    for j in range(self.num_local_groups):
      out[f"kl_local_{j:0{width}d}"] = jnp.mean(path.local_kls[:, j])
    return jax.lax.stop_gradient(out)

  # -- the RBM's persistent chains -----------------------------------------------

  def init_state(self, key: PRNGKey, params, x_example: Array, estimator):
    """The RBM's persistent chains (`RBMPrior.init_state`); None otherwise."""
    self.images(x_example)
    smoothing_lib.family_and_beta(estimator)
    if self.rbm_prior is None:
      return None
    return self.rbm_prior.init_state(key, self.rbm_params(params))

  # -- evaluation on the discrete model --------------------------------------------

  def global_hard(self, params, key: PRNGKey, features: Array
                  ) -> tuple[Array, Array]:
    """(z `[N, n]` ~ q(z | x) at beta = infinity, log q(z | x) `[N]`)."""
    def finish(path):
      z = jnp.concatenate([draw.z for draw, _ in path], -1)
      return z, sum(self.global_part.log_prob(q, draw) for draw, q in path)
    return self.global_pass(params, features, chain.hard_sampler(key), finish)

  def global_log_prior(self, params, z: Array, context=None) -> Array:
    """log p(z) `[N]` of global samples (the RBM's needs its
    `rbm_prior.LogZ` as `context`, from `prepare_evaluation`)."""
    if self.rbm_prior is not None:
      half = self.num_global // 2
      return self.rbm_prior.log_prob(self.rbm_params(params), z[:, :half],
                                     z[:, half:], context)
    return self.global_part.log_prob(self.apply(params, "global_prior_params"),
                                     latents.hard_draw(z))

  def local_log_weight(self, params, key: PRNGKey, images: Array, z: Array,
                       local: Array) -> Array:
    """log p(x, h | z) - log q(h | x, z) `[N]` at h ~ q (hard Bernoulli
    groups), given global z `[N, n]` and the encoder's local features."""
    def step(group_params, group_key, state):
      q, p = self.local_params(group_params, state, local)  # [N, U(, 2)]
      draw = self.local_part.sample(group_key, q)
      log_w = self.local_part.log_prob(p, draw) - self.local_part.log_prob(
          q, draw)
      return self.absorb(group_params, state, draw), log_w
    state, log_ws = self.scan_groups(
        params, key, self.apply(params, "top_down_init", z), step)
    return jnp.sum(log_ws, 0) + self.apply(params, "data_log_prob", state,
                                           images)

  def log_weights(self, params, key: PRNGKey, x: Array, num_samples: int,
                  context=None) -> Array:
    """`[n, B]` log importance weights log p(x, z, h) - log q(z, h | x)
    (`context` from `prepare_evaluation`)."""
    images = self.images(x)
    batch = images.shape[0]
    features, local = self.apply(params, "encode", images)
    tile = lambda a: jnp.broadcast_to(a, (num_samples,) + a.shape).reshape(
        (num_samples * batch,) + a.shape[1:])
    global_key, local_key = jax.random.split(key)
    z, log_q = self.global_hard(params, global_key, tile(features))
    log_w = (self.global_log_prior(params, z, context) - log_q +
             self.local_log_weight(params, local_key, tile(images), z,
                                   tile(local)))
    return log_w.reshape(num_samples, batch)

  def log_likelihood(self, params, key: PRNGKey, x: Array,
                     num_samples: int = 100, chunk_size: int = 100,
                     context=None) -> Array:
    """`[B]` the k-sample importance-weighted bound of the discrete model
    (`objectives.iwae.iwae_bound`, chunked); `context` from
    `prepare_evaluation` (the RBM's `LogZ`)."""
    x = jnp.asarray(x, jnp.float32)
    return iwae.iwae_bound(
        lambda k, n: self.log_weights(params, k, x, n, context), key,
        num_samples, chunk_size)

  def prepare_evaluation(self, params, key: PRNGKey, *, state=None):
    """RBM prior: its `rbm_prior.LogZ` as the context, and info {log_z,
    log_z_stderr, log_z_method} (`RBMPrior.prepare_evaluation`: exact, or
    AIS), and the chains' health with `state`; `(None, {})` otherwise."""
    return dvaepp.prepare_rbm_evaluation(self.rbm_prior, self.rbm_params,
                                         params, key, state)

  def extra_evaluations(self) -> dict:
    """None: the loop converts the bound of 8-bit data to bits per dim."""
    return {}

  # -- sampling (Fig. 4) -----------------------------------------------------------

  def sample_global(self, params, key: PRNGKey, n: int) -> Array:
    """`[n, num_global]` z ~ p(z) (the RBM's by Gibbs from fresh chains)."""
    if self.rbm_prior is not None:
      return jnp.concatenate(self.rbm_prior.sample(
          key, self.rbm_params(params), n), -1)
    prior = self.apply(params, "global_prior_params")  # [num_global(, 2)]
    return self.global_part.sample(
        key, jnp.broadcast_to(prior, (n,) + prior.shape)).z

  def sample_local(self, params, key: PRNGKey, z: Array) -> Array:
    """s_J after h_j ~ p(h_j | z, h_{<j}) for every local group."""
    def step(group_params, group_key, state):
      draw = self.local_part.sample(group_key,
                                    self.local_params(group_params, state))
      return self.absorb(group_params, state, draw), None
    state, _ = self.scan_groups(
        params, key, self.apply(params, "top_down_init", z), step)
    return state

  def shared_global_samples(self, params, key: PRNGKey, n: int) -> Array:
    """`[n, num_global]`: ceil(n / sample_columns) draws of p(z), draw r
    repeated for samples r * sample_columns ... (r + 1) * sample_columns - 1."""
    rows = -(-n // self.sample_columns)
    return jnp.repeat(self.sample_global(params, key, rows),
                      self.sample_columns, axis=0)[:n]

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """`[n, D]` samples, one global sample per `sample_columns` consecutive
    samples (module docstring); one jitted call."""
    checks.check_int("n", n, 1)
    return self._jitted_sample(params, key, n)

  def _sample(self, params, key: PRNGKey, n: int) -> Array:
    global_key, local_key, data_key = jax.random.split(key, 3)
    z = self.shared_global_samples(params, global_key, n)
    state = self.sample_local(params, local_key, z)
    x, outputs = self.apply(params, "data_sample", data_key, state)
    if self.value_type == "binary":
      known = 1.0 - self.last_factor_new_pixels()
      x = known * x + (1.0 - known) * jax.nn.sigmoid(outputs[..., 0])
    return x.reshape(n, self.data_dim)

  def last_factor_new_pixels(self) -> np.ndarray:
    """`[H, W, 1]` 1 at the pixels the last data factor models."""
    if self.net.decoder == "factorial":
      return np.ones(self.image_shape[:2] + (1,), np.float32)
    levels = self.net.num_levels
    return 1.0 - net_lib.known_mask(self.image_shape[:2], levels - 1)


def check_local_level(name: str, level: Any, image_shape) -> None:
  """0 <= level <= K, the coarsest level of `image_shape` images."""
  checks.check_int(name, level, 0)
  top = net_lib.num_downsamplings(image_shape)
  if level > top:
    raise ValueError(f"{name}={level} must be <= {top}, the coarsest level "
                     f"of {tuple(image_shape)} images.")


def check_global_size(name: str, num_global: Any, groups: int, rbm_prior: bool
                      ) -> None:
  """num_global splits into `groups` equal groups (and, for the RBM, into two
  halves that no group straddles)."""
  checks.check_int(name, num_global, 2 if rbm_prior else 1)
  multiple = max(groups, 2) if rbm_prior else groups
  if num_global % multiple:
    raise ValueError(f"{name}={num_global} must be a multiple of {multiple} "
                     f"({groups} global group(s)"
                     f"{' and the RBM halves' if rbm_prior else ''}).")


# -- the model registry's entry (`discrete_vi.models.registry`) --------------------

SMOOTHING_ESTIMATORS = tuple(sorted(smoothing_lib.FAMILY_OF_ESTIMATOR))


ACTIVATIONS = tuple(sorted(layers.ACTIVATIONS))


@dataclasses.dataclass(frozen=True)
class ConvSection(sections.Section):
  """The conv DVAE++'s `config.model` fields (`configs/dvaepp_conv.py`;
  defaults: the paper's sizes); the RBM prior's are `config.model.rbm`
  (`rbm_prior.config_section`)."""
  other_keys = ("name", "rbm")

  global_prior: str = sections.field(checks.check_one_of, GLOBAL_PRIORS,
                                     default="rbm")
  local_latent: str = sections.field(checks.check_one_of, LOCAL_LATENTS,
                                     default="normal")
  num_global: int = sections.field(checks.check_int, 1, default=16)
  global_groups: int = sections.field(checks.check_one_of, GLOBAL_GROUPS,
                                      default=2)
  num_local_groups: int = sections.field(checks.check_int, 1, default=16)
  local_channels: int = sections.field(checks.check_int, 1, default=32)
  local_level: int = sections.field(checks.check_int, 0, default=2)
  decoder: str = sections.field(checks.check_one_of, DECODERS,
                                default="multiscale")
  channels: int = sections.field(checks.check_int, 1, default=64)
  num_blocks: int = sections.field(checks.check_int, 0, default=2)
  global_hidden: int = sections.field(checks.check_int, 1, default=256)
  num_mixtures: int = sections.field(checks.check_int, 1, default=10)
  weight_norm: bool = sections.field(checks.check_bool, default=True)
  squeeze_excitation: Optional[int] = sections.field(
      checks.check_int, 1, default=4, optional=True)
  activation: str = sections.field(checks.check_one_of, ACTIVATIONS,
                                   default="elu")
  kl_balancing: bool = sections.field(checks.check_bool, default=True)
  sample_columns: int = sections.field(checks.check_int, 1, default=10)
  unroll_groups: bool = sections.field(checks.check_bool, default=False)

  def __post_init__(self):
    super().__post_init__()
    check_global_size("config.model.num_global", self.num_global,
                      self.global_groups, self.global_prior == "rbm")

  def build_rbm_prior(self, model_config) -> Optional[rbm_prior.RBMPrior]:
    """The `RBMPrior` of `config.model.rbm` (checked whatever the prior),
    or None unless global_prior = "rbm"."""
    is_rbm = self.global_prior == "rbm"
    prior = rbm_prior.from_config_section(
        model_config.get("rbm") or {},
        (self.num_global // 2,) * 2 if is_rbm else None)
    return prior if is_rbm else None


def validate_config(config) -> None:
  """Raises ValueError naming the bad field (`config.model.<field>=value`)."""
  section = ConvSection.of(config["model"])
  source = data_lib.DATASETS.get(config["data"]["name"])
  if source is not None:
    check_local_level("config.model.local_level", section.local_level,
                      source.image_shape)
  section.build_rbm_prior(config["model"])


def accepted_estimators(config) -> tuple[str, ...]:
  """The smoothing estimators (as the dense DVAE++), whatever the config."""
  del config
  return SMOOTHING_ESTIMATORS


def from_config(config, spec) -> DVAEPPConv:
  """The model of `config.model` for the data of `spec` (a `data.DataSpec`).

  Raises:
    ValueError: naming `config.model.local_level` when the images have no
      such level.
  """
  section = ConvSection.of(config["model"])
  return DVAEPPConv(
      spec.image_shape, spec.train_mean, value_type=spec.value_type,
      kl_warmup_steps=config["train"]["kl_warmup_steps"],
      rbm=section.build_rbm_prior(config["model"]),
      **dataclasses.asdict(section))
