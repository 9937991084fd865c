r"""MADE: masked autoencoder for distribution estimation (Germain et al., 2015).

A feed-forward network whose d-th output depends on the input only through
x_{<d} (in the network's ordering). Every input unit i gets a degree
m(i) \in {1..D} (its position in the ordering), every hidden unit k a degree
m(k) \in {1..D-1} (spread evenly over that range in every layer, see
`hidden_degrees`); a connection is kept when

  input i  -> hidden k:   m(i) <= m(k)        (Germain et al., Eq. 12)
  hidden   -> hidden:     m(k) <= m(k')
  hidden k -> output d:   m(k) <  m(d)        (Eq. 13, strict)
  input i  -> output d:   m(i) <  m(d)        (the optional direct connection)

An optional *context* input c (same length D) conditions every output. Its
mask mode decides what output d may see of it:

  "unmasked":  all of c (a conditional MADE, Germain et al. Sec. 4.2 style);
  "strict":    c_{<d} (c is masked like the input, e.g. c = x in the latent
               XOR flow's first layer, where u_d may depend on x_{<d} only);
  "inclusive": c_{<=d} (c_i is given degree m(i) - 1 towards the hidden
               layer and may reach output d directly when m(i) <= m(d)).

The latent XOR flow (models/xor_flow.py) needs the masked modes to stay a
normalised model; see its module docstring.

Besides the usual full pass, a MADE with at most one hidden layer can be run
*incrementally* (`IncrementalMADE`): contributions of input / context units
are added one at a time and the logit of unit d is read off in O(H), so an
autoregressive sampler costs O(D H) per sample instead of D full passes.

References:
  Germain, Gregor, Murray & Larochelle (2015), MADE: Masked Autoencoder for
    Distribution Estimation.
"""

from typing import Callable, NamedTuple, Optional, Sequence, Union

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.models import layers
from discrete_vi.types import Array

CONTEXT_MODES = ("unmasked", "strict", "inclusive")

class Masks(NamedTuple):
  """Binary connectivity masks (numpy, static) of one MADE.

  Attributes:
    hidden: one `[fan_in, width]` mask per hidden layer (input -> first
      hidden, then hidden -> hidden).
    output: `[last width (or D), D]` mask into the outputs.
    direct: `[D, D]` input -> output mask (strict).
    context_hidden: `[D, first width]` context -> first hidden (None without
      context or hidden layers).
    context_output: `[D, D]` context -> output mask (None without context).
    order: `[D]` input degrees m(i) (a permutation of 1..D).
  """
  hidden: tuple
  output: np.ndarray
  direct: np.ndarray
  context_hidden: Optional[np.ndarray]
  context_output: Optional[np.ndarray]
  order: np.ndarray


def check_order(order: Union[str, int]) -> None:
  """Raises ValueError unless `order` is "natural" or an integer seed >= 0."""
  if isinstance(order, str):
    valid = order == "natural"
  else:
    valid = checks.is_int(order) and order >= 0
  if not valid:
    raise ValueError(f"order must be 'natural' or an integer seed >= 0; got "
                     f"order={order!r}.")


def input_degrees(num_units: int, order: Union[str, int]) -> np.ndarray:
  """Degrees 1..D of the inputs: natural order, or a seeded permutation."""
  check_order(order)
  if isinstance(order, str):
    return np.arange(1, num_units + 1)
  return np.random.default_rng(order).permutation(num_units) + 1


def spread_degrees(width: int, low: int, high: int) -> np.ndarray:
  r"""`width` integer degrees spread evenly over [low, high], both ends in.

  With n = high - low + 1 values: a layer at least n wide cycles
  low, ..., high, low, ... (every value used \lfloor W / n \rfloor or
  \lceil W / n \rceil times); a narrower one takes the distinct values
  low + \lfloor k (n - 1) / (W - 1) \rfloor, k = 0..W-1 (steps differing by
  at most one); a single unit takes `high`.

  Args:
    width: number of units W >= 1.
    low: smallest degree allowed.
    high: largest degree allowed (>= low).

  Returns:
    `[width]` int degrees in [low, high].
  """
  span = high - low + 1
  if width >= span:
    return low + np.arange(width) % span
  if width == 1:
    return np.array([high])
  return low + np.arange(width) * (high - low) // (width - 1)


