r"""Do the global latents of a trained conv DVAE++ carry digit identity?

    python -m experiments.compare --config=configs/dvaepp_conv.py \
        --rows="mixed;all_continuous" --steps=3000 --eval_every_steps=500 \
        --evaluations=digit_identity --workdir=runs/compare_dvaepp_conv

Vahdat et al. (2018, Fig. 4) show sample grids of the convolutional DVAE++
in which every row shares one global sample z ~ p(z) (the RBM's, or the
normal prior's) and the columns vary the local latents h ~ p(h | z); they
read the figure as "the global variables capture the digit class, the
local ones its style". This module makes that reading a number for a run
of `configs/dvaepp_conv.py` (the comparison's `--evaluations=digit_identity`
after each of its runs, or `run(workdir)` on any run's workdir, e.g. one of
`python -m experiments.main`):

1. Restores the run's model and best-validation parameters from its workdir
   (`config.json` and the `best/` orbax checkpoint, `training.restore_run`).
2. Draws `rows` x `sample_columns` samples with the model's own Fig. 4
   sampler (`model.sample`: sample k uses global sample k // columns), the
   pixel probabilities it returns for binary data.
3. Labels every sample with a k-nearest-neighbour classifier (Euclidean
   distance, k = 5 by default) on the 4000 grey-level training digits of the
   embedded mnist5k (`data.embedded.load_mnist5k_labelled`); its accuracy
   on the 500 mnist5k test digits (grey and binarised) says how far the
   labels can be trusted.
4. Per row: purity (the fraction of the columns that carry the row's
   majority label) and the number of distinct labels; their means over the
   rows, against the same statistics of a chance reference whose rows are
   formed by shuffling all the samples' labels across rows (same label
   histogram, no shared global sample), over `num_shuffles` shuffles, with
   the permutation p-value of the observed mean purity. Purity above the
   shuffled reference is digit identity carried by the global sample.

`run` returns the numbers as a dict (its `markdown`: the tables);
`headline` the few the comparison tabulates.

Reference:
  Vahdat, Macready, Bian, Khoshaman & Andriyash (2018), DVAE++: Discrete
    variational autoencoders with overlapping transformations. ICML.
"""

from typing import NamedTuple

import jax
import numpy as np

from discrete_vi import checks
from discrete_vi import training
from discrete_vi import data as data_lib
from discrete_vi.data import embedded

NUM_CLASSES = 10
NUM_PIXELS = 784  # 28 x 28 mnist5k digits
# Datasets of 28 x 28 binarised MNIST digits, whose samples the mnist5k
# labeller can label.
DIGIT_DATASETS = ("mnist5k", "mnist", "binarized_mnist")


# -- restoring a run -----------------------------------------------------------


def sample_grid(model, params, key, rows: int) -> np.ndarray:
  """`[rows, columns, D]` samples of the model's Fig. 4 sampler: row r is
  one global sample, its `columns` = `model.sample_columns` entries local
  samples given it (pixel probabilities for binary data)."""
  columns = model.sample_columns
  images = np.asarray(model.sample(params, key, rows * columns))  # [R C, D]
  return images.reshape(rows, columns, -1)


# -- the k-NN labeller -----------------------------------------------------------


class Labelled(NamedTuple):
  """Labelled digits for the k-NN labeller: grey training and test images
  `[N, 784]` in [0, 1], their labels `[N]`, and the test images as the run's
  data binarised them (`[N, 784]` 0/1)."""
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  test_binary: np.ndarray


def mnist5k_labelled() -> Labelled:
  """The embedded mnist5k's train and test digits with their labels
  (`data.embedded.load_mnist5k_labelled`) and its statically binarised test
  split (seed 0, `data.load_dataset`)."""
  images, labels = embedded.load_mnist5k_labelled()
  binary = data_lib.load_dataset("mnist5k", binarization="static", seed=0)
  return Labelled(images.train, labels.train, images.test, labels.test,
                  binary.test)


