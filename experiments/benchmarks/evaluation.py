"""`evaluation [FAMILY ...]`: the importance-weighted bound's cost per
example and importance sample, family by family, against each row's
continuous twin.

Each row of `FAMILIES` is a quick-protocol config at its initial
parameters (the cost does not depend on their values: XLA's CPU code
flushes denormals and has no data-dependent branches in these programs),
evaluated by the loop's own evaluation step (`loop.jit_eval_step`: the
config's evaluation batch size and chunk size, `CHUNKS` chunks of samples
per call) on the first test images, with the context of its
`prepare_evaluation` (e.g. the RBM's log Z). The rows of one family are
timed round-robin in one process (`measure.time_interleaved`, a fresh key
every call), so load from other jobs hits them alike, and each discrete
row is reported as a ratio to its twin: the same family's row with
continuous latents where one exists (conv DVAE++ `all_continuous`, HD-VAE
`normal`), else the family's simplest prior (dense DVAE++ `factorial`: the
dense configs have no continuous row). Compilation is timed separately
(`lower` + `compile`), and one whole validation as the loop runs it
(`validation_seconds`) once per row.
"""

import time
from typing import NamedTuple, Optional

import jax

from discrete_vi import data as data_lib
from discrete_vi.training import loop
from discrete_vi.training import parallel
from discrete_vi.training import setup
from experiments.benchmarks import measure

CHUNKS = 2
REPEATS = 3
TARGET_RATIO = 2.0


class Row(NamedTuple):
  """One evaluated config: `configs/<config_file>.py:<arg>`, and the arg
  of its twin in the same file (None: a reference or a family without
  one)."""
  config_file: str
  arg: str
  twin: Optional[str] = None


# Families, each timed together; a twin is a row of its family.
FAMILIES = {
    "SBN": (Row("sbn", "linear"), Row("sbn", "two_layer")),
    "XOR flow": (Row("xor_flow", "sfe_full,baseline=self_critic"),
                 Row("xor_flow", "sfe_special,baseline=self_critic")),
    "DVAE++": (Row("dvaepp", "factorial,layers=2"),
               Row("dvaepp", "directed,layers=2", "factorial,layers=2"),
               Row("dvaepp", "rbm,layers=2", "factorial,layers=2")),
    "conv DVAE++": (Row("dvaepp_conv", "all_continuous"),
                    Row("dvaepp_conv", "mixed", "all_continuous"),
                    Row("dvaepp_conv", "rbm_bernoulli", "all_continuous"),
                    Row("dvaepp_conv", "bernoulli_bernoulli",
                        "all_continuous")),
    "HD-VAE": (Row("hdvae", "normal"), Row("hdvae", "discrete", "normal")),
}