def hidden_degrees(num_units: int, widths: Sequence[int]) -> list[np.ndarray]:
  r"""Degrees in [1, D - 1] of each hidden layer's units.

  Layer l's degrees are spread evenly (`spread_degrees`) over
  [\min_k m^{l-1}(k), D - 1], where m^0 are the input degrees (min 1): the
  range from which deep MADE samples m^l(k) uniformly (Germain et al., 2015,
  Sec. 4.2), so every unit of layer l has a parent in layer l - 1. Spread
  rather than sampled, every layer holds the top degree D - 1 and (unless a
  layer of width 1, whose one unit takes D - 1, comes before) the bottom
  degree 1. Hence, whatever the widths:

  * every input of degree < D reaches a first-layer unit (a sample of
    W < D - 1 degrees leaves the inputs above its largest one unseen by any
    hidden unit);
  * every output of degree > 1 reads a last-layer unit, unless a layer has
    width 1 (then only output D does);
  * with every width >= D - 1 each degree is present in each layer, so
    output d reaches every x_{<d} through the hidden layers;
  * W < D - 1 units cannot hold every degree (some x_{d-1} -> output d has
    no hidden path), but the gaps between their degrees are the smallest W
    values allow, at most \lceil (D - 2) / (W - 1) \rceil; through one such
    layer (the others as wide as D - 1 or of the same width) an input that
    many places or more before output d reaches it.

  Degrees count positions in the ordering, so the same degrees serve the
  natural and every seeded order, and the masks are a function of
  (D, widths, order, context) alone.

  Args:
    num_units: D >= 1 (D = 1 gives degree 1: no output reads the layer).
    widths: the hidden widths, each >= 1.

  Returns:
    One `[width]` int array per hidden layer.

  Raises:
    ValueError: naming `num_units` or `hidden_dims` when not >= 1.
  """
  checks.check_int("num_units", num_units)
  checks.check_ints("hidden_dims", widths)
  top = max(num_units - 1, 1)
  degrees, low = [], 1
  for width in widths:
    m = spread_degrees(width, low, top)
    degrees.append(m)
    low = int(m.min())
  return degrees


def make_masks(num_units: int, widths: Sequence[int],
               order: Union[str, int] = "natural",
               context: Optional[str] = None) -> Masks:
  """The masks of a MADE on D = `num_units` inputs (see module docstring)."""
  checks.check_one_of("context", context, (None, *CONTEXT_MODES))
  m_in = input_degrees(num_units, order)
  m_hidden = hidden_degrees(num_units, widths)
  hidden, below = [], m_in
  for m in m_hidden:
    hidden.append((below[:, None] <= m[None, :]).astype(np.float32))
    below = m
  last = m_hidden[-1] if m_hidden else None
  output = ((last[:, None] < m_in[None, :]).astype(np.float32) if m_hidden
            else np.zeros((0, num_units), np.float32))
  direct = (m_in[:, None] < m_in[None, :]).astype(np.float32)
  context_hidden = context_output = None
  if context is not None:
    shift = {"unmasked": None, "strict": 0, "inclusive": 1}[context]
    first = m_hidden[0] if m_hidden else None
    if shift is None:
      context_output = np.ones((num_units, num_units), np.float32)
      if first is not None:
        context_hidden = np.ones((num_units, len(first)), np.float32)
    else:
      context_output = (m_in[:, None] - shift < m_in[None, :]).astype(
          np.float32)
      if first is not None:
        context_hidden = (m_in[:, None] - shift <= first[None, :]).astype(
            np.float32)
  return Masks(tuple(hidden), output, direct, context_hidden, context_output,
               m_in)


class MaskedDense(nn.Module):
  """A dense layer whose kernel is multiplied by a fixed 0/1 mask."""
  mask: np.ndarray  # [fan_in, features]
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, h: Array) -> Array:
    kernel = self.param("kernel", self.kernel_init, self.mask.shape)
    out = h @ (kernel * jnp.asarray(self.mask, kernel.dtype))
    if self.use_bias:
      out = out + self.param("bias", nn.initializers.zeros,
                             (self.mask.shape[1],))
    return out


