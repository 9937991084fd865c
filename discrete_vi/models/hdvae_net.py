r"""The networks of HD-VAE and its Gaussian baseline (Lievin et al., 2019).

Four hierarchies of L stochastic layers (Appendix F; layer 1 is next to x),
as `HDVAENet.architecture`:

* "vae" (Eq. 17): p(z_L) \prod p(z_i | z_{i+1}), q(z_1|x) \prod q(z_i|z_{i-1}).
* "skip_vae" (Eq. 18): p(z_i | z_{>i}), q(z_i | z_{<i}, x).
* "lvae" (Eq. 19): p(z_i | z_{i+1}), q(z_L|x) \prod q(z_i | z_{i+1}, x).
* "skip_lvae" (Eq. 20, the paper's model): p(z_i | z_{>i}),
  q(z_L|x) \prod q(z_i | z_{>i}, x).

Every connection is a stack of gated residual convolutional blocks
(`residual.ResidualStack`: 64 filters, weight normalisation, dropout;
Appendix A) on 7 x 7 feature maps: a stem of two stride-2 convolutions maps
x (28 x 28) to 7 x 7, and the decoder upsamples back twice (nearest
neighbour, each followed by a convolution; the last one gives the pixel
logits). Generative
(top-down) state: h_L is a learned constant; h_i = TD_i(e_{i+1} + h_{i+1})
with skips (so h_i depends on every z_{>i}), TD_i(e_{i+1}) without, where
e_i is the embedding of layer i's output (its memory read-out y_i for
discrete layers, z_i itself for normal ones) as a feature map. Inference:
bottom-up features d_i = BU_i(d_{i-1}) of x (ladder models; the posterior
of layer i reads [h_i, d_i], sharing the top-down path with the prior), or
g_i = BU_i(g_{i-1} + e'_{i-1}) (skip_vae) / BU_i(e'_{i-1}) (vae) with an
inference embedding e' of z_{i-1}.

Each stochastic layer is a `memory.VariationalMemory` (discrete) or a
`NormalLayer` (factorial Gaussians, the baseline with the same N), each with
a "posterior" and a "prior" query net. The query net Q(h) of Eq. 2 is a
dense map of the flattened feature map after a 1 x 1 convolution to C =
`query_channels` channels (8), and an embedding is a dense map to a
7 x 7 x C map followed by a 1 x 1 convolution to F channels: the dense maps
have N d_1 outputs / N d_2 inputs for discrete layers against 2N / N for
Gaussian ones, so on the full 7 x 7 x F maps (`query_channels=0`) they
would make the discrete model ~4x the Gaussian one in parameters (the
paper's models: 43.1M vs 16.6M, Appendix A), most of it outside the
memories. The "lipschitz" decoder of the
one-layer model replaces the convolutional decoder by spectrally normalised
dense layers (Miyato et al., 2018) on the normalised memory read-out, so
that z -> log p(x|z) is kappa-Lipschitz (Appendix C).
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi.models import layers
from discrete_vi.models import memory
from discrete_vi.models import residual
from discrete_vi.types import Array

ARCHITECTURES = ("skip_lvae", "lvae", "skip_vae", "vae")
LATENTS = ("discrete", "normal")
QUERIES = ("posterior", "prior")
DECODERS = ("conv", "lipschitz")
RESOLUTION = 7  # feature maps are 7 x 7 (28 / 4)
MEAN_CLIP = (1e-3, 0.999)
LOG_SCALE_CLIP = (-7.0, 5.0)


def is_ladder(architecture: str) -> bool:
  """Whether inference runs top-down (LVAE, Eqs. 19-20)."""
  return architecture in ("skip_lvae", "lvae")


def has_skips(architecture: str) -> bool:
  """Whether conditionals see every layer above / below (Eqs. 18, 20)."""
  return architecture in ("skip_lvae", "skip_vae")


def spectral_normalize(w: Array) -> Array:
  """w / sigma_max(w): a 1-Lipschitz linear map in L^2 (Miyato et al., 2018;
  the exact largest singular value, not a power-iteration estimate)."""
  return w / jnp.linalg.norm(w, 2)


class SpectralDense(nn.Module):
  """A dense layer with weight w / sigma_max(w) (1-Lipschitz) and a bias."""
  features: int

  @nn.compact
  def __call__(self, h: Array) -> Array:
    w = self.param("kernel", nn.initializers.lecun_normal(),
                   (h.shape[-1], self.features))
    b = self.param("bias", nn.initializers.zeros, (self.features,))
    return h @ spectral_normalize(w) + b


class NormalLayer(nn.Module):
  """N factorial Gaussians: query nets -> `[..., N, 2]` (mean, log scale)."""
  num_variables: int
  queries: Sequence[str] = ("posterior", "prior")

  def setup(self):
    self.query_nets = {name: nn.Dense(2 * self.num_variables,
                                      kernel_init=nn.initializers.normal(1e-2),
                                      name=f"query_{name}")
                       for name in self.queries}

  def logits(self, h: Array, name: str) -> Array:
    out = self.query_nets[name](h)
    out = out.reshape(out.shape[:-1] + (self.num_variables, 2))
    return out.at[..., 1].set(jnp.clip(out[..., 1], *LOG_SCALE_CLIP))

  def read(self, z: Array) -> Array:
    return z

  def __call__(self, h: Array) -> list[Array]:
    return [self.logits(h, name) for name in self.queries]


class HDVAENet(nn.Module):
  """All parameters of one hierarchy; methods are its pieces (see module).

  Layers are 0-indexed here (layer 0 is z_1 of the paper).
  """
  data_mean: Any  # np.ndarray [784]
  num_variables: Sequence[int] = (16,)
  num_classes: Sequence[int] = (256,)
  latent: str = "discrete"
  architecture: str = "skip_lvae"
  filters: int = 64
  num_blocks: int = 3
  dropout_rate: float = 0.5
  key_dim: int = 8
  value_dim: int = 8
  product_keys: bool = True
  decoder: str = "conv"
  lipschitz_hidden: int = 256
  lipschitz_scale: float = 10.0
  query_channels: int = 8

  def setup(self):
    f, num_layers = self.filters, len(self.num_variables)
    stack = lambda name: residual.ResidualStack(
        self.num_blocks, dropout_rate=self.dropout_rate, name=name)
    self.stem = [residual.Resample(f, 2, 5, name="stem_0"),
                 residual.Resample(f, 2, 3, name="stem_1")]
    self.bottom_up = [stack(f"bottom_up_{l}") for l in range(num_layers)]
    self.top_down = [stack(f"top_down_{l}") for l in range(num_layers)]
    self.latents = [self._latent_layer(l) for l in range(num_layers)]
    c = self.query_channels
    if c:  # 1 x 1 bottlenecks around the flattened dense maps
      self.query_proj = [
          {name: nn.Conv(c, (1, 1), name=f"query_proj_{name}_{l}")
           for name in QUERIES} for l in range(num_layers)]
    self.embed = [self._embedding_map(f"embed_{l}") for l in range(num_layers)]
    if not is_ladder(self.architecture):
      self.embed_q = [self._embedding_map(f"embed_q_{l}")
                      for l in range(num_layers)]
    self.top = self.param("top", nn.initializers.normal(1.0),
                          (RESOLUTION, RESOLUTION, f))
    mean = np.clip(np.asarray(self.data_mean, np.float32), *MEAN_CLIP)
    self.pixel_bias = self.param("pixel_bias", layers.constant_init(
        np.log(mean) - np.log1p(-mean)), mean.shape)
    if self.decoder == "lipschitz":
      self.lipschitz = [SpectralDense(self.lipschitz_hidden, name="lip_0"),
                        SpectralDense(mean.shape[0], name="lip_1")]
    else:
      self.upsample = [residual.Resample(f, -2, name="up_0"),
                       residual.Resample(1, -2, name="up_out")]

  def _embedding_map(self, name: str) -> list:
    """Layer output -> feature map: a dense map to 7 x 7 x C then, with a
    bottleneck (C = `query_channels`), a 1 x 1 convolution to F channels."""
    c = self.query_channels or self.filters
    out = [nn.Dense(RESOLUTION * RESOLUTION * c, name=name)]
    if self.query_channels:
      out.append(nn.Conv(self.filters, (1, 1), name=f"{name}_out"))
    return out

  def _latent_layer(self, l: int):
    if self.latent == "normal":
      return NormalLayer(self.num_variables[l], name=f"latent_{l}")
    return memory.VariationalMemory(
        self.num_variables[l], self.num_classes[l], self.key_dim,
        self.value_dim, self.product_keys, name=f"latent_{l}")

  # -- pieces ----------------------------------------------------------------

  def features(self, x: Array, deterministic: bool) -> Array:
    """Stem: `[..., 784]` -> `[..., 7, 7, F]` (x centred by the train mean)."""
    h = (x - jnp.asarray(self.data_mean, x.dtype)).reshape(
        x.shape[:-1] + (28, 28, 1))
    h = self.stem[0](h)
    return self.stem[1](nn.elu(h))

  def bottom_up_stack(self, l: int, h: Array, deterministic: bool) -> Array:
    return self.bottom_up[l](h, deterministic=deterministic)

  def ladder_features(self, x: Array, deterministic: bool) -> list[Array]:
    """d_1..d_L of x (ladder inference): `[..., 7, 7, F]` each."""
    d, out = self.features(x, deterministic), []
    for l in range(len(self.num_variables)):
      d = self.bottom_up_stack(l, d, deterministic)
      out.append(d)
    return out

  def top_state(self, batch_shape) -> Array:
    """h_L, the learned constant top-down state `[..., 7, 7, F]`."""
    return jnp.broadcast_to(self.top, tuple(batch_shape) + self.top.shape)

  def top_down_stack(self, l: int, e: Array, h_above, deterministic: bool
                     ) -> Array:
    """h_l = TD_l(e_{l+1} [+ h_{l+1}]) (with skips when h_above is given)."""
    h = e if h_above is None else e + h_above
    return self.top_down[l](h, deterministic=deterministic)

  def layer_params(self, l: int, h: Array, name: str) -> Array:
    """q or p parameters of layer l from features h `[..., 7, 7, C]`:
    logits `[..., N, K]`, or (mean, log scale) `[..., N, 2]`. The query
    net Q(h) (Eq. 2) is a dense map of the flattened h, after a 1 x 1
    convolution to `query_channels` channels when that is > 0."""
    if self.query_channels:
      h = self.query_proj[l][name](h)
    return self.latents[l].logits(h.reshape(h.shape[:-3] + (-1,)), name)

  def embedding(self, l: int, z: Array, inference: bool = False) -> Array:
    """e_l: layer l's output (memory read-out y = sum z_i v_i, or z) as a
    feature map `[..., 7, 7, F]` (generative, or inference e')."""
    y = self.latents[l].read(z)  # [..., N d2] or [..., N]
    maps = self.embed_q[l] if inference else self.embed[l]
    e = maps[0](y)
    e = e.reshape(e.shape[:-1] + (RESOLUTION, RESOLUTION, -1))
    return maps[1](e) if len(maps) > 1 else e  # [..., 7, 7, F]

  def decode(self, h: Array, deterministic: bool) -> Array:
    """Pixel logits `[..., 784]` from the bottom top-down state h_0."""
    lead = h.shape[:-3]
    h = self.upsample[0](nn.elu(h.reshape((-1,) + h.shape[-3:])))  # 14 x 14
    out = self.upsample[1](nn.elu(h))  # [-1, 28, 28, 1]
    return out.reshape(lead + (-1,)) + self.pixel_bias

  def decode_lipschitz(self, z: Array) -> Array:
    r"""Pixel logits of the one-layer model's Lipschitz decoder.

    l(z) = s W_2 tanh(W_1 y(z)) + b with spectrally normalised W_1, W_2 and
    values V_n / sigma_max(V_n), so z -> l(z) is s-Lipschitz in L^2 (s =
    `lipschitz_scale`): y is block-diagonal in the N variables.
    """
    values = self.latents[0].values  # [N, K, d2]
    sigma = jnp.linalg.svd(values, compute_uv=False)[..., :1]  # [N, 1]
    y = memory.read_values(z, values / sigma[..., None])
    y = y.reshape(y.shape[:-2] + (-1,))
    h = jnp.tanh(self.lipschitz[0](y))
    return self.lipschitz_scale * self.lipschitz[1](h) + self.pixel_bias

  def lipschitz_constant(self) -> float:
    r"""\kappa of z -> log p(x | z) for the Lipschitz decoder: s \sqrt{D}
    (the gradient of the Bernoulli log-likelihood in the logits, x -
    sigmoid(l), has norm at most \sqrt{D})."""
    return self.lipschitz_scale * math.sqrt(np.asarray(self.data_mean).size)

  def __call__(self, x: Array) -> list[Array]:
    """Touches every parameter once (for `init`), shapes as in use."""
    det = True
    num_layers = len(self.num_variables)
    g = self.features(x, det)
    out, h = [], self.top_state(x.shape[:-1])
    for l in range(num_layers):
      g = self.bottom_up_stack(l, g, det)
      posterior_in = (jnp.concatenate([h, g], -1) if is_ladder(self.architecture)
                      else g)
      q = self.layer_params(l, posterior_in, "posterior")
      p = self.layer_params(l, h, "prior")
      z = (jax.nn.softmax(q) if self.latent == "discrete" else q[..., 0])
      e = self.embedding(l, z)
      if not is_ladder(self.architecture):
        g = g + self.embedding(l, z, inference=True)
      h = self.top_down_stack(l, e, h, det)
      out += [p, h]
    if self.decoder == "lipschitz":
      out.append(self.decode_lipschitz(z))
    else:
      out.append(self.decode(h, det))
    return out
