r"""Latent XOR flows trained by score-function estimation (Hesselink & Aziz
2020, Secs. 4-5, Appendices A-C).

The transformation u of the XOR flow x = y \oplus u (Eq. 4) is a latent
variable: p(x) = \sum_u p_Y(x \oplus u^{(1)} ... \oplus u^{(L)}) p(u|x)
(Eq. 6b), with the factorial base p_Y (Eq. 3) and the generative model
p(u|x) = \prod_l p(u^{(l)} | u^{(l-1)}) (Eq. 15), autoregressive within a
layer (Eqs. 16-17), u^{(0)} = x. Two posteriors:

* `FullPosteriorFlow`: the mean-field q(u|x) = \prod_l \prod_d
  Bern(u_d^{(l)} | g_d(u^{(l-1)})) (Eqs. 18-20), trained on the ELBO of
  Eq. 21;
* `SpecialCaseFlow`: q = p (Sec. 5 "Special case", Appendix C), trained on
  the bound E_p[log p_Y(t^{-1}(x; u))] of Eq. 13 with the two-term gradient
  of Eq. 14a.

Masks of the generative conditioner (a decision the paper leaves open).
Eq. 17 lets f_d see u^{(l-1)} without restriction, but then p(x) is not
normalised: with u^{(1)} conditioned on all of x (or u^{(2)} on all of
u^{(1)}) the sum over x of \sum_u p_Y(x \oplus u) p(u|x) can exceed 1. One
unit suffices: if u_1 may see x_1 and p(u_1 = x_1 | x) -> 1, every x maps
to y = 0 and \sum_x p(x) -> 2 p_Y(0) = 1.8 with the paper's base. The model
is a proper distribution when everything is generated pixel by pixel,
d = 1..D: u_d^{(1)} ~ p(. | x_{<d}, u_{<d}^{(1)}), u_d^{(l)} ~
p(. | u_{<=d}^{(l-1)}, u_{<d}^{(l)}) for l >= 2, then y_d ~ Bern(\beta_d)
and x_d = y_d \oplus u_d^{(1)} \oplus ... \oplus u_d^{(L)}. So layer 1's
MADE sees x through a "strict" context mask and layer l >= 2 sees u^{(l-1)}
through an "inclusive" one; the tests check \sum_x p(x) = 1 by
enumeration. This ordering is also what makes Eq. 14a hold for L >= 2: the
group u_d = (u_d^{(1)}, ..., u_d^{(L)}) is then generated after u_{<d}.

Gradient estimation (`loss`). The score-function streams take their
signal processing (baseline: none, running average, self-critic;
running standardisation) from the `reinforce` estimator the flow is given,
through `discrete_vi.estimators.baselines`:

* base \beta (if learned) and generative \theta (full posterior):
  pathwise \nabla \log p_Y(t^{-1}(x; u)) and \nabla \log p(u|x) at u ~ q
  (Eqs. 22-23);
* posterior \lambda, reconstruction term (Eqs. 10a, 25): score function
  with the per-pixel rewards r_d = \log p_Y(x_d \oplus u_d^{(1)} \oplus
  ... \oplus u_d^{(L)}), each with its own baseline (self-critic at an
  independent u' ~ q, greedy or not, or running average) and running
  standardisation. For the last layer r_d is paired with the score of
  u_d^{(L)} alone (local credit, exact since q is mean-field and r_d
  depends on no other unit of that layer); for a layer l < L the later
  layers mix the units, so the layer's score is weighted by \sum_d r_d
  (still with the per-pixel baselines);
* posterior, KL term (Appendix B): for layer l, the closed-form entropy
  gradient (Eqs. 12a, 30) plus per-unit signals
  \sum_{k >= d} \log p(u_k^{(l)} | u^{(l-1)}, u_{<k}^{(l)}) (Eqs. 12b,
  31d), with per-layer baselines and standardisation, plus the next
  layer's log ratio r(u^{(l+1)}, u^{(l)}) (Eq. 11b), scaled by
  `kl_next_scale` (footnote 5's \gamma; 1 is unbiased).
  Departure from the paper (reward-to-go): Eq. 28d drops the rewards of
  layers l + 2, ..., L as "constant w.r.t. u^{(l)}", but they are not
  (u^{(l+1)} is drawn given u^{(l)}, so r(u^{(k)}, u^{(k-1)}) for k >= l + 2
  depends on u^{(l)} through it); here layer l's downstream signal is
  \sum_{k > l} r(u^{(k)}, u^{(k-1)}), which is Eq. 11b / 28f exactly for
  L <= 2 and keeps the estimator unbiased for deeper flows (the tests
  measure the bias of Eq. 28f at L = 3);
* special case (Eq. 14a): r_d scales the score of the group u_d (local
  term) and, times `prefix_scale` (the paper's negligibly small constant),
  the score of the prefix u_{<d} (second term), the latter on the same or
  an independent sample (`prefix_sample`). With prefix_scale = 1 the
  estimator is unbiased; smaller values trade bias for variance.

Baselines that do not depend on the sample (none, self-critic, running
mean) leave the estimator unbiased. Standardisation divides each stream's
signal by its running standard deviation (per pixel for the
reconstruction, per unit and layer for the KL streams), so the posterior's
gradient is the ELBO gradient with each stream rescaled by that known,
sample-independent factor, as in the paper; the entropy, base and
generative gradients are not rescaled. The tests check this against
enumeration.

Evaluation: the importance-sampled bound with q (or p itself for the
special case) as the proposal, and the *greedy flow* x -> x \oplus u^*(x)
with u^* the arg max of the generative p layer by layer (an exact,
normalised likelihood: u^*_d depends on x_{<d} only). The paper's "greedy"
column for the full posterior takes the arg max of q, which conditions on
all of x: x -> x \oplus u^*(x) is then not a bijection and
log p_Y(x \oplus u^*(x)) is not a normalised likelihood; it is reported
apart (`greedy_posterior_score`).

References:
  Hesselink & Aziz (2020), Latent Transformations for Discrete-Data
    Normalising Flows.
  Mnih & Gregor (2014), Neural Variational Inference and Learning in Belief
    Networks.
  Rennie et al. (2017), Self-critical Sequence Training.
"""