class MADE(nn.Module):
  """Masked autoencoder: `[..., D]` inputs -> `[..., D]` (or `[..., D, n]`).

  Attributes:
    hidden_dims: widths of the hidden layers (may be empty: then a fully
      visible sigmoid belief net through the direct connection).
    num_outputs: outputs per unit n (1 gives `[..., D]`).
    order: "natural" or an integer seed of a random order.
    context: None, or the mask mode of the context input (`CONTEXT_MODES`).
    activation: a name in `layers.ACTIVATIONS` ("relu", "tanh", "elu",
      "leaky_relu").
    direct: keep the input -> output connection.
  """
  hidden_dims: Sequence[int] = (256,)
  num_outputs: int = 1
  order: Union[str, int] = "natural"
  context: Optional[str] = None
  activation: str = "relu"
  direct: bool = True

  def masks(self, num_units: int) -> Masks:
    return make_masks(num_units, self.hidden_dims, self.order, self.context)

  @nn.compact
  def __call__(self, x: Array, context: Optional[Array] = None) -> Array:
    """Logits; output d depends on x only through x_{<d} (in `order`).

    Args:
      x: `[..., D]`.
      context: `[..., D]`, required iff `self.context` is set.

    Returns:
      `[..., D]` when num_outputs == 1, else `[..., D, num_outputs]`.
    """
    d = x.shape[-1]
    if (context is None) != (self.context is None):
      raise ValueError(f"MADE(context={self.context!r}) called with "
                       f"context={'None' if context is None else 'an array'}.")
    if context is not None and context.shape[-1] != d:
      raise ValueError(f"context must have D={d} entries like x; got "
                       f"context.shape={context.shape}.")
    checks.check_int("num_outputs", self.num_outputs)
    act = layers.activation(self.activation)
    masks = self.masks(d)
    n = self.num_outputs
    h = x
    for i, mask in enumerate(masks.hidden):
      pre = MaskedDense(mask, name=f"hidden_{i}")(h)
      if i == 0 and masks.context_hidden is not None:
        pre = pre + MaskedDense(masks.context_hidden, use_bias=False,
                                name="context_hidden")(context)
      h = act(pre)
    if not masks.hidden:
      h = x[..., :0]  # no hidden layer: the output layer is a bias only.
    # Outputs are unit-major: column d * n + j is output j of unit d.
    out = MaskedDense(np.repeat(masks.output, n, 1), name="output",
                      kernel_init=(nn.initializers.lecun_normal()
                                   if masks.hidden else
                                   nn.initializers.zeros))(h)
    if self.direct:
      out = out + MaskedDense(np.repeat(masks.direct, n, 1), use_bias=False,
                              name="direct")(x)
    if masks.context_output is not None:
      out = out + MaskedDense(np.repeat(masks.context_output, n, 1),
                              use_bias=False, name="context_output")(context)
    if n == 1:
      return out
    return out.reshape(out.shape[:-1] + (d, n))


class IncrementalState(NamedTuple):
  """Running pre-activations of an `IncrementalMADE`.

  Attributes:
    hidden: `[..., H]` pre-activation of the hidden layer (bias included).
    output: `[..., D]` direct and context contributions to the output logits
      (bias included).
  """
  hidden: Array
  output: Array


