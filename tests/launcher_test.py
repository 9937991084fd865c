"""The launcher as a user meets it: every documented command runs, and every
bad value fails with an error naming its field before anything is written.

Commands are run in this process through `experiments.main.run` with their
flags parsed by a fresh `absl.flags.FlagValues` (the same parsing as the
command line), a temporary workdir, and a tiny budget appended. Commands of
a published protocol read their TFDS dataset; here they train on the
embedded `mnist5k` instead (everything else as written).
"""

import glob
import importlib
import os
import re
import shlex

from absl import flags
import jax
import numpy as np
import pytest

from configs import common
from experiments import main as main_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = "python -m experiments.main"
# A shell line running the launcher, maybe after environment variables or
# an install (`pip install -e . && python -m experiments.main ...`).
COMMAND_LINE = re.compile(r"^(?:[A-Z_]+=\S+\s+|pip install .*&&\s*)?"
                          r"python -m experiments\.main\s")

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


def documented_commands(path: str) -> list[str]:
  """Every `python -m experiments.main` command in a README or a config
  docstring, as argument lists after the module name."""
  with open(path) as fh:
    lines = _shell_lines(fh.read())
  commands = []
  for line in lines:
    if COMMAND_LINE.match(line):
      commands.append(shlex.split(line[line.index(MAIN) + len(MAIN):]))
  return commands


# Config files whose documented commands (in their docstrings or in the
# README) compile conv nets for about a minute each on a CPU (session 9, one
# core: 58 s for dvaepp_conv.py:mixed, 53 s + 19 s for hdvae.py's two; with
# the models' widths shrunk still 40 s and 48 s): they run with `-m slow`;
# the families' own default tests cover every row's training at tiny sizes
# and one run through the loop each.
SLOW_CONFIGS = ("dvaepp_conv.py", "hdvae.py")


def uses_slow_config(command: list[str]) -> bool:
  """Whether a documented command's `--config=configs/<file>:...` is one of
  `SLOW_CONFIGS`."""
  files = [os.path.basename(a.split("=", 1)[1].split(":", 1)[0])
           for a in command if a.startswith("--config=")]
  return any(f in SLOW_CONFIGS for f in files)


def _all_commands():
  sources = [os.path.join(ROOT, "README.md")] + sorted(
      glob.glob(os.path.join(ROOT, "configs", "*.py")))
  out, seen = [], set()
  for path in sources:
    for i, command in enumerate(documented_commands(path)):
      key = tuple(a for a in command if not a.startswith("--workdir"))
      if key not in seen:  # the same command documented twice runs once
        seen.add(key)
        marks = (pytest.mark.slow,) if uses_slow_config(command) else ()
        out.append(pytest.param(command, id=f"{os.path.basename(path)}-{i}",
                                marks=marks))
  return out


COMMANDS = _all_commands()


def run_command(argv: list[str], workdir: str, *, shrink: bool = False
                ) -> dict:
  """Parses `argv` as experiments.main does and runs it in `workdir`
  (after `shrink_costly_fields` when `shrink`)."""
  argv = ["experiments.main",
          *[a for a in argv if not a.startswith("--workdir")],
          f"--workdir={workdir}"]
  flag_values = flags.FlagValues()
  config, workdir_flag, _ = main_lib.define_flags(flag_values, argv)
  flag_values(argv)
  if shrink:
    shrink_costly_fields(config.value)
  return main_lib.run(config.value, workdir_flag.value)


def test_the_readme_documents_launcher_commands():
  readme = [c for c in COMMANDS if c.id.startswith("README")]
  assert len(readme) >= 7, [c.id for c in readme]


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


def _comparison_commands(module: str) -> list[list[str]]:
  """The argument lists of README's `python -m experiments.<module>` lines."""
  with open(os.path.join(ROOT, "README.md")) as fh:
    lines = _shell_lines(fh.read())
  prefix = f"python -m experiments.{module} "
  return [shlex.split(line[len(prefix):]) for line in lines
          if line.startswith(prefix)]


