r"""Residual convolutional blocks: gated, weight-normalised, with dropout and
optional squeeze-and-excitation; one module for every convolutional model.

A block maps a feature map h `[..., H, W, C]` to h + r(h) with

  r(h) = SE(gate(conv_2(dropout(act(conv_1(act(h)))))))

where conv_1 has C filters, conv_2 has 2C for the gated linear unit
gate([a, b]) = a \odot \sigma(b) (van den Oord et al., 2016; the residual
blocks of IAF, Kingma et al., 2016, and BIVA, Maaloe et al., 2019, as used
by HD-VAE, Lievin et al., 2019, Appendix A), or C without the gate and
r = conv_2(...). Every convolution may be weight-normalised
(w = g v / \|v\|, Salimans & Kingma, 2016). SE is the squeeze-and-excitation
reweighting s = \sigma(W_2 relu(W_1 mean_{HW}(r))), r \odot s (Hu et al.,
2018; off by default). Blocks preserve the resolution; `Resample` changes it.

References:
  Salimans & Kingma (2016), "Weight normalization".
  van den Oord et al. (2016), "Conditional image generation with PixelCNN
    decoders" (gated activations).
  Kingma et al. (2016), "Improving variational inference with inverse
    autoregressive flow".
  Hu, Shen & Sun (2018), "Squeeze-and-excitation networks".
  Maaloe, Fraccaro, Lievin & Winther (2019), "BIVA".
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.models import layers
from discrete_vi.types import Array

WEIGHT_NORM_EPS = 1e-8


def weight_normalize(v: Array, g: Array) -> Array:
  r"""w = g v / \|v\| with the norm over every axis but the last (outputs).

  Args:
    v: `[..., C_out]` direction parameters (e.g. `[kh, kw, C_in, C_out]`).
    g: `[C_out]` scales.
  """
  axes = tuple(range(v.ndim - 1))
  norm = jnp.sqrt(jnp.sum(jnp.square(v), axes, keepdims=True) +
                  WEIGHT_NORM_EPS)
  return g * v / norm


class Conv(nn.Module):
  """A 2-D convolution ('SAME' padding), weight-normalised by option.

  Attributes:
    features: output channels.
    kernel_size: square kernel side.
    strides: stride of both spatial axes.
    weight_norm: w = g v / |v| (Salimans & Kingma, 2016); g starts at 1.
  """
  features: int
  kernel_size: int = 3
  strides: int = 1
  weight_norm: bool = True

  @nn.compact
  def __call__(self, h: Array) -> Array:
    shape = (self.kernel_size, self.kernel_size, h.shape[-1], self.features)
    v = self.param("kernel", nn.initializers.lecun_normal(), shape)
    w = v
    if self.weight_norm:
      w = weight_normalize(v, self.param("scale", nn.initializers.ones,
                                         (self.features,)))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    out = jax.lax.conv_general_dilated(
        h, w.astype(h.dtype), (self.strides,) * 2, "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out + b


def _conv_batched(conv: nn.Module, h: Array) -> Array:
  """Applies a convolution to `[..., H, W, C]` (any leading batch axes)."""
  lead = h.shape[:-3]
  out = conv(h.reshape((-1,) + h.shape[-3:]))
  return out.reshape(lead + out.shape[1:])


class SqueezeExcitation(nn.Module):
  """Channel reweighting r * sigmoid(W_2 relu(W_1 mean_HW(r))) (Hu et al.)."""
  reduction: int = 4

  @nn.compact
  def __call__(self, r: Array) -> Array:
    channels = r.shape[-1]
    s = jnp.mean(r, axis=(-3, -2))  # [..., C]
    s = nn.relu(nn.Dense(max(channels // self.reduction, 1), name="squeeze")(s))
    s = jax.nn.sigmoid(nn.Dense(channels, name="excite")(s))
    return r * s[..., None, None, :]


class ResidualBlock(nn.Module):
  """h + r(h), r as in the module docstring; channels preserved.

  Attributes:
    kernel_size: kernel side of both convolutions.
    gated: gated linear unit on conv_2's 2C outputs (HD-VAE, BIVA).
    weight_norm: weight-normalise both convolutions.
    dropout_rate: dropout between the convolutions (0.5 in HD-VAE).
    squeeze_excitation: reduction ratio of an SE reweighting, or None.
    activation: a key of `layers.ACTIVATIONS` ("elu" in IAF/BIVA).
  """
  kernel_size: int = 3
  gated: bool = True
  weight_norm: bool = True
  dropout_rate: float = 0.0
  squeeze_excitation: Optional[int] = None
  activation: str = "elu"

  @nn.compact
  def __call__(self, h: Array, *, deterministic: bool = True) -> Array:
    act = layers.activation(self.activation)
    channels = h.shape[-1]
    r = _conv_batched(Conv(channels, self.kernel_size,
                           weight_norm=self.weight_norm, name="conv_1"), act(h))
    r = nn.Dropout(self.dropout_rate)(act(r), deterministic=deterministic)
    width = 2 * channels if self.gated else channels
    r = _conv_batched(Conv(width, self.kernel_size,
                           weight_norm=self.weight_norm, name="conv_2"), r)
    if self.gated:
      a, b = jnp.split(r, 2, axis=-1)
      r = a * jax.nn.sigmoid(b)
    if self.squeeze_excitation:
      r = SqueezeExcitation(self.squeeze_excitation, name="se")(r)
    return h + r


class ResidualStack(nn.Module):
  """`num_blocks` residual blocks in sequence (3 per connection in HD-VAE).

  Attributes:
    num_blocks: >= 0 blocks (0: the identity).
    kernel_size, gated, weight_norm, dropout_rate, squeeze_excitation,
    activation: the settings of every block (see `ResidualBlock`).
  """
  num_blocks: int = 3
  kernel_size: int = 3
  gated: bool = True
  weight_norm: bool = True
  dropout_rate: float = 0.0
  squeeze_excitation: Optional[int] = None
  activation: str = "elu"

  @nn.compact
  def __call__(self, h: Array, *, deterministic: bool = True) -> Array:
    checks.check_int("num_blocks", self.num_blocks, 0)
    checks.check_in_range("dropout_rate", self.dropout_rate, 0.0, 1.0,
                          high_open=True)
    for i in range(self.num_blocks):
      h = ResidualBlock(self.kernel_size, self.gated, self.weight_norm,
                        self.dropout_rate, self.squeeze_excitation,
                        self.activation, name=f"block_{i}")(
                            h, deterministic=deterministic)
    return h


class Resample(nn.Module):
  """Changes resolution by an integer factor: a strided convolution down, or
  nearest-neighbour upsampling followed by a convolution up.

  Attributes:
    features: output channels.
    factor: > 1 downsamples H, W by it; < -1 upsamples by -factor; 1 keeps.
    kernel_size, weight_norm: of the convolution.
  """
  features: int
  factor: int = 2
  kernel_size: int = 3
  weight_norm: bool = True

  @nn.compact
  def __call__(self, h: Array) -> Array:
    strides = self.factor if self.factor > 1 else 1
    if self.factor < -1:
      h = jnp.repeat(jnp.repeat(h, -self.factor, -3), -self.factor, -2)
    return _conv_batched(Conv(self.features, self.kernel_size, strides,
                              self.weight_norm, name="conv"), h)