def knn_labels(queries: np.ndarray, references: np.ndarray,
               reference_labels: np.ndarray, k: int = 5,
               num_classes: int = NUM_CLASSES, chunk_size: int = 1000
               ) -> tuple[np.ndarray, np.ndarray]:
  """k-nearest-neighbour labels under the Euclidean distance.

  The label is the majority among the k nearest references; a tie goes to
  the tied class of the nearest neighbour.

  Args:
    queries: `[N, D]` vectors to label.
    references: `[M, D]` labelled vectors, M >= k.
    reference_labels: `[M]` integer labels in [0, num_classes).
    k: number of neighbours.
    num_classes: number of classes.
    chunk_size: queries per distance matrix.

  Returns:
    `(labels [N], vote_share [N])`, vote_share the fraction of the k
    neighbours that carry the label.

  Raises:
    ValueError: for k outside [1, M] or mismatched shapes.
  """
  queries = np.asarray(queries, np.float64)
  references = np.asarray(references, np.float64)
  reference_labels = np.asarray(reference_labels, np.int64)
  if not 1 <= k <= references.shape[0]:
    raise ValueError(f"k={k} must be in [1, {references.shape[0]}] "
                     "(the number of references).")
  if (queries.shape[1:] != references.shape[1:]
      or reference_labels.shape != references.shape[:1]):
    raise ValueError(f"shapes do not match: queries {queries.shape}, "
                     f"references {references.shape}, labels "
                     f"{reference_labels.shape}.")
  ref_norms = np.sum(np.square(references), 1)  # [M]
  labels, shares = [], []
  for start in range(0, queries.shape[0], chunk_size):
    q = queries[start:start + chunk_size]  # [n, D]
    # Squared distances up to the per-query constant |q|^2: [n, M].
    dist = ref_norms[None, :] - 2.0 * q @ references.T
    nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]  # [n, k]
    order = np.argsort(np.take_along_axis(dist, nearest, 1), axis=1,
                       kind="stable")
    nearest = np.take_along_axis(nearest, order, 1)  # [n, k], nearest first
    neighbour_labels = reference_labels[nearest]  # [n, k]
    votes = np.zeros((q.shape[0], num_classes), np.int64)  # [n, K]
    np.add.at(votes, (np.arange(q.shape[0])[:, None], neighbour_labels), 1)
    tied = votes == votes.max(1, keepdims=True)  # [n, K]
    in_tied = np.take_along_axis(tied, neighbour_labels, 1)  # [n, k]
    first = np.argmax(in_tied, 1)  # the nearest neighbour of a tied class
    label = neighbour_labels[np.arange(q.shape[0]), first]  # [n]
    labels.append(label)
    shares.append(votes.max(1) / k)
  return np.concatenate(labels), np.concatenate(shares)


# -- statistics of a label grid [R, C] --------------------------------------------


def label_counts(labels: np.ndarray, num_classes: int = NUM_CLASSES
                 ) -> np.ndarray:
  """`[R, K]` how often each class occurs in each row of `labels [R, C]`."""
  labels = np.asarray(labels, np.int64)
  counts = np.zeros((labels.shape[0], num_classes), np.int64)
  np.add.at(counts, (np.arange(labels.shape[0])[:, None], labels), 1)
  return counts


def row_purity(labels: np.ndarray, num_classes: int = NUM_CLASSES
               ) -> np.ndarray:
  """`[R]` the fraction of each row's columns that carry its majority
  label, from 1 / C (all different, if C <= K) to 1 (all the same)."""
  labels = np.asarray(labels)
  return label_counts(labels, num_classes).max(1) / labels.shape[1]


def row_distinct(labels: np.ndarray, num_classes: int = NUM_CLASSES
                 ) -> np.ndarray:
  """`[R]` the number of distinct labels in each row of `labels [R, C]`."""
  return np.sum(label_counts(labels, num_classes) > 0, 1)


def label_histogram(labels: np.ndarray, num_classes: int = NUM_CLASSES
                    ) -> np.ndarray:
  """`[K]` counts of each class over all entries of `labels`."""
  return np.bincount(np.ravel(labels).astype(np.int64),
                     minlength=num_classes)


def grid_statistics(labels: np.ndarray, num_classes: int = NUM_CLASSES
                    ) -> dict:
  """Means over the rows of `labels [R, C]`: purity, distinct labels, and
  the fraction of rows that are pure (one label)."""
  purity = row_purity(labels, num_classes)
  return {"mean_purity": float(np.mean(purity)),
          "mean_distinct": float(np.mean(row_distinct(labels, num_classes))),
          "pure_rows": float(np.mean(purity == 1.0))}


