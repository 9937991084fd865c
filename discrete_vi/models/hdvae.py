r"""HD-VAE: hierarchical VAEs of variational memory layers (Lievin et al.,
2019), and the Gaussian baseline with the same architecture and N.

Model. L stochastic layers, each N_l categorical variables with K_l classes
read out of a memory (`memory.VariationalMemory`, Eq. 2, product keys), or
N_l factorial Gaussians (`latent="normal"`, Appendix A: the same N). The
hierarchy is one of Eqs. 17-20 (`hdvae_net`), the ladder VAE with skips
(Eq. 20) by default; connections are gated residual convolutional blocks.

Training objective (Eq. 5). The sampled f of Eq. 14, freebits applied per
stochastic layer (Kingma et al., 2016):

  F(x, z) = \log p(x | z) - \sum_l \max(\lambda, KL_l(z)),
  KL_l(z) = \log q(z_l | .) - \log p(z_l | .)  (terms (c) and (b) of Eq. 14
  in the `log_mass` form of `objectives.relaxed.categorical_log_mass`:
  "relaxed" Eq. 15 by default, "straight_through", "hard" Eq. 14 or
  "concrete" Eq. 16),

with \lambda = `freebits` (0: plain ELBO integrand). `freebits_mode`:
"sample" applies the max to each example's sampled KL_l (the authors'
related code); "batch" to the batch mean of KL_l (Kingma et al.'s
definition), written per example as KL_l where the batch mean exceeds
\lambda and \lambda otherwise (same value and gradient as
\max(\lambda, mean_B KL_l)).

Discrete layers are sampled by the run's categorical estimator, through
`stochastic.chain.training_pass` (each layer a `stochastic.latents` part:
`Categorical(log_mass)`, or `Normal`).

* Pathwise estimators (`estimator.sample`: `gumbel_softmax`,
  `st_gumbel_softmax`, `gumbel_rao`, `straight_through`): every layer is
  drawn by the estimator's sampler in one pass and the loss is -F at those
  samples. With `gumbel_softmax` the networks see relaxed samples and this
  is the surrogate of Eq. 5; the others pass hard samples forward with a
  surrogate Jacobian. The rate terms get their gradient through the sample
  under the default `log_mass="relaxed"` (Eq. 15): unbiased for the relaxed
  objective under `gumbel_softmax`, the straight-through gradient of Eq.
  14's value under the hard-forward estimators. `log_mass="hard"` (pure
  Eq. 14) gives the encoder no rate gradient (module docstring of
  `objectives.relaxed`). aux.objective is F on the all-hard path at tau = 0
  (every layer H of its own noise given the hard layers above): the
  forward value itself for hard-forward estimators; for `gumbel_softmax`
  one more forward pass, without gradient.
* Score-function estimators (`reinforce`, `rloo`, `vimco`, ...) are nested:
  the estimator of the first layer sampled (z_L for
  ladder models, z_1 for the bottom-up VAEs) has objective f(z) = -(loss
  of the next layer's estimator given z), the last one F. Only the first
  layer's estimator state is carried between steps (inner layers run with
  state None): prefer stateless estimators for L > 1. RLOO / VIMCO with S
  samples nest to S^L evaluations.

Gaussian layers are reparameterised (the run's estimator is unused).

Evaluation (Sec. 4, Table 1). `log_likelihood`: L_k at tau = 0 (hard
samples, dropout off), chunked (`objectives.iwae_bound`). Extra
evaluations: "kl", the one-sample estimate of KL(q(z|x) || p(z)) at hard
samples (Table 1); "relaxation_bias" (discrete only), the per-example
f(x, \tilde z) - f(x, H(\tilde z)) at tau = `bias_temperature` (0.1) with
common Gumbel noise, without freebits and with the log-mass terms of
Eq. 14 (the paper's definition, whatever form trains): its test mean is
L_1^{\tau} - L_1^{\tau=0} and the relaxation bias of Eq. 6 / Table 4 is the
absolute value of that mean (`objectives.relaxed`); "relaxed_elbo" (the
one-layer model with the Lipschitz decoder), Eq. 8 with
\kappa = s \sqrt{D}.

References:
  Lievin, Dittadi, Maaloe & Winther (2019), "Towards hierarchical discrete
    variational autoencoders".
  Sonderby, Raiko, Maaloe, Sonderby & Winther (2016), "Ladder variational
    autoencoders".
  Kingma et al. (2016), "Improving variational inference with inverse
    autoregressive flow" (free bits).
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi import estimators
from discrete_vi.models import _checks
from discrete_vi.models import base
from discrete_vi.models import hdvae_net
from discrete_vi.models import layers
from discrete_vi.models import memory
from discrete_vi.models import sections
from discrete_vi.models.base import ModelAux
from discrete_vi.objectives import elbo
from discrete_vi.objectives import iwae
from discrete_vi.objectives import relaxed as relaxed_objectives
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.types import Array, Estimator, PRNGKey

FREEBITS_MODES = ("sample", "batch")


class Terms(NamedTuple):
  """The pieces of f along one path of samples (per example `[...]`).

  Attributes:
    log_px: log p(x | z).
    log_q: per layer (0 = next to x), log q(z_l | .).
    log_p: per layer, log p(z_l | .).
    distance: ||z - H(z)||_2 over every discrete variable (0 if hard).
  """
  log_px: Array
  log_q: tuple
  log_p: tuple
  distance: Array


def freebits_kl(kl: Array, lam: float, mode: str) -> Array:
  r"""The freebits KL term of one layer, per example `[...]`.

  Args:
    kl: `[B]` (or `[..., B]`) sampled KL_l per example.
    lam: \lambda >= 0; 0 returns kl unchanged.
    mode: "sample": \max(\lambda, KL_l) per example; "batch": kl where the
      batch mean (last axis) exceeds \lambda, else \lambda, so that the
      batch mean is \max(\lambda, mean KL_l) with its gradient.
  """
  if lam == 0:
    return kl
  if mode == "sample":
    return jnp.maximum(kl, lam)
  active = jax.lax.stop_gradient(jnp.mean(kl, -1, keepdims=True)) > lam
  return jnp.where(active, kl, lam)


class HDVAE(base.NothingToPrepare):
  """HD-VAE or its Gaussian baseline, with the pure functions of
  `models.base.Model`. Holds static configuration only."""
  sample_columns = base.SAMPLE_COLUMNS

  def __init__(self, data_mean: Any, *, num_variables: Sequence[int] = (16,),
               num_classes: Sequence[int] = (256,), latent: str = "discrete",
               architecture: str = "skip_lvae", filters: int = 64,
               num_blocks: int = 3, dropout: float = 0.5, key_dim: int = 8,
               value_dim: int = 8, product_keys: bool = True,
               log_mass: str = "relaxed", freebits: float = 2.0,
               freebits_mode: str = "sample", decoder: str = "conv",
               lipschitz_scale: float = 10.0, bias_temperature: float = 0.1,
               query_channels: int = 8):
    """Validates and stores the configuration (ValueError naming a bad
    value). Arguments as the fields of `config.model` (`validate_config`)."""
    mean = np.asarray(data_mean, np.float32)
    if mean.shape != (784,):
      raise ValueError(f"data_mean must have shape (784,) (28 x 28 images); "
                       f"got {mean.shape}.")
    num_variables, num_classes = tuple(num_variables), tuple(num_classes)
    check_structure(latent, architecture, num_variables, num_classes,
                    key_dim, product_keys, decoder)
    self.num_layers = len(num_variables)
    self.architecture = architecture
    self.part = (latents.Normal() if latent == "normal"
                 else latents.Categorical(log_mass))
    self.freebits = float(freebits)
    self.freebits_mode = freebits_mode
    self.bias_temperature = float(bias_temperature)
    self.decoder = decoder
    self.data_dim = 784
    self.net = hdvae_net.HDVAENet(
        mean, num_variables, num_classes if latent == "discrete" else
        (2,) * len(num_variables), latent, architecture, filters, num_blocks,
        dropout, key_dim, value_dim, product_keys, decoder,
        lipschitz_scale=lipschitz_scale, query_channels=query_channels)
    self.description = (f"hdvae:{latent},{architecture},layers="
                        f"{self.num_layers},N={sum(num_variables)}")

  # -- applying the networks -------------------------------------------------

  def _apply(self, params, method: str, *args, rng=None):
    rngs = {} if rng is None else {"dropout": layers.fast_key(rng)}
    return self.net.apply({"params": params}, *args, rngs=rngs,
                          method=getattr(hdvae_net.HDVAENet, method))

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters for `[B, 784]` data (the Flax `params`)."""
    x = self._check_data(x_example)
    return init_params(self.net, key, x[:1])

  # -- one path of samples, through any sampler --------------------------------

  def _terms(self, params, x, path, h, log_mass: Optional[str], temperature,
             rng):
    """`Terms` of a full path `((draw_l, q_l, p_l) for l = 0..L-1)` for
    data x `[..., 784]` shaped like the samples' batch; log-masses in form
    `log_mass` (None: the part's own)."""
    det = rng is None
    z0 = path[0][0].z
    if self.decoder == "lipschitz":
      logits = self._apply(params, "decode_lipschitz", z0)
    else:
      logits = self._apply(params, "decode", h, det, rng=rng)
    log_q = tuple(self.part.log_prob(q, draw, log_mass, temperature)
                  for draw, q, _ in path)
    log_p = tuple(self.part.log_prob(p, draw, log_mass, temperature)
                  for draw, _, p in path)
    sq = sum(self.part.squared_distance(draw) for draw, _, _ in path)
    return Terms(elbo.bernoulli_log_likelihood(logits, x), log_q, log_p,
                 jnp.sqrt(sq) + jnp.zeros_like(log_q[0]))

  def _path(self, params, x, sampler: Callable, finish: Callable, rng=None,
            num_samples: Optional[int] = None):
    """Samples every layer in inference order through a
    `stochastic.chain` sampler, `sampler(l, part, q, rest)` (which draws
    layer l from q and returns rest(draw)), then returns `finish(path, h,
    xs)` with the path `((draw_l, q_l, p_l), ...)`, the bottom top-down
    state h and the data xs broadcast to the samples' batch shape.

    Args:
      params: parameters.
      x: `[B, 784]`.
      sampler: as above.
      finish: `finish(path, h, xs)`.
      rng: dropout key (None: deterministic networks).
      num_samples: draw this many samples per example (leading axis of
        every sample), sharing the bottom-up features of x.
    """
    det = rng is None
    xs = x if num_samples is None else jnp.broadcast_to(
        x, (num_samples,) + x.shape)
    sample_shape = xs.shape[:-1]
    finish_x = lambda path, h: finish(path, h, xs)
    if hdvae_net.is_ladder(self.architecture):
      d = self._apply(params, "ladder_features", x, det, rng=rng)
      d = [jnp.broadcast_to(f, sample_shape + f.shape[-3:]) for f in d]
      h = self._apply(params, "top_state", sample_shape)
      return self._ladder_layer(params, d, self.num_layers - 1, h, (),
                                sampler, finish_x, rng)
    g = self._apply(params, "features", xs, det, rng=rng)
    return self._bottom_up_layer(params, 0, g, (), sampler, finish_x, rng)

  def _ladder_layer(self, params, d, l, h, path, sampler, finish, rng):
    """Layer l of top-down inference (Eqs. 19, 20): q(z_l | h_l, d_l)."""
    det = rng is None
    q = self._apply(params, "layer_params", l,
                    jnp.concatenate([h, d[l]], -1), "posterior")
    p = self._apply(params, "layer_params", l, h, "prior")

    def rest(draw):
      new_path = ((draw, q, p),) + path
      if l == 0 and self.decoder == "lipschitz":
        return finish(new_path, None)
      e = self._apply(params, "embedding", l, draw.z)
      skip = h if hdvae_net.has_skips(self.architecture) else None
      h_below = self._apply(params, "top_down_stack", l, e, skip, det, rng=rng)
      if l == 0:
        return finish(new_path, h_below)
      return self._ladder_layer(params, d, l - 1, h_below, new_path, sampler,
                                finish, rng)

    return sampler(l, self.part, q, rest)

  def _bottom_up_layer(self, params, l, g_in, path, sampler, finish, rng):
    """Layer l of bottom-up inference (Eqs. 17, 18): q(z_l | g_l)."""
    det = rng is None
    g = self._apply(params, "bottom_up_stack", l, g_in, det, rng=rng)
    q = self._apply(params, "layer_params", l, g, "posterior")

    def rest(draw):
      new_path = path + ((draw, q),)
      if l == self.num_layers - 1:
        return self._generative(params, new_path, finish, rng)
      e = self._apply(params, "embedding", l, draw.z, True)
      g_next = g + e if hdvae_net.has_skips(self.architecture) else e
      return self._bottom_up_layer(params, l + 1, g_next, new_path, sampler,
                                   finish, rng)

    return sampler(l, self.part, q, rest)

  def _generative(self, params, path, finish, rng):
    """The top-down generative pass given every z: adds p to the path."""
    det = rng is None
    h = self._apply(params, "top_state", path[0][1].shape[:-2])
    full = [None] * self.num_layers
    for l in reversed(range(self.num_layers)):
      draw, q = path[l]
      full[l] = (draw, q, self._apply(params, "layer_params", l, h, "prior"))
      if l == 0 and self.decoder == "lipschitz":
        return finish(tuple(full), None)
      e = self._apply(params, "embedding", l, draw.z)
      skip = h if hdvae_net.has_skips(self.architecture) else None
      h = self._apply(params, "top_down_stack", l, e, skip, det, rng=rng)
    return finish(tuple(full), h)

  def first_layer(self) -> int:
    """The layer sampled first (its estimator is the outermost)."""
    return self.num_layers - 1 if hdvae_net.is_ladder(self.architecture) else 0

  # -- training ------------------------------------------------------------------

  def objective(self, terms: Terms) -> Array:
    """F = log p(x|z) - sum_l freebits(KL_l), per example `[...]`."""
    total = terms.log_px
    for log_q, log_p in zip(terms.log_q, terms.log_p):
      total = total - freebits_kl(log_q - log_p, self.freebits,
                                  self.freebits_mode)
    return total

  def loss(self, params, key: PRNGKey, x: Array, *, step=0,
           estimator: Estimator, state=None) -> tuple[Array, ModelAux]:
    """The training loss: -(batch mean of F's surrogate), see the module.

    Args:
      params: parameters.
      key: PRNG key (samples and dropout).
      x: `[B, 784]` binary data.
      step: unused (the temperature schedule is the estimator's).
      estimator: the run's categorical estimator (unused by normal
        latents).
      state: the first sampled layer's estimator state (nested
        estimators; None otherwise).

    Returns:
      `(loss, ModelAux)`; aux.objective is F (freebits included) on the
      all-hard path at tau = 0 (`stochastic.chain.training_pass`).
    """
    del step
    x = self._check_data(x)
    sample_key, dropout_key = jax.random.split(key)
    temperature = dict(estimator.options).get("temperature")

    def run(sampler, hard):
      p = jax.lax.stop_gradient(params) if hard else params
      form = "hard" if hard else None
      finish = lambda path, h, xs: self.objective(self._terms(
          p, xs, path, h, form, temperature, dropout_key))
      return self._path(p, x, sampler, finish, rng=dropout_key)

    first = self.first_layer()
    states = tuple(state if l == first else None
                   for l in range(self.num_layers))
    result = chain.training_pass(run, estimator, sample_key, states,
                                 _training_layer_key)
    diagnostics = {}
    if not self.part.continuous and temperature is not None:
      diagnostics = {"temperature": jnp.asarray(temperature, jnp.float32)}
    return -jnp.mean(result.surrogate), ModelAux(
        result.objective, result.states.get(first, state), diagnostics)

  def init_state(self, key: PRNGKey, params, x: Array, estimator) -> Any:
    """The first sampled layer's estimator state (None for normal latents,
    whose layers the estimator does not sample)."""
    if self.part.continuous:
      return None
    x = self._check_data(x)
    first = self.first_layer()
    shape = (x.shape[0], self.net.num_variables[first],
             self.net.num_classes[first])
    return estimator.init(key, jnp.zeros(shape, jnp.float32))

  # -- evaluation ----------------------------------------------------------------

  def log_weights(self, params, key: PRNGKey, x: Array, num_samples: int
                  ) -> Array:
    """`[n, B]` log p(x, z) - log q(z|x) at hard ancestral samples of q."""
    x = self._check_data(x)
    finish = lambda path, h, xs: _log_weight(self._terms(
        params, xs, path, h, "hard", None, None))
    return self._path(params, x, _hard_sampler(key), finish,
                      num_samples=num_samples)

  def log_likelihood(self, params, key: PRNGKey, x: Array,
                     num_samples: int = 1000, chunk_size: int = 100,
                     context=None) -> Array:
    """`[B]` the k-sample bound L_k at tau = 0 (Burda et al., 2016); no
    evaluation context."""
    del context
    return iwae.iwae_bound(lambda k, n: self.log_weights(params, k, x, n),
                           key, num_samples, chunk_size)

  def kl(self, params, key: PRNGKey, x: Array) -> Array:
    """`[B]` sum_l log q(z_l|.) - log p(z_l|.) at one hard sample of q."""
    x = self._check_data(x)
    finish = lambda path, h, xs: _kl(self._terms(params, xs, path, h, "hard",
                                                 None, None))
    return self._path(params, x, _hard_sampler(key), finish)

  def relaxed_terms(self, params, key: PRNGKey, x: Array, temperature: float,
                    log_mass: str = "hard") -> tuple[Terms, Terms]:
    r"""`Terms` of a relaxed path (\tilde z_l ~ q^\tau given \tilde z_{>l})
    and of the hard path of the same Gumbel noise (z_l = H given z_{>l})."""
    x = self._check_data(x)
    key = layers.fast_key(key)
    relaxed = self._path(
        params, x, chain.relaxed_sampler(key, temperature),
        lambda path, h, xs: self._terms(params, xs, path, h, log_mass,
                                        temperature, None))
    hard = self._path(
        params, x, chain.relaxed_sampler(key, temperature, hard=True),
        lambda path, h, xs: self._terms(params, xs, path, h, "hard", None,
                                        None))
    return relaxed, hard

  def relaxation_bias(self, params, key: PRNGKey, x: Array) -> Array:
    r"""`[B]` f(x, \tilde z) - f(x, H(\tilde z)) at tau = bias_temperature
    (Eq. 14, no freebits); |mean| is \delta^\tau (Eq. 6, Table 4)."""
    relaxed, hard = self.relaxed_terms(params, key, x, self.bias_temperature)
    return relaxed_objectives.relaxation_gap(_log_weight(relaxed),
                                             _log_weight(hard))

  def lipschitz_constant(self, params) -> float:
    r"""\kappa of z -> f(x, z) for the Lipschitz decoder (Eq. 10)."""
    del params
    return self.net.lipschitz_scale * np.sqrt(self.data_dim)

  def relaxed_elbo(self, params, key: PRNGKey, x: Array) -> Array:
    r"""`[B]` f(x, \tilde z) - \kappa \|\tilde z - H(\tilde z)\|_2 at tau =
    bias_temperature (Eq. 8); its mean lower-bounds the ELBO."""
    relaxed, _ = self.relaxed_terms(params, key, x, self.bias_temperature)
    return relaxed_objectives.relaxed_elbo(
        _log_weight(relaxed), relaxed.distance, self.lipschitz_constant(params))

  def extra_evaluations(self) -> dict:
    """"kl" always; "relaxation_bias" for discrete latents; "relaxed_elbo"
    with the Lipschitz decoder."""
    out = {"kl": self.kl}
    if not self.part.continuous:
      out["relaxation_bias"] = self.relaxation_bias
    if self.decoder == "lipschitz":
      out["relaxed_elbo"] = self.relaxed_elbo
    return {name: base.without_context(fn) for name, fn in out.items()}

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """`[n, 784]` pixel probabilities of x ~ p(x | z), z ~ p(z) at tau = 0."""
    checks.check_int("n", n, 1)
    h = self._apply(params, "top_state", (n,))
    z = None
    for l in reversed(range(self.num_layers)):
      p = self._apply(params, "layer_params", l, h, "prior")
      z = self.part.sample(jax.random.fold_in(key, l), p).z
      if l == 0 and self.decoder == "lipschitz":
        return jax.nn.sigmoid(self._apply(params, "decode_lipschitz", z))
      e = self._apply(params, "embedding", l, z)
      skip = h if hdvae_net.has_skips(self.architecture) else None
      h = self._apply(params, "top_down_stack", l, e, skip, True)
    return jax.nn.sigmoid(self._apply(params, "decode", h, True))

  def _check_data(self, x) -> Array:
    return _checks.check_data(x, self.data_dim, exactly_binary=False)


