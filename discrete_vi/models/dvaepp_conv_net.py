r"""The networks of the convolutional DVAE++ (Vahdat et al., 2018, Sec. 6.2).

Every conditional of Fig. 3 is a stack of residual blocks with
squeeze-and-excitation (`residual.ResidualStack`: gated, weight-normalised
convolutions; no batch norm, so the model has no batch statistics and an
example's bound does not depend on its batch), fully connected layers, or
convolutions. With `levels` the resolutions ceil(H / 2^l) x ceil(W / 2^l),
l = 0..K, K the fewest halvings that reach at most 4 x 4 (`num_downsamplings`:
K = 3 for 28 x 28 and 32 x 32, 1 for 8 x 8):

* encoder: a stem convolution, then at each level a residual stack, a
  stride-2 convolution (`residual.Resample`) between levels. Its top level
  (<= 4 x 4), flattened, feeds the fully connected heads of
  q(z_g | x, \zeta_{<g}) (hidden layer of `global_hidden`, input [features,
  \zeta_{<g}]); its level `local_level` (the intermediate scale: 7 x 7 for
  MNIST, 8 x 8 for CIFAR-10 at the default 2) feeds the local heads.
* top-down (generative and inference share it, as the ladder of IAF /
  Kingma et al., 2016): s_0 = stack(reshape(dense(\zeta))) at the
  intermediate scale; for each local group j, p(h_j | \zeta, h_{<j}) =
  head(stack(s_{j-1})), q(h_j | x, \zeta, h_{<j}) = head(stack(conv([s_{j-1},
  e(x)]))), and s_j = s_{j-1} + conv(h_j). So q(h_j | .) and p(h_j | .) see
  h_{<j} only through s_{j-1}: never h_{>=j}. The J groups' networks
  (`LocalGroup`) have the same shapes; the model stacks their parameters
  and runs them in one `jax.lax.scan`, so a model with J groups compiles
  the network of one.
* decoder: from s_J, upsampling (nearest neighbour x 2, convolution, stack,
  crop to the level's size) to every finer level and strided convolutions to
  every coarser one; then either the multi-scale data conditionals (one per
  scale, below) or one factorial head at full size.

Multi-scale split of x (Reed et al., 2017; Sec. 6.1). Scale i = 0..K is the
SUBSAMPLED image x_i = x[::s_i, ::s_i] with stride s_i = 2^{K-i}: x_0 is 4 x 4
(28 x 28 -> 4, 7, 14, 28; 32 x 32 -> 4, 8, 16, 32), x_K = x. Since s_{i-1} =
2 s_i, x_{i-1} is exactly the even-row, even-column pixels of x_i
(`known_mask`), so the new pixels of scales 0..K partition the pixels of x
and p(x | \zeta, h) = p(x_0 | .) \prod_{i>=1} p(x_i \ x_{i-1} | ., x_{i-1}) is
a proper likelihood of x, each factor factorial over the new pixels of its
scale. The network of scale i sees the decoder features at level K - i and
x_{i-1} (x_i with its new pixels zeroed, plus the mask), never a pixel of x_i
that it models. The same split serves binary and 8-bit images (pixels are
not averaged, so their values stay in their own set).

Pixel distributions: Bernoulli logits (binary), or a discretised logistic
mixture (`distributions.discretized_logistic`, uint8), per channel; output
heads start near zero with a per-pixel bias initialised at the training mean
(logit(clip(mean, 1e-3, 0.999)), or the mean value for the mixtures' means).

References:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++. ICML.
  Reed et al. (2017), Parallel multiscale autoregressive density estimation.
  Hu, Shen & Sun (2018), Squeeze-and-excitation networks.
  Kingma et al. (2016), Improving variational inference with IAF.
"""

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi.distributions import discretized_logistic as dlogistic
from discrete_vi.models import layers
from discrete_vi.models import residual
from discrete_vi.stochastic import rbm_prior as rbm_prior_lib
from discrete_vi.types import Array

