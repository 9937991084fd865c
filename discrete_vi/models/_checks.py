"""The data check shared by the models (ValueErrors that name the value);
argument checks are in `discrete_vi.checks`."""

import jax
import jax.numpy as jnp
import numpy as np

from discrete_vi.types import Array


def check_data(x, data_dim: int, *, exactly_binary: bool = False,
               value_type: str = "binary") -> Array:
  """`x` as float32 `[..., data_dim]`, its values checked when concrete.

  Args:
    x: the data.
    data_dim: the required last dimension.
    exactly_binary: for binary data, require values in {0, 1} (discrete
      flows), or only in [0, 1] (models that accept probabilities, e.g. the
      SBN).
    value_type: "binary", or "uint8" (integers 0..255, e.g. CIFAR-10).

  Raises:
    ValueError: for values outside the allowed set or a wrong shape.
  """
  if not isinstance(x, jax.core.Tracer):  # concrete: check the values
    values = np.asarray(x)
    if value_type == "uint8":
      bad = values.size and not (np.all((values >= 0) & (values <= 255)) and
                                 np.all(values == np.round(values)))
      allowed = "8-bit integers 0..255"
    elif exactly_binary:
      bad = values.size and not np.all((values == 0) | (values == 1))
      allowed = "binary (0/1) for a discrete flow"
    else:
      bad = values.size and not np.all((values >= 0) & (values <= 1))
      allowed = "binary data in [0, 1]"
    if bad:
      raise ValueError(f"x must be {allowed}; got values in "
                       f"[{values.min()}, {values.max()}].")
  x = jnp.asarray(x, jnp.float32)
  if x.ndim < 1 or x.shape[-1] != data_dim:
    raise ValueError(f"x must have shape [..., {data_dim}]; got "
                     f"x.shape={x.shape}.")
  return x