class IncrementalMADE(NamedTuple):
  """A MADE with <= 1 hidden layer, run one unit at a time (num_outputs 1).

  Because every masked weight is exactly zero, adding the contribution of
  input i (or context i) to the running pre-activations never changes what
  an output that may not see i computes; so units may be added in the order
  they become known and logit d read off as soon as its parents are in.

  Attributes:
    w_hidden: `[D, H]` masked input -> hidden kernel.
    w_context: `[D, H]` masked context -> hidden kernel (zeros without).
    w_output: `[H, D]` masked hidden -> output kernel.
    w_direct: `[D, D]` masked input -> output kernel (zeros without).
    w_context_output: `[D, D]` masked context -> output (zeros without).
    b_hidden: `[H]`; b_output: `[D]`.
    activation: the hidden nonlinearity.
  """
  w_hidden: Array
  w_context: Array
  w_output: Array
  w_direct: Array
  w_context_output: Array
  b_hidden: Array
  b_output: Array
  activation: Callable

  @classmethod
  def from_params(cls, made: MADE, params: dict, num_units: int
                  ) -> "IncrementalMADE":
    """Masked kernels of `made` (its `params` subtree) for D = num_units."""
    activation = layers.activation(made.activation)
    if len(made.hidden_dims) > 1 or made.num_outputs != 1:
      raise ValueError("IncrementalMADE needs at most one hidden layer and "
                       f"num_outputs=1; got hidden_dims={made.hidden_dims}, "
                       f"num_outputs={made.num_outputs}.")
    masks = made.masks(num_units)
    width = made.hidden_dims[0] if made.hidden_dims else 0

    def masked(name, mask):
      if name not in params:
        return jnp.zeros(mask.shape, jnp.float32)
      return params[name]["kernel"] * jnp.asarray(mask)

    zeros_dh = np.zeros((num_units, width), np.float32)
    return cls(
        w_hidden=masked("hidden_0", masks.hidden[0] if width else zeros_dh),
        w_context=masked("context_hidden", masks.context_hidden
                         if masks.context_hidden is not None else zeros_dh),
        w_output=masked("output", masks.output),
        w_direct=masked("direct", masks.direct),
        w_context_output=masked(
            "context_output", masks.context_output
            if masks.context_output is not None
            else np.zeros((num_units, num_units), np.float32)),
        b_hidden=(params["hidden_0"]["bias"] if width
                  else jnp.zeros((0,), jnp.float32)),
        b_output=params["output"]["bias"],
        activation=activation)

  def start(self, batch_shape: tuple[int, ...],
            context: Optional[Array] = None) -> IncrementalState:
    """Biases only, plus the whole of `context` when it is known upfront."""
    hidden = jnp.broadcast_to(self.b_hidden, batch_shape + self.b_hidden.shape)
    output = jnp.broadcast_to(self.b_output, batch_shape + self.b_output.shape)
    if context is not None:
      hidden = hidden + context @ self.w_context
      output = output + context @ self.w_context_output
    return IncrementalState(hidden, output)

  def add_input(self, state: IncrementalState, i, value: Array
                ) -> IncrementalState:
    """Adds input unit i (traced index ok) with values `[...]`."""
    return IncrementalState(
        state.hidden + value[..., None] * self.w_hidden[i],
        state.output + value[..., None] * self.w_direct[i])

  def add_context(self, state: IncrementalState, i, value: Array
                  ) -> IncrementalState:
    """Adds context unit i (traced index ok) with values `[...]`."""
    return IncrementalState(
        state.hidden + value[..., None] * self.w_context[i],
        state.output + value[..., None] * self.w_context_output[i])

  def logit(self, state: IncrementalState, d) -> Array:
    """Output logit of unit d, `[...]`, from what has been added so far."""
    hidden = self.activation(state.hidden)  # [..., H]
    return state.output[..., d] + hidden @ self.w_output[:, d]


class FullPassMADE(NamedTuple):
  """The `IncrementalMADE` interface for any MADE, by full passes.

  The state holds the inputs and context known so far (zeros elsewhere);
  `logit` runs the whole network and reads output d. Costs one full pass per
  unit (D passes per sample): the fallback for MADEs with several hidden
  layers or an unmasked context.
  """
  made: MADE
  params: dict

  def start(self, batch_shape: tuple[int, ...],
            context: Optional[Array] = None) -> IncrementalState:
    d = self.params["output"]["bias"].shape[-1]
    zeros = jnp.zeros(batch_shape + (d,), jnp.float32)
    return IncrementalState(zeros, zeros if context is None else context)

  def add_input(self, state, i, value):
    return state._replace(hidden=state.hidden.at[..., i].set(value))

  def add_context(self, state, i, value):
    return state._replace(output=state.output.at[..., i].set(value))

  def logit(self, state, d) -> Array:
    context = state.output if self.made.context is not None else None
    return self.made.apply({"params": self.params}, state.hidden,
                           context)[..., d]


def unit_evaluator(made: MADE, params: dict, num_units: int):
  """An `IncrementalMADE` when the MADE allows it, else a `FullPassMADE`.

  Both offer start / add_input / add_context / logit, so an autoregressive
  sampler is written once.
  """
  if (len(made.hidden_dims) <= 1 and made.num_outputs == 1 and
      made.context != "unmasked"):
    return IncrementalMADE.from_params(made, params, num_units)
  return FullPassMADE(made, params)
