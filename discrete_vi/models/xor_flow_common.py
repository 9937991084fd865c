r"""Pieces shared by the deterministic and the latent XOR flows.

An XOR flow on x \in {0,1}^D writes x = y \oplus u (Hesselink & Aziz 2020,
Eq. 4) with a factorial Bernoulli base p_Y(y) = \prod_d Bern(y_d | \beta_d)
(Eq. 3; the paper fixes p(y_d = 0, 1) = [0.9, 0.1]) and a transformation u
predicted by autoregressive MADE conditioners (Germain et al. 2015). This
module holds what both kinds of flow use: the XOR and suffix sums, the base
parameters, the conditioners (with the context masks the latent flow
needs), the pixel-by-pixel evaluators of the samplers, and the argument and
data checks. The flows themselves are `ste_flow.STEFlow` (Sec. 3) and
`latent_flow.FullPosteriorFlow` / `latent_flow.SpecialCaseFlow` (Secs. 4-5).

References:
  Hesselink & Aziz (2020), Latent Transformations for Discrete-Data
    Normalising Flows.
  Germain, Gregor, Murray & Larochelle (2015), MADE: Masked Autoencoder for
    Distribution Estimation.
"""

from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from discrete_vi import checks
from discrete_vi.distributions import bernoulli
from discrete_vi.models import _checks
from discrete_vi.models import base
from discrete_vi.models import layers
from discrete_vi.models import made as made_lib
from discrete_vi.types import Array, PRNGKey

DEFAULT_BASE_PROB = 0.1  # p(y_d = 1): the paper's fixed base [0.9, 0.1].


def xor(a: Array, b: Array) -> Array:
  """a \\oplus b for binary values; a + b - 2ab is smooth for ST gradients."""
  return a + b - 2.0 * a * b


def suffix_sum(values: Array) -> Array:
  """s_d = \\sum_{k >= d} v_k along the last axis."""
  return jnp.flip(jnp.cumsum(jnp.flip(values, -1), -1), -1)


def base_param(module: nn.Module, data_dim: int, base_prob: float,
               learn_base: bool) -> Array:
  """Logits `[D]` of the base p_Y (Eq. 3): a parameter "base_logits" when
  learned, else the constant logit of `base_prob`."""
  logit = float(np.log(base_prob) - np.log1p(-base_prob))
  if learn_base:
    return module.param("base_logits", nn.initializers.constant(logit),
                        (data_dim,))
  return jnp.full((data_dim,), logit, jnp.float32)


def conditioner_made(context: Optional[str], hidden_dims: Sequence[int],
                     activation: str) -> made_lib.MADE:
  """A MADE conditioner; `context` None (a MADE on x^{(l-1)}, the STE flow)
  or the mask mode of its context ("strict" / "inclusive", latent flows)."""
  return made_lib.MADE(tuple(hidden_dims), context=context,
                       activation=activation)


def evaluators(mades: Sequence[made_lib.MADE], params: Mapping[str, Any],
               data_dim: int, incremental: bool) -> list:
  """One unit evaluator per layer (`made.unit_evaluator`, or full passes when
  `incremental` is False), for the pixel-by-pixel scans; layer l's
  parameters are `params["conditioners_<l>"]`."""
  out = []
  for layer, made in enumerate(mades):
    layer_params = params[f"conditioners_{layer}"]
    out.append(made_lib.unit_evaluator(made, layer_params, data_dim)
               if incremental else made_lib.FullPassMADE(made, layer_params))
  return out


def check_common_args(args: Mapping[str, Any], prefix: str = "") -> None:
  """Checks the arguments every XOR flow takes (names prefixed by `prefix`).

  Args:
    args: `depth`, `hidden_dims`, `activation`, `base_prob`, `learn_base`.
    prefix: prepended to each name in the messages ("config.model.").

  Raises:
    ValueError: naming the bad value.
  """
  checks.check_int(prefix + "depth", args["depth"], 1)
  checks.check_ints(prefix + "hidden_dims", args["hidden_dims"], 1)
  checks.check_one_of(prefix + "activation", args["activation"],
                      sorted(layers.ACTIVATIONS))
  checks.check_in_range(prefix + "base_prob", args["base_prob"], 0.0, 1.0,
                        low_open=True, high_open=True)
  checks.check_bool(prefix + "learn_base", args["learn_base"])


def check_data(x, data_dim: int) -> Array:
  """`x` as float32 `[..., D]`, required to be exactly binary."""
  return _checks.check_data(x, data_dim, exactly_binary=True)


class FlowBase(base.NothingToPrepare):
  """What the XOR flows share beside the Flax module: parameters, the base
  log-probability and the evaluators. Subclasses set `module` (a Flax module
  with methods `base` and `conditioner`) and `mades` (one per layer).

  Attributes:
    data_dim: D.
    depth: L.
    incremental_sampler: run one-hidden-layer MADEs unit by unit in the
      pixel-by-pixel scans (O(D H) per sample); False forces full passes
      (O(D^2 H); same results, for benchmarks and tests).
  """
  sample_columns = base.SAMPLE_COLUMNS
  data_dim: int
  depth: int
  incremental_sampler: bool
  module: nn.Module
  mades: tuple

  def init(self, key: PRNGKey, x_example: Array) -> dict:
    """Initial parameters: `conditioners_<l>` (and `posteriors_<l>`,
    `base_logits` when present)."""
    return self.module.init(key, self.check_data(x_example))["params"]

  def apply(self, params, method: str, *args):
    """Calls the Flax module's method `method` with `params`."""
    return self.module.apply({"params": params}, *args,
                             method=getattr(type(self.module), method))

  def base_log_prob(self, params, y: Array) -> Array:
    """Per-pixel log p_Y(y_d), `[..., D]`."""
    return bernoulli.log_prob(self.apply(params, "base"), y)

  def evaluators(self, params) -> list:
    """One unit evaluator per layer, for the pixel-by-pixel scans."""
    return evaluators(self.mades, params, self.data_dim,
                      self.incremental_sampler)

  def check_data(self, x) -> Array:
    """`x` as float32 `[..., D]`; ValueError unless exactly binary."""
    return check_data(x, self.data_dim)