MAX_BASE_SIDE = 4  # the coarsest scale x_0 is at most 4 x 4
MEAN_CLIP = (1e-3, 0.999)  # binary pixel-bias init: logit(clip(mean))
LOG_SCALE_CLIP = (-7.0, 5.0)  # normal latents' log standard deviations
MIXTURE_INIT_LOG_SCALE = math.log(32.0)  # pixel units, at init
HALF_RANGE = 127.5  # 8-bit values v enter networks as v / 127.5 - 1
HEAD_INIT = nn.initializers.normal(1e-2)  # near zero, breaks symmetry


def num_downsamplings(image_shape: Sequence[int]) -> int:
  """K: the fewest halvings (ceil) of H and W that reach <= 4 x 4."""
  height, width = image_shape[:2]
  k = 0
  while max(math.ceil(height / 2**k), math.ceil(width / 2**k)) > MAX_BASE_SIDE:
    k += 1
  return k


def level_shape(image_shape: Sequence[int], level: int) -> tuple[int, int]:
  """(ceil(H / 2^l), ceil(W / 2^l)): the size of level l (and of scale K - l)."""
  return (math.ceil(image_shape[0] / 2**level),
          math.ceil(image_shape[1] / 2**level))


def scale_image(images: Array, scale: int, num_scales: int) -> Array:
  """x_i = x[::s_i, ::s_i] with s_i = 2^(num_scales - 1 - i), `[B, h_i, w_i, C]`."""
  stride = 2**(num_scales - 1 - scale)
  return images[:, ::stride, ::stride, :]


def known_mask(shape: Sequence[int], scale: int) -> np.ndarray:
  """`[h_i, w_i, 1]` 1 at the pixels of x_i that belong to x_{i-1} (even row
  and column), 0 at its new pixels; all 0 for scale 0."""
  rows = np.arange(shape[0]) % 2 == 0
  cols = np.arange(shape[1]) % 2 == 0
  mask = (rows[:, None] & cols[None, :]).astype(np.float32)
  return mask[..., None] * float(scale > 0)


def pixel_params_per_channel(value_type: str, num_mixtures: int) -> int:
  """Outputs per pixel channel: 1 logit, or 3 M mixture parameters."""
  return 1 if value_type == "binary" else 3 * num_mixtures


def network_input(images: Array, value_type: str) -> Array:
  """Pixels as network input in [-1, 1]: 2 x - 1, or v / 127.5 - 1."""
  if value_type == "binary":
    return 2.0 * images - 1.0
  return images / HALF_RANGE - 1.0


