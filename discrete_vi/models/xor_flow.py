r"""Latent XOR flows for binary data (Hesselink & Aziz, 2020).

A discrete normalising flow on x \in {0,1}^D: x = y \oplus u (Eq. 4) with a
factorial Bernoulli base p_Y(y) = \prod_d Bern(y_d | \beta_d) (Eq. 3; the
paper fixes p(y_d = 0, 1) = [0.9, 0.1]) and a transformation u predicted by
an autoregressive conditioner (a MADE, models/made.py). Three variants:

* ``ste``: the deterministic flow of depth L (Sec. 3). Layer l computes
  u^{(l)} = h(f_l(x^{(l-1)})) with the threshold h of Eq. 5, and
  x^{(l)} = x^{(l-1)} \oplus u^{(l)}; log p(x) = log p_Y(x^{(L)}) exactly
  (Eq. 2). h has no useful derivative; the straight-through estimator
  replaces its Jacobian by the identity (the library's `straight_through`,
  variant "deterministic", nested layer by layer).
* ``sfe_full``: latent transformations (Sec. 4, Appendix A) with the
  generative model p(u|x) = \prod_l p(u^{(l)} | u^{(l-1)}) (Eq. 15),
  autoregressive within a layer (Eqs. 16-17), and the mean-field posterior
  q(u|x) = \prod_l \prod_d Bern(u_d^{(l)} | g_d(u^{(l-1)})) (Eqs. 18-20),
  u^{(0)} = x, trained on the ELBO of Eq. 21.
* ``sfe_special``: q = p (Sec. 5 "Special case", Appendix C), trained on the
  bound E_p[log p_Y(t^{-1}(x; u))] of Eq. 13 with the two-term gradient of
  Eq. 14a.

Masks of the generative conditioner (a decision the paper leaves open).
Eq. 17 lets f_d see u^{(l-1)} without restriction, but then p(x) is not
normalised: with u^{(1)} conditioned on all of x (or u^{(2)} on all of
u^{(1)}) the sum over x of \sum_u p_Y(x \oplus u) p(u|x) can exceed 1 (a
two-unit counterexample is in BUILD_NOTES.md). The model is a proper
distribution when everything is generated pixel by pixel, d = 1..D:
u_d^{(1)} ~ p(. | x_{<d}, u_{<d}^{(1)}), u_d^{(l)} ~ p(. | u_{<=d}^{(l-1)},
u_{<d}^{(l)}) for l >= 2, then y_d ~ Bern(\beta_d) and
x_d = y_d \oplus u_d^{(1)} \oplus ... \oplus u_d^{(L)}. So layer 1's MADE
sees x through a "strict" context mask and layer l >= 2 sees u^{(l-1)}
through an "inclusive" one. The tests check \sum_x p(x) = 1 by enumeration.
This ordering is also what makes Eq. 14a hold for L >= 2: the group
u_d = (u_d^{(1)}, ..., u_d^{(L)}) is then generated after u_{<d}.

Gradient estimation (`loss`), exactly as the paper derives it:

* base \beta (if learned) and generative \theta: pathwise
  \nabla \log p_Y(t^{-1}(x; u)) and \nabla \log p(u|x) at u ~ q
  (Eqs. 22-23);
* posterior \lambda, reconstruction term (Eqs. 10a, 25): score function
  with the per-pixel rewards r_d = \log p_Y(x_d \oplus u_d^{(1)} \oplus
  ... \oplus u_d^{(L)}), each with its own baseline (self-critic at an
  independent u' ~ q, greedy or not, or running average) and running
  standardisation. For the last layer r_d is paired with the score of
  u_d^{(L)} alone (local credit, exact since q is mean-field and r_d depends
  on no other unit of that layer); for a layer l < L the later layers mix
  the units, so the layer's score is weighted by \sum_d r_d (still with the
  per-pixel baselines);
* posterior, KL term (Appendix B): for layer l, the closed-form entropy
  gradient (Eqs. 12a, 30) plus per-unit signals
  \sum_{k >= d} \log p(u_k^{(l)} | u^{(l-1)}, u_{<k}^{(l)}) (Eqs. 12b,
  31d), with per-layer baselines and standardisation, plus the next layer's
  log ratio r(u^{(l+1)}, u^{(l)}) (Eq. 11b), scaled by `kl_next_scale`
  (footnote 5's \gamma; 1 is unbiased). Eq. 28d drops the rewards of layers
  l + 2, ..., L as "constant w.r.t. u^{(l)}", but they are not (u^{(l+1)}
  depends on u^{(l)}); here layer l's downstream signal is
  \sum_{k > l} r(u^{(k)}, u^{(k-1)}), which is Eq. 11b exactly for L <= 2
  and keeps the estimator unbiased for deeper flows.
* special case (Eq. 14a): r_d scales the score of the group u_d (local
  term) and, times `prefix_scale` (the paper's negligibly small constant),
  the score of the prefix u_{<d} (second term), the latter on the same or
  an independent sample (`prefix_sample`). With prefix_scale = 1 the
  estimator is unbiased; smaller values trade bias for variance.

Standardisation divides each stream's signal by its running standard
deviation, so the posterior's gradient estimates a per-stream (and, for the
reconstruction, per-pixel) rescaling of the ELBO gradient, as in the paper;
the base and generative gradients are untouched. The tests check the full
estimator unbiased against enumeration for the unscaled baselines (none,
self-critic, moving average), and with standardisation that the base and
generative gradients stay unbiased.

Evaluation: the STE flow's exact log-likelihood; for the latent flows the
importance-sampled bound with q (or p itself for the special case) as the
proposal, and the *greedy flow* x -> x \oplus u^*(x) with u^* the arg max
of the generative p layer by layer (an exact, normalised likelihood: u^*_d
depends on x_{<d} only). The paper's "greedy" column for the full posterior
takes the arg max of q, which conditions on all of x: x -> x \oplus u^*(x)
is then not a bijection and log p_Y(x \oplus u^*(x)) is not a normalised
likelihood; it is reported apart (`greedy_posterior_score`).

References:
  Hesselink & Aziz (2020), Latent Transformations for Discrete-Data
    Normalising Flows.
  Tran, Vafa, Agrawal, Dinh & Poole (2019), Discrete Flows.
  Mnih & Gregor (2014), Neural Variational Inference and Learning in Belief
    Networks.
  Rennie et al. (2017), Self-critical Sequence Training.
"""

