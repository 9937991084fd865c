r"""REBAR and RELAX: control variates built from a continuous relaxation.

Both estimators share one core, for Bernoulli and categorical variables.
Bernoulli, with u, v ~ U(0, 1)^D:

    z = l + logit(u),   b = H(z) ~ Bern(sigma(l)),   z~ ~ p(z | b) (from v),
    relaxation sigma_lambda(z) = sigma(z / lambda);

categorical (`[..., D, K]` logits), with Gumbel noise G and g:

    z = l + G,   b = one_hot(argmax_k z) ~ Cat(softmax(l)),
    z~ ~ p(z | b) (the truncated-Gumbel construction from g,
    `concrete.conditional_gumbel_given_noise`),
    relaxation sigma_lambda(z) = softmax(z / lambda)

(Tucker et al., 2017, Appendix C; Grathwohl et al., 2018, Appendix B). With
a control variate c(z), the logits gradient

$$\hat g = [f(b) - c(\tilde z)]\,\nabla_l \log q(b) + \nabla_l c(z)
           - \nabla_l c(\tilde z)$$

is unbiased for \nabla_l E_q[f] for any c (differentiable in z), where
\nabla_l log q(b) = b - sigma(l) (Bernoulli) or b - softmax(l) (each
categorical variable). REBAR uses c(z) = eta f(sigma_lambda(z)); RELAX adds a
learned network, c_phi(z) = eta f(sigma_lambda(z)) + r_phi(sigma_lambda(z),
q's probabilities).

The core computes \hat g explicitly (an inner `jax.grad` with respect to the
logits used for sampling) and returns the loss
`-(f(b) + sum(stop_gradient(g) * (l - stop_gradient(l))))`: its value is -f(b),
the logits receive exactly g, and the parameters f closes over receive only
the gradient of f(b), never a gradient of the control variate. The control
variate parameters (eta, log lambda, phi) live in the estimator state and are
updated by one Adam step on the single-sample variance proxy
mean_batch sum_units g^2 (over D, or D x K), whose gradient equals that of Var[g] because E[g] does
not depend on them.
"""

import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from discrete_vi import checks
from discrete_vi.distributions import concrete
from discrete_vi.estimators import _common
from discrete_vi.estimators import baselines
from discrete_vi.types import Array, EstimatorAux, ObjectiveFn, PRNGKey

# surrogate(params, relaxed [2, ..., E], context [..., E]) -> [2, ...], with
# E the flattened units (D, or D * K for categorical variables).
SurrogateFn = Callable[[Any, Array, Array], Array]
SUPPORTED = ("bernoulli", "categorical")


class ControlVariateState(NamedTuple):
  """State of REBAR / RELAX.

  Attributes:
    params: dict with scalars "eta" and "log_temperature" and, for RELAX, the
      Flax parameters "surrogate" of r_phi.
    opt_state: the optax Adam state of `params`.
  """
  params: dict
  opt_state: Any


class Surrogate(nn.Module):
  """r_phi: an MLP on the relaxed sample and the probabilities, per example.

  The last layer starts at zero, so RELAX starts as REBAR.
  """
  hidden_size: int = 32

  @nn.compact
  def __call__(self, relaxed: Array, context: Array) -> Array:
    h = jnp.concatenate([relaxed, context], -1)  # [..., 2D]
    h = nn.tanh(nn.Dense(self.hidden_size)(h))
    h = nn.tanh(nn.Dense(self.hidden_size)(h))
    out = nn.Dense(1, kernel_init=nn.initializers.zeros)(h)  # [..., 1]
    return out[..., 0]


def _unit_axes(distribution: str) -> tuple[int, ...]:
  """The axes of one example's units: D, or (D, K) for categorical."""
  return (-1,) if distribution == "bernoulli" else (-2, -1)


def _flatten_units(x: Array, distribution: str) -> Array:
  """`[..., D]` unchanged; `[..., D, K]` -> `[..., D * K]`."""
  if distribution == "bernoulli":
    return x
  return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))