# XLA options of the one-off initialisation: its ~30 random initialisers
# (threefry) take ~10 s of LLVM optimisation at the default level and run
# once, so unoptimised code (same values) compiles in a third of the time.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0,
                         "xla_llvm_disable_expensive_passes": True}


def init_params(net, key: PRNGKey, x: Array) -> dict:
  """The Flax `params` of `net` for data like x `[1, 784]`, jitted with
  `INIT_COMPILER_OPTIONS` (run eagerly, the many small initialisers would
  each compile on their own)."""
  compiled = jax.jit(net.init).lower(key, x).compile(
      compiler_options=INIT_COMPILER_OPTIONS)
  return compiled(key, x)["params"]


def _training_layer_key(key: PRNGKey, layer: int) -> PRNGKey:
  """The key of layer `layer`'s draw in training (rbg: cheap to compile)."""
  return layers.fast_key(jax.random.fold_in(key, layer))


def _hard_sampler(key: PRNGKey):
  """Exact draws of every layer (evaluation)."""
  return chain.hard_sampler(layers.fast_key(key))


def _log_weight(terms: Terms) -> Array:
  """log p(x|z) + sum_l (log p_l - log q_l), `[...]`."""
  return terms.log_px - _kl(terms)


def _kl(terms: Terms) -> Array:
  return sum(q - p for q, p in zip(terms.log_q, terms.log_p))


