r"""IndeCateR: REINFORCE for independent categorical variables,
Rao-Blackwellised per variable by summing over its K classes.

For q(z) = \prod_n q_n(z_n), N categorical variables with K classes each
(one-hot z `[..., N, K]`), the CatLog-derivative trick of De Smet, Sansone &
Zuidberg Dos Martires (2023, Sec. 3) writes the derivative wrt variable n's
parameters as an exact sum over that variable's classes, the others sampled:

  \nabla_{\theta_n} E_q[f(z)]
    = E_{z_{-n} \sim q_{-n}}[\sum_{k=1}^K \nabla_{\theta_n} q_n(k)
                                          f(z_{-n}, z_n = k)],

and IndeCateR (their Sec. 4) estimates every n at once from the same M
samples z^{(1..M)} ~ q, whose other coordinates z^{(m)}_{-n} are shared by all
n:

  \hat{g}_n = \frac{1}{M} \sum_m \sum_k \nabla_{\theta_n} q_n(k)
              f(z^{(m)}_{-n}, z_n = k).

Each term is the conditional expectation given z_{-n} of REINFORCE's term for
variable n (a Rao-Blackwellisation), so the variance is at most REINFORCE's
(their variance theorem in Sec. 4). A baseline c(z_{-n}) would change nothing:
\sum_k \nabla q_n(k) = 0.
"""

import jax
import jax.numpy as jnp

from discrete_vi import checks
from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

DISTRIBUTIONS = ("categorical",)


def rotated_classes(z: Array) -> Array:
  """Every class of each variable, starting from the sampled one.

  Args:
    z: one-hot `[..., N, K]`.

  Returns:
    `[..., N, K]` integer classes (c_n + j) mod K for j = 0..K-1, c_n the
    class of z_n: entry j = 0 is the sample itself.
  """
  k = z.shape[-1]
  return (jnp.argmax(z, -1)[..., None] + jnp.arange(k)) % k


def substitute_classes(z: Array, classes: Array) -> Array:
  """z with variable n set to `classes[..., n, j]`, for every (n, j).

  Args:
    z: one-hot `[..., N, K]`.
    classes: `[..., N, J]` integer classes.

  Returns:
    `[N, J, ..., N, K]`: entry (n, j) is z with row n replaced by the one-hot
    of classes[..., n, j].
  """
  n, k = z.shape[-2:]
  batch = (1,) * (z.ndim - 2)
  rows = jax.nn.one_hot(classes, k, dtype=z.dtype)  # [..., N, J, K]
  rows = jnp.moveaxis(rows, (-3, -2), (0, 1))[..., None, :]  # [N, J, ..., 1, K]
  unit = jnp.eye(n, dtype=bool).reshape((n, 1) + batch + (n, 1))
  return jnp.where(unit, rows, z[None, None])


def other_class_values(f: ObjectiveFn, zs: Array, classes: Array,
                       logits: Array) -> Array:
  """f(z^{(m)}_{-n}, z_n = k) for every sample m, variable n and class k
  other than the sampled one.

  Args:
    f: objective, per example.
    zs: samples `[M, ..., N, K]`.
    classes: `[M, ..., N, K]` from `rotated_classes` (entry 0 the sample).
    logits: `[..., N, K]`.

  Returns:
    `[M, N, K - 1, ...]`, the classes in the order of `classes[..., 1:]` (no
    gradient: these values only weight the scores).
  """
  m, (n, k) = zs.shape[0], zs.shape[-2:]
  changed = jax.vmap(substitute_classes)(zs, classes[..., 1:])
  flat = changed.reshape((m * n * (k - 1),) + zs.shape[1:])
  values = _common.call_objective_samples(
      f, jax.lax.stop_gradient(flat), logits, "categorical", "indecater")
  return jax.lax.stop_gradient(values.reshape((m, n, k - 1) +
                                              values.shape[1:]))


def indecater(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
              distribution: str = "categorical",
              num_samples: int = 1) -> tuple[Array, EstimatorAux]:
  r"""IndeCateR: per-variable exact sums over the K classes, the others sampled.

  With M samples z^{(m)} ~ q and F_{mnk} = f(z^{(m)}_{-n}, z_n = k), the
  estimate of \nabla_{\theta_n} E_q[f] is
  \frac{1}{M} \sum_m \sum_k \nabla_{\theta_n} q_n(k) F_{mnk}
  (De Smet et al., 2023, Sec. 4), plus the pathwise term
  \frac{1}{M} \sum_m \nabla f(z^{(m)}) for the parameters f closes over. The
  surrogate is -\frac{1}{M} \sum_m (f(z^{(m)}) + \sum_{n,k} (q_n(k) -
  stop(q_n(k))) stop(F_{mnk})): its value is -f at the samples, its gradient
  the estimate. Unbiased for \nabla E_q[f], for every N and K; exact for
  N = 1 (nothing is left to sample).

  Cost: f is evaluated M (N (K - 1) + 1) times per example: at each sample
  (with its gradient, for the pathwise term) and at its N (K - 1) changes of
  one variable to another class (the N terms k = z_n of the sum are the
  sample itself, not evaluated again); REINFORCE / RLOO with M samples
  evaluate it M times.

  Args:
    key: PRNG key.
    logits: `[..., N, K]` categorical logits.
    f: objective, per example `[...]`.
    state: unused (stateless).
    distribution: "categorical" (the only one: the sum is over K classes of
      factorised categorical variables).
    num_samples: M >= 1, the samples averaged over.

  Returns:
    `(loss [...], aux)`: loss = -mean_m f(z^{(m)}) in value; aux.objective =
    mean_m f(z^{(m)}); `aux.samples  # [M, ..., N, K]`; diagnostics
    "signal_mean" / "signal_std" of the centred class values
    F_{mnk} - \sum_j q_n(j) F_{mnj} (what multiplies \nabla q_n(k) in
    effect).

  References:
    De Smet, Sansone & Zuidberg Dos Martires (2023), Differentiable sampling
    of categorical distributions using the CatLog-derivative trick, NeurIPS.
  """
  del state
  logits = jnp.asarray(logits)
  _common.check_distribution(distribution, DISTRIBUTIONS, "indecater")
  _common.check_logits(logits, distribution)
  checks.check_int("num_samples", num_samples, 1)
  zs = _common.sample_hard(key, logits, distribution, (num_samples,))
  values = _common.call_objective_samples(f, zs, logits, distribution,
                                          "indecater")  # [M, ...]
  classes = rotated_classes(zs)  # [M, ..., N, K]
  others = other_class_values(f, zs, classes, logits)  # [M, N, K-1, ...]
  sampled = jnp.broadcast_to(jax.lax.stop_gradient(values)[:, None, None],
                             others.shape[:2] + (1,) + others.shape[3:])
  signal = jnp.moveaxis(jnp.concatenate([sampled, others], 2), (1, 2),
                        (-2, -1))  # F in the order of `classes`, [M, ..., N, K]
  probs = jnp.take_along_axis(
      jnp.broadcast_to(_common.probs(logits, distribution), classes.shape),
      classes, -1)  # q_n(classes), [M, ..., N, K]
  score = jnp.mean(jnp.sum((probs - jax.lax.stop_gradient(probs)) * signal,
                           (-2, -1)), 0)
  objective = jnp.mean(values, 0)  # [...]
  centred = signal - jnp.sum(jax.lax.stop_gradient(probs) * signal, -1,
                             keepdims=True)
  aux = EstimatorAux(objective=objective, samples=zs, state=None,
                     diagnostics=baselines.signal_stats(centred))
  return -(objective + score), aux