def _relax(zs: Array, log_temperature: Array, distribution: str) -> Array:
  """sigma(z / lambda), or softmax(z / lambda) over the K classes."""
  scaled = zs * jnp.exp(-log_temperature)
  if distribution == "bernoulli":
    return jax.nn.sigmoid(scaled)
  return jax.nn.softmax(scaled, -1)


def _hard(perturbed: Array, distribution: str) -> Array:
  """b = H(z): 1[z > 0], or the one-hot arg max over the classes."""
  if distribution == "bernoulli":
    return (perturbed > 0).astype(perturbed.dtype)
  return concrete.harden_categorical(perturbed)


def _conditional(logits: Array, b: Array, v: Array, distribution: str
                 ) -> Array:
  """z~ ~ p(z | b) from the fixed noise v, differentiable in the logits."""
  if distribution == "bernoulli":
    return logits + concrete.conditional_logistic_given_uniform(logits, b, v)
  return logits + concrete.conditional_gumbel_given_noise(logits, b, v)


def _noise(key: PRNGKey, logits: Array, distribution: str
           ) -> tuple[Array, Array]:
  """The noise of z (logistic or Gumbel) and of z~ (uniform or Gumbel)."""
  key_u, key_v = jax.random.split(key)
  noise = concrete.sample_noise(key_u, logits.shape, distribution,
                                logits.dtype)
  if distribution == "bernoulli":
    return noise, concrete.uniform_open(key_v, logits.shape, logits.dtype)
  return noise, jax.random.gumbel(key_v, logits.shape, logits.dtype)


def _control_variate(params: dict, zs: Array, context: Array,
                     f: ObjectiveFn, logits: Array, surrogate: SurrogateFn,
                     distribution: str, estimator: str) -> Array:
  """c(z) = eta f(sigma_lambda(z)) + r(sigma_lambda(z)).

  Args:
    params: control-variate parameters (see `ControlVariateState`).
    zs: `[2, ..., D]` (or `[2, ..., D, K]`) perturbed logits, z and z~.
    context: `[..., D]` (or `[..., D, K]`) constant input of r.
    f: the objective.
    logits: `[..., D]` (or `[..., D, K]`), for f's shape check.
    surrogate: r, or zeros for REBAR.
    distribution: "bernoulli" or "categorical".
    estimator: name for error messages.

  Returns:
    `[2, ...]`.
  """
  relaxed = _relax(zs, params["log_temperature"], distribution)
  f_relaxed = _common.call_objective_samples(f, relaxed, logits, distribution,
                                             estimator)  # [2, ...]
  return params["eta"] * f_relaxed + surrogate(
      params, _flatten_units(relaxed, distribution),
      _flatten_units(context, distribution))


def _logits_gradient(params: dict, logits: Array, noise: Array, v: Array,
                     b: Array, f_b: Array, f: ObjectiveFn,
                     surrogate: SurrogateFn, distribution: str,
                     estimator: str) -> tuple[Array, Array]:
  r"""\hat g = (f(b) - c(z~)) \nabla_l log q(b) + \nabla_l [c(z) - c(z~)].

  `logits` must be free of outer gradients (stop_gradient'ed by the caller);
  the result is differentiable in `params` (for the variance proxy). The
  batch rows are independent, so the gradient of the batch sum gives each
  example's own row.

  Returns:
    `(g, c(z~))` with g shaped like the logits and c(z~) `[...]`.
  """
  context = _common.probs(logits, distribution)  # a constant input of r

  def relaxed_difference(l):
    zs = jnp.stack([l + noise, _conditional(l, b, v, distribution)])
    c = _control_variate(params, zs, context, f, logits, surrogate,
                         distribution, estimator)
    return jnp.sum(c[0] - c[1]), c[1]

  grad_c, c_tilde = jax.grad(relaxed_difference, has_aux=True)(logits)
  score = b - context  # d log q(b) / dl
  f_minus_c = (f_b - c_tilde).reshape(
      c_tilde.shape + (1,) * len(_unit_axes(distribution)))
  return f_minus_c * score + grad_c, c_tilde


def _variance_proxy(g: Array, distribution: str) -> Array:
  """mean over the batch of the sum of g^2 over the units: E of it minus a
  constant is Var[g]."""
  return jnp.mean(jnp.sum(g**2, _unit_axes(distribution)))


