r"""Variational memory layers: N categorical variables read out of a memory.

Lievin et al. (2019, Sec. 2, Eq. 2): each of N categorical variables with K
classes is a memory lookup. A query net Q(h) scores K keys k_i in R^{d_1},

  \log \pi_i = Q(h)^\top k_i + c,   z ~ Cat(\pi),   y = \sum_i z_i v_i,

with memory values v_i in R^{d_2} (c is the normalising constant, left to
the categorical distribution's log-softmax). The output y is the same
convex combination for a relaxed sample \tilde z (Eq. 4), and
z = H(\tilde z) = one_hot(arg max \tilde z) for the hard one.

Product keys (Lample et al., 2019). With K = r^2 the query is split in two
halves q = [q^1, q^2] (each d_1 / 2) scored against two sets of r sub-keys,
s^1_a = q^{1\top} c^1_a and s^2_b = q^{2\top} c^2_b; slot (a, b) has the key
[c^1_a, c^2_b], so its logit is s^1_a + s^2_b. The K x d_1 key matrix is
never built: the cost is 2 r d_1 / 2 multiply-adds per variable for the
scores plus K additions, instead of K d_1.

Each of the N variables has its own keys and values (`[N, ...]`); a
stochastic layer's prior and posterior use the same memory (the same K
slots and values) through different query nets.

Shapes: queries `[..., N, d_1]`, logits and samples `[..., N, K]`, outputs
`[..., N, d_2]`.

References:
  Lievin, Dittadi, Maaloe & Winther (2019), "Towards hierarchical discrete
    variational autoencoders", Sec. 2, Eqs. 2 and 4.
  Lample, Sablayrolles, Ranzato, Denoyer & Jegou (2019), "Large memory
    layers with product keys".
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.distributions import concrete
from discrete_vi.types import Array, PRNGKey

OUTPUTS = ("hard", "relaxed", "straight_through")


def product_key_logits(query: Array, sub_keys_1: Array, sub_keys_2: Array
                       ) -> Array:
  r"""Logits s^1_a + s^2_b of the r^2 slots of product keys (Lample et al.).

  Args:
    query: `[..., N, d_1]`, split into halves `[..., N, d_1 / 2]`.
    sub_keys_1: `[N, r, d_1 / 2]` the sub-keys c^1 scored by the first half.
    sub_keys_2: `[N, r, d_1 / 2]` the sub-keys c^2 scored by the second half.

  Returns:
    `[..., N, r^2]`, slot index a r + b holding s^1_a + s^2_b
    (= Q^\top [c^1_a, c^2_b], Eq. 2 with the implied key).
  """
  half = sub_keys_1.shape[-1]
  scores_1 = jnp.einsum("...nd,nad->...na", query[..., :half], sub_keys_1)
  scores_2 = jnp.einsum("...nd,nbd->...nb", query[..., half:], sub_keys_2)
  logits = scores_1[..., :, None] + scores_2[..., None, :]  # [..., N, r, r]
  return logits.reshape(logits.shape[:-2] + (-1,))


def explicit_keys(sub_keys_1: Array, sub_keys_2: Array) -> Array:
  """The `[N, r^2, d_1]` keys [c^1_a, c^2_b] that product keys define (for
  tests and inspection; the layer never builds them)."""
  n, r, half = sub_keys_1.shape
  first = jnp.broadcast_to(sub_keys_1[:, :, None, :], (n, r, r, half))
  second = jnp.broadcast_to(sub_keys_2[:, None, :, :], (n, r, r, half))
  return jnp.concatenate([first, second], -1).reshape(n, r * r, 2 * half)


def key_logits(query: Array, keys: Array) -> Array:
  r"""Q^\top k_i for explicit keys: `[..., N, d_1]`, `[N, K, d_1]` ->
  `[..., N, K]` (Eq. 2)."""
  return jnp.einsum("...nd,nkd->...nk", query, keys)


def read_values(z: Array, values: Array) -> Array:
  r"""y = \sum_i z_i v_i per variable: `[..., N, K]`, `[N, K, d_2]` ->
  `[..., N, d_2]` (Eq. 2; a convex combination for relaxed z)."""
  return jnp.einsum("...nk,nkd->...nd", z, values.astype(z.dtype))


def harden(z: Array) -> Array:
  r"""H(\tilde z) = one_hot(arg max \tilde z), `[..., N, K]`."""
  return concrete.harden_categorical(z)


def sample_output(key: PRNGKey, logits: Array, output: str,
                  temperature: float = 1.0) -> tuple[Array, Array]:
  r"""A sample z of the variables as `output` asks, and its hard sample.

  All three use the same Gumbel noise G (Gumbel-max trick), so the hard
  sample is exact whatever the temperature:
  * "hard": z = H(logits + G), a draw of Cat(\pi).
  * "relaxed": z = softmax((logits + G) / \tau) (Eq. 4).
  * "straight_through": the value of "hard" with the Jacobian of "relaxed".

  Training goes through the library's estimators instead (which draw z
  themselves); this serves evaluation, sampling and tests.

  Args:
    key: PRNG key.
    logits: `[..., N, K]`.
    output: one of `OUTPUTS`.
    temperature: tau > 0 (unused by "hard").

  Returns:
    `(z, hard)`, each `[..., N, K]`.
  """
  checks.check_one_of("output", output, OUTPUTS)
  noise = jax.random.gumbel(key, logits.shape, logits.dtype)
  if output == "hard":
    hard = concrete.harden_categorical(logits + noise)
    return hard, hard
  sample = concrete.relax_categorical(logits, noise, temperature)
  if output == "relaxed":
    return sample.relaxed, sample.hard
  z = sample.hard + (sample.relaxed - jax.lax.stop_gradient(sample.relaxed))
  return z, sample.hard


def check_memory_shape(num_classes: int, key_dim: int, product_keys: bool
                       ) -> int:
  """Returns r = sqrt(K) for product keys (else 0); ValueError naming a K
  that is not a square or an odd key_dim."""
  checks.check_int("num_classes", num_classes, 2)
  checks.check_int("key_dim", key_dim, 1)
  if not product_keys:
    return 0
  root = math.isqrt(num_classes)
  if root * root != num_classes:
    raise ValueError(f"num_classes={num_classes} must be a square r^2 for "
                     f"product keys (e.g. 16^2 = 256).")
  if key_dim % 2:
    raise ValueError(f"key_dim={key_dim} must be even for product keys (the "
                     f"query is split in two halves).")
  return root


class VariationalMemory(nn.Module):
  """N categorical variables with K classes, each a memory of keys and values.

  Attributes:
    num_variables: N.
    num_classes: K (a square r^2 with product keys; 16^2 in the paper).
    key_dim: d_1, the query and key size (8 in the paper).
    value_dim: d_2, the value size (8 in the paper).
    product_keys: factor the keys (Lample et al., 2019) as in the paper;
      False gives K explicit keys per variable (for ablations and any K).
    queries: names of the query nets Q(h) sharing the memory, e.g.
      ("posterior", "prior"); each a Dense map from any h `[..., H]`.
  """
  num_variables: int
  num_classes: int
  key_dim: int = 8
  value_dim: int = 8
  product_keys: bool = True
  queries: Sequence[str] = ("posterior", "prior")

  def setup(self):
    checks.check_int("num_variables", self.num_variables, 1)
    checks.check_int("value_dim", self.value_dim, 1)
    root = check_memory_shape(self.num_classes, self.key_dim,
                              self.product_keys)
    n = self.num_variables
    if self.product_keys:
      half = self.key_dim // 2
      init = nn.initializers.normal(1.0 / math.sqrt(half))
      self.sub_keys_1 = self.param("sub_keys_1", init, (n, root, half))
      self.sub_keys_2 = self.param("sub_keys_2", init, (n, root, half))
    else:
      init = nn.initializers.normal(1.0 / math.sqrt(self.key_dim))
      self.keys = self.param("keys", init, (n, self.num_classes, self.key_dim))
    self.values = self.param("values", nn.initializers.normal(1.0),
                             (n, self.num_classes, self.value_dim))
    self.query_nets = {name: nn.Dense(n * self.key_dim, name=f"query_{name}")
                       for name in self.queries}

  def query(self, h: Array, name: str) -> Array:
    """Q(h) of query net `name`: `[..., H]` -> `[..., N, d_1]`."""
    q = self.query_nets[name](h)
    return q.reshape(q.shape[:-1] + (self.num_variables, self.key_dim))

  def logits_of_query(self, query: Array) -> Array:
    r"""\log \pi up to c (Eq. 2): `[..., N, d_1]` -> `[..., N, K]`."""
    if self.product_keys:
      return product_key_logits(query, self.sub_keys_1, self.sub_keys_2)
    return key_logits(query, self.keys)

  def logits(self, h: Array, name: str) -> Array:
    """The categorical logits `[..., N, K]` of query net `name` at h."""
    return self.logits_of_query(self.query(h, name))

  def read(self, z: Array) -> Array:
    r"""The memory output y = \sum_i z_i v_i, flattened: `[..., N, K]` ->
    `[..., N d_2]` (hard, relaxed or straight-through z alike)."""
    y = read_values(z, self.values)
    return y.reshape(y.shape[:-2] + (-1,))

  def all_keys(self) -> Array:
    """The `[N, K, d_1]` keys (built from the sub-keys with product keys)."""
    if self.product_keys:
      return explicit_keys(self.sub_keys_1, self.sub_keys_2)
    return self.keys

  def __call__(self, h: Array) -> list[Array]:
    """Touches every parameter (for `init`): each query's logits, a read."""
    out = [self.logits(h, name) for name in self.queries]
    return out + [self.read(jax.nn.softmax(out[0]))]
