r"""The deterministic XOR flow trained by straight-through (Hesselink & Aziz
2020, Sec. 3).

A flow of depth L on x \in {0,1}^D. Layer l computes
u^{(l)} = h(\sigma(f_l(x^{(l-1)}))) with the threshold h of Eq. 5 and
x^{(l)} = x^{(l-1)} \oplus u^{(l)} (Eq. 4), x^{(0)} = x; f_l is a MADE, so
u_d^{(l)} depends on x_{<d}^{(l-1)} only and every layer is a bijection of
{0,1}^D. The likelihood is exact (Eq. 2): log p(x) = log p_Y(x^{(L)}) with
the factorial base p_Y of Eq. 3.

h has no useful derivative. Training replaces its Jacobian by the identity:
the estimator the flow is given (`straight_through` with variant
"deterministic": value h(\sigma(f)), gradient that of \sigma(f)) is applied
to each layer's logits, nested, so that layer l's objective is the rest of
the flow, x^{(l)} -> log p_Y(x^{(L)}). Gradients thus flow into the base,
into each conditioner's parameters, and through later conditioners' inputs.

Sampling inverts the flow pixel by pixel: x_d^{(l-1)} = x_d^{(l)} \oplus
h(f_l(x_{<d}^{(l-1)})).

References:
  Hesselink & Aziz (2020), Latent Transformations for Discrete-Data
    Normalising Flows.
  Tran, Vafa, Agrawal, Dinh & Poole (2019), Discrete Flows.
  Bengio, Léonard & Courville (2013), Estimating or Propagating Gradients
    Through Stochastic Neurons for Conditional Computation.
"""

from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.models import xor_flow_common as common
from discrete_vi.models.base import ModelAux
from discrete_vi.stochastic import chain
from discrete_vi.stochastic import latents
from discrete_vi.types import Array, Estimator, PRNGKey


_PART = latents.Bernoulli()  # every layer's u


class STEFlowModule(nn.Module):
  """The parameters: one MADE conditioner per layer (on x^{(l-1)}), base."""
  data_dim: int
  depth: int
  hidden_dims: Sequence[int]
  activation: str
  base_prob: float
  learn_base: bool

  def setup(self):
    self.conditioners = [
        common.conditioner_made(None, self.hidden_dims, self.activation)
        for _ in range(self.depth)]
    self.base_logits = common.base_param(self, self.data_dim, self.base_prob,
                                         self.learn_base)

  def conditioner(self, layer: int, h: Array) -> Array:
    """Logits `[..., D]` of f_{layer+1}(h) (Eq. 5's argument)."""
    return self.conditioners[layer](h)

  def base(self) -> Array:
    """Logits `[D]` of the base p_Y."""
    return self.base_logits

  def __call__(self, x: Array):
    """Touches every parameter once (for `init`)."""
    return [self.base()] + [self.conditioner(l, x) for l in range(self.depth)]