def _estimate(key: PRNGKey, logits: Array, f: ObjectiveFn,
              state: ControlVariateState, surrogate: SurrogateFn, learn: bool,
              learning_rate: float, distribution: str, estimator: str
              ) -> tuple[Array, EstimatorAux]:
  """The shared REBAR / RELAX core (see the module docstring)."""
  noise, v = _noise(key, logits, distribution)
  b = _hard(logits + noise, distribution)  # H(z), shaped like the logits
  f_b = _common.call_objective_per_example(f, b, logits, distribution,
                                           estimator)  # [...]
  fixed_logits = jax.lax.stop_gradient(logits)
  f_b_fixed = jax.lax.stop_gradient(f_b)

  def gradient_and_proxy(params):
    g, c_tilde = _logits_gradient(params, fixed_logits, noise, v, b, f_b_fixed,
                                  f, surrogate, distribution, estimator)
    return _variance_proxy(g, distribution), (g, c_tilde)

  if learn:
    (proxy, (g, c_tilde)), grads = jax.value_and_grad(
        gradient_and_proxy, has_aux=True)(state.params)
    updates, opt_state = optax.adam(learning_rate).update(
        grads, state.opt_state, state.params)
    state = ControlVariateState(optax.apply_updates(state.params, updates),
                                opt_state)
  else:
    proxy, (g, c_tilde) = gradient_and_proxy(state.params)
  state = jax.lax.stop_gradient(state)
  g = jax.lax.stop_gradient(g)
  centred = logits - fixed_logits  # value 0, shaped like the logits
  loss = -(f_b + jnp.sum(g * centred, _unit_axes(distribution)))
  return loss, EstimatorAux(
      objective=f_b, samples=b, state=state,
      diagnostics=_diagnostics(state.params, f_b_fixed - c_tilde, proxy))


def _diagnostics(params: dict, signal: Array, proxy: Array) -> dict:
  """eta, temperature (after the update), learning-signal stats, proxy."""
  stats = baselines.signal_stats(signal)
  stats.update(eta=params["eta"],
               temperature=jnp.exp(params["log_temperature"]),
               variance_proxy=jax.lax.stop_gradient(proxy))
  return stats


def _check_options(distribution: str, temperature, eta, cv_learning_rate,
                   estimator: str) -> None:
  """Validates the options shared by REBAR and RELAX."""
  _common.check_distribution(distribution, SUPPORTED, estimator=estimator)
  checks.check_positive("temperature", temperature)
  checks.check_positive("cv_learning_rate", cv_learning_rate)
  checks.check_finite("eta", eta)


def _scalar_params(logits: Array, temperature, eta) -> dict:
  dtype = jnp.asarray(logits).dtype
  return {"eta": jnp.asarray(eta, dtype),
          "log_temperature": jnp.log(jnp.asarray(temperature, dtype))}


def init_rebar(key: PRNGKey, logits: Array, *,
               distribution: str = "bernoulli", temperature: float = 0.5,
               eta: float = 1.0, cv_learning_rate: float = 1e-3
               ) -> ControlVariateState:
  """The initial REBAR state: eta, log(temperature) and their Adam state.

  Args:
    key: unused (kept for the common signature).
    logits: `[..., D]` (or `[..., D, K]`), for the dtype.
    distribution: "bernoulli" or "categorical".
    temperature: lambda > 0 of the relaxation sigma(z / lambda).
    eta: scale of the control variate.
    cv_learning_rate: Adam learning rate of (eta, log lambda).

  Returns:
    `ControlVariateState`.
  """
  del key
  _check_options(distribution, temperature, eta, cv_learning_rate, "rebar")
  params = _scalar_params(logits, temperature, eta)
  return ControlVariateState(params, optax.adam(cv_learning_rate).init(params))


