r"""Sigmoid belief nets (SBNs) with Bernoulli latent layers, "Tucker setup".

The benchmark of REBAR (Tucker et al., 2017), RELAX (Grathwohl et al., 2018),
DVAE++ (Vahdat et al., 2018, Table 1) and DisARM (Dong et al., 2020):
L stochastic layers of 200 Bernoulli units each, a factorial Bernoulli prior
with learned logits on the top layer, and

  generative  p(z_L) \prod_{l=2}^{L} p(z_{l-1} | z_l) \, p(x | z_1),
  inference   q(z_1 | x) \prod_{l=2}^{L} q(z_l | z_{l-1}),

every conditional a factorial Bernoulli whose logits come from a "link":
one affine map (*linear*: 784 -> 200 -> 784), or two deterministic hidden
layers of 200 units (*nonlinear*; tanh as in REBAR / DVAE++, LeakyReLU(0.3)
as in DisARM) followed by an affine map. The encoder sees the mean-centred
image x - mean(x_train); the decoder's output bias starts at
logit(clip(mean(x_train), 1e-3, 0.999)).

Training objective. The estimator of layer 1 is applied to the logits of
q(z_1 | x); its objective is the ELBO integrand

  F(z_{1:L}) = \log p(x|z_1) + \beta [\log p(z_{1:L}) - \log q(z_{1:L}|x)]

(beta = KL weight, 1 for the ELBO). The layers are chained by
`stochastic.chain` (one way for every model). Pathwise estimators
(straight-through, Gumbel-softmax and smoothing families) draw every layer
in one pass and the surrogate is F at those draws. The others are *nested*:
layer l's objective is f_l(z_l) = -loss_{l+1}(z_l), the surrogate loss of
layer l+1's estimator on the logits of q(z_{l+1} | z_l), and the last
layer's objective is F. Every estimator's loss is in "magic box" form, so
the VALUE of f_l is the sampled ELBO integrand (the right learning signal
for layer l) while its GRADIENT carries the deeper layers' estimators
(their score terms and pathwise terms). For estimators whose surrogate is
linear in f (score-function family, ARM/DisARM, relaxed estimators,
enumeration) the nested gradient is an estimate of grad E_q[F] with all
layers' estimators composed; nesting `enumerate` everywhere gives the
exact ELBO. The states and baselines of layers >= 2 are updated by a probe
pass (`chain.training_pass`). aux.objective is F on the all-hard path.

Relaxed values. F is written with the Bernoulli log-mass
z \log\sigma(l) + (1 - z) \log\sigma(-l), which is linear in z, so it extends
multilinearly to relaxed z in (0, 1) and the relaxed estimators (Concrete,
REBAR, RELAX) may evaluate f at relaxed samples, as the REBAR/RELAX authors'
code evaluates its relaxed objective. The networks (decoders, and encoders
of layers >= 2) see the relaxed sample.

Overlapping smoothing (DVAE++). There the log-mass terms of a relaxed layer
(its log q(z_l|.) and log p(z_l|.)) are evaluated at \nu_l = q(z_l = 1 |
\zeta_l), which the estimator's draw carries as `posterior_logits` (see
`estimators.smoothing` and `stochastic.latents.Bernoulli`), while the networks see \zeta_l: per sample this is
E_{q(z|\zeta)}[F], the joint ELBO of Vahdat et al. (2018, Eq. 4; for one
layer, log p(x|\zeta) minus the closed-form KL(q(z|x) || p(z)) in
expectation, since E[\nu] = q). Evaluated at \zeta itself, the
relaxed KL term had expectation -KL + m_0 \sum_i (1 - 2 q_i)(a_i - l_i)
(prior logits a, encoder logits l, m_0 = E[\zeta | z = 0] ~ 1/beta), which is
unbounded above as |l| grows (training then drives |l| up while the discrete
ELBO falls). Spike-and-exp smoothing, whose posterior is
a step function of \zeta, passes \nu_l = q itself (see
`estimators.smoothing`): the closed-form KL of DVAE (Rolfe, 2017) for one
layer, a bounded plug-in for nested layers.

VIMCO. With `vimco` the estimator calls f once per sample, and F is exactly
the log importance weight log p(x, z) - log q(z|x), so the single-layer model
trains the K-sample bound. Nested over several layers it trains a
hierarchical bound, but the gradient reaching layers >= 2 through VIMCO's
normalised weights is not an unbiased estimate of that bound's gradient
(VIMCO's surrogate is not linear in f); prefer one layer, or another
estimator for the outer layer.

NVIL's input-dependent baseline (Mnih & Gregor, 2014, Sec. 3.3). With
`input_baseline=True` each stochastic layer l has a small MLP b_l(h) on its
encoder input h (x - mean for layer 1, z_{l-1} above). The model subtracts it
from the learning signal by handing the estimator f - stop_gradient(b) and
adding stop_gradient(b) back to the loss: the loss value and every pathwise
gradient are unchanged, score-function estimators see the centred signal
F - b(h) (and apply their own baselines / standardisation to it afterwards,
NVIL's order: centre, then normalise), and b is trained by
(stop_gradient(F) - b(h))^2, added to the training loss (it only reaches the
baseline nets).

References:
  Neal (1992), Connectionist learning of belief networks.
  Mnih & Gregor (2014), Neural Variational Inference and Learning in Belief
    Networks.
  Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), REBAR.
  Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), Backpropagation through the
    Void (RELAX).
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++.
  Dong, Mnih & Tucker (2020), DisARM.
"""

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.models import _checks
from discrete_vi.models import base
from discrete_vi.models import layers
from discrete_vi.models import sections
from discrete_vi.models.base import ModelAux
from discrete_vi.objectives import elbo
from discrete_vi.objectives import iwae
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.types import Array, Estimator, EstimatorState, PRNGKey

