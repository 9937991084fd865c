"""The launcher as a user meets it: every documented command runs, and every
bad value fails with an error naming its field before anything is written.

Commands are run in this process through `experiments.main.run` with their
flags parsed by a fresh `absl.flags.FlagValues` (the same parsing as the
command line), a temporary workdir, and a tiny budget appended. Commands of
a published protocol read their TFDS dataset; here they train on the
embedded `mnist5k` instead (everything else as written).
"""

import ast
import glob
import os
import re

from absl import flags
import jax
import numpy as np
import pytest

from configs import common
from experiments import commands as commands_lib
from experiments import main as main_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Appended to every documented command: a few steps, a cheap evaluation.
TINY_BUDGET = (
    "--config.train.num_steps=2", "--config.train.steps_per_jit=1",
    "--config.train.log_every_steps=1", "--config.train.checkpoint_every_steps=2",
    "--config.eval.every_steps=2", "--config.eval.num_samples=2",
    "--config.eval.final_num_samples=2", "--config.eval.chunk_size=2",
    "--config.eval.num_image_samples=4", "--config.eval.max_examples=20",
    "--config.data.name=mnist5k",
    "--config.data.binarization=static")


# Family-specific costs the generic budget above cannot reach, shrunk in
# every documented command whose config has the field (`config.<dotted>`):
# persistent Gibbs chains of an RBM prior and its AIS estimate of log Z.
TINY_FIELDS = {
    "model.rbm.gibbs_chains": 8, "model.rbm.gibbs_sweeps": 2,
    "model.rbm.ais_num_chains": 8, "model.rbm.ais_num_temperatures": 4,
}


def shrink_costly_fields(config) -> None:
  """Sets each field of `TINY_FIELDS` that `config` has (in place)."""
  for dotted, value in TINY_FIELDS.items():
    common.set_dotted(config, dotted, value, only_if_present=True)


def test_costly_fields_are_shrunk_in_nested_sections():
  from configs import dvaepp as dvaepp_config  # pylint: disable=g-import-not-at-top
  config = dvaepp_config.get_config("rbm,layers=2,protocol=paper")
  shrink_costly_fields(config)
  assert {k: config.model.rbm[k.split(".")[-1]] for k in TINY_FIELDS} == {
      k: v for k, v in TINY_FIELDS.items()}


def _shell_lines(text: str) -> list[str]:
  """The lines of `text`'s shell code, continuation lines joined."""
  joined = re.sub(r"\\\n\s*", " ", text)
  return [line.strip() for line in joined.splitlines()]


def main_arguments(line: str) -> list[str] | None:
  """The arguments after `python -m experiments.main` of a command (maybe
  after environment variables or an install), or None for another one."""
  parsed = commands_lib.main_command(line)
  return None if parsed is None else parsed[1]


def docstring_commands(path: str) -> list[list[str]]:
  """Every `python -m experiments.main` command of a config file's module
  docstring (its reproducing commands), as argument lists."""
  with open(path) as fh:
    docstring = ast.get_docstring(ast.parse(fh.read())) or ""
  found = [main_arguments(line) for line in _shell_lines(docstring)]
  return [c for c in found if c is not None]


# Config files whose documented commands (in their docstrings or in the
# README) compile conv nets for about a minute each on a CPU (measured on one
# core: 58 s for dvaepp_conv.py:mixed, 53 s + 19 s for hdvae.py's two; with
# the models' widths shrunk still 40 s and 48 s): they run with `-m slow`;
# the families' own default tests cover every row's training at tiny sizes
# and one run through the loop each.
SLOW_CONFIGS = ("dvaepp_conv.py", "hdvae.py")


def uses_slow_config(command: list[str]) -> bool:
  """Whether a documented command's `--config=configs/<file>:...` is one of
  `SLOW_CONFIGS`."""
  return commands_lib.config_file(command) in SLOW_CONFIGS


def _all_commands():
  """The `experiments.main` commands of the documented command list
  (`experiments.commands`) and of the config files' docstrings, each
  once (the workdir ignored). The default tier runs the first command of
  each config file (the README's first); the others, and every command of
  `SLOW_CONFIGS`, run with `-m slow` (they differ in rows and overrides,
  which the families' own tests cover)."""
  sources = [(where, main_arguments(line))
             for where, line in commands_lib.commands()]
  for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
    sources += [(os.path.basename(path), c) for c in docstring_commands(path)]
  out, seen, files = [], set(), set()
  for i, (where, command) in enumerate(sources):
    if command is None:
      continue
    key = tuple(a for a in command if not a.startswith("--workdir"))
    if key not in seen:  # the same command documented twice runs once
      seen.add(key)
      file = commands_lib.config_file(command)
      slow = uses_slow_config(command) or file in files
      files.add(file)
      marks = (pytest.mark.slow,) if slow else ()
      out.append(pytest.param(command, id=f"{where}-{i}", marks=marks))
  return out