from typing import Any, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi import estimators as estimators_lib
from discrete_vi.distributions import bernoulli
from discrete_vi.estimators import score_function as sf
from discrete_vi.models import made as made_lib
from discrete_vi.models import layers
from discrete_vi.models import _checks
from discrete_vi.objectives import iwae
from discrete_vi.types import Array, Estimator, PRNGKey

VARIANTS = ("ste", "sfe_full", "sfe_special")
PREFIX_SAMPLES = ("same", "independent")
DEFAULT_BASE_PROB = 0.1  # p(y_d = 1): the paper's fixed base [0.9, 0.1].


def xor(a: Array, b: Array) -> Array:
  """a \\oplus b for binary values; a + b - 2ab is smooth for ST gradients."""
  return a + b - 2.0 * a * b


def suffix_sum(values: Array) -> Array:
  """s_d = \\sum_{k >= d} v_k along the last axis."""
  return jnp.flip(jnp.cumsum(jnp.flip(values, -1), -1), -1)


def conditioner_made(variant: str, layer: int, hidden_dims: Sequence[int],
                     activation: str) -> made_lib.MADE:
  """Layer `layer`'s (0-indexed) MADE conditioner, with its context mask.

  STE: a MADE on x^{(l-1)}. Latent flows: a MADE on u^{(l)} with context x
  ("strict", layer 1) or u^{(l-1)} ("inclusive", layers >= 2); see the
  module docstring.
  """
  context = None
  if variant != "ste":
    context = "strict" if layer == 0 else "inclusive"
  return made_lib.MADE(tuple(hidden_dims), context=context,
                       activation=activation)


class XORFlowModule(nn.Module):
  """The parameters: one MADE conditioner per layer, posteriors, base."""
  data_dim: int
  depth: int
  variant: str
  hidden_dims: Sequence[int]
  posterior_hidden: Sequence[int]
  activation: str
  base_prob: float
  learn_base: bool

  def setup(self):
    self.conditioners = [
        conditioner_made(self.variant, l, self.hidden_dims, self.activation)
        for l in range(self.depth)]
    if self.variant == "sfe_full":
      self.posteriors = [layers.Link(tuple(self.posterior_hidden), self.data_dim,
                                  self.activation)
                         for _ in range(self.depth)]
    logit = float(np.log(self.base_prob) - np.log1p(-self.base_prob))
    if self.learn_base:
      self.base_logits = self.param(
          "base_logits", nn.initializers.constant(logit), (self.data_dim,))
    else:
      self.base_logits = jnp.full((self.data_dim,), logit, jnp.float32)

  def conditioner(self, layer: int, u: Array, context: Optional[Array] = None
                  ) -> Array:
    """Logits `[..., D]` of layer `layer`'s conditioner."""
    return self.conditioners[layer](u, context)

  def posterior(self, layer: int, h: Array) -> Array:
    """Logits `[..., D]` of q(u^{(layer+1)} | h) (Eq. 20)."""
    return self.posteriors[layer](h)

  def base(self) -> Array:
    """Logits `[D]` of the base p_Y."""
    return self.base_logits

  def __call__(self, x: Array):
    """Touches every parameter once (for `init`)."""
    out = [self.base()]
    for layer in range(self.depth):
      context = None if self.variant == "ste" else x
      out.append(self.conditioner(layer, x, context))
      if self.variant == "sfe_full":
        out.append(self.posterior(layer, x))
    return out


