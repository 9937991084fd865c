"""Digit identity of the global samples: row statistics, the shuffled
reference, the k-NN labeller, the measurement on a stand-in model and the
comparison's `--evaluations=digit_identity`."""

import types

import jax
import numpy as np
import pytest

from discrete_vi import training
from experiments import digit_identity as di


def test_rows_of_one_label_are_pure():
  labels = np.repeat(np.arange(4)[:, None], 6, axis=1)  # [4, 6]
  np.testing.assert_array_equal(di.row_purity(labels), np.ones(4))
  np.testing.assert_array_equal(di.row_distinct(labels), np.ones(4))
  assert di.grid_statistics(labels) == {"mean_purity": 1.0,
                                        "mean_distinct": 1.0,
                                        "pure_rows": 1.0}


def test_mixed_rows_have_known_purity_and_counts():
  labels = np.array([[0, 0, 1, 2],
                     [3, 3, 3, 9],
                     [5, 6, 7, 8],
                     [4, 4, 4, 4]])
  np.testing.assert_allclose(di.row_purity(labels), [0.5, 0.75, 0.25, 1.0])
  np.testing.assert_array_equal(di.row_distinct(labels), [3, 2, 4, 1])
  stats = di.grid_statistics(labels)
  assert stats["mean_purity"] == pytest.approx(0.625)
  assert stats["mean_distinct"] == pytest.approx(2.5)
  assert stats["pure_rows"] == pytest.approx(0.25)
  np.testing.assert_array_equal(di.label_histogram(labels),
                                [2, 1, 1, 3, 4, 1, 1, 1, 1, 1])


def test_shuffling_keeps_the_histogram_and_breaks_the_rows():
  labels = np.repeat(np.arange(10)[:, None], 10, axis=1)  # [10, 10], pure
  shuffled = di.shuffled_reference(labels, jax.random.PRNGKey(0))
  assert shuffled.shape == labels.shape
  np.testing.assert_array_equal(di.label_histogram(shuffled),
                                di.label_histogram(labels))
  assert di.grid_statistics(shuffled)["mean_purity"] < 0.6
  other = di.shuffled_reference(labels, jax.random.PRNGKey(1))
  assert not np.array_equal(shuffled, other)


def test_shuffled_statistics_of_pure_rows_reject_chance():
  labels = np.repeat(np.arange(10)[:, None], 10, axis=1)
  out = di.shuffled_statistics(labels, jax.random.PRNGKey(2), 50)
  assert out["p_value"] == pytest.approx(1 / 51)  # no shuffle is as pure
  # 10 columns over 10 equally likely labels: E[purity] ~ 0.3, E[distinct]
  # = 10 (1 - 0.9^10) ~ 6.5 (a little more for draws without replacement).
  assert 0.25 < out["mean_purity"] < 0.4 and out["mean_purity_std"] > 0
  assert 6.0 < out["mean_distinct"] < 7.2
  assert out["pure_rows"] == 0.0


def test_shuffled_rows_are_not_significant():
  """Rows already in random order: the permutation p-value is not small."""
  rng = np.random.default_rng(0)
  labels = rng.permutation(np.repeat(np.arange(10), 20)).reshape(20, 10)
  out = di.shuffled_statistics(labels, jax.random.PRNGKey(3), 200)
  assert out["p_value"] > 0.05


def two_clusters():
  """References: class 0 around (0, 0), class 1 around (10, 0), and one
  class-1 outlier at (0.5, 0) inside cluster 0."""
  refs = np.array([[0, 0], [0, 1], [1, 0], [10, 0], [10, 1], [11, 0],
                   [0.5, 0]], np.float32)
  labels = np.array([0, 0, 0, 1, 1, 1, 1])
  return refs, labels


def test_knn_labels_clusters_and_outvotes_an_outlier():
  refs, labels = two_clusters()
  queries = np.array([[0.1, 0.4], [10.2, 0.3], [0.55, 0.0]])
  one, share_one = di.knn_labels(queries, refs, labels, k=1, num_classes=2)
  np.testing.assert_array_equal(one, [0, 1, 1])  # the outlier is nearest
  np.testing.assert_array_equal(share_one, [1, 1, 1])
  three, share = di.knn_labels(queries, refs, labels, k=3, num_classes=2,
                               chunk_size=2)  # two chunks
  np.testing.assert_array_equal(three, [0, 1, 0])  # outvoted 2 to 1
  np.testing.assert_allclose(share, [2 / 3, 1, 2 / 3])


def test_knn_tie_goes_to_the_nearest_neighbour():
  refs = np.array([[0.0], [1.0], [3.0]])
  labels = np.array([2, 5, 5])
  out, share = di.knn_labels(np.array([[0.4], [0.6]]), refs, labels, k=2)
  np.testing.assert_array_equal(out, [2, 5])
  np.testing.assert_allclose(share, [0.5, 0.5])


def test_knn_rejects_more_neighbours_than_references():
  refs, labels = two_clusters()
  with pytest.raises(ValueError, match="k=8"):
    di.knn_labels(refs, refs, labels, k=8)