NONLINEARITIES = ("tanh", "leaky_relu")
MEAN_CLIP = (1e-3, 0.999)  # decoder bias init: logit(clip(mean_x, ...))


class SBNModule(nn.Module):
  """The parameters of an SBN: encoder / decoder links, prior, baselines.

  Layers are 0-indexed here: `encoders[l]` maps h_l (x - mean for l = 0,
  z_{l-1} otherwise) to the logits of q(z_l | h_l); `decoders[l]` maps z_l to
  the logits of the layer below (x for l = 0, z_{l-1} otherwise); the prior
  is on the top layer z_{L-1}.
  """
  data_mean: Any  # np.ndarray [data_dim], the training-set mean of x
  latent_dim: int = 200
  num_layers: int = 1
  hidden_dims: Sequence[int] = ()
  nonlinearity: str = "tanh"
  input_baseline: bool = False
  baseline_hidden: int = 100

  def setup(self):
    data_dim = self.data_mean.shape[-1]
    bias = np.log(np.clip(self.data_mean, *MEAN_CLIP))
    bias = bias - np.log1p(-np.clip(self.data_mean, *MEAN_CLIP))  # logit
    self.encoders = [layers.Link(self.hidden_dims, self.latent_dim,
                                 self.nonlinearity)
                     for _ in range(self.num_layers)]
    self.decoders = [
        layers.Link(self.hidden_dims, data_dim if l == 0 else self.latent_dim,
                    self.nonlinearity,
                    layers.constant_init(bias) if l == 0 else
                    nn.initializers.zeros)
        for l in range(self.num_layers)]
    self.prior_logits = self.param("prior_logits", nn.initializers.zeros,
                                   (self.latent_dim,))
    if self.input_baseline:
      self.baselines = [layers.Link((self.baseline_hidden,), 1, "tanh")
                        for _ in range(self.num_layers)]

  def _input(self, layer: int, h: Array) -> Array:
    if layer == 0:
      return h - jnp.asarray(self.data_mean, h.dtype)
    return h

  def encode(self, layer: int, h: Array) -> Array:
    """Logits of q(z_layer | h), `[..., latent_dim]`."""
    return self.encoders[layer](self._input(layer, h))

  def decode(self, layer: int, z: Array) -> Array:
    """Logits of p(layer below | z_layer): `[..., data_dim]` for layer 0."""
    return self.decoders[layer](z)

  def prior(self) -> Array:
    """Logits of the factorial prior p(z_top), `[latent_dim]`."""
    return self.prior_logits

  def baseline(self, layer: int, h: Array) -> Array:
    """NVIL's input-dependent baseline b_layer(h), `[...]`."""
    return self.baselines[layer](self._input(layer, h))[..., 0]

  def __call__(self, x: Array) -> Array:
    """Touches every parameter once (for `init`): an ancestral pass."""
    h, out = x, []
    for layer in range(self.num_layers):
      if self.input_baseline:
        out.append(self.baseline(layer, h))
      h = jax.nn.sigmoid(self.encode(layer, h))
      out.append(self.decode(layer, h))
    out.append(self.prior())
    return out