from typing import Any, Mapping, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.estimators import baselines
from discrete_vi.models import base
from discrete_vi.models import layers
from discrete_vi.models import xor_flow_common as common
from discrete_vi.models.base import ModelAux
from discrete_vi.objectives import iwae
from discrete_vi.types import Array, Estimator, PRNGKey

PREFIX_SAMPLES = ("same", "independent")


def context_mask(layer: int) -> str:
  """Layer `layer`'s (0-indexed) context mask: "strict" on x for the first
  layer, "inclusive" on u^{(l-1)} for the others (see the module docstring)."""
  return "strict" if layer == 0 else "inclusive"


class LatentFlowModule(nn.Module):
  """The parameters: one MADE per layer, the posteriors (if any), the base."""
  data_dim: int
  depth: int
  hidden_dims: Sequence[int]
  activation: str
  base_prob: float
  learn_base: bool
  posterior_hidden: Optional[Sequence[int]] = None  # None: no posterior

  def setup(self):
    self.conditioners = [
        common.conditioner_made(context_mask(l), self.hidden_dims,
                                self.activation) for l in range(self.depth)]
    if self.posterior_hidden is not None:
      self.posteriors = [
          layers.Link(tuple(self.posterior_hidden), self.data_dim,
                      self.activation) for _ in range(self.depth)]
    self.base_logits = common.base_param(self, self.data_dim, self.base_prob,
                                         self.learn_base)

  def conditioner(self, layer: int, u: Array, context: Array) -> Array:
    """Logits `[..., D]` of p(u^{(layer+1)} | context) (Eqs. 16-17)."""
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
      out.append(self.conditioner(layer, x, x))
      if self.posterior_hidden is not None:
        out.append(self.posterior(layer, x))
    return out