def init_relax(key: PRNGKey, logits: Array, *,
               distribution: str = "bernoulli", temperature: float = 0.5,
               eta: float = 1.0, hidden_size: int = 32,
               cv_learning_rate: float = 1e-3) -> ControlVariateState:
  """The initial RELAX state: eta, log lambda, the surrogate r_phi, Adam state.

  Args:
    key: PRNG key for the surrogate's initial weights.
    logits: `[..., D]`, or `[..., D, K]` for categorical variables; D (or
      D * K) sets the surrogate's input size.
    distribution: "bernoulli" or "categorical".
    temperature: initial lambda > 0.
    eta: initial scale of the relaxed-f term.
    hidden_size: width of the two hidden layers of r_phi.
    cv_learning_rate: Adam learning rate of all control-variate parameters.

  Returns:
    `ControlVariateState` with params {"eta", "log_temperature",
    "surrogate"}.
  """
  _check_options(distribution, temperature, eta, cv_learning_rate, "relax")
  checks.check_int("hidden_size", hidden_size, 1)
  logits = jnp.asarray(logits)
  _common.check_logits(logits, distribution)
  units = logits.shape[len(_common.batch_shape(logits, distribution)):]
  example = jnp.zeros((math.prod(units),), logits.dtype)  # [D] or [D * K]
  params = _scalar_params(logits, temperature, eta)
  params["surrogate"] = Surrogate(hidden_size).init(key, example, example)
  return ControlVariateState(params, optax.adam(cv_learning_rate).init(params))


def _check_surrogate_size(state: ControlVariateState, logits: Array,
                          distribution: str) -> None:
  """Raises ValueError when r_phi was initialised for another number of
  units than the logits have (e.g. a Bernoulli state for categorical
  logits)."""
  units = math.prod(logits.shape[len(_common.batch_shape(logits,
                                                         distribution)):])
  inputs = state.params["surrogate"]["params"]["Dense_0"]["kernel"].shape[0]
  if inputs != 2 * units:
    raise ValueError(
        f"relax: the state's surrogate takes {inputs // 2} units, the "
        f"{distribution} logits of shape {logits.shape} have {units}; make "
        "the state with init_relax for these logits.")


def _no_surrogate(params, relaxed: Array, context: Array) -> Array:
  del params, context
  return jnp.zeros(relaxed.shape[:-1], relaxed.dtype)


def _mlp_surrogate(hidden_size: int) -> SurrogateFn:
  """r_phi(relaxed, context) for a stack of relaxed samples `[2, ..., E]`
  (E = D, or D * K for categorical variables, flattened by the caller)."""
  def surrogate(params, relaxed, context):
    context = jnp.broadcast_to(context, relaxed.shape)
    return Surrogate(hidden_size).apply(params["surrogate"], relaxed, context)
  return surrogate


def rebar(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
          distribution: str = "bernoulli", temperature: float = 0.5,
          eta: float = 1.0, learn_control_variate: bool = False,
          cv_learning_rate: float = 1e-3) -> tuple[Array, EstimatorAux]:
  r"""REBAR: REINFORCE with a relaxed-f control variate, kept unbiased.

  $$\hat g = [f(b) - \eta f(\sigma_\lambda(\tilde z))]\nabla\log q(b)
     + \eta\nabla f(\sigma_\lambda(z))
     - \eta\nabla f(\sigma_\lambda(\tilde z))$$

  with z = l + logit(u), b = H(z), z~ ~ p(z | b), sigma_lambda(z) =
  sigma(z / lambda) for Bernoulli variables; for categorical ones z = l + G
  (Gumbel), b = one-hot arg max z, z~ from truncated Gumbels and
  sigma_lambda(z) = softmax(z / lambda) (Tucker et al., 2017, Appendix C).
  f must accept relaxed inputs: in (0, 1)^D, or on the simplex per variable.

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli or `[..., D, K]` categorical logits.
    f: objective to maximise, per example `[...]`, defined on the relaxed
      samples ([0, 1]^D, or D simplices).
    state: `ControlVariateState` from `init_rebar`; None initialises it from
      `temperature` and `eta` (which are otherwise ignored: the state's
      values are used).
    distribution: "bernoulli" or "categorical".
    temperature: initial lambda > 0.
    eta: initial control-variate scale.
    learn_control_variate: take one Adam step on (eta, log lambda) that
      minimises the variance proxy; otherwise the state is carried unchanged.
    cv_learning_rate: that step's learning rate.

  Returns:
    `(loss, aux)`: loss `[...]` with value -f(b); `aux.state` the new state;
    diagnostics eta, temperature, signal_mean/std, variance_proxy.

  Raises:
    ValueError: for an unknown distribution, temperature <= 0, ...

  References:
    Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), "REBAR:
    Low-variance, unbiased gradient estimates for discrete latent variable
    models", NeurIPS; the single-sample REBAR estimator and its
    variance-minimising adaptation of eta and lambda.
  """
  _check_options(distribution, temperature, eta, cv_learning_rate, "rebar")
  checks.check_bool("learn_control_variate", learn_control_variate)
  logits = jnp.asarray(logits)
  _common.check_logits(logits, distribution)
  if state is None:
    state = init_rebar(key, logits, distribution=distribution,
                       temperature=temperature, eta=eta,
                       cv_learning_rate=cv_learning_rate)
  return _estimate(key, logits, f, state, _no_surrogate,
                   learn_control_variate, cv_learning_rate, distribution,
                   "rebar")


