"""The contract between a model family and the training loop.

The loop, the comparison launchers, the benchmarks and the tests rely on
this and nothing more: a model is an object holding only static
configuration, with pure functions of (params, state, key, data). Each
family also registers `validate_config(config)` and `from_config(config,
spec)` (`spec` a `discrete_vi.data.DataSpec`) in
`discrete_vi.models.registry`.

Evaluation. Before every evaluation (periodic validation and the final
valid / test bounds) the loop calls `prepare_evaluation(params, key,
state=model_state)` once. It returns `(context, info)`: the context (a
pytree of arrays, or None) is what the bound needs besides the parameters
and is shared by all batches (log Z of an RBM prior and its standard
error, `stochastic.rbm_prior.LogZ`); the loop hands it, separately from the
unchanged parameters, to `log_likelihood(..., context=context)` and to
every extra evaluation. The info (numbers with their standard errors, or
strings such as the method used) is written to `metrics.jsonl` and
`results.json` as `<split>_<name>`; a model may also report the health of
its state there (e.g. the persistent chains' energy gap). Models with
nothing to prepare return `(None, {})`.
"""

from typing import Any, Callable, Mapping, NamedTuple, Protocol, runtime_checkable

from discrete_vi.types import Array, Estimator, PRNGKey

# Everything a model carries between training steps besides its parameters
# (estimator state such as running baselines, persistent Gibbs chains of an
# RBM prior, ...): a pytree of arrays, or None. Checkpointed with the train
# state.
ModelState = Any

# Samples per row of a sample grid, unless a model's samples come in groups
# (`Model.sample_columns`).
SAMPLE_COLUMNS = 10

# What `Model.prepare_evaluation` hands to the evaluations besides the
# parameters: a pytree of arrays (e.g. an RBM prior's log Z), or None.
EvaluationContext = Any

# An extra evaluation: fn(params, key, x [B, D], *, context) -> [B], averaged
# over a split (`context` as returned by `Model.prepare_evaluation`).
EvaluationFn = Callable[..., Array]

# What `Model.prepare_evaluation` reports: name -> a Python float (written to
# the metrics and results.json) or str (results.json only, e.g. a method).
EvaluationInfo = Mapping[str, Any]


class ModelAux(NamedTuple):
  """What `Model.loss` returns beside the scalar training loss.

  Attributes:
    objective: `[B]` the sampled training objective at hard samples (the
      honest Monte Carlo estimate of what the model maximises, e.g. the ELBO
      integrand, or log p(x) for an exact-likelihood flow).
    state: the new model state (same structure as the one passed in).
    diagnostics: dict of scalars, logged as `diag/<name>`.
  """
  objective: Array
  state: ModelState
  diagnostics: dict


@runtime_checkable
class Model(Protocol):
  """A model family as the training loop sees it.

  Attributes:
    description: a short name for `results.json` ("sbn:linear", ...).
    sample_columns: how `sample` lays out its samples: consecutive rows of
      this many belong together (e.g. share a global latent, Vahdat et
      al., 2018, Fig. 4); `SAMPLE_COLUMNS` when they do not.
  """
  description: str
  sample_columns: int

  def init(self, key: PRNGKey, x_example: Array) -> Any:
    """Initial parameters (a pytree) for data shaped like `x_example`."""

  def init_state(self, key: PRNGKey, params: Any, x_example: Array,
                 estimator: Estimator) -> ModelState:
    """The initial model state for batches shaped like `x_example`."""

  def loss(self, params: Any, key: PRNGKey, x: Array, *, step: Array,
           estimator: Estimator, state: ModelState
           ) -> tuple[Array, ModelAux]:
    """The scalar training loss (its gradient the estimator's) and aux."""

  def prepare_evaluation(self, params: Any, key: PRNGKey, *,
                         state: ModelState = None
                         ) -> tuple[EvaluationContext, EvaluationInfo]:
    """`(context, info)`: run once before each evaluation (`state` the
    model state at the evaluated step, None when there is none, e.g. for
    a restored best checkpoint); the context goes to `log_likelihood` and
    the extra evaluations."""

  def log_likelihood(self, params: Any, key: PRNGKey, x: Array, *,
                     num_samples: int, chunk_size: int,
                     context: EvaluationContext = None) -> Array:
    """`[B]` the evaluation bound on log p(x) of the discrete model
    (`context` as returned by `prepare_evaluation`)."""

  def sample(self, params: Any, key: PRNGKey, n: int) -> Array:
    """`[n, D]` samples of p(x) (the training parameters), in data space
    with the data's shape: for binary data values in [0, 1] (a binary
    draw, or the decoder's pixel probabilities E[x | z] for the
    factorised decoders), for 8-bit data values in [0, 255]; laid out in
    rows of `sample_columns`."""

  def extra_evaluations(self) -> Mapping[str, EvaluationFn]:
    """Further per-example evaluations by name (empty when there are none),
    each `fn(params, key, x, *, context) -> [B]`; the loop reports each
    as `<split>_<name>` in `results.json`, its mean
    over the split's examples, with `<split>_<name>_stderr`, the standard
    error of that mean over the examples."""


def without_context(fn: Callable[[Any, PRNGKey, Array], Array]
                    ) -> EvaluationFn:
  """`fn(params, key, x) -> [B]` as an `EvaluationFn` (one that needs no
  evaluation context: it takes and ignores `context`)."""
  def evaluation(params, key, x, *, context=None):
    del context
    return fn(params, key, x)
  return evaluation


class NothingToPrepare:
  """For models whose evaluation needs nothing beyond the parameters:
  `prepare_evaluation` returns `(None, {})`."""

  def prepare_evaluation(self, params, key: PRNGKey, *, state=None):
    """Nothing to prepare: `(None, {})` (see `models.base.Model`)."""
    del params, key, state
    return None, {}
