"""The contract between a model family and the training loop.

The loop, the comparison launchers, the benchmarks and the tests rely on
this and nothing more: a model is an object holding only static
configuration, with pure functions of (params, state, key, data). Each
family also registers `validate_config(config)` and `from_config(config,
spec)` (`spec` a `discrete_vi.data.DataSpec`) in
`discrete_vi.models.registry`.

Evaluation. Before every evaluation (periodic validation and the final
valid / test bounds) the loop calls `prepare_evaluation(params, key)` once
and hands the parameters it returns to `log_likelihood` and to every extra
evaluation. A model whose bound needs a quantity shared by all batches
(log Z of an RBM prior, estimated by AIS) computes it there, adds it to the
evaluation parameters, and reports it (with its standard error) in the
returned info, which the loop writes to `metrics.jsonl` and `results.json`
as `<split>_<name>`. Models with nothing to prepare return `(params, {})`.
"""

from typing import Any, Callable, Mapping, NamedTuple, Protocol, runtime_checkable

from discrete_vi.types import Array, Estimator, PRNGKey

# Everything a model carries between training steps besides its parameters
# (estimator state such as running baselines, persistent Gibbs chains of an
# RBM prior, ...): a pytree of arrays, or None. Checkpointed with the train
# state.
ModelState = Any

# An extra evaluation: fn(params, key, x [B, D]) -> [B], averaged over a split
# (params as returned by `Model.prepare_evaluation`).
EvaluationFn = Callable[[Any, PRNGKey, Array], Array]

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
  """
  description: str

  def init(self, key: PRNGKey, x_example: Array) -> Any:
    """Initial parameters (a pytree) for data shaped like `x_example`."""

  def init_state(self, key: PRNGKey, params: Any, x_example: Array,
                 estimator: Estimator) -> ModelState:
    """The initial model state for batches shaped like `x_example`."""

  def loss(self, params: Any, key: PRNGKey, x: Array, *, step: Array,
           estimator: Estimator, state: ModelState
           ) -> tuple[Array, ModelAux]:
    """The scalar training loss (its gradient the estimator's) and aux."""

  def prepare_evaluation(self, params: Any, key: PRNGKey
                         ) -> tuple[Any, EvaluationInfo]:
    """`(evaluation params, info)`: run once before each evaluation; the
    evaluation params go to `log_likelihood` and the extra evaluations."""

  def log_likelihood(self, params: Any, key: PRNGKey, x: Array, *,
                     num_samples: int, chunk_size: int) -> Array:
    """`[B]` the evaluation bound on log p(x) of the discrete model (params
    as returned by `prepare_evaluation`)."""

  def sample(self, params: Any, key: PRNGKey, n: int) -> Array:
    """`[n, D]` samples x ~ p(x) (the training parameters)."""

  def extra_evaluations(self) -> Mapping[str, EvaluationFn]:
    """Further per-example evaluations by name (empty when there are none);
    the loop reports each as `<split>_<name>` in `results.json`, its mean
    over the split's examples, with `<split>_<name>_stderr`, the standard
    error of that mean over the examples."""