def pixel_log_prob(outputs: Array, images: Array, value_type: str) -> Array:
  """log p(x) per pixel channel, `[..., h, w, C]`, from head outputs
  `[..., h, w, C, P]` (P = 1 logit or 3 M mixture parameters)."""
  if value_type == "binary":
    logits = outputs[..., 0]
    return images * logits - jax.nn.softplus(logits)
  mixture = dlogistic.unpack_params(outputs, outputs.shape[-1] // 3)
  return dlogistic.log_prob(*mixture, images)


def pixel_sample(key, outputs: Array, value_type: str) -> Array:
  """x ~ p(x) per pixel channel, `[..., h, w, C]` (0/1, or 0..255)."""
  if value_type == "binary":
    return jax.random.bernoulli(key, jax.nn.sigmoid(outputs[..., 0])).astype(
        jnp.float32)
  mixture = dlogistic.unpack_params(outputs, outputs.shape[-1] // 3)
  return dlogistic.sample(key, *mixture)


def pixel_bias_init(mean_image: np.ndarray, value_type: str,
                    num_mixtures: int) -> np.ndarray:
  """`[h, w, C, P]` initial per-pixel output bias from a mean image."""
  if value_type == "binary":
    mean = np.clip(mean_image, *MEAN_CLIP)
    return (np.log(mean) - np.log1p(-mean))[..., None]
  shape = mean_image.shape + (num_mixtures,)
  return np.concatenate([np.zeros(shape), np.broadcast_to(
      mean_image[..., None], shape), np.full(shape, MIXTURE_INIT_LOG_SCALE)],
                        -1).astype(np.float32)


def split_normal(outputs: Array) -> tuple[Array, Array]:
  """(mean, log std) from `[..., 2]` outputs, log std clipped."""
  return outputs[..., 0], jnp.clip(outputs[..., 1], *LOG_SCALE_CLIP)


def latent_params(outputs: Array) -> Array:
  """The parameters of a latent part (`stochastic.latents`) from a head's
  outputs `[..., per]`: Bernoulli logits `[...]` (per = 1), or normal
  (mean, log std clipped to `LOG_SCALE_CLIP`) `[..., 2]` (per = 2)."""
  if outputs.shape[-1] == 1:
    return outputs[..., 0]
  return jnp.stack(split_normal(outputs), -1)


class Head(nn.Module):
  """A convolution (plain, near-zero init) to `[..., h, w, features, per]`."""
  features: int
  per: int = 1
  kernel_size: int = 3

  @nn.compact
  def __call__(self, h: Array) -> Array:
    out = nn.Conv(self.features * self.per, (self.kernel_size,) * 2,
                  padding="SAME", kernel_init=HEAD_INIT)(h)
    return out.reshape(out.shape[:-1] + (self.features, self.per))


class GlobalHead(nn.Module):
  """A fully connected head: [features, \\zeta_{<g}] -> hidden -> outputs."""
  hidden: int
  out: int
  activation: str

  @nn.compact
  def __call__(self, h: Array) -> Array:
    h = layers.activation(self.activation)(nn.Dense(self.hidden)(h))
    return nn.Dense(self.out, kernel_init=HEAD_INIT)(h)


class LocalGroup(nn.Module):
  r"""The networks of one local group j (module docstring, "top-down").

  Every group has the same shapes, so the model keeps the J groups'
  parameters stacked `[J, ...]` and runs them in one `jax.lax.scan`: XLA
  compiles the network of one group, not J copies.

  Attributes:
    local_channels: latent variables per location.
    per: parameters per variable (2: normal mean, log std; 1: logit).
    channels, num_blocks, weight_norm, squeeze_excitation, activation: as
      `ConvDVAEPPNet`.
  """
  local_channels: int
  per: int
  channels: int
  num_blocks: int
  weight_norm: bool
  squeeze_excitation: Optional[int]
  activation: str

  def setup(self):
    stack = lambda: residual.ResidualStack(
        self.num_blocks, gated=True, weight_norm=self.weight_norm,
        squeeze_excitation=self.squeeze_excitation,
        activation=self.activation)
    conv = lambda: residual.Conv(self.channels, 3,
                                 weight_norm=self.weight_norm)
    self.prior_stack, self.post_stack = stack(), stack()
    self.prior_head = Head(self.local_channels, self.per)
    self.post_head = Head(self.local_channels, self.per)
    self.post_in, self.absorb_conv = conv(), conv()

  def prior(self, state: Array) -> Array:
    """p(h_j | \\zeta, h_{<j}) parameters (`latent_params`: logits
    `[B, h_L, w_L, c]` or normal `[B, h_L, w_L, c, 2]`) from s_{j-1}
    `[B, h_L, w_L, channels]`."""
    return latent_params(self.prior_head(self.prior_stack(state)))

  def posterior(self, state: Array, local: Array) -> Array:
    """q(h_j | x, \\zeta, h_{<j}) parameters (as `prior`) from s_{j-1} and
    the encoder's features `local` at the same scale."""
    h = self.post_in(jnp.concatenate([state, local], -1))
    return latent_params(self.post_head(self.post_stack(h)))

  def absorb(self, state: Array, h: Array) -> Array:
    """s_j = s_{j-1} + conv(h_j), `h  # [B, h_L, w_L, c]`."""
    return state + self.absorb_conv(h)

  def __call__(self, state: Array, local: Array, h: Array):
    """Touches every parameter once (for `init`)."""
    return self.prior(state), self.posterior(state, local), self.absorb(
        state, h)


class ConvDVAEPPNet(nn.Module):
  """The networks of one convolutional DVAE++ but the local groups' (the
  model's stacked `LocalGroup`s); methods are its conditionals.

  Attributes:
    image_shape: (H, W, C).
    value_type: "binary" or "uint8".
    pixel_mean: `[H, W, C]` training mean (pixel-bias initialisation).
    global_latent: "binary" (RBM or Bernoulli prior) or "normal".
    global_sizes: units of each hierarchical global group (1, 2 or 4).
    rbm_prior: the global prior is an RBM over two halves (else factorial).
    num_local_groups: J local groups.
    local_channels: latent variables per location in a local group.
    local_latent: "normal" or "bernoulli".
    local_level: level of the intermediate scale (1 <= l <= K).
    decoder: "multiscale" or "factorial".
    channels: filters of every residual stack.
    num_blocks: residual blocks per stack.
    global_hidden: hidden units of the global heads.
    num_mixtures: logistic components per 8-bit value.
    weight_norm: weight-normalise the residual convolutions.
    squeeze_excitation: SE reduction ratio (None: no SE).
    activation: a key of `layers.ACTIVATIONS`.
  """
  image_shape: tuple
  value_type: str
  pixel_mean: Any
  global_latent: str
  global_sizes: tuple
  rbm_prior: bool
  num_local_groups: int
  local_channels: int
  local_latent: str
  local_level: int
  decoder: str
  channels: int
  num_blocks: int
  global_hidden: int
  num_mixtures: int
  weight_norm: bool
  squeeze_excitation: Optional[int]
  activation: str

  @property
  def num_levels(self) -> int:
    return num_downsamplings(self.image_shape) + 1

  def _stack(self):
    return residual.ResidualStack(
        self.num_blocks, gated=True, weight_norm=self.weight_norm,
        squeeze_excitation=self.squeeze_excitation,
        activation=self.activation)

  def _conv(self):
    return residual.Conv(self.channels, 3, weight_norm=self.weight_norm)

  def setup(self):
    top, ch = self.num_levels - 1, self.channels
    self.enc_stem = self._conv()
    self.enc_stacks = [self._stack() for l in range(top + 1)]
    self.enc_down = [residual.Resample(ch, 2, weight_norm=self.weight_norm)
                     for l in range(top)]
    per_unit = 2 if self.global_latent == "normal" else 1
    self.global_heads = [GlobalHead(self.global_hidden, per_unit * n,
                                    self.activation)
                         for g, n in enumerate(self.global_sizes)]
    total = sum(self.global_sizes)
    if self.global_latent == "binary" and self.rbm_prior:
      self.rbm = rbm_prior_lib.RBMParameters(total // 2)
    elif self.global_latent == "binary":
      self.global_prior_logits = self.param(
          "global_prior_logits", nn.initializers.zeros, (total,))
    rows, cols = level_shape(self.image_shape, self.local_level)
    self.td_dense = nn.Dense(rows * cols * ch)
    self.td_stack = self._stack()
    self.dec_resample = {
        str(l): residual.Resample(ch, -2 if l < self.local_level else 2,
                                  weight_norm=self.weight_norm)
        for l in self._decoder_levels()}
    self.dec_stacks = {str(l): self._stack() for l in self._decoder_levels()}
    self._setup_data_heads()

  def _decoder_levels(self) -> list:
    """Levels the decoder computes besides the intermediate one."""
    finer = list(range(self.local_level - 1, -1, -1))
    if self.decoder == "factorial":
      return finer
    return finer + list(range(self.local_level + 1, self.num_levels))

  def _setup_data_heads(self):
    per = pixel_params_per_channel(self.value_type, self.num_mixtures)
    channels = self.image_shape[2]
    mean = np.asarray(self.pixel_mean, np.float32)
    scales = (range(self.num_levels) if self.decoder == "multiscale"
              else [self.num_levels - 1])
    self.data_in = [self._conv() for i in scales]
    self.data_stacks = [self._stack() for i in scales]
    self.data_heads = [Head(channels, per)
                       for i in scales]
    biases = []
    for n, i in enumerate(scales):
      stride = 2**(self.num_levels - 1 - i)
      bias = pixel_bias_init(mean[::stride, ::stride], self.value_type,
                             self.num_mixtures)
      biases.append(self.param(f"data_bias_{n}", layers.constant_init(bias),
                               bias.shape))
    self.data_biases = biases

  # -- inference --------------------------------------------------------------

  def encode(self, images: Array) -> tuple[Array, Array]:
    """`images  # [B, H, W, C]` -> (global features `[B, F]`, features at
    the intermediate scale `[B, h_L, w_L, channels]`)."""
    h = self.enc_stem(network_input(images, self.value_type))
    local = None
    for level in range(self.num_levels):
      if level:
        h = self.enc_down[level - 1](h)
      h = self.enc_stacks[level](h)
      if level == self.local_level:
        local = h
    return h.reshape(h.shape[0], -1), local

  def global_params(self, group: int, features: Array,
                    previous: Optional[Array]) -> Array:
    """q(z_g | x, \\zeta_{<g}): logits `[B, n_g]` or normal `[B, n_g, 2]`
    (`latent_params`)."""
    h = features if previous is None else jnp.concatenate(
        [features, previous], -1)
    out = self.global_heads[group](h)
    per = 2 if self.global_latent == "normal" else 1
    return latent_params(out.reshape(out.shape[:-1] + (-1, per)))

  # -- generation ------------------------------------------------------------

  def rbm_params(self):
    """The RBM prior's `rbm.RBMParams` (binary global latents, RBM prior)."""
    return self.rbm()

  def global_prior_params(self) -> Array:
    """The factorial global prior's parameters: learned logits `[n]`
    (Bernoulli), or N(0, I) as (mean, log std) = 0 `[n, 2]` (normal)."""
    if self.global_latent == "normal":
      return jnp.zeros((sum(self.global_sizes), 2))
    return self.global_prior_logits

  def top_down_init(self, zeta: Array) -> Array:
    """s_0 `[B, h_L, w_L, channels]` from the global `zeta  # [B, n]`."""
    rows, cols = level_shape(self.image_shape, self.local_level)
    h = self.td_dense(zeta).reshape(zeta.shape[0], rows, cols, self.channels)
    return self.td_stack(h)

  def local_group(self) -> LocalGroup:
    """The (unbound) network of one local group; its parameters are not
    this module's (the model stacks J sets, `LocalGroup`)."""
    return LocalGroup(self.local_channels,
                      2 if self.local_latent == "normal" else 1,
                      self.channels, self.num_blocks, self.weight_norm,
                      self.squeeze_excitation, self.activation)

  def decoder_features(self, state: Array) -> dict:
    """{level: `[B, h_l, w_l, channels]`} from s_J (module docstring)."""
    features = {self.local_level: state}
    for level in self._decoder_levels():
      source = level + 1 if level < self.local_level else level - 1
      h = self.dec_stacks[str(level)](self.dec_resample[str(level)](
          features[source]))
      rows, cols = level_shape(self.image_shape, level)
      features[level] = h[:, :rows, :cols, :]
    return features

  def data_outputs(self, index: int, features: Array, known: Array,
                   mask: Array) -> Array:
    """Pixel parameters `[B, h, w, C, P]` of one data conditional.

    Args:
      index: the scale (multiscale) or 0 (factorial).
      features: decoder features at the scale's level.
      known: `[B, h, w, C]` network input of x_{i-1} on the grid of x_i
        (zeros at the new pixels).
      mask: `[h, w, 1]` the known pixels.
    """
    mask = jnp.broadcast_to(mask, known.shape[:-1] + (1,))
    h = self.data_in[index](jnp.concatenate([features, known, mask], -1))
    return self.data_heads[index](self.data_stacks[index](h)) + (
        self.data_biases[index])

  def data_conditionals(self, state: Array, images: Array) -> list:
    """Teacher-forced data conditionals: `[(outputs, x_i, new)]` per scale.

    Args:
      state: s_J `[B, h_L, w_L, channels]`.
      images: `[B, H, W, C]` the data x.

    Returns:
      One triple per factor of p(x | \\zeta, h): pixel parameters
      `[B, h_i, w_i, C, P]`, x_i `[B, h_i, w_i, C]`, and `[h_i, w_i, 1]` 1 at
      the new pixels that the factor models (all of x for "factorial").
    """
    features = self.decoder_features(state)
    if self.decoder == "factorial":
      none = jnp.zeros(tuple(self.image_shape[:2]) + (1,))
      return [(self.data_outputs(0, features[0], jnp.zeros_like(images),
                                 none), images, 1.0 - none)]
    out = []
    for i in range(self.num_levels):
      x_i = scale_image(images, i, self.num_levels)
      mask = jnp.asarray(known_mask(x_i.shape[1:3], i))
      known = network_input(x_i, self.value_type) * mask
      out.append((self.data_outputs(i, features[self.num_levels - 1 - i],
                                    known, mask), x_i, 1.0 - mask))
    return out

  def data_log_prob(self, state: Array, images: Array) -> Array:
    """log p(x | \\zeta, h) `[B]`: every pixel counted once (module doc)."""
    total = 0.0
    for outputs, x_i, new in self.data_conditionals(state, images):
      values = pixel_log_prob(outputs, x_i, self.value_type) * new
      total = total + jnp.sum(values, axis=(1, 2, 3))
    return total

  def data_sample(self, key, state: Array) -> tuple[Array, Array]:
    """x ~ p(x | \\zeta, h), scale by scale: (x, outputs of the last factor),
    `[B, H, W, C]` and `[B, H, W, C, P]`."""
    features = self.decoder_features(state)
    shape = (state.shape[0],) + tuple(self.image_shape)
    if self.decoder == "factorial":
      none = jnp.zeros(tuple(self.image_shape[:2]) + (1,))
      outputs = self.data_outputs(0, features[0], jnp.zeros(shape), none)
      return pixel_sample(key, outputs, self.value_type), outputs
    x = None
    for i in range(self.num_levels):
      rows, cols = level_shape(self.image_shape, self.num_levels - 1 - i)
      mask = jnp.asarray(known_mask((rows, cols), i))
      grid = jnp.zeros((shape[0], rows, cols, shape[-1]))
      if i:
        grid = grid.at[:, ::2, ::2, :].set(x)
      outputs = self.data_outputs(
          i, features[self.num_levels - 1 - i],
          network_input(grid, self.value_type) * mask, mask)
      new = pixel_sample(jax.random.fold_in(key, i), outputs, self.value_type)
      x = mask * grid + (1.0 - mask) * new
    return x, outputs

  def __call__(self, images: Array):
    """Touches every parameter once (for `init`), the local groups' aside
    (`local_group`)."""
    features, _ = self.encode(images)
    zetas = []
    for g, n in enumerate(self.global_sizes):
      self.global_params(g, features, jnp.concatenate(zetas, -1)
                         if zetas else None)
      zetas.append(jnp.zeros((images.shape[0], n)))
    out = [self.rbm_params() if self.global_latent == "binary" and
           self.rbm_prior else self.global_prior_logits
           if self.global_latent == "binary" else None]
    state = self.top_down_init(jnp.concatenate(zetas, -1))
    features = self.decoder_features(state)
    scales = (range(self.num_levels) if self.decoder == "multiscale"
              else [self.num_levels - 1])
    for n, i in enumerate(scales):
      level = self.num_levels - 1 - i
      x_i = scale_image(images, i, self.num_levels)
      out.append(self.data_outputs(n, features[level], jnp.zeros_like(x_i),
                                   jnp.asarray(known_mask(x_i.shape[1:3], i))))
    return out


def local_group(net: ConvDVAEPPNet) -> LocalGroup:
  """The (unbound) network of one local group of `net`; its parameters are
  not `net`'s (the model stacks J sets, `LocalGroup`)."""
  return LocalGroup(net.local_channels,
                    2 if net.local_latent == "normal" else 1, net.channels,
                    net.num_blocks, net.weight_norm, net.squeeze_excitation,
                    net.activation)