class StandIn:
  """A model whose samples k are noisy prototypes of class f(k // columns):
  one 'global sample' (a class) per row when `per_row`, else one per
  sample."""

  description = "stand-in"
  value_type = "binary"
  data_dim = di.NUM_PIXELS
  sample_columns = 5

  def __init__(self, prototypes, per_row):
    self.prototypes, self.per_row = prototypes, per_row

  def sample(self, params, key, n):
    del params
    k = np.arange(n)
    classes = (k // self.sample_columns if self.per_row else k) % 10
    noise = 0.05 * np.asarray(jax.random.uniform(key, (n, di.NUM_PIXELS)))
    return np.clip(self.prototypes[classes] + noise, 0, 1)


@pytest.fixture(name="labelled")
def labelled_fixture():
  """Ten random binary prototypes, 8 noisy training and 2 test copies each."""
  rng = np.random.default_rng(1)
  prototypes = (rng.random((10, di.NUM_PIXELS)) < 0.3).astype(np.float32)
  def copies(n):
    x = np.repeat(prototypes, n, axis=0)
    flips = rng.random(x.shape) < 0.05
    return np.abs(x - flips).astype(np.float32), np.repeat(np.arange(10), n)
  (train_x, train_y), (test_x, test_y) = copies(8), copies(2)
  return prototypes, di.Labelled(train_x, train_y, test_x, test_y,
                                 test_binary=test_x)  # already binary


def test_measure_finds_one_class_per_row(labelled):
  prototypes, data = labelled
  result = di.measure(StandIn(prototypes, per_row=True), None,
                      jax.random.PRNGKey(0), rows=20, k=3, num_shuffles=100,
                      labelled=data)
  labels = np.array(result["labels"])
  assert labels.shape == (20, 5)
  np.testing.assert_array_equal(labels, np.arange(20)[:, None] % 10
                                * np.ones((1, 5), int))
  assert result["model"]["mean_purity"] == 1.0
  assert result["shuffled"]["mean_purity"] < 0.6
  assert result["shuffled"]["p_value"] == pytest.approx(1 / 101)
  assert result["histogram"] == [10] * 10
  assert result["test_accuracy"] == 1.0
  result.update(workdir="w", seed=0, best_step=1, description="stand-in")
  table = di.markdown(result)
  assert "| mean purity (± stderr over rows) | 1.000 ± 0.000 |" in table
  assert "| samples | 10 | 10 |" in table


def test_measure_of_independent_samples_matches_the_shuffles(labelled):
  prototypes, data = labelled
  result = di.measure(StandIn(prototypes, per_row=False), None,
                      jax.random.PRNGKey(0), rows=20, k=3, num_shuffles=100,
                      labelled=data)
  # Every row holds 5 different classes: purity 1/5, less than chance.
  assert result["model"]["mean_purity"] == pytest.approx(0.2)
  assert result["model"]["mean_distinct"] == 5.0
  assert result["shuffled"]["p_value"] == pytest.approx(1.0)


def test_restore_run_needs_a_workdir_of_a_run(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    training.restore_run(str(tmp_path))


# -- as an evaluation of the comparison ----------------------------------------


def test_it_applies_to_conv_dvaepp_runs_on_digits_only():
  from configs import dvaepp_conv  # pylint: disable=g-import-not-at-top
  from configs import sbn  # pylint: disable=g-import-not-at-top
  for row in ("mixed", "all_continuous", "mixed,protocol=paper"):
    di.check_config(dvaepp_conv.get_config(row))
  with pytest.raises(ValueError, match="config.model.sample_columns"):
    di.check_config(sbn.get_config("linear"))
  with pytest.raises(ValueError, match="config.data.name='cifar10'"):
    di.check_config(dvaepp_conv.get_config("mixed,data=cifar10"))


def test_the_evaluation_measures_a_run_and_writes_next_to_it(
    tmp_path, monkeypatch, labelled):
  from experiments import evaluations  # pylint: disable=g-import-not-at-top
  prototypes, data = labelled
  model = StandIn(prototypes, per_row=True)
  monkeypatch.setattr(di.training, "restore_run", lambda workdir: (
      model, types.SimpleNamespace(params=None, step=7), None))
  monkeypatch.setattr(di, "mnist5k_labelled", lambda: data)
  monkeypatch.setitem(
      evaluations.EVALUATIONS, "digit_identity",
      evaluations.EVALUATIONS["digit_identity"]._replace(settings={
          "rows": 20, "seed": 0, "k": 3, "num_shuffles": 50}))
  (tmp_path / "results.json").write_text('{"num_steps": 7}')
  headline = evaluations.evaluate("digit_identity", str(tmp_path))
  assert headline["digit_purity"] == 1.0
  assert headline["digit_purity_stderr"] == 0.0
  assert headline["shuffled_purity"] < 0.6
  assert headline["purity_p_value"] == pytest.approx(1 / 51)
  assert "| mean purity (± stderr over rows) | 1.000 ± 0.000 |" in (
      tmp_path / "digit_identity.md").read_text()
  assert (tmp_path / "digit_identity.json").exists()
  summary = {"evaluations": headline}
  cells = {c.header: (c.value(summary), c.stderr(summary))
           for c in evaluations.columns(["digit_identity"])}
  assert cells == {"digit purity": (1.0, 0.0),
                   "shuffled purity": (headline["shuffled_purity"], None),
                   "purity p-value": (headline["purity_p_value"], None)}