class LatentFlow(common.FlowBase):
  """The generative side shared by both posteriors: the pixel-by-pixel
  sampler, the per-unit log-probabilities, the rewards, the greedy flow, the
  signal streams' state and the magic-box loss. Subclasses define
  `streams`, `surrogate` and `log_weights`."""

  variant: str

  def _setup(self, data_dim: int, depth: int, hidden_dims: Sequence[int],
             activation: str, base_prob: float, learn_base: bool,
             incremental_sampler: bool,
             posterior_hidden: Optional[Sequence[int]]) -> None:
    self.data_dim, self.depth = data_dim, depth
    self.incremental_sampler = incremental_sampler
    self.description = f"xor_flow:{self.variant},depth={depth}"
    self.mades = tuple(common.conditioner_made(context_mask(l), hidden_dims,
                                               activation)
                       for l in range(depth))
    self.module = LatentFlowModule(
        data_dim, depth, tuple(hidden_dims), activation, float(base_prob),
        learn_base, None if posterior_hidden is None else
        tuple(posterior_hidden))

  # -- the generative model --------------------------------------------------

  def generative_scan(self, params, key: PRNGKey, x: Optional[Array],
                      batch_shape: tuple[int, ...], mode: bool = False
                      ) -> tuple[list, Array]:
    """Pixel-by-pixel draws from the generative model (Eqs. 15-17).

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
    base = self.apply(params, "base")
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
          x_d = common.xor(x_d, u)
        states[0] = evaluators[0].add_context(states[0], d, x_d)
      else:
        x_d = x[..., d]
      return tuple(states), (jnp.stack(units), x_d)

    _, (units, xs) = jax.lax.scan(step, states0,
                                  (jnp.arange(self.data_dim), noise))
    us = [jax.lax.stop_gradient(jnp.moveaxis(units[:, l], 0, -1))
          for l in range(self.depth)]
    return us, jnp.moveaxis(xs, 0, -1)

  def generative_log_probs(self, params, x: Array, us: Sequence[Array]
                           ) -> list:
    """log p(u_d^{(l)} | context, u_{<d}^{(l)}) per unit (Eqs. 15-17):
    L arrays `[..., D]`."""
    out, context = [], x
    for layer, u in enumerate(us):
      logits = self.apply(params, "conditioner", layer, u, context)
      out.append(bernoulli.log_prob(logits, u))
      context = u
    return out

  def rewards(self, params, x: Array, us: Sequence[Array]) -> Array:
    """Per-pixel rewards `[..., D]`: r_d = log p_Y(x_d \\oplus u_d^{(1)}
    ... \\oplus u_d^{(L)})."""
    y = x
    for u in us:
      y = common.xor(y, u)
    return self.base_log_prob(params, y)

  # -- the model contract ------------------------------------------------------

  def streams(self) -> dict:
    """Number of signal streams by name (each `[D]` running statistics)."""
    raise NotImplementedError

  def init_state(self, key: PRNGKey, params, x_example: Array,
                 estimator: Estimator):
    """Zeroed running statistics of every signal stream, or None.

    Args:
      key: unused.
      params: unused.
      x_example: `[B, D]` data (only its shape and dtype are used).
      estimator: the `reinforce` estimator that trains the flow.

    Returns:
      A dict mapping each stream name to a tuple of `RunningStats` (one per
      layer for the per-layer streams; see `streams`), or None when the
      estimator's baseline keeps no statistics.
    """
    del key, params
    x = self.check_data(x_example)
    processor = baselines.from_estimator(estimator)
    zeros = processor.init(self.data_dim, x.dtype)
    if zeros is None:
      return None
    return {name: (zeros,) * count for name, count in self.streams().items()}

  def loss(self, params, key: PRNGKey, x: Array, *, step=0,
           estimator: Estimator, state=None) -> tuple[Array, ModelAux]:
    """The training loss (batch mean); its gradient is the paper's estimator.

    Args:
      params: parameters.
      key: PRNG key.
      x: `[B, D]` binary data.
      step: unused (no schedules).
      estimator: the `reinforce` estimator whose signal processing
        (`baselines.from_estimator`) every score-function stream uses.
      state: running statistics (`init_state`); None: start afresh.

    Returns:
      `(loss, ModelAux)`; the loss VALUE is -mean(objective).
    """
    del step
    x = self.check_data(x)
    processor = baselines.from_estimator(estimator)
    if state is None:
      state = self.init_state(key, params, x, estimator)
    surrogate, objective, new_state, diagnostics = self.surrogate(
        params, key, x, processor, state)
    # Magic box: value -objective, gradient -surrogate.
    total = objective + surrogate - jax.lax.stop_gradient(surrogate)
    diagnostics["objective"] = jnp.mean(objective)
    return -jnp.mean(total), ModelAux(objective, new_state, diagnostics)

  def surrogate(self, params, key, x, processor, state):
    """`(surrogate [B], objective [B], new_state, diagnostics)`."""
    raise NotImplementedError

  def log_weights(self, params, key: PRNGKey, x: Array) -> Array:
    """`[...]` log importance weights at one proposal draw per example."""
    raise NotImplementedError

  def log_likelihood(self, params, key: PRNGKey, x: Array, *,
                     num_samples: int = 1000, chunk_size: int = 100,
                     context=None) -> Array:
    """The k-sample importance-weighted bound on log p(x), `[B]`.

    Args:
      params: parameters.
      key: PRNG key.
      x: `[B, D]` binary data.
      num_samples: k (the paper: 1,000).
      chunk_size: samples per chunk.
      context: None (nothing to prepare).
    """
    del context
    x = self.check_data(x)

    def weights(k, n):
      return self.log_weights(params, k, jnp.broadcast_to(x, (n,) + x.shape))

    return iwae.iwae_bound(weights, key, num_samples, chunk_size)

  def greedy_log_likelihood(self, params, key: PRNGKey, x: Array) -> Array:
    """Exact log p(x) of the greedy flow u^* = arg max of p, layer by layer.

    A deterministic XOR flow whose u^*_d depends on x_{<d} only, so the
    likelihood is normalised (the tests check it by enumeration). `[B]`;
    `key` is unused.
    """
    del key
    x = self.check_data(x)
    us, _ = self.generative_scan(params, jax.random.PRNGKey(0), x,
                                 x.shape[:-1], mode=True)
    return jnp.sum(self.rewards(params, x, us), -1)

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """n samples x ~ p(x), `[n, D]` (binary)."""
    checks.check_int("n", n, 1)
    _, x = self.generative_scan(params, key, None, (n,))
    return x

  def extra_evaluations(self) -> Mapping[str, Any]:
    """`greedy_log_likelihood` (`models.base.EvaluationFn`)."""
    return {"greedy_log_likelihood":
                base.without_context(self.greedy_log_likelihood)}


# -- the full posterior --------------------------------------------------------


class FullPath(NamedTuple):
  """A posterior path u ~ q(u|x) of the latent flow and its terms."""
  us: list  # L x [..., D] samples u^{(l)}
  q_logits: list  # L x [..., D] logits of q(u^{(l)} | u^{(l-1)})
  log_p: list  # L x [..., D] log p(u_d^{(l)} | ...) per unit (Eqs. 15-17)
  log_q: list  # L x [..., D] log q(u_d^{(l)} | u^{(l-1)}) per unit
  rewards: Array  # [..., D] r_d = log p_Y(x_d xor u_d^{(1)} ... u_d^{(L)})

  def log_ratios(self) -> list:
    """Per layer, sum_d log p - log q: L x `[...]` (Eq. 27's r)."""
    return [jnp.sum(lp - lq, -1) for lp, lq in zip(self.log_p, self.log_q)]


class FullPosteriorFlow(LatentFlow):
  """The latent XOR flow with a mean-field posterior (Sec. 4, App. A-B)."""

  variant = "sfe_full"

  def __init__(self, data_dim: int = 784, *, depth: int = 1,
               hidden_dims: Sequence[int] = (256,),
               posterior_hidden: Sequence[int] = (256,),
               activation: str = "relu",
               base_prob: float = common.DEFAULT_BASE_PROB,
               learn_base: bool = False, kl_next_scale: float = 1.0,
               incremental_sampler: bool = True):
    """Validates and stores the configuration.

    Args:
      data_dim: D (784 for MNIST).
      depth: number of flow layers L >= 1.
      hidden_dims: hidden widths of every MADE conditioner.
      posterior_hidden: hidden widths of the posterior nets g (Eq. 20).
      activation: a name in `layers.ACTIVATIONS` (MADEs and posteriors).
      base_prob: p(y_d = 1) of the base, in (0, 1).
      learn_base: learn the base logits instead of fixing them.
      kl_next_scale: footnote 5's gamma on the next-layer KL signal.
      incremental_sampler: see `FlowBase`.

    Raises:
      ValueError: naming the bad value.
    """
    checks.check_int("data_dim", data_dim, 1)
    check_full_args(dict(depth=depth, hidden_dims=hidden_dims,
                         posterior_hidden=posterior_hidden,
                         activation=activation, base_prob=base_prob,
                         learn_base=learn_base, kl_next_scale=kl_next_scale))
    self.kl_next_scale = kl_next_scale
    self._setup(data_dim, depth, hidden_dims, activation, base_prob,
                learn_base, incremental_sampler, posterior_hidden)

  def streams(self) -> dict:
    """"recon" (per pixel), "kl_local" (per unit, one per layer) and
    "kl_next" (one per layer below the top; a per-example signal whose
    statistics are replicated over D)."""
    return {"recon": 1, "kl_local": self.depth, "kl_next": self.depth - 1}

  def posterior_path(self, params, key: PRNGKey, x: Array, mode: bool = False
                     ) -> tuple[list, list]:
    """u ~ q(u|x) ancestrally (Eqs. 18-20) or its layer-wise mode:
    `(us, logits)`, L arrays `[..., D]` each."""
    h, us, logits_list = x, [], []
    for layer in range(self.depth):
      logits = self.apply(params, "posterior", layer, h)
      u = (bernoulli.mode(logits) if mode else
           bernoulli.sample(jax.random.fold_in(key, layer), logits))
      u = jax.lax.stop_gradient(u)
      us.append(u)
      logits_list.append(logits)
      h = u
    return us, logits_list

  def full_path(self, params, key: PRNGKey, x: Array, mode: bool = False
                ) -> FullPath:
    """u ~ q(u|x) (or its layer-wise mode) with every term of the ELBO
    integrand of Eq. 21 at that u."""
    us, q_logits = self.posterior_path(params, key, x, mode)
    return FullPath(
        us=us, q_logits=q_logits,
        log_p=self.generative_log_probs(params, x, us),
        log_q=[bernoulli.log_prob(ql, u) for ql, u in zip(q_logits, us)],
        rewards=self.rewards(params, x, us))

  def log_weights(self, params, key: PRNGKey, x: Array) -> Array:
    """log p_Y(t^{-1}(x;u)) + log p(u|x) - log q(u|x) at u ~ q, `[...]`."""
    path = self.full_path(params, key, x)
    return jnp.sum(path.rewards, -1) + sum(path.log_ratios())

  def surrogate(self, params, key, x, processor, state):
    """Appendix A.2 / B: the surrogate whose gradient is the estimator."""
    sample_key, critic_key = jax.random.split(key)
    path = self.full_path(params, sample_key, x)
    log_p, log_q = path.log_p, path.log_q  # L x [B, D] each
    r = path.rewards  # [B, D]
    ratios = jax.lax.stop_gradient(path.log_ratios())  # L x [B]
    objective = jax.lax.stop_gradient(jnp.sum(r, -1) + sum(ratios))
    critic = (self.critic(params, critic_key, x, path, processor.greedy)
              if processor.needs_critic else None)
    stream = _Streams(processor, state, critic)

    # Reconstruction (Eqs. 10a, 25): per-pixel rewards, per-pixel baselines.
    c = stream("recon", 0, r, True)
    score = baselines.score_term(c, log_q[-1], True)  # last layer: local
    for layer in range(self.depth - 1):
      score = score + baselines.score_term(jnp.sum(c, -1), log_q[layer],
                                           False)
    for layer in range(self.depth):
      # Eq. 12b / 31d: suffix sums of the autoregressive log-probabilities.
      a = stream("kl_local", layer,
                 common.suffix_sum(jax.lax.stop_gradient(log_p[layer])), True)
      score = score + baselines.score_term(a, log_q[layer], True)
      if layer < self.depth - 1:
        # Eq. 11b, with the later layers' ratios (reward-to-go; module
        # docstring).
        n = stream("kl_next", layer, sum(ratios[layer + 1:]), False)
        score = score + baselines.score_term(self.kl_next_scale * n,
                                             log_q[layer], False)

    entropy = sum(jnp.sum(bernoulli.entropy(ql), -1) for ql in path.q_logits)
    pathwise = jnp.sum(r, -1) + sum(jnp.sum(lp, -1) for lp in log_p)
    surrogate = pathwise + entropy + score  # Eqs. 22-23, 12a, and the SFEs
    return surrogate, objective, stream.new_state(), stream.diagnostics

  def critic(self, params, key: PRNGKey, x: Array, path: FullPath,
             greedy: bool) -> dict:
    """Self-critic values of every stream (independent of the sample u).

    recon / kl_next: at an independent u' ~ q(u|x) (its layer-wise mode
    when `greedy`); kl_local of layer l: at u'' ~ q(. | u^{(l-1)}) for the
    sampled u^{(l-1)} (or its mode), whose logits the sample's own path
    already computed.
    """
    path_key, local_key = jax.random.split(key)
    critic_path = self.full_path(params, path_key, x, greedy)
    ratios = critic_path.log_ratios()
    kl_local, context = [], x
    for layer, logits in enumerate(path.q_logits):
      u_c = (bernoulli.mode(logits) if greedy else bernoulli.sample(
          jax.random.fold_in(local_key, layer), logits))
      p_logits = self.apply(params, "conditioner", layer, u_c, context)
      kl_local.append(common.suffix_sum(bernoulli.log_prob(p_logits, u_c)))
      context = path.us[layer]
    return jax.lax.stop_gradient({
        "recon": [critic_path.rewards],
        "kl_local": kl_local,
        "kl_next": [sum(ratios[l + 1:]) for l in range(self.depth - 1)]})

  def greedy_posterior_score(self, params, key: PRNGKey, x: Array) -> Array:
    """log p_Y(x \\oplus u^*) with u^* the layer-wise mode of q, `[B]`.

    The paper's "greedy" column for the full posterior. NOT a normalised
    likelihood (q sees all of x, so x -> x \\oplus u^*(x) is not a
    bijection): reported for comparison only. `key` is unused.
    """
    del key
    x = self.check_data(x)
    us, _ = self.posterior_path(params, jax.random.PRNGKey(0), x, mode=True)
    return jnp.sum(self.rewards(params, x, us), -1)

  def extra_evaluations(self) -> Mapping[str, Any]:
    """`greedy_log_likelihood` and `greedy_posterior_score`."""
    return {**super().extra_evaluations(),
            "greedy_posterior_score":
                base.without_context(self.greedy_posterior_score)}


# -- the special case q = p ----------------------------------------------------


class SpecialCaseFlow(LatentFlow):
  """The latent XOR flow with q = p (Sec. 5 "Special case", Appendix C)."""

  variant = "sfe_special"

  def __init__(self, data_dim: int = 784, *, depth: int = 1,
               hidden_dims: Sequence[int] = (256,), activation: str = "relu",
               base_prob: float = common.DEFAULT_BASE_PROB,
               learn_base: bool = False, prefix_scale: float = 1e-3,
               prefix_sample: str = "same", incremental_sampler: bool = True):
    """Validates and stores the configuration.

    Args:
      data_dim: D (784 for MNIST).
      depth: number of flow layers L >= 1.
      hidden_dims: hidden widths of every MADE conditioner.
      activation: a name in `layers.ACTIVATIONS` (MADEs and posteriors).
      base_prob: p(y_d = 1) of the base, in (0, 1).
      learn_base: learn the base logits instead of fixing them.
      prefix_scale: the scale of Eq. 14a's second term (1: unbiased).
      prefix_sample: "same" or "independent" sample for that term.
      incremental_sampler: see `FlowBase`.

    Raises:
      ValueError: naming the bad value.
    """
    checks.check_int("data_dim", data_dim, 1)
    check_special_args(dict(depth=depth, hidden_dims=hidden_dims,
                            activation=activation, base_prob=base_prob,
                            learn_base=learn_base, prefix_scale=prefix_scale,
                            prefix_sample=prefix_sample))
    self.prefix_scale, self.prefix_sample = prefix_scale, prefix_sample
    self._setup(data_dim, depth, hidden_dims, activation, base_prob,
                learn_base, incremental_sampler, None)

  def streams(self) -> dict:
    """One stream, "recon" (per pixel)."""
    return {"recon": 1}

  def log_weights(self, params, key: PRNGKey, x: Array) -> Array:
    """log p_Y(t^{-1}(x;u)) at u ~ p(u|x) (the proposal is p), `[...]`."""
    us, _ = self.generative_scan(params, key, x, x.shape[:-1])
    return jnp.sum(self.rewards(params, x, us), -1)

  def surrogate(self, params, key, x, processor, state):
    """Sec. 5 / Appendix C: Eq. 14a with per-pixel baselines."""
    sample_key, critic_key, prefix_key = jax.random.split(key, 3)
    batch = x.shape[:-1]
    us, _ = self.generative_scan(params, sample_key, x, batch)
    r = self.rewards(params, x, us)  # [B, D]
    objective = jax.lax.stop_gradient(jnp.sum(r, -1))
    critic = None
    if processor.needs_critic:
      us_c, _ = self.generative_scan(params, critic_key, x, batch,
                                     mode=processor.greedy)
      critic = {"recon": [jax.lax.stop_gradient(self.rewards(params, x,
                                                             us_c))]}
    stream = _Streams(processor, state, critic)
    c = stream("recon", 0, r, True)
    group = sum(self.generative_log_probs(params, x, us))  # [B, D]
    local = baselines.score_term(c, group, True)  # Eq. 14a, first term
    if self.prefix_sample == "independent":
      us_p, _ = self.generative_scan(params, prefix_key, x, batch)
      c_p = stream.peek("recon", 0, self.rewards(params, x, us_p), True)
      group_p = sum(self.generative_log_probs(params, x, us_p))
    else:
      c_p, group_p = c, group
    # Second term: r_d scores the prefix u_{<d}: unit k gets sum_{d > k} c_d.
    later = common.suffix_sum(c_p) - c_p
    prefix = baselines.score_term(later, group_p, True)
    surrogate = jnp.sum(r, -1) + local + self.prefix_scale * prefix
    return surrogate, objective, stream.new_state(), stream.diagnostics


class _Streams:
  """Applies the processor to each named stream and collects the new state
  and the diagnostics (a helper of one `surrogate` call)."""

  def __init__(self, processor, state, critic: Optional[dict]):
    self.processor, self.state, self.critic = processor, state, critic
    self.updated = ({name: list(entries) for name, entries in state.items()}
                    if state is not None else None)
    self.diagnostics = {}

  def _apply(self, name: str, index: int, value: Array, per_unit: bool):
    state = None if self.state is None else self.state[name][index]
    critic = None if self.critic is None else self.critic[name][index]
    return self.processor.apply(value, state, critic=critic,
                                per_unit=per_unit)

  def __call__(self, name: str, index: int, value: Array, per_unit: bool
               ) -> Array:
    """The processed signal of stream `name` (layer `index`); records its
    new statistics and diagnostics (keys `<name><layer>/...`)."""
    signal, new_state, info = self._apply(name, index, value, per_unit)
    if self.updated is not None:
      self.updated[name][index] = new_state
    label = name if name == "recon" else f"{name}{index + 1}"
    self.diagnostics.update(baselines.signal_stats(signal, f"{label}/"))
    self.diagnostics[f"{label}/scale"] = jnp.mean(
        jax.lax.stop_gradient(info["scale"]))
    return signal

  def peek(self, name: str, index: int, value: Array, per_unit: bool
           ) -> Array:
    """The processed signal with the same statistics and critic, leaving the
    state and diagnostics alone (a second sample of the same stream)."""
    return self._apply(name, index, value, per_unit)[0]

  def new_state(self):
    if self.updated is None:
      return None
    return {name: tuple(entries) for name, entries in self.updated.items()}


def check_full_args(args: Mapping[str, Any], prefix: str = "") -> None:
  """Raises ValueError naming the bad value of a `FullPosteriorFlow`
  argument (names prefixed by `prefix`, e.g. "config.model.")."""
  common.check_common_args(args, prefix)
  checks.check_ints(prefix + "posterior_hidden", args["posterior_hidden"], 1)
  checks.check_nonnegative(prefix + "kl_next_scale", args["kl_next_scale"])


def check_special_args(args: Mapping[str, Any], prefix: str = "") -> None:
  """Raises ValueError naming the bad value of a `SpecialCaseFlow` argument."""
  common.check_common_args(args, prefix)
  checks.check_nonnegative(prefix + "prefix_scale", args["prefix_scale"])
  checks.check_one_of(prefix + "prefix_sample", args["prefix_sample"],
                      PREFIX_SAMPLES)