COMMANDS = _all_commands()


def parse_command(argv: list[str], workdir: str):
  """The config a command's flags give (parsed as experiments.main does)
  and its workdir."""
  argv = ["experiments.main",
          *[a for a in argv if not a.startswith("--workdir")],
          f"--workdir={workdir}"]
  flag_values = flags.FlagValues()
  config, workdir_flag, _ = main_lib.define_flags(flag_values, argv)
  flag_values(argv)
  return config.value, workdir_flag.value


# Every documented command, whatever its tier: its flags parse and its
# config validates (what breaks when a field or row is renamed), at no
# training cost.
ALL_COMMANDS = [pytest.param(p.values[0], id=p.id) for p in _all_commands()]


@pytest.mark.parametrize("argv", ALL_COMMANDS)
def test_documented_command_parses_and_validates(argv, tmp_path,
                                                 monkeypatch):
  from discrete_vi.training import validation  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(ROOT)
  config, _ = parse_command(list(argv), str(tmp_path / "run"))
  validation.validate_config(config)
  assert not (tmp_path / "run").exists()


def run_command(argv: list[str], workdir: str, *, shrink: bool = False
                ) -> dict:
  """Parses `argv` as experiments.main does and runs it in `workdir`
  (after `shrink_costly_fields` when `shrink`)."""
  config, workdir = parse_command(argv, workdir)
  if shrink:
    shrink_costly_fields(config)
  return main_lib.run(config, workdir)


def test_the_readmes_show_the_command_list():
  """The command blocks of README.md, docs/ and benchmark_results/README.md
  are the rendering of `experiments.commands.BLOCKS` (after editing the
  list, run `python -m experiments.commands`)."""
  assert commands_lib.stale_files() == []


def test_the_command_list_covers_every_family():
  ids = [c.id for c in COMMANDS]
  assert sum(i.startswith("README.md") for i in ids) >= 10, ids
  for family in ("sbn.py", "xor_flow.py", "dvaepp.py", "dvaepp_conv.py",
                 "hdvae.py", "test.py"):
    assert any(f"configs/{family}" in " ".join(c.values[0])
               for c in COMMANDS), family


def test_the_readmes_test_command_is_what_ci_runs():
  with open(os.path.join(ROOT, ".ci", "run")) as fh:
    ci_lines = [line.strip() for line in fh]
  assert commands_lib.TEST_COMMAND in ci_lines
  assert commands_lib.TEST_COMMAND in commands_lib.BLOCKS[
      commands_lib.README]["quickstart"]


def test_rewrite_refuses_unknown_unclosed_and_missing_blocks():
  blocks = {"a": ("python -m experiments.main --config=configs/test.py",)}
  good = "x\n<!-- commands: a -->\nold\n<!-- /commands -->\ny"
  assert commands_lib.rewrite(good, blocks, "F") == (
      "x\n<!-- commands: a -->\n```bash\npython -m experiments.main "
      "--config=configs/test.py\n```\n<!-- /commands -->\ny")
  with pytest.raises(ValueError, match="unknown command block 'b'"):
    commands_lib.rewrite(good.replace(": a", ": b"), blocks, "F")
  with pytest.raises(ValueError, match="not closed"):
    commands_lib.rewrite("<!-- commands: a -->\nold", blocks, "F")
  with pytest.raises(ValueError, match=r"no marker .*\['a'\]"):
    commands_lib.rewrite("nothing", blocks, "F")


@pytest.mark.parametrize("argv", COMMANDS)
def test_documented_command_runs(argv, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)
  results = run_command(list(argv) + list(TINY_BUDGET),
                        str(tmp_path / "run"), shrink=True)
  assert results["num_steps"] == 2
  assert results["eval_max_examples"] == 20  # a smoke run, flagged as one
  assert np.isfinite(results["test_log_likelihood"])
  name = [a.split("=", 1)[1] for a in argv
          if a.startswith("--config.estimator.name=")]
  if name:
    assert results["estimator"] == name[-1]