def shuffled_reference(labels: np.ndarray, key) -> np.ndarray:
  """`[R, C]` the entries of `labels [R, C]` permuted across the whole grid:
  rows of the same label histogram with no shared global sample."""
  labels = np.asarray(labels)
  return np.asarray(jax.random.permutation(key, labels.ravel())).reshape(
      labels.shape)


def shuffled_statistics(labels: np.ndarray, key, num_shuffles: int,
                        num_classes: int = NUM_CLASSES) -> dict:
  """`grid_statistics` of `num_shuffles` shuffled references: each one's
  mean and standard deviation over the shuffles (`<name>` and
  `<name>_std`), and `p_value` = (1 + #{shuffles with mean purity >= the
  observed}) / (1 + num_shuffles), the permutation test of "rows share no
  more labels than chance"."""
  observed = grid_statistics(labels, num_classes)["mean_purity"]
  draws = [grid_statistics(shuffled_reference(labels, k), num_classes)
           for k in jax.random.split(key, num_shuffles)]
  out = {}
  for name in draws[0]:
    values = np.array([d[name] for d in draws])  # [num_shuffles]
    out[name], out[f"{name}_std"] = float(values.mean()), float(values.std())
  at_least = sum(d["mean_purity"] >= observed - 1e-12 for d in draws)
  out["p_value"] = (1 + at_least) / (1 + num_shuffles)
  return out


# -- the measurement ---------------------------------------------------------------


def markdown(result: dict) -> str:
  """The markdown tables of a `measure` / `run` result."""
  m, s = result["model"], result["shuffled"]
  lines = [
      f"**{result['workdir']}** ({result['description']}, best step "
      f"{result['best_step']}; {result['rows']} rows x {result['columns']} "
      f"columns, seed {result['seed']})", "",
      f"| statistic | rows of one global sample | shuffled rows (mean ± sd, "
      f"{result['num_shuffles']} shuffles) |",
      "|---|---|---|",
      f"| mean purity (± stderr over rows) | {m['mean_purity']:.3f} ± "
      f"{m['mean_purity_stderr']:.3f} | {s['mean_purity']:.3f} ± "
      f"{s['mean_purity_std']:.3f} |",
      f"| mean distinct labels | {m['mean_distinct']:.2f} | "
      f"{s['mean_distinct']:.2f} ± {s['mean_distinct_std']:.2f} |",
      f"| pure rows (one label) | {m['pure_rows']:.2f} | "
      f"{s['pure_rows']:.2f} ± {s['pure_rows_std']:.2f} |", "",
      f"Permutation p-value of the mean purity: {s['p_value']:.4f}.", "",
      "| label | " + " | ".join(str(c) for c in range(NUM_CLASSES)) + " |",
      "|---|" + "---|" * NUM_CLASSES,
      "| samples | " + " | ".join(str(n) for n in result["histogram"]) + " |",
      "",
      f"Labeller: {result['k']}-NN, Euclidean, on the 4000 grey mnist5k "
      f"training digits; mnist5k test accuracy "
      f"{result['test_accuracy']:.3f} (grey), "
      f"{result['test_accuracy_binarised']:.3f} (binarised); mean vote "
      f"share {result['sample_vote_share']:.2f} on the samples, "
      f"{result['test_vote_share']:.2f} on the grey test digits.",
  ]
  return "\n".join(lines) + "\n"