class FullPath(NamedTuple):
  """A posterior path u ~ q(u|x) of the latent flow and its terms."""
  us: list  # L x [..., D] samples u^{(l)}
  q_logits: list  # L x [..., D] logits of q(u^{(l)} | u^{(l-1)})
  log_p: list  # L x [..., D] log p(u_d^{(l)} | ...) per unit (Eqs. 15-17)
  log_q: list  # L x [..., D] log q(u_d^{(l)} | u^{(l-1)}) per unit
  rewards: Array  # [..., D] r_d = log p_Y(x_d xor u_d^{(1)} ... u_d^{(L)})

  def log_ratios(self) -> list:
    """Per layer, sum_d log p - log q: L x `[...]` (Eq. 11b's r)."""
    return [jnp.sum(lp - lq, -1) for lp, lq in zip(self.log_p, self.log_q)]


class FlowAux(NamedTuple):
  """What `XORFlow.loss` returns beside the scalar loss.

  Attributes:
    objective: `[B]` the sampled training objective: log p(x) (STE), the
      ELBO integrand (full posterior) or log p_Y(t^{-1}(x; u)) with u ~ p
      (special case).
    state: the new baseline state (a dict of `RunningStats`, or None).
    diagnostics: dict of scalars.
  """
  objective: Array
  state: Any
  diagnostics: dict