SBN = "--config=configs/sbn.py:linear"
XOR = "--config=configs/xor_flow.py:sfe_full,baseline=self_critic"
# (arguments, text the error must contain): every documented kind of bad
# value of every section.
BAD_OVERRIDES = [
    ((SBN, "--config.estimator.name=overlapping_exponential",
      "--config.estimator.beta=-1"), "beta"),
    ((SBN, "--config.estimator.name=gumbel_softmax",
      "--config.estimator.temperature=0"), "temperature"),
    ((SBN, "--config.estimator.name=vimco", "--config.estimator.num_samples=1"),
     "num_samples"),
    ((SBN, "--config.estimator.baseline=median"), "baseline"),
    ((SBN, "--config.estimator.decay=1.5"), "decay"),
    ((SBN, "--config.estimator.name=vimco",
      "--config.estimator.baseline=self_critic"), "config.estimator.baseline"),
    ((SBN, "--config.estimator.name=no_such"), "config.estimator.name"),
    ((SBN, "--config.estimator.temperature_end=0.1"),
     "config.estimator.temperature_end"),
    ((SBN, "--config.estimator.name=gumbel_softmax",
      "--config.estimator.temperature=1.0",
      "--config.estimator.temperature_end=-0.5"), "temperature"),
    ((SBN, "--config.estimator.anneal_steps=-5"),
     "config.estimator.anneal_steps"),
    ((SBN, "--config.model.architecture=deep"), "config.model.architecture"),
    ((SBN, "--config.model.num_latents=0"), "config.model.num_latents"),
    ((SBN, "--config.model.activation=sigmoid"), "config.model.activation"),
    ((SBN, "--config.model.name=dvae"), "config.model.name"),
    ((SBN, "--config.data.name=cifar"), "config.data.name"),
    ((SBN, "--config.data.binarization=magic"), "config.data.binarization"),
    ((SBN, "--config.data.name=npz"), "config.data.path"),
    ((SBN, "--config.data.name=npz", "--config.data.path=/no/such/file.npz"),
     "/no/such/file.npz"),
    ((SBN, "--config.optim.name=rmsprop"), "config.optim.name"),
    ((SBN, "--config.optim.learning_rate=-0.1"), "config.optim.learning_rate"),
    ((SBN, "--config.optim.schedule=step"), "config.optim.schedule"),
    ((SBN, "--config.optim.b2=1.0"), "config.optim.b2"),
    ((SBN, "--config.optim.eps=0"), "config.optim.eps"),
    ((SBN, "--config.train.num_steps=0"), "config.train.num_steps"),
    ((SBN, "--config.train.batch_size=0"), "config.train.batch_size"),
    ((SBN, "--config.train.steps_per_jit=0"), "config.train.steps_per_jit"),
    ((SBN, "--config.train.time_budget_s=-1"), "config.train.time_budget_s"),
    ((SBN, "--config.train.kl_warmup_steps=-1"),
     "config.train.kl_warmup_steps"),
    ((SBN, "--config.eval.num_samples=0"), "config.eval.num_samples"),
    ((SBN, "--config.eval.chunk_size=0"), "config.eval.chunk_size"),
    ((SBN, "--config.eval.num_image_samples=-1"),
     "config.eval.num_image_samples"),
    ((SBN, "--config.eval.max_examples=0"), "config.eval.max_examples"),
    ((SBN, "--config.seed=-1"), "config.seed"),
    ((XOR, "--config.model.depth=0"), "depth"),
    ((XOR, "--config.model.base_prob=1.5"), "base_prob"),
    ((XOR, "--config.estimator.name=disarm"), "config.estimator.name"),
    ((XOR, "--config.model.variant=magic"), "config.model.variant"),
]


@pytest.mark.parametrize("argv,field", BAD_OVERRIDES,
                         ids=[" ".join(a[1:]) for a, _ in BAD_OVERRIDES])
def test_bad_value_fails_naming_it_before_any_file(argv, field, tmp_path,
                                                   monkeypatch):
  monkeypatch.chdir(ROOT)
  workdir = tmp_path / "run"
  # A missing data file is a FileNotFoundError; every other bad value a
  # ValueError.
  with pytest.raises((ValueError, FileNotFoundError), match=re.escape(field)):
    run_command(list(argv), str(workdir))
  assert not workdir.exists() or not any(workdir.iterdir())


def documented_compare_commands() -> list:
  """Every `python -m experiments.compare` command of the documented
  command list, as pytest params of argument lists."""
  out = []
  for where, line in commands_lib.commands():
    words = commands_lib.arguments(line)
    if words[:3] == ["python", "-m", "experiments.compare"]:
      out.append(pytest.param(words[3:], id=f"{where}-{len(out)}"))
  return out


COMPARE_COMMANDS = documented_compare_commands()