class STEFlow(common.FlowBase):
  """The deterministic XOR flow and the pure functions around it.

  Holds only static configuration; `init`, `init_state`, `loss`,
  `log_likelihood`, `sample` and `extra_evaluations` follow
  `discrete_vi.models.base.Model`.
  """

  def __init__(self, data_dim: int = 784, *, depth: int = 1,
               hidden_dims: Sequence[int] = (256,), activation: str = "relu",
               base_prob: float = common.DEFAULT_BASE_PROB,
               learn_base: bool = False, incremental_sampler: bool = True):
    """Validates and stores the configuration.

    Args:
      data_dim: D (784 for MNIST).
      depth: number of flow layers L >= 1.
      hidden_dims: hidden widths of every MADE conditioner.
      activation: a name in `layers.ACTIVATIONS`.
      base_prob: p(y_d = 1) of the base, in (0, 1).
      learn_base: learn the base logits instead of fixing them.
      incremental_sampler: see `FlowBase`.

    Raises:
      ValueError: naming the bad value.
    """
    checks.check_int("data_dim", data_dim, 1)
    check_args(dict(depth=depth, hidden_dims=hidden_dims,
                    activation=activation, base_prob=base_prob,
                    learn_base=learn_base))
    self.data_dim, self.depth = data_dim, depth
    self.incremental_sampler = incremental_sampler
    self.description = f"xor_flow:ste,depth={depth}"
    self.mades = tuple(common.conditioner_made(None, hidden_dims, activation)
                       for _ in range(depth))
    self.module = STEFlowModule(data_dim, depth, tuple(hidden_dims),
                                activation, float(base_prob), learn_base)

  # -- the flow ----------------------------------------------------------------

  def log_prob(self, params, x: Array, estimator: Estimator,
               key: Optional[PRNGKey] = None) -> tuple[Array, Array]:
    r"""log p(x) = log p_Y(t^{-1}(x)) (Eq. 2) and its surrogate.

    Layer l: u = h(\sigma(f_l(x^{(l-1)}))) and x^{(l)} = x^{(l-1)} \oplus u,
    each layer a `stochastic.latents.Bernoulli` drawn through `estimator`
    by `stochastic.chain` (straight-through in one pass; an estimator that
    needs f nests, so that layer l's objective is the rest of the flow).

    Args:
      params: parameters.
      x: `[B, D]` binary data.
      estimator: a binary estimator for every layer: `straight_through`
        with variant "deterministic" (value h, Jacobian identity); a
        stochastic one would make the flow random.
      key: PRNG key for stochastic estimators (default a fixed key).

    Returns:
      `(surrogate [B], log_px [B])`: the surrogate's gradient is the STE
      gradient; both equal log p(x) in value.
    """
    def run(sampler, hard):
      del hard

      def layer(l, h):
        if l == self.depth:
          return jnp.sum(self.base_log_prob(params, h), -1)
        logits = self.apply(params, "conditioner", l, h)
        return sampler(l, _PART, logits,
                       lambda draw: layer(l + 1, common.xor(h, draw.z)))
      return layer(0, x)

    key = jax.random.PRNGKey(0) if key is None else key
    result = chain.training_pass(run, estimator, key)
    return result.surrogate, result.objective

  def to_base(self, params, x: Array) -> Array:
    """y = t^{-1}(x) with hard thresholds (no gradient), `[..., D]`."""
    h = x
    for layer in range(self.depth):
      logits = self.apply(params, "conditioner", layer, h)
      h = common.xor(h, bernoulli.mode(logits))
    return h

  def from_base(self, params, y: Array) -> Array:
    """x = t(y): inverts the flow pixel by pixel, `[..., D]`.

    x^{(l-1)}_d = x^{(l)}_d \\oplus h(f_l(x^{(l-1)}_{<d})), for d = 1..D
    (outer) and l = L..1 (inner), one `lax.scan` over d.
    """
    evaluators = self.evaluators(params)
    states0 = tuple(ev.start(y.shape[:-1]) for ev in evaluators)

    def step(states, d):
      states = list(states)
      value = y[..., d]
      for layer in reversed(range(self.depth)):
        u = (evaluators[layer].logit(states[layer], d) > 0).astype(y.dtype)
        value = common.xor(value, u)  # x^{(layer)}_d
        states[layer] = evaluators[layer].add_input(states[layer], d, value)
      return tuple(states), value

    _, xs = jax.lax.scan(step, states0, jnp.arange(self.data_dim))
    return jnp.moveaxis(xs, 0, -1)

  # -- the model contract ------------------------------------------------------

  def init_state(self, key: PRNGKey, params, x_example: Array,
                 estimator: Estimator) -> None:
    """The STE flow carries no state between steps: None."""
    del key, params, estimator
    self.check_data(x_example)
    return None

  def loss(self, params, key: PRNGKey, x: Array, *, step=0,
           estimator: Estimator, state=None) -> tuple[Array, ModelAux]:
    """-mean log p(x); its gradient is the straight-through estimate.

    Args:
      params: parameters.
      key: PRNG key (used only by a stochastic estimator).
      x: `[B, D]` binary data.
      step: unused (no schedules).
      estimator: the per-layer estimator (`log_prob`).
      state: unused (None).

    Returns:
      `(loss, ModelAux(log p(x) [B], None, {}))`.
    """
    del step, state
    x = self.check_data(x)
    surrogate, log_px = self.log_prob(params, x, estimator, key)
    return -jnp.mean(surrogate), ModelAux(log_px, None, {})

  def log_likelihood(self, params, key: PRNGKey, x: Array, *,
                     num_samples: int = 1, chunk_size: int = 1,
                     context=None) -> Array:
    """The exact log p(x), `[B]` (`num_samples`, `chunk_size`, `context`
    unused)."""
    del key, num_samples, chunk_size, context
    return jnp.sum(self.base_log_prob(params, self.to_base(
        params, self.check_data(x))), -1)

  def greedy_log_likelihood(self, params, key: PRNGKey, x: Array) -> Array:
    """The deterministic flow is its own greedy flow: `log_likelihood`."""
    return self.log_likelihood(params, key, x)

  def sample(self, params, key: PRNGKey, n: int) -> Array:
    """n samples x = t(y), y ~ p_Y, `[n, D]` (binary)."""
    checks.check_int("n", n, 1)
    base = self.apply(params, "base")
    y = bernoulli.sample(key, jnp.broadcast_to(base, (n, self.data_dim)))
    return self.from_base(params, y)

  def extra_evaluations(self) -> Mapping[str, Any]:
    """None: `log_likelihood` is already exact."""
    return {}


def check_args(args: Mapping[str, Any], prefix: str = "") -> None:
  """Raises ValueError naming the bad value of an `STEFlow` argument."""
  common.check_common_args(args, prefix)