def measure(model, params, key, *, rows: int, k: int, num_shuffles: int,
            labelled=None) -> dict:
  """Samples, labels and statistics of one model (see the module docstring).

  Args:
    model: a model with `sample` and `sample_columns` (the conv DVAE++) on
      28 x 28 binary data.
    params: its parameters.
    key: PRNG key of the samples and the shuffles.
    rows: global samples to draw.
    k: neighbours of the labeller.
    num_shuffles: shuffles of the chance reference.
    labelled: a `Labelled` (`mnist5k_labelled()` when None).

  Returns:
    A dict: `model` and `shuffled` statistics, `histogram`, `labels`
    `[R, C]`, the labeller's test accuracies and vote shares.

  Raises:
    ValueError: for a model without a shared-global sampler, or whose
      samples are not 784-pixel binary-data probabilities.
  """
  if not hasattr(model, "sample_columns"):
    raise ValueError(f"{type(model).__name__} has no sample_columns: its "
                     "samples do not share global samples by rows.")
  if (getattr(model, "value_type", "binary") != "binary"
      or model.data_dim != NUM_PIXELS):
    raise ValueError("the mnist5k labeller needs 28 x 28 binary-data "
                     f"samples; the model has data_dim={model.data_dim}.")
  checks.check_int("rows", rows, 1)
  checks.check_int("num_shuffles", num_shuffles, 1)
  if labelled is None:
    labelled = mnist5k_labelled()
  train_x, train_y, test_x, test_y, binary_test = labelled
  sample_key, shuffle_key = jax.random.split(key)
  grid = sample_grid(model, params, sample_key, rows)  # [R, C, 784]
  flat_labels, share = knn_labels(grid.reshape(-1, NUM_PIXELS), train_x,
                                  train_y, k)
  labels = flat_labels.reshape(grid.shape[:2])  # [R, C]
  statistics = grid_statistics(labels)
  # Standard error of the mean purity over the rows (rows are independent).
  statistics["mean_purity_stderr"] = float(
      np.std(row_purity(labels), ddof=1) / np.sqrt(rows)) if rows > 1 else 0.0
  test_pred, test_share = knn_labels(test_x, train_x, train_y, k)
  binary_pred, _ = knn_labels(binary_test, train_x, train_y, k)
  return {
      "rows": rows, "columns": grid.shape[1], "k": k,
      "num_shuffles": num_shuffles,
      "model": statistics,
      "shuffled": shuffled_statistics(labels, shuffle_key, num_shuffles),
      "histogram": label_histogram(labels).tolist(),
      "labels": labels.tolist(),
      "test_accuracy": float(np.mean(test_pred == test_y)),
      "test_accuracy_binarised": float(np.mean(binary_pred == test_y)),
      "sample_vote_share": float(np.mean(share)),
      "test_vote_share": float(np.mean(test_share)),
  }


def run(workdir: str, *, rows: int = 100, seed: int = 0, k: int = 5,
        num_shuffles: int = 1000) -> dict:
  """Restores the run of `workdir` and measures it (`measure`).

  Returns:
    `measure`'s dict with `workdir`, `seed`, `best_step`, `description` and
    `markdown` (its tables, `markdown(result)`).
  """
  model, state, _ = training.restore_run(workdir)
  result = measure(model, state.params, jax.random.PRNGKey(seed), rows=rows,
                   k=k, num_shuffles=num_shuffles)
  result.update(workdir=workdir, seed=seed, best_step=int(state.step),
                description=model.description)
  result["markdown"] = markdown(result)
  return result


# -- in the comparison's tables -----------------------------------------------


def check_config(config) -> None:
  """Raises ValueError unless a run of `config` can be measured: a model
  whose rows of samples share one global sample (its section has
  `sample_columns`: the conv DVAE++ of `configs/dvaepp_conv.py`) trained on
  MNIST digits (`DIGIT_DATASETS`). Reads the config only."""
  if "sample_columns" not in config.model:
    raise ValueError(
        f"digit_identity needs a model whose rows of samples share one "
        f"global sample (config.model.sample_columns, the conv DVAE++ of "
        f"configs/dvaepp_conv.py); config.model.name="
        f"{config.model.name!r} has no such rows.")
  if config.data.name not in DIGIT_DATASETS:
    raise ValueError(
        f"digit_identity labels samples with the mnist5k digits' labels: "
        f"config.data.name={config.data.name!r} is not one of "
        f"{DIGIT_DATASETS}.")


def headline(result: dict) -> dict:
  """The numbers of a `run` / `measure` result that the comparison
  tabulates: the mean row purity (with its standard error over rows), the
  shuffled reference's mean purity and the permutation p-value."""
  return {"digit_purity": result["model"]["mean_purity"],
          "digit_purity_stderr": result["model"]["mean_purity_stderr"],
          "shuffled_purity": result["shuffled"]["mean_purity"],
          "purity_p_value": result["shuffled"]["p_value"]}