def check_structure(latent, architecture, num_variables, num_classes,
                    key_dim, product_keys, decoder) -> None:
  """ValueError naming a bad latent / architecture / layer-size value."""
  checks.check_one_of("latent", latent, hdvae_net.LATENTS)
  checks.check_one_of("architecture", architecture, hdvae_net.ARCHITECTURES)
  checks.check_one_of("decoder", decoder, hdvae_net.DECODERS)
  if not num_variables:
    raise ValueError("num_variables must name >= 1 layer; got ().")
  checks.check_ints("num_variables", num_variables, 1)
  if decoder == "lipschitz" and len(num_variables) != 1:
    raise ValueError(f"decoder='lipschitz' needs one stochastic layer; got "
                     f"num_variables={num_variables}.")
  if latent == "discrete":
    if len(num_classes) != len(num_variables):
      raise ValueError(f"num_classes={num_classes} needs one entry per layer "
                       f"of num_variables={num_variables}.")
    for k in num_classes:
      memory.check_memory_shape(k, key_dim, product_keys)


# -- the model registry's entry (`discrete_vi.models.registry`) -------------


@dataclasses.dataclass(frozen=True)
class HDVAESection(sections.Section):
  """HD-VAE's `config.model` fields (`configs/hdvae.py`), checked once.

  The fields are `HDVAE`'s keyword arguments, which `from_config` passes
  as they are; `__post_init__` adds the checks across fields
  (`check_structure`: layer sizes, memory shapes, the Lipschitz decoder's
  single layer).
  """
  latent: str = sections.field(checks.check_one_of, hdvae_net.LATENTS)
  architecture: str = sections.field(checks.check_one_of,
                                     hdvae_net.ARCHITECTURES)
  # One entry per stochastic layer, z_1 first (K_l unused by normal layers).
  num_variables: tuple[int, ...] = sections.field(sections.check_tuple_of_ints)
  num_classes: tuple[int, ...] = sections.field(sections.check_tuple_of_ints)
  filters: int = sections.field(checks.check_int, 1)
  num_blocks: int = sections.field(checks.check_int, 0)
  query_channels: int = sections.field(checks.check_int, 0)
  dropout: float = sections.field(
      checks.check_in_range, 0.0, 1.0, high_open=True)
  key_dim: int = sections.field(checks.check_int, 1)
  value_dim: int = sections.field(checks.check_int, 1)
  product_keys: bool = sections.field(checks.check_bool)
  log_mass: str = sections.field(checks.check_one_of,
                                 relaxed_objectives.LOG_MASS_FORMS)
  freebits: float = sections.field(checks.check_nonnegative)
  freebits_mode: str = sections.field(checks.check_one_of, FREEBITS_MODES)
  decoder: str = sections.field(checks.check_one_of, hdvae_net.DECODERS)
  lipschitz_scale: float = sections.field(checks.check_positive)
  bias_temperature: float = sections.field(checks.check_positive)

  def __post_init__(self):
    super().__post_init__()
    try:
      check_structure(self.latent, self.architecture, self.num_variables,
                      self.num_classes, self.key_dim, self.product_keys,
                      self.decoder)
    except ValueError as error:
      raise ValueError(f"{self.prefix}: {error}") from None