def relax(key: PRNGKey, logits: Array, f: ObjectiveFn, *, state=None,
          distribution: str = "bernoulli", temperature: float = 0.5,
          eta: float = 1.0, hidden_size: int = 32,
          cv_learning_rate: float = 1e-3) -> tuple[Array, EstimatorAux]:
  r"""RELAX for Bernoulli or categorical variables, with a learned control
  variate.

  $$\hat g = [f(b) - c_\phi(\tilde z)]\nabla\log q(b) + \nabla c_\phi(z)
     - \nabla c_\phi(\tilde z),\quad
     c_\phi(z) = \eta f(\sigma_\lambda(z))
       + r_\phi(\sigma_\lambda(z), q\text{'s probabilities}).$$

  Every call takes one Adam step on phi = (eta, log lambda, r's weights)
  minimising mean_batch sum_d \hat g_d^2 (the single-sample variance
  estimate); the new state is in `aux.state`. The gradient returned uses the
  control variate before the step, so it is unbiased given the state. r_phi
  sees q's probabilities (sigma(l), or softmax(l) flattened over D x K) as a
  constant input, so it may adapt to each example. Categorical variables use
  the Gumbel construction of `rebar` (Grathwohl et al., 2018, Appendix B).

  Args:
    key: PRNG key.
    logits: `[..., D]` Bernoulli or `[..., D, K]` categorical logits.
    f: objective to maximise, per example `[...]`, defined on the relaxed
      samples ([0, 1]^D, or D simplices).
    state: `ControlVariateState` from `init_relax`; None initialises it
      (with a key split from `key`).
    distribution: "bernoulli" or "categorical".
    temperature: initial lambda > 0.
    eta: initial scale of the relaxed-f term.
    hidden_size: width of r_phi (must match the state's).
    cv_learning_rate: Adam learning rate of phi.

  Returns:
    `(loss, aux)`: loss `[...]` with value -f(b); the parameters f closes
    over get exactly grad f(b); `aux.state` the updated state.

  Raises:
    ValueError: for an unknown distribution, temperature <= 0, a state
      without a surrogate, ...

  References:
    Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), "Backpropagation through
    the void: Optimizing control variates for black-box gradient
    estimation", ICLR; the discrete RELAX estimator and its variance-based
    update of phi.
  """
  _check_options(distribution, temperature, eta, cv_learning_rate, "relax")
  checks.check_int("hidden_size", hidden_size, 1)
  logits = jnp.asarray(logits)
  _common.check_logits(logits, distribution)
  if state is None:
    state = init_relax(jax.random.fold_in(key, 1), logits,
                       distribution=distribution, temperature=temperature,
                       eta=eta,
                       hidden_size=hidden_size,
                       cv_learning_rate=cv_learning_rate)
  if "surrogate" not in state.params:
    raise ValueError("relax needs a state from init_relax (with a "
                     "'surrogate'); got params with keys "
                     f"{sorted(state.params)}.")
  _check_surrogate_size(state, logits, distribution)
  return _estimate(key, logits, f, state, _mlp_surrogate(hidden_size), True,
                   cv_learning_rate, distribution, "relax")
