"""Flax layers shared by the model families."""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from discrete_vi.types import Array

LEAKY_RELU_SLOPE = 0.3  # DisARM (Dong et al., 2020)

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