def validate_config(config) -> None:
  """Raises ValueError naming the bad field of HD-VAE's `config.model`, or
  a `config.estimator.distribution` other than "categorical" for discrete
  layers."""
  section = HDVAESection.of(config["model"])
  distribution = config["estimator"].get("distribution")
  if section.latent == "discrete" and distribution != "categorical":
    raise ValueError(f"config.estimator.distribution={distribution!r} must be "
                     f"'categorical' for discrete HD-VAE layers.")


def accepted_estimators(config) -> tuple[str, ...]:
  """Discrete layers: what the categorical part with `config.model.
  log_mass` accepts (`latents.Categorical.accepted_estimators`; Eq. 16
  needs a relaxed forward pass); normal layers: every estimator (it does
  not apply to a reparameterised layer)."""
  section = HDVAESection.of(config["model"])
  if section.latent == "discrete":
    support = max(float(k) ** n for n, k in zip(section.num_variables,
                                                 section.num_classes))
    return latents.Categorical(section.log_mass).accepted_estimators(
        support, config["estimator"].get("max_support"))
  return tuple(sorted(estimators.ESTIMATORS))


def from_config(config, spec) -> HDVAE:
  """The HD-VAE of `config.model` for the data of `spec` (28 x 28 x 1)."""
  if tuple(spec.image_shape) != (28, 28, 1):
    raise ValueError(f"HD-VAE needs 28 x 28 x 1 images; the data has "
                     f"image_shape={spec.image_shape}.")
  section = HDVAESection.of(config["model"])
  return HDVAE(spec.train_mean, **dataclasses.asdict(section))