class SigmoidBeliefNet(base.NothingToPrepare):
  """An SBN and the pure functions of the model contract (`models.base.Model`).

  The object holds only static configuration; all arrays that change
  (parameters, estimator state, keys) are arguments and results.
  """
  sample_columns = base.SAMPLE_COLUMNS

  def __init__(self, data_mean: Any, *, latent_dim: int = 200,
               num_layers: int = 1, hidden_dims: Sequence[int] = (),
               nonlinearity: str = "tanh", input_baseline: bool = False,
               baseline_hidden: int = 100, kl_warmup_steps: int = 0,
               data_dim: int = 784):
    """Validates and stores the configuration.

    Args:
      data_mean: `[data_dim]` training-set mean of x, in [0, 1].
      latent_dim: Bernoulli units per stochastic layer (200 in the papers).
      num_layers: number of stochastic layers L >= 1.
      hidden_dims: widths of the deterministic layers inside every link:
        () for the linear SBN, (200, 200) for the nonlinear one.
      nonlinearity: "tanh" (REBAR, DVAE++) or "leaky_relu" (slope 0.3,
        DisARM).
      input_baseline: give every stochastic layer NVIL's input-dependent
        baseline net (see the module docstring).
      baseline_hidden: hidden width of the baseline nets (NVIL: 100).
      kl_warmup_steps: KL warm-up length: the KL weight is
        min(step / kl_warmup_steps, 1) (0: no warm-up). DVAE++ uses 30 % of
        the training steps.
      data_dim: length of x (784 for MNIST); `data_mean` must match it.

    Raises:
      ValueError: naming the bad value.
    """
    checks.check_int("data_dim", data_dim, 1)
    mean = np.asarray(data_mean, np.float32)
    if mean.shape != (data_dim,):
      raise ValueError(f"data_mean must have shape [data_dim] = ({data_dim},); "
                       f"got data_mean.shape={mean.shape}.")
    if not np.all((mean >= 0) & (mean <= 1)):
      raise ValueError("data_mean must lie in [0, 1] (the mean of binary "
                       f"data); got values in [{mean.min()}, {mean.max()}].")
    checks.check_int("latent_dim", latent_dim, 1)
    checks.check_int("num_layers", num_layers, 1)
    checks.check_int("baseline_hidden", baseline_hidden, 1)
    checks.check_int("kl_warmup_steps", kl_warmup_steps, 0)
    checks.check_ints("hidden_dims", hidden_dims)
    if nonlinearity not in NONLINEARITIES:
      raise ValueError(f"nonlinearity={nonlinearity!r} is unknown; expected "
                       f"one of {NONLINEARITIES}.")
    self.data_dim = mean.shape[0]
    self.num_layers = num_layers
    self.latent_dim = latent_dim
    self.input_baseline = input_baseline
    self.kl_warmup_steps = kl_warmup_steps
    self.part = latents.Bernoulli()
    self.module = SBNModule(mean, latent_dim, num_layers, tuple(hidden_dims),
                            nonlinearity, input_baseline, baseline_hidden)
    shape = "linear" if not hidden_dims else "nonlinear"
    self.description = f"sbn:{shape},layers={num_layers}"

  # -- parameters ----------------------------------------------------------

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters (the Flax `params` collection).

    Args:
      key: PRNG key.
      x_example: `[B, data_dim]` data of the training shape.

    Returns:
      A dict: `encoders_<l>`, `decoders_<l>` (links, `decoders_0` maps z_1 to
      pixel logits), `prior_logits`, and `baselines_<l>` with
      `input_baseline`.
    """
    x = self._check_data(x_example)
    return self.module.init(key, x)["params"]

  def _apply(self, params, method: str, *args):
    return self.module.apply({"params": params}, *args,
                             method=getattr(SBNModule, method))

  # -- the ELBO integrand --------------------------------------------------

  def log_joint_terms(self, params, x: Array, path) -> tuple[Array, Array,
                                                             Array]:
    r"""(log p(x|z_1), log p(z_{1:L}), log q(z_{1:L}|x)) along one path.

    Args:
      params: model parameters.
      x: `[..., data_dim]` data.
      path: `((draw_1, q_logits_1), ..., (draw_L, q_logits_L))`: each
        layer's `stochastic.latents.Draw` (hard, relaxed or smoothed) with
        the logits of q it came from.

    Returns:
      Three `[...]` arrays. Each term is the Bernoulli log-mass, linear in
      each z, evaluated at the layer's mass point (`latents.Bernoulli`:
      q(z = 1 | zeta) for smoothing draws, else z); the networks see the
      draws' values.
    """
    draws = [draw for draw, _ in path]
    log_q = sum(self.part.log_prob(logits, draw) for draw, logits in path)
    log_px = elbo.bernoulli_log_likelihood(
        self._apply(params, "decode", 0, draws[0].z), x)
    log_pz = self.part.log_prob(self._apply(params, "prior"), draws[-1])
    for layer in range(1, len(draws)):
      logits = self._apply(params, "decode", layer, draws[layer].z)
      log_pz = log_pz + self.part.log_prob(logits, draws[layer - 1])
    return log_px, log_pz, log_q

  def integrand(self, params, x: Array, path, kl_weight=1.0) -> Array:
    r"""F = log p(x|z) + kl_weight (log p(z) - log q(z|x)), `[...]`."""
    return elbo.elbo_integrand(*self.log_joint_terms(params, x, path), kl_weight)

  def _pass(self, params, x: Array, sampler, finish) -> Array:
    """The inference pass z_1 | x, z_2 | z_1, ... through a
    `stochastic.chain` sampler (`chain.sequential`); `finish(path)` at the
    last layer. Each layer offers the sampler its NVIL baseline c(h) when
    `input_baseline`."""
    def input_of(l, path):
      return x if l == 0 else path[-1][0].z

    def q_logits(l, path):
      return self._apply(params, "encode", l, input_of(l, path))  # [..., D]

    def baseline(l, path):
      return self._apply(params, "baseline", l, input_of(l, path))

    return chain.sequential(self.num_layers, self.part, q_logits, sampler,
                            finish, baseline if self.input_baseline else None)

  def _ancestral_path(self, params, key, x):
    """Hard samples z_1..z_L ~ q ancestrally: `((draw, logits), ...)`."""
    return self._pass(params, x, chain.hard_sampler(key), lambda path: path)

  # -- training ------------------------------------------------------------

  def loss(self, params, key: PRNGKey, x: Array, *, step=0,
           estimator, state: EstimatorState = None, kl_weight=1.0
           ) -> tuple[Array, ModelAux]:
    r"""The training loss: -ELBO surrogate of the estimator(s), batch mean.

    Its gradient wrt `params` estimates -\nabla ELBO (up to the estimator's
    bias) for the encoder, decoder and prior, plus the baseline nets'
    regression gradient when `input_baseline` is set. The layers are
    chained by `stochastic.chain.training_pass` (nested score-function
    estimators, each with its own state and baseline; pathwise ones in one
    pass).

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, data_dim]` binary data.
      step: training step, for KL warm-up (`kl_warmup_steps`).
      estimator: an `Estimator` (from `estimators.make`) used for every
        stochastic layer, or a sequence of one per layer.
      state: the estimator state (`init_state`); a tuple over
        layers when there are several; None lets the estimators initialise.
      kl_weight: extra factor on the KL term (times the warm-up factor).

    Returns:
      `(loss, ModelAux)`: the scalar loss, whose value is the batch mean of
      -(sampled objective) plus the baselines' regression loss (reported
      apart in `diagnostics["objective"]` and `["baseline_loss"]`), and aux.
    """
    x = self._check_data(x)
    estimators = self._estimators(estimator)
    states = self._states(state)
    kl_weight = kl_weight * elbo.kl_warmup_factor(step, self.kl_warmup_steps)
    key, probe_key = jax.random.split(key)
    keys = tuple(jax.random.split(key, self.num_layers))

    def run(sampler, hard):
      p = jax.lax.stop_gradient(params) if hard else params
      return self._pass(p, x, sampler,
                        lambda path: self.integrand(p, x, path, kl_weight))

    result = chain.training_pass(
        run, estimators, None, states, lambda _, l: keys[l],
        probe_key=probe_key if self.num_layers > 1 else None)
    new_states = tuple(result.states.get(l, states[l])
                       for l in range(self.num_layers))
    diagnostics = {}
    for l, layer_diagnostics in sorted(result.diagnostics.items()):
      prefix = "" if l == 0 else f"layer{l + 1}/"
      diagnostics.update({prefix + k: v for k, v in
                          _batch_means(layer_diagnostics).items()})
    baseline_loss = jnp.mean(result.baseline_loss)
    diagnostics.update(
        kl_weight=jnp.asarray(kl_weight),
        objective=jax.lax.stop_gradient(jnp.mean(result.objective)),
        baseline_loss=jax.lax.stop_gradient(baseline_loss))
    new_state = new_states[0] if self.num_layers == 1 else new_states
    return (-jnp.mean(result.surrogate) + baseline_loss,
            ModelAux(result.objective, new_state, diagnostics))

  def init_state(self, key: PRNGKey, params, x: Array,
                 estimator) -> EstimatorState:
    """Initial model state: the estimator state of every stochastic layer
    (a tuple if L > 1); the SBN carries nothing else between steps.

    Layer l's state is initialised on the logits of q(z_l | z_{l-1}) at an
    ancestral hard sample (the shapes the nested estimator will see).

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, data_dim]` a batch of the shape used in training.
      estimator: an `Estimator`, or one per layer (as for `loss`).

    Returns:
      The state for `loss(..., state=...)` (None for stateless estimators).
    """
    x = self._check_data(x)
    estimators = self._estimators(estimator)
    path = self._ancestral_path(params, jax.random.fold_in(key, 1), x)
    keys = jax.random.split(key, self.num_layers)
    states = tuple(est.init(k, logits) for est, k, (_, logits)
                   in zip(estimators, keys, path))
    return states[0] if self.num_layers == 1 else states

  # -- evaluation ----------------------------------------------------------

  def log_weights(self, params, key: PRNGKey, x: Array, num_samples: int
                  ) -> Array:
    """Log importance weights at hard ancestral samples of q.

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, data_dim]` data.
      num_samples: n (static).

    Returns:
      `[n, B]` log p(x, z^{(i)}) - log q(z^{(i)} | x), z^{(i)} ~ q.
    """
    x = self._check_data(x)
    xs = jnp.broadcast_to(x, (num_samples,) + x.shape)
    path = self._ancestral_path(params, key, xs)
    return self.integrand(params, xs, path, 1.0)

  def log_likelihood(self, params, key: PRNGKey, x: Array,
                     num_samples: int = 100, chunk_size: int = 100,
                     context=None) -> Array:
    r"""The k-sample importance-weighted bound on log p(x), `[B]`.

    Always on the discrete model: hard samples z_1 ~ q(z_1|x), then
    z_2 ~ q(z_2|z_1), ...; weights p(x, z) / q(z|x); chunked
    (`objectives.iwae_bound`) so memory is O(chunk_size * B).

    Args:
      params: model parameters.
      key: PRNG key.
      x: `[B, data_dim]` binary data.
      num_samples: k (static): 100 in REBAR/RELAX/DisARM evaluations, 4000
        for DVAE++'s final test numbers.
      chunk_size: samples per chunk (static).
      context: None (nothing to prepare).

    Returns:
      `[B]` estimates of the k-sample bound L_k <= log p(x) (Burda et al.,
      2016).
    """
    del context
    return iwae.iwae_bound(
        lambda k, n: self.log_weights(params, k, x, n), key, num_samples,
        chunk_size)

  def extra_evaluations(self) -> dict:
    """None beyond the importance-weighted bound."""
    return {}

  def sample(self, params, key: PRNGKey, n: int, *, binary: bool = False
             ) -> Array:
    """Ancestral samples of the generative model, `[n, data_dim]`.

    z_L ~ p(z_L), then z_{l-1} ~ p(z_{l-1} | z_l) down to z_1.

    Args:
      params: model parameters.
      key: PRNG key.
      n: number of samples (static).
      binary: return a binary sample x ~ p(x | z_1) instead of the pixel
        probabilities sigmoid(decoder logits) (the smoother pictures usually
        shown).

    Returns:
      `[n, data_dim]` probabilities in [0, 1], or binary values.
    """
    checks.check_int("n", n, 1)
    keys = jax.random.split(key, self.num_layers + 1)
    logits = jnp.broadcast_to(self._apply(params, "prior"),
                              (n, self.latent_dim))
    for layer in reversed(range(self.num_layers)):
      z = bernoulli.sample(keys[layer + 1], logits)
      logits = self._apply(params, "decode", layer, z)
    if binary:
      return bernoulli.sample(keys[0], logits)
    return jax.nn.sigmoid(logits)

  # -- argument checks -----------------------------------------------------

  def _check_data(self, x) -> Array:
    return _checks.check_data(x, self.data_dim, exactly_binary=False)

  def _estimators(self, estimator) -> tuple[Estimator, ...]:
    if isinstance(estimator, Estimator):
      return (estimator,) * self.num_layers
    estimators = tuple(estimator)
    if (len(estimators) != self.num_layers or
        not all(isinstance(e, Estimator) for e in estimators)):
      raise ValueError(f"estimator must be an Estimator or {self.num_layers} "
                       f"of them (one per layer); got {estimator!r}.")
    return estimators

  def _states(self, state) -> tuple:
    if self.num_layers == 1:
      return (state,)
    if state is None:
      return (None,) * self.num_layers
    if not isinstance(state, tuple) or len(state) != self.num_layers:
      raise ValueError(f"state must be a tuple of {self.num_layers} estimator "
                       f"states (one per layer); got {type(state).__name__}.")
    return state


def _batch_means(diagnostics: dict) -> dict:
  return {k: jax.lax.stop_gradient(jnp.mean(v)) for k, v in diagnostics.items()}


def linear(data_mean, **kwargs) -> SigmoidBeliefNet:
  """The linear SBN: 784 -> 200 -> 784, affine links (Tucker setup)."""
  return SigmoidBeliefNet(data_mean, **{"hidden_dims": (), **kwargs})


def nonlinear(data_mean, *, hidden_dim: int = 200, **kwargs
              ) -> SigmoidBeliefNet:
  """The nonlinear SBN: two deterministic layers of 200 in every link."""
  return SigmoidBeliefNet(
      data_mean, **{"hidden_dims": (hidden_dim, hidden_dim), **kwargs})


def two_layer(data_mean, **kwargs) -> SigmoidBeliefNet:
  """Two stochastic layers 784 -> 200 -> 200, linear links unless told."""
  return SigmoidBeliefNet(data_mean, **{"num_layers": 2, **kwargs})


# -- the model registry's entry (`discrete_vi.models.registry`) -------------

ARCHITECTURES = ("linear", "nonlinear", "two_layer")


def accepted_estimators(config) -> tuple[str, ...]:
  """Every binary estimator its Bernoulli layers of `num_latents` units
  accept (`latents.Bernoulli.accepted_estimators`: enumeration only while
  2^num_latents is within its `max_support`)."""
  return latents.Bernoulli().accepted_estimators(
      2.0 ** config["model"]["num_latents"],
      config["estimator"].get("max_support"))


@dataclasses.dataclass(frozen=True)
class SBNSection(sections.Section):
  """The SBN's `config.model` fields (`configs/sbn.py`)."""
  architecture: str = sections.field(checks.check_one_of, ARCHITECTURES)
  num_latents: int = sections.field(checks.check_int, 1)
  hidden_size: int = sections.field(checks.check_int, 1)
  activation: str = sections.field(checks.check_one_of, NONLINEARITIES)
  input_baseline: bool = sections.field(checks.check_bool, default=False)


def validate_config(config) -> None:
  """Raises ValueError naming the bad field of the SBN's `config.model`."""
  SBNSection.of(config["model"])


def from_config(config, spec) -> SigmoidBeliefNet:
  """The SBN of `config.model` for the data of `spec` (a `data.DataSpec`)."""
  spec.require_value_type("binary", "config.model.name='sbn'")
  data_mean = spec.train_mean
  section = SBNSection.of(config["model"])
  architecture, hidden = section.architecture, section.hidden_size
  sbn = SigmoidBeliefNet(
      data_mean,
      latent_dim=section.num_latents,
      num_layers=2 if architecture == "two_layer" else 1,
      hidden_dims=(hidden, hidden) if architecture == "nonlinear" else (),
      nonlinearity=section.activation,
      input_baseline=section.input_baseline,
      kl_warmup_steps=config["train"]["kl_warmup_steps"],
      data_dim=len(data_mean))
  sbn.description = f"sbn:{architecture}"
  return sbn