class XORFlow:
  """A latent / deterministic XOR flow and the pure functions around it.

  Holds only static configuration (DESIGN.md sec. 4): `init`, `loss`,
  `init_estimator_state`, `log_likelihood`, `sample`, and the greedy flows.
  """

  def __init__(self, data_dim: int = 784, *, variant: str = "ste",
               depth: int = 1, hidden_dims: Sequence[int] = (256,),
               posterior_hidden: Sequence[int] = (256,),
               activation: str = "relu",
               base_prob: float = DEFAULT_BASE_PROB, learn_base: bool = False,
               baseline: str = "standardize", greedy: bool = False,
               decay: float = 0.99, eps: float = 1e-3,
               kl_next_scale: float = 1.0, prefix_scale: float = 1e-3,
               prefix_sample: str = "same", incremental_sampler: bool = True):
    """Validates and stores the configuration.

    Args:
      data_dim: D (784 for MNIST).
      variant: one of `VARIANTS`.
      depth: number of flow layers L >= 1.
      hidden_dims: hidden widths of every MADE conditioner.
      posterior_hidden: hidden widths of the posterior nets g (sfe_full).
      activation: "relu", "tanh" or "elu".
      base_prob: p(y_d = 1) of the base, in (0, 1).
      learn_base: learn the base logits instead of fixing them.
      baseline: baseline of every score-function stream (`sf.BASELINES`):
        "self_critic_standardize" (the paper's self-critic row, with
        `greedy`), "standardize" (its running-average row), ...
      greedy: the self-critic is the mode (greedy) instead of a sample.
      decay: EMA decay of the running statistics.
      eps: floor of the running standard deviation.
      kl_next_scale: footnote 5's gamma on the next-layer KL signal.
      prefix_scale: special case: the scale of Eq. 14a's second term.
      prefix_sample: special case: "same" or "independent" sample for it.
      incremental_sampler: run one-hidden-layer MADEs unit by unit in the
        pixel-by-pixel scans (O(D H) per sample); False forces full passes
        (O(D^2 H); same results, for benchmarks and tests).

    Raises:
      ValueError: naming the bad value.
    """
    _checks.check_int("data_dim", data_dim, 1)
    _checks.check_int("depth", depth, 1)
    if variant not in VARIANTS:
      raise ValueError(f"variant={variant!r} is unknown; expected one of "
                       f"{VARIANTS}.")
    _checks.check_widths("hidden_dims", hidden_dims)
    _checks.check_widths("posterior_hidden", posterior_hidden)
    if activation not in made_lib.ACTIVATIONS:
      raise ValueError(f"activation={activation!r} is unknown; expected one "
                       f"of {sorted(made_lib.ACTIVATIONS)}.")
    if not 0.0 < base_prob < 1.0:
      raise ValueError(f"base_prob must be in (0, 1); got base_prob="
                       f"{base_prob!r}.")
    sf.check_baseline(baseline)
    sf.check_decay(decay)
    if not eps > 0:
      raise ValueError(f"eps must be > 0; got eps={eps!r}.")
    for name, value in (("kl_next_scale", kl_next_scale),
                        ("prefix_scale", prefix_scale)):
      if not value >= 0:
        raise ValueError(f"{name} must be >= 0; got {name}={value!r}.")
    if prefix_sample not in PREFIX_SAMPLES:
      raise ValueError(f"prefix_sample={prefix_sample!r} is unknown; expected "
                       f"one of {PREFIX_SAMPLES}.")
    self.data_dim, self.depth, self.variant = data_dim, depth, variant
    self.baseline, self.greedy, self.decay, self.eps = (baseline, greedy,
                                                        decay, eps)
    self.kl_next_scale, self.prefix_scale = kl_next_scale, prefix_scale
    self.prefix_sample = prefix_sample
    self.incremental_sampler = incremental_sampler
    self.description = f"xor_flow:{variant},depth={depth}"
    self.module = XORFlowModule(data_dim, depth, variant, tuple(hidden_dims),
                                tuple(posterior_hidden), activation,
                                float(base_prob), learn_base)

  # -- parameters ----------------------------------------------------------

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters: `conditioners_<l>`, `posteriors_<l>`, base."""
    return self.module.init(key, self._check_data(x_example))["params"]

  def _apply(self, params, method: str, *args):
    return self.module.apply({"params": params}, *args,
                             method=getattr(XORFlowModule, method))

  def base_log_prob(self, params, y: Array) -> Array:
    """Per-pixel log p_Y(y_d), `[..., D]` (the rewards r_d)."""
    return bernoulli.log_prob(self._apply(params, "base"), y)

  def evaluators(self, params) -> list:
    """One `made.unit_evaluator` per layer, for the pixel-by-pixel scans."""
    module, out = self.module, []
    for l in range(self.depth):
      made = conditioner_made(module.variant, l, module.hidden_dims,
                              module.activation)
      layer_params = params[f"conditioners_{l}"]
      out.append(made_lib.unit_evaluator(made, layer_params, self.data_dim)
                 if self.incremental_sampler else
                 made_lib.FullPassMADE(made, layer_params))
    return out

  # -- the deterministic (STE) flow ------------------------------------------

  def ste_log_prob(self, params, x: Array, estimator: Optional[Estimator] = None,
                   key: Optional[PRNGKey] = None) -> tuple[Array, Array]:
    r"""log p(x) = log p_Y(t^{-1}(x)) (Eq. 2) of the deterministic flow.

    Layer l: u = h(sigmoid(f_l(x^{(l-1)}))) and x^{(l)} = x^{(l-1)} \oplus u,
    each layer through `estimator` (default: straight-through, variant
    "deterministic": value h, Jacobian identity), nested so that layer l's
    objective is the rest of the flow.

    Args:
      params: parameters.
      x: `[B, D]` binary data.
      estimator: a binary estimator for every layer (the STE flow uses the
        default; a stochastic one makes the flow random).
      key: PRNG key for stochastic estimators.

    Returns:
      `(surrogate [B], log_px [B])`: -surrogate's gradient is the STE
      gradient; both equal log p(x) in value.
    """
    if estimator is None:
      estimator = estimators_lib.make("straight_through",
                                      variant="deterministic")

    def rest(layer, h):
      if layer == self.depth:
        return jnp.sum(self.base_log_prob(params, h), -1)
      logits = self._apply(params, "conditioner", layer, h)
      loss, _ = estimator.estimate(jax.random.fold_in(key, layer), logits,
                                   lambda u: rest(layer + 1, xor(h, u)))
      return -loss

    key = jax.random.PRNGKey(0) if key is None else key
    surrogate = rest(0, x)
    return surrogate, jax.lax.stop_gradient(surrogate)

  def inverse_ste(self, params, y: Array) -> Array:
    """x = t(y): inverts the deterministic flow pixel by pixel.

    x^{(l-1)}_d = x^{(l)}_d \\oplus h(f_l(x^{(l-1)}_{<d})), for d = 1..D
    (outer) and l = L..1 (inner), one `lax.scan` over d.
    """
    evaluators = self.evaluators(params)
    batch = y.shape[:-1]
    states0 = tuple(ev.start(batch) for ev in evaluators)

    def step(states, d):
      states = list(states)
      value = y[..., d]
      for layer in reversed(range(self.depth)):
        u = (evaluators[layer].logit(states[layer], d) > 0).astype(y.dtype)
        value = xor(value, u)  # x^{(layer)}_d
        states[layer] = evaluators[layer].add_input(states[layer], d, value)
      return tuple(states), value

    _, xs = jax.lax.scan(step, states0, jnp.arange(self.data_dim))
    return jnp.moveaxis(xs, 0, -1)

  def ste_forward(self, params, x: Array) -> Array:
    """y = t^{-1}(x) with hard thresholds (no gradient), `[..., D]`."""
    h = x
    for layer in range(self.depth):
      logits = self._apply(params, "conditioner", layer, h)
      h = xor(h, bernoulli.mode(logits))
    return h

  # -- the latent flows: sampling ------------------------------------------

  def posterior_path(self, params, key: PRNGKey, x: Array, mode: bool = False
                     ) -> tuple[list, list]:
    """u ~ q(u|x) ancestrally (or its layer-wise mode): `(us, logits)`."""
    h, us, logits_list = x, [], []
    for layer in range(self.depth):
      logits = self._apply(params, "posterior", layer, h)
      u = (bernoulli.mode(logits) if mode else
           bernoulli.sample(jax.random.fold_in(key, layer), logits))
      u = jax.lax.stop_gradient(u)
      us.append(u)
      logits_list.append(logits)
      h = u
    return us, logits_list

  def generative_scan(self, params, key: PRNGKey, x: Optional[Array],
                      batch_shape: tuple[int, ...], mode: bool = False
                      ) -> tuple[list, Array]:
    """Pixel-by-pixel draws from the generative model.

    For d = 1..D: u_d^{(l)} ~ p(. | context, u_{<d}^{(l)}) for l = 1..L
    (or its mode), then, when `x` is None, y_d ~ p_Y and x_d = y_d \\oplus
    u_d^{(1)} \\oplus ... \\oplus u_d^{(L)}.

    Args:
      params: parameters.
      key: PRNG key.
      x: `[*batch_shape, D]` data to condition on (u ~ p(u|x)), or None to
        generate x as well.
      batch_shape: leading shape of the draws.
      mode: take arg maxes instead of samples (the greedy flow).

    Returns:
      `(us, x)`: L arrays `[*batch_shape, D]` and the data (given or drawn).
    """
    evaluators = self.evaluators(params)
    base = self._apply(params, "base")
    states0 = tuple(ev.start(batch_shape, x if l == 0 else None)
                    for l, ev in enumerate(evaluators))
    noise = jax.random.uniform(key, (self.data_dim, self.depth + 1) +
                               batch_shape)

    def draw(logit, uniform):
      if mode:
        return (logit > 0).astype(jnp.float32)
      return (uniform < jax.nn.sigmoid(logit)).astype(jnp.float32)

    def step(states, inputs):
      d, uniforms = inputs
      states, units, below = list(states), [], None
      for layer, ev in enumerate(evaluators):
        if layer > 0:  # inclusive context: u_d^{(layer-1)} is known now
          states[layer] = ev.add_context(states[layer], d, below)
        u = draw(ev.logit(states[layer], d), uniforms[layer])
        states[layer] = ev.add_input(states[layer], d, u)
        units.append(u)
        below = u
      if x is None:
        x_d = draw(base[d], uniforms[self.depth])
        for u in units:
          x_d = xor(x_d, u)
        states[0] = evaluators[0].add_context(states[0], d, x_d)
      else:
        x_d = x[..., d]
      return tuple(states), (jnp.stack(units), x_d)

    _, (units, xs) = jax.lax.scan(step, states0,
                                  (jnp.arange(self.data_dim), noise))
    us = [jax.lax.stop_gradient(jnp.moveaxis(units[:, l], 0, -1))
          for l in range(self.depth)]
    return us, jnp.moveaxis(xs, 0, -1)

  # -- the latent flows: log-probabilities -----------------------------------

  def generative_log_probs(self, params, x: Array, us: Sequence[Array]
                           ) -> list:
    """log p(u_d^{(l)} | context, u_{<d}^{(l)}) per unit: L arrays `[..., D]`."""
    out, context = [], x
    for layer, u in enumerate(us):
      logits = self._apply(params, "conditioner", layer, u, context)
      out.append(bernoulli.log_prob(logits, u))
      context = u
    return out

  def rewards(self, params, x: Array, us: Sequence[Array]) -> Array:
    """r_d = log p_Y(x_d \\oplus u_d^{(1)} ... \\oplus u_d^{(L)}), `[..., D]`."""
    y = x
    for u in us:
      y = xor(y, u)
    return self.base_log_prob(params, y)

  def full_path(self, params, key: PRNGKey, x: Array, mode: bool = False
                ) -> "FullPath":
    """u ~ q(u|x) (or its layer-wise mode) with every term of the ELBO
    integrand of Eq. 21 at that u (`FullPath`)."""
    us, q_logits = self.posterior_path(params, key, x, mode)
    return FullPath(
        us=us, q_logits=q_logits,
        log_p=self.generative_log_probs(params, x, us),
        log_q=[bernoulli.log_prob(ql, u) for ql, u in zip(q_logits, us)],
        rewards=self.rewards(params, x, us))

  def log_weights_full(self, params, key: PRNGKey, x: Array) -> Array:
    """log p_Y(t^{-1}(x;u)) + log p(u|x) - log q(u|x) at u ~ q, `[...]`."""
    path = self.full_path(params, key, x)
    return jnp.sum(path.rewards, -1) + sum(path.log_ratios())

  # -- training --------------------------------------------------------------

  def init_estimator_state(self, params, key: PRNGKey, x: Array,
                           estimator=None):
    """Zeroed running statistics of every signal stream (or None).

    Streams: "recon" (per pixel), and for the full posterior "kl_local"
    (per unit, one per layer) and "kl_next" (per layer below the top;
    a scalar signal replicated over D).
    """
    del params, key, estimator
    x = self._check_data(x)
    if self.variant == "ste" or self.baseline not in sf.STATEFUL_BASELINES:
      return None
    zeros = sf.init_reinforce(None, x, baseline=self.baseline)
    if self.variant == "sfe_special":
      return {"recon": zeros}
    return {"recon": zeros, "kl_local": (zeros,) * self.depth,
            "kl_next": (zeros,) * (self.depth - 1)}

  def _baseline(self, value, critic, state, per_unit: bool):
    return sf.apply_baseline(value, critic, state, per_unit=per_unit,
                             num_units=self.data_dim, baseline=self.baseline,
                             decay=self.decay, eps=self.eps)

  def _needs_critic(self) -> bool:
    return self.baseline in sf.SELF_CRITIC_BASELINES

  def loss(self, params, key: PRNGKey, x: Array, *, step=0,
           estimator: Optional[Estimator] = None, state=None
           ) -> tuple[Array, FlowAux]:
    """The training loss (batch mean); its gradient is the paper's estimator.

    Args:
      params: parameters.
      key: PRNG key.
      x: `[B, D]` binary data.
      step: unused (no schedules).
      estimator: the STE flow's per-layer estimator (default
        straight-through, deterministic); unused by the latent flows, whose
        estimator is configured on the model (baseline, greedy, ...).
      state: running statistics (`init_estimator_state`); None: start afresh.

    Returns:
      `(loss, FlowAux)`; the loss VALUE is -mean(objective).
    """
    del step
    x = self._check_data(x)
    if self.variant == "ste":
      surrogate, log_px = self.ste_log_prob(params, x, estimator, key)
      return -jnp.mean(surrogate), FlowAux(log_px, None, {})
    if state is None:
      state = self.init_estimator_state(params, key, x)
    if self.variant == "sfe_full":
      surrogate, objective, state, diagnostics = self._full_surrogate(
          params, key, x, state)
    else:
      surrogate, objective, state, diagnostics = self._special_surrogate(
          params, key, x, state)
    # Magic box: value -objective, gradient -surrogate.
    total = objective + surrogate - jax.lax.stop_gradient(surrogate)
    diagnostics["objective"] = jnp.mean(objective)
    return -jnp.mean(total), FlowAux(objective, state, diagnostics)

  def _full_surrogate(self, params, key, x, state):
    """Appendix A.2 / B: the surrogate whose gradient is the estimator."""
    sample_key, critic_key = jax.random.split(key)
    path = self.full_path(params, sample_key, x)
    us, q_logits, log_p, log_q = (path.us, path.q_logits, path.log_p,
                                  path.log_q)  # L x [B, D] each
    r = path.rewards  # [B, D]
    ratios = jax.lax.stop_gradient(path.log_ratios())  # L x [B]
    objective = jax.lax.stop_gradient(jnp.sum(r, -1) + sum(ratios))

    critic = self._full_critic(params, critic_key, x, us, q_logits) if (
        self._needs_critic()) else None
    stats = state or {}
    new_state = {"recon": None, "kl_local": [], "kl_next": []}
    diagnostics = {}

    # Reconstruction (Eqs. 10a, 25): per-pixel rewards, per-pixel baselines.
    c, new_state["recon"], _, scale = self._baseline(
        r, critic and critic["recon"], stats.get("recon"), True)
    diagnostics.update(_stream_stats("recon", c, scale))
    score = sf.score_term(c, log_q[-1], True)  # last layer: local credit
    for layer in range(self.depth - 1):
      score = score + sf.score_term(jnp.sum(c, -1), log_q[layer], False)

    for layer in range(self.depth):
      # Eq. 12b / 31d: suffix sums of the autoregressive log-probabilities.
      value = suffix_sum(jax.lax.stop_gradient(log_p[layer]))
      a, layer_state, _, scale = self._baseline(
          value, critic and critic["kl_local"][layer],
          _get(stats, "kl_local", layer), True)
      new_state["kl_local"].append(layer_state)
      diagnostics.update(_stream_stats(f"kl_local{layer + 1}", a, scale))
      score = score + sf.score_term(a, log_q[layer], True)
      if layer < self.depth - 1:
        # Eq. 11b (and the later layers' ratios, see the module docstring).
        value = sum(ratios[layer + 1:])
        n, layer_state, _, scale = self._baseline(
            value, critic and critic["kl_next"][layer],
            _get(stats, "kl_next", layer), False)
        new_state["kl_next"].append(layer_state)
        diagnostics.update(_stream_stats(f"kl_next{layer + 1}", n, scale))
        score = score + sf.score_term(self.kl_next_scale * n, log_q[layer],
                                      False)

    entropy = sum(jnp.sum(bernoulli.entropy(ql), -1) for ql in q_logits)
    pathwise = jnp.sum(r, -1) + sum(jnp.sum(lp, -1) for lp in log_p)
    surrogate = pathwise + entropy + score  # Eqs. 22-23, 12a, and the SFEs
    return surrogate, objective, _finish_state(new_state, state), diagnostics

  def _full_critic(self, params, key, x, us, q_logits) -> dict:
    """Self-critic values of every stream (independent of the sample u).

    recon / kl_next: at an independent u' ~ q(u|x) (its greedy mode path
    when `greedy`); kl_local of layer l: at u'' ~ q(. | u^{(l-1)}) for the
    sampled u^{(l-1)} (or its mode), whose logits `q_logits[l]` the
    sample's own path already computed.
    """
    path_key, local_key = jax.random.split(key)
    path = self.full_path(params, path_key, x, self.greedy)
    ratios_c = path.log_ratios()
    kl_local, context = [], x
    for layer, logits in enumerate(q_logits):
      u_c = (bernoulli.mode(logits) if self.greedy else bernoulli.sample(
          jax.random.fold_in(local_key, layer), logits))
      p_logits = self._apply(params, "conditioner", layer, u_c, context)
      kl_local.append(suffix_sum(bernoulli.log_prob(p_logits, u_c)))
      context = us[layer]
    return jax.lax.stop_gradient({
        "recon": path.rewards,
        "kl_local": kl_local,
        "kl_next": [sum(ratios_c[l + 1:]) for l in range(self.depth - 1)]})

  def _special_surrogate(self, params, key, x, state):
    """Sec. 5 / Appendix C: Eq. 14a with per-pixel baselines."""
    sample_key, critic_key, prefix_key = jax.random.split(key, 3)
    batch = x.shape[:-1]
    us, _ = self.generative_scan(params, sample_key, x, batch)
    r = self.rewards(params, x, us)  # [B, D]
    objective = jax.lax.stop_gradient(jnp.sum(r, -1))
    critic = None
    if self._needs_critic():
      us_c, _ = self.generative_scan(params, critic_key, x, batch,
                                     mode=self.greedy)
      critic = jax.lax.stop_gradient(self.rewards(params, x, us_c))
    stats = state or {}
    c, recon_state, _, scale = self._baseline(r, critic, stats.get("recon"),
                                              True)
    group = sum(self.generative_log_probs(params, x, us))  # [B, D]
    local = sf.score_term(c, group, True)  # Eq. 14a, first term
    if self.prefix_sample == "independent":
      us_p, _ = self.generative_scan(params, prefix_key, x, batch)
      c_p, _, _, _ = self._baseline(self.rewards(params, x, us_p), critic,
                                    stats.get("recon"), True)
      group_p = sum(self.generative_log_probs(params, x, us_p))
    else:
      c_p, group_p = c, group
    # Second term: r_d scores the prefix u_{<d}: unit k gets sum_{d > k} c_d.
    later = suffix_sum(c_p) - c_p
    prefix = sf.score_term(later, group_p, True)
    surrogate = (jnp.sum(r, -1) + local + self.prefix_scale * prefix)
    diagnostics = _stream_stats("recon", c, scale)
    new_state = None if state is None else {"recon": recon_state}
    return surrogate, objective, new_state, diagnostics

  # -- evaluation ------------------------------------------------------------

  def log_weights(self, params, key: PRNGKey, x: Array, num_samples: int
                  ) -> Array:
    """`[n, B]` log importance weights (q, or p itself for the special case)."""
    x = self._check_data(x)
    xs = jnp.broadcast_to(x, (num_samples,) + x.shape)
    if self.variant == "sfe_full":
      return self.log_weights_full(params, key, xs)
    us, _ = self.generative_scan(params, key, xs, xs.shape[:-1])
    return jnp.sum(self.rewards(params, xs, us), -1)

  def log_likelihood(self, params, key: PRNGKey, x: Array,
                     num_samples: int = 1000, chunk_size: int = 100) -> Array:
    """log p(x) (STE, exact) or the k-sample importance-weighted bound, `[B]`.

    Args:
      params: parameters.
      key: PRNG key.
      x: `[B, D]` binary data.
      num_samples: k for the latent flows (the paper: 1,000); ignored by STE.
      chunk_size: samples per chunk.
    """
    x = self._check_data(x)
    if self.variant == "ste":
      return self.ste_log_prob(params, x)[1]
    return iwae.iwae_bound(lambda k, n: self.log_weights(params, k, x, n),
                           key, num_samples, chunk_size)

  def greedy_log_likelihood(self, params, x: Array) -> Array:
    """Exact log p(x) of the greedy flow u^* = arg max of p, layer by layer.

    A deterministic XOR flow whose u^*_d depends on x_{<d} only, so the
    likelihood is normalised (the tests check it by enumeration). `[B]`.
    """
    x = self._check_data(x)
    if self.variant == "ste":
      return self.ste_log_prob(params, x)[1]
    us, _ = self.generative_scan(params, jax.random.PRNGKey(0), x,
                                 x.shape[:-1], mode=True)
    return jnp.sum(self.rewards(params, x, us), -1)

  def greedy_posterior_score(self, params, x: Array) -> Array:
    """log p_Y(x \\oplus u^*) with u^* the layer-wise mode of q, `[B]`.

    The paper's "greedy" column for the full posterior. NOT a normalised
    likelihood (q sees all of x, so x -> x \\oplus u^*(x) is not a
    bijection): reported for comparison only.
    """
    x = self._check_data(x)
    if self.variant != "sfe_full":
      raise ValueError("greedy_posterior_score needs variant='sfe_full'; got "
                       f"variant={self.variant!r}.")
    us, _ = self.posterior_path(params, jax.random.PRNGKey(0), x, mode=True)
    return jnp.sum(self.rewards(params, x, us), -1)

  def deterministic_evaluations(self) -> dict:
    """Extra per-example evaluations for results.json: name -> fn(params, x)."""
    if self.variant == "ste":
      return {}
    out = {"greedy_log_likelihood": self.greedy_log_likelihood}
    if self.variant == "sfe_full":
      out["greedy_posterior_score"] = self.greedy_posterior_score
    return out

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """n samples x ~ p(x), `[n, D]` (binary)."""
    _checks.check_int("n", n, 1)
    if self.variant == "ste":
      base = self._apply(params, "base")
      y = bernoulli.sample(key, jnp.broadcast_to(base, (n, self.data_dim)))
      return self.inverse_ste(params, y)
    _, x = self.generative_scan(params, key, None, (n,))
    return x

  # -- argument checks -----------------------------------------------------

  def _check_data(self, x) -> Array:
    return _checks.check_data(x, self.data_dim, exactly_binary=True)


def _get(stats: dict, stream: str, layer: int):
  entries = stats.get(stream)
  return None if entries is None else entries[layer]


def _finish_state(new_state: dict, old_state) -> Optional[dict]:
  if old_state is None:
    return None
  return {"recon": new_state["recon"],
          "kl_local": tuple(new_state["kl_local"]),
          "kl_next": tuple(new_state["kl_next"])}


def _stream_stats(name: str, signal: Array, scale: Array) -> dict:
  return {**sf.signal_stats(signal, f"{name}/"),
          f"{name}/scale": jnp.mean(jax.lax.stop_gradient(scale))}
