"""Flax layers shared by the model families."""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi.types import Array, PRNGKey

LEAKY_RELU_SLOPE = 0.3  # DisARM (Dong et al., 2020)

def fast_key(key: PRNGKey) -> PRNGKey:
  """A key of the "rbg" implementation (XLA's RngBitGenerator) seeded by
  `key`'s bits, for noise that need not be threefry's (initialisers,
  dropout masks, Gumbel noise of training): each threefry draw adds ~0.3 s
  of XLA CPU compilation, rbg draws almost none. Deterministic per key;
  typed keys pass through."""
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  data = jax.random.key_data(key)  # uint32 [2]
  return jax.random.wrap_key_data(
      jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)]), impl="rbg")


ACTIVATIONS = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "leaky_relu": lambda h: nn.leaky_relu(h, negative_slope=LEAKY_RELU_SLOPE),
}


def activation(name: str) -> Callable[[Array], Array]:
  """The activation function called `name` (a key of `ACTIVATIONS`)."""
  if name not in ACTIVATIONS:
    raise ValueError(f"activation={name!r} is unknown; expected one of "
                     f"{sorted(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


class Link(nn.Module):
  """Logits of one conditional: hidden layers (maybe none), then affine."""
  hidden_dims: Sequence[int]
  out_dim: int
  nonlinearity: str = "tanh"
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, h: Array) -> Array:
    for i, width in enumerate(self.hidden_dims):
      h = activation(self.nonlinearity)(nn.Dense(width, name=f"hidden_{i}")(h))
    return nn.Dense(self.out_dim, bias_init=self.bias_init, name="out")(h)


def constant_init(value: np.ndarray):
  """A bias initialiser returning the fixed array `value`."""
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.broadcast_to(jnp.asarray(value, dtype), shape)
  return init