def test_the_readmes_document_compare_commands():
  ids = [c.id for c in COMPARE_COMMANDS]
  assert sum(i.startswith("docs/") for i in ids) >= 5, ids
  assert sum(i.startswith("benchmark_results") for i in ids) >= 5, ids


def plan_compare_command(argv: list[str], workdir):
  """A documented `experiments.compare` command's plan (its flags parsed
  by the launcher's own `FlagValues`), in `workdir`."""
  from experiments import compare  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  defined = compare.define_flags(flag_values)
  flag_values(["compare", *[a for a in argv if not a.startswith("--workdir")],
               f"--workdir={workdir}"])
  return compare.plan_command(defined)


@pytest.mark.parametrize("argv", COMPARE_COMMANDS)
def test_documented_compare_command_builds_valid_configs(argv, tmp_path,
                                                         monkeypatch):
  """The command parses with the launcher's own flags, and every row's
  config (each estimator's, each seed's) is built and validated, and every
  evaluation checked, as the launcher does before training; nothing is
  written. (Training every row is minutes of CPU per row.)"""
  monkeypatch.chdir(ROOT)
  workdir = tmp_path / "runs"
  plan = plan_compare_command(list(argv), workdir)
  assert plan.runs and all(plan.runs.values())
  assert not workdir.exists()


def _tiny(config) -> None:
  """`TINY_BUDGET` and `TINY_FIELDS` set in `config` (in place)."""
  for arg in TINY_BUDGET:
    dotted, value = arg.removeprefix("--config.").split("=", 1)
    common.set_dotted(config, dotted, int(value) if value.isdigit() else value)
  shrink_costly_fields(config)


@pytest.mark.slow
def test_readme_digit_identity_comparison_runs_at_a_tiny_budget(
    tmp_path, monkeypatch):
  """docs/dvaepp_conv.md's comparison with `--evaluations=
  digit_identity`, its first row at a tiny budget (fewer rows of samples
  and shuffles): the run, its digit_identity.md and the table's columns."""
  from experiments import compare  # pylint: disable=g-import-not-at-top
  from experiments import evaluations  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(ROOT)
  argv = [c.values[0] for c in COMPARE_COMMANDS
          if c.id.startswith("docs/dvaepp_conv.md")
          and "--evaluations=digit_identity" in c.values[0]][0]
  plan = plan_compare_command(argv, tmp_path / "runs")
  label, runs = next(iter(plan.runs.items()))
  for run in runs:
    _tiny(run.config)
  monkeypatch.setitem(
      evaluations.EVALUATIONS, "digit_identity",
      evaluations.EVALUATIONS["digit_identity"]._replace(settings={
          "rows": 3, "seed": 0, "k": 5, "num_shuffles": 20}))
  table = compare.execute(plan._replace(runs={label: runs}))
  header = [c.strip() for c in table.splitlines()[0].split("|")[1:-1]]
  assert {"digit purity", "shuffled purity", "purity p-value"} <= set(header)
  assert "purity" in (tmp_path / "runs" / label /
                      "digit_identity.md").read_text()


def test_compilation_cache_folder_and_switch(tmp_path):
  from experiments import launcher  # pylint: disable=g-import-not-at-top
  home = os.path.expanduser("~")
  assert launcher.compilation_cache_dir({}) == os.path.join(
      home, ".cache", "discrete_vi", "jax")
  assert launcher.compilation_cache_dir({"XDG_CACHE_HOME": "/c"}) == (
      "/c/discrete_vi/jax")
  for off in ("off", "0", "False", " none "):
    assert launcher.compilation_cache_dir({launcher.CACHE_ENV: off}) is None
  before = jax.config.jax_compilation_cache_dir
  try:
    path = launcher.enable_compilation_cache(
        {launcher.CACHE_ENV: str(tmp_path / "cache")})
    assert path == str(tmp_path / "cache") and os.path.isdir(path)
    assert jax.config.jax_compilation_cache_dir == path
    assert launcher.enable_compilation_cache(
        {launcher.CACHE_ENV: "off"}) is None
    assert jax.config.jax_compilation_cache_dir == path  # left as it was
  finally:
    jax.config.update("jax_compilation_cache_dir", before)


def test_documented_benchmark_commands_name_registered_benchmarks():
  from experiments import benchmark  # pylint: disable=g-import-not-at-top
  names = [commands_lib.arguments(line)[3:]
           for _, line in commands_lib.commands()
           if commands_lib.arguments(line)[:3] == [
               "python", "-m", "experiments.benchmark"]]
  assert len(names) >= 5, names
  for words in names:
    assert words and words[0] in benchmark.BENCHMARKS, words