def _flag(argv: list[str], name: str) -> str:
  values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
  assert len(values) == 1, (name, argv)
  return values[0]


def test_readme_compare_flows_rows_build_valid_configs():
  # Training every row is minutes of CPU; what can drift is the row
  # arguments, so each row's config is built and validated.
  from configs import xor_flow as xor_flow_config  # pylint: disable=g-import-not-at-top
  from discrete_vi import training  # pylint: disable=g-import-not-at-top
  commands = _comparison_commands("compare_flows")
  assert len(commands) >= 2
  for argv in commands:
    rows = [r for r in _flag(argv, "rows").split(";") if r.strip()]
    assert rows
    for row in rows:
      training.validate_config(xor_flow_config.get_config(row))


def test_readme_compare_estimators_build_valid_configs(monkeypatch):
  from experiments import compare  # pylint: disable=g-import-not-at-top
  from discrete_vi import training  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(ROOT)
  commands = _comparison_commands("compare")
  assert commands
  for argv in commands:
    path, _, arg = _flag(argv, "config").partition(":")
    module = importlib.import_module(
        path.removesuffix(".py").replace("/", "."))
    base = module.get_config(arg or None)
    for name in _flag(argv, "estimators").split(","):
      training.validate_config(compare.config_for(base, name))


def _digit_identity_values(argv: list[str]) -> dict:
  """A README `experiments.digit_identity` command's flag values, parsed
  with the program's own flags."""
  from experiments import digit_identity  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  defined = digit_identity.define_flags(flag_values)
  flag_values(["digit_identity", *argv])
  return {name: flag.value for name, flag in defined.items()}


def test_readme_digit_identity_reads_the_documented_conv_run():
  """The command parses, and its --workdir is the documented conv DVAE++
  command's, so the two lines run one after the other."""
  commands = _comparison_commands("digit_identity")
  assert commands
  conv_workdirs = {_flag(c.values[0], "workdir") for c in COMMANDS
                   if any("dvaepp_conv.py" in a for a in c.values[0])}
  for argv in commands:
    values = _digit_identity_values(argv)
    assert values["workdir"] in conv_workdirs, (values, conv_workdirs)
    assert values["rows"] >= 1


@pytest.mark.slow
def test_readme_digit_identity_runs_on_the_documented_conv_run(
    tmp_path, monkeypatch):
  """The README's conv DVAE++ command (tiny budget), then its
  digit-identity command on that workdir (fewer rows and shuffles)."""
  from experiments import digit_identity  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(ROOT)
  values = _digit_identity_values(_comparison_commands("digit_identity")[0])
  conv = [c.values[0] for c in COMMANDS
          if _flag(c.values[0], "workdir") == values["workdir"]][0]
  workdir = str(tmp_path / "run")
  run_command(list(conv) + list(TINY_BUDGET), workdir, shrink=True)
  result = digit_identity.run(workdir, rows=3, seed=values["seed"],
                              k=values["k"], num_shuffles=20)
  assert result["best_step"] == 2
  assert "purity" in result["markdown"]


def test_readme_compare_rows_rows_build_valid_configs():
  from discrete_vi import training  # pylint: disable=g-import-not-at-top
  from experiments import compare_rows  # pylint: disable=g-import-not-at-top
  commands = _comparison_commands("compare_rows")
  assert commands
  for argv in commands:
    module = compare_rows.load_config_module(_flag(argv, "config_file"))
    for row in [r for r in _flag(argv, "rows").split(";") if r.strip()]:
      training.validate_config(compare_rows.config_for(
          module, row, max_steps=int(_flag(argv, "max_steps")),
          time_budget_s=float(_flag(argv, "time_budget_s")),
          eval_every_steps=int(_flag(argv, "eval_every_steps"))))


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