def load_config(config_file: str, arg: str):
  """`get_config(arg)` of `configs/<config_file>.py`."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"configs.{config_file}").get_config(arg)


class Prepared(NamedTuple):
  """A row ready to time: its evaluation step as a carried call."""
  call: tuple  # (fn, key, args) for measure.time_interleaved
  evaluations: int  # examples x importance samples per call
  compile_s: float
  settings: str


def prepare(config, run: setup.Setup, dataset, chunks: int = CHUNKS
            ) -> Prepared:
  """The loop's evaluation step of `config` on its first test batch,
  `chunks` chunks of samples, compiled (timed) and wrapped as a carried
  call `(key, ...) -> (next key, bounds)`."""
  batch, chunk = config.eval.batch_size, config.eval.chunk_size
  num_samples = chunks * chunk
  eval_step = loop.jit_eval_step(config, run.model, parallel.make_mesh(False),
                                 num_samples)
  context, _ = loop.prepared_evaluation(run.model, run.state,
                                        jax.random.PRNGKey(1))
  x = data_lib.evaluation_split(dataset, "test")[:batch]
  args = eval_step.place(run.state.params, context, jax.random.PRNGKey(2), x)
  compiled, compile_s = measure.compile_timed(eval_step.jitted.lower(*args))
  params, context, _, x = args

  def call(key, params, context, x):
    key, step_key = jax.random.split(key)
    return key, compiled(params, context, step_key, x)
  return Prepared((call, jax.random.PRNGKey(3), (params, context, x)),
                  batch * num_samples, compile_s,
                  f"{batch} x {num_samples} ({chunk} per chunk)")


def validation_seconds(config, run: setup.Setup, dataset) -> float:
  """Wall seconds of one validation as the loop runs it (its program
  compiled beforehand): `prepare_evaluation`, then the
  `config.eval.num_samples`-sample bound on every validation example."""
  eval_step = loop.jit_eval_step(config, run.model, parallel.make_mesh(False),
                                 config.eval.num_samples)
  valid = loop.evaluation_examples(config, dataset, "valid")
  key = jax.random.PRNGKey(4)
  context, _ = loop.prepared_evaluation(run.model, run.state, key)
  jax.block_until_ready(eval_step(run.state.params, context, key,
                                  valid[:config.eval.batch_size]))
  start = time.perf_counter()
  context, _ = loop.prepared_evaluation(run.model, run.state, key)
  loop.evaluate(eval_step, run.state.params, context, valid, key,
                config.eval.batch_size)
  return time.perf_counter() - start


def measure_family(rows, chunks: int = CHUNKS, repeats: int = REPEATS,
                   time_calls: bool = True, max_examples=None) -> dict:
  """{arg: {"settings", "compile_s", and with `time_calls`
  "per_sample_s" (seconds per example per importance sample) and
  "validation_s" (`validation_seconds`, on the first `max_examples`
  validation examples if given)}} of one family's rows."""
  prepared, runs = {}, {}
  for row in rows:
    config = load_config(row.config_file, row.arg)
    if max_examples is not None:
      config.eval.max_examples = max_examples
    dataset = setup.load_data(config)
    run = setup.create_train_state(config, dataset)
    runs[row.arg] = (config, run, dataset)
    prepared[row.arg] = prepare(config, run, dataset, chunks)
  out = {arg: {"settings": p.settings, "compile_s": p.compile_s}
         for arg, p in prepared.items()}
  if time_calls:
    seconds = measure.time_interleaved([p.call for p in prepared.values()],
                                       repeats=repeats, per_repeat=1)
    for (arg, p), s in zip(prepared.items(), seconds):
      out[arg]["per_sample_s"] = s / p.evaluations
      out[arg]["validation_s"] = validation_seconds(*runs[arg])
  return out


def table_lines(family: str, rows, results: dict) -> list[str]:
  """Markdown lines of one family: cost per example per sample, ratio to
  the twin, one validation's wall time."""
  lines = []
  for row in rows:
    r = results[row.arg]
    cost = r.get("per_sample_s")
    twin = results[row.twin].get("per_sample_s") if row.twin else None
    ratio = "" if twin is None or cost is None else f"{cost / twin:.2f}x"
    holds = "" if not ratio else ("yes" if cost / twin <= TARGET_RATIO
                                  else "no")
    cells = ["" if cost is None else f"{cost * 1e6:.1f}", row.twin or "",
             ratio, holds, f"{r['compile_s']:.1f}",
             f"{r['validation_s']:.1f}" if "validation_s" in r else ""]
    lines.append(f"| {family} | `{row.config_file}.py:{row.arg}` | "
                 f"{r['settings']} | " + " | ".join(cells) + " |")
  return lines


HEADER = ["| family | row | examples x samples per call | µs per example "
          "per sample | twin | ratio to twin | within "
          f"{TARGET_RATIO:g}x | compile (s) | one validation (s) |",
          "|---|---|---|---|---|---|---|---|---|"]


def report(*families: str) -> str:
  """The markdown report for `families` (names of `FAMILIES`, default
  all)."""
  for family in families:
    if family not in FAMILIES:
      raise ValueError(f"unknown family {family!r}; choose from "
                       f"{', '.join(FAMILIES)}.")
  lines = ["## Cost of the importance-weighted bound per example and "
           "sample", "", f"Each family's rows timed round-robin, {CHUNKS} "
           f"chunks of samples per call, best of {REPEATS}; untrained "
           "parameters (the cost does not depend on their values). One "
           "validation: `prepare_evaluation` and the config's "
           "`eval.num_samples`-sample bound on the whole validation split, "
           "timed once per row after the round-robin (more exposed to the "
           "machine's load than the ratios).", ""]
  lines += HEADER
  for family in families or FAMILIES:
    rows = FAMILIES[family]
    lines += table_lines(family, rows, measure_family(rows))
  return "\n".join(lines) + "\n"

