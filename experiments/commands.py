r"""Every documented command, in one machine-readable list.

README.md, the model families' pages in docs/ and
benchmark_results/README.md show their shell commands in
blocks fenced by markers,

    <!-- commands: NAME -->
    ```bash
    ...
    ```
    <!-- /commands -->

whose contents are rendered from `BLOCKS` (`python -m experiments.commands`
rewrites them; `--check` only reports blocks that differ). The tests run
every command of this list (tests/launcher_test.py): `experiments.main`
commands train with a tiny budget, `experiments.compare` commands are
planned (every row's config built and validated), `experiments.benchmark`
commands name a registered benchmark, and the README's test command is the
one `.ci/run` runs. Nothing is found by reading prose.

A block is a tuple of lines: a command (continuation lines joined by
" \\\n    " as a shell reads them), a "# comment" line, or "" (an empty
line). A command may end with a "  # note" comment.
"""

import os
import re
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.md"
RESULTS_README = os.path.join("benchmark_results", "README.md")


def docs(family: str) -> str:
  """The page of a model family under docs/."""
  return os.path.join("docs", f"{family}.md")


def _wrapped(*parts: str) -> str:
  """One command written over several lines (shell continuations)."""
  return " \\\n    ".join(parts)


DVAEPP_TABLE1_ROWS = ("factorial;factorial,elbo=marginal;factorial,layers=2;"
                      "directed,layers=2;directed,layers=2,elbo=marginal;"
                      "rbm,layers=2;rbm,layers=2,smoothing=spike_and_exp")
FLOW_ROWS = ("ste,depth=1;ste,depth=2;"
             "sfe_full,baseline=self_critic,std_floor=1;"
             "sfe_full,baseline=running_average,std_floor=1;"
             "sfe_special,baseline=self_critic,std_floor=1;"
             "sfe_special,baseline=running_average,std_floor=1")
FLOW_FLOOR_ROWS = ("sfe_full,baseline=running_average;"
                   "sfe_special,baseline=running_average")
SBN_ESTIMATORS = ("reinforce,rloo,vimco,muprop,rebar,relax,arm,disarm,"
                  "st_gumbel_softmax,gumbel_softmax,overlapping_exponential,"
                  "spike_and_exp")

MAIN_COMMAND = ("pip install -e . && python -m experiments.main "
                "--config=configs/sbn.py:linear --workdir=runs/sbn_linear")
TEST_COMMAND = "pip install -e '.[test]' && pytest -q"

COMPARE_SBN = _wrapped(
    "python -m experiments.compare --config=configs/sbn.py --rows=linear",
    f"--estimators={SBN_ESTIMATORS}",
    "--steps=5000 --eval_every_steps=1000 --variance_draws=100 "
    "--workdir=runs/compare_linear")
COMPARE_FLOWS = _wrapped(
    "python -m experiments.compare --config=configs/xor_flow.py "
    "--workdir=runs/compare_flows",
    "--time_budget_s=240 --steps=1000000 --eval_every_steps=500 "
    "--variance_draws=50",
    f'--rows="{FLOW_ROWS}"')
COMPARE_FLOWS_FLOOR = _wrapped(
    "python -m experiments.compare --config=configs/xor_flow.py "
    "--workdir=runs/compare_flows_floor",
    "--time_budget_s=240 --steps=1000000 --eval_every_steps=500 "
    "--variance_draws=50",
    f'--rows="{FLOW_FLOOR_ROWS}"')
COMPARE_DVAEPP = _wrapped(
    "python -m experiments.compare --config=configs/dvaepp.py "
    "--workdir=runs/compare_dvaepp",
    "--time_budget_s=150 --steps=1000000 --eval_every_steps=1000",
    f'--rows="{DVAEPP_TABLE1_ROWS}"')
COMPARE_DVAEPP_CONV = _wrapped(
    "python -m experiments.compare --config=configs/dvaepp_conv.py",
    "--workdir=runs/compare_dvaepp_conv --steps=3000 --eval_every_steps=500",
    '--rows="mixed;all_continuous"')
COMPARE_DVAEPP_CONV_DIGITS = COMPARE_DVAEPP_CONV + (
    " --evaluations=digit_identity")
COMPARE_HDVAE = _wrapped(
    "python -m experiments.compare --config=configs/hdvae.py",
    "--workdir=runs/compare_hdvae --steps=2000 --eval_every_steps=500",
    '--rows="discrete;normal;discrete,layers=2;normal,layers=2"')
BENCHMARK_DVAEPP_CONV = ("python -m experiments.benchmark dvaepp_conv   "
                         "# paper sizes, batch 100")
BENCHMARK_TRAINING = ("python -m experiments.benchmark training   "
                      "# writes benchmark_results/training.md")
BENCHMARK_XOR_FLOW = ("python -m experiments.benchmark xor_flow   "
                      "# writes benchmark_results/xor_flow.md")
BENCHMARK_DVAEPP = ("python -m experiments.benchmark dvaepp   "
                    "# writes benchmark_results/dvaepp.md")


def _seeds(config: str, rows: str, steps: int, eval_every: int,
           name: str) -> str:
  """A rows x seeds command writing benchmark_results/<name>.md/.png."""
  return _wrapped(
      f"python -m experiments.compare --config=configs/{config}",
      f'--rows="{rows}"',
      f"--seeds=0,1,2 --steps={steps} --eval_every_steps={eval_every}",
      f"--workdir=runs/{name} --results=benchmark_results/{name}")


# file -> block name -> lines, in the order the file shows them.
BLOCKS = {
    README: {
        "quickstart": (
            "# Install and run the main job: a sigmoid belief net on the "
            "embedded MNIST digits (CPU, a few minutes)",
            MAIN_COMMAND,
            "",
            "# Install and run the whole test suite",
            TEST_COMMAND,
        ),
        "sbn": (
            _wrapped("python -m experiments.main "
                     "--config=configs/sbn.py:nonlinear --workdir=runs/x",
                     "--config.estimator.name=vimco "
                     "--config.estimator.num_samples=5"),
        ),
        "sbn_protocols": (
            _wrapped("python -m experiments.main "
                     "--config=configs/sbn.py:linear,protocol=dvaepp",
                     "--config.estimator.name=overlapping_exponential "
                     "--workdir=runs/dvaepp_linear"),
        ),
        "xor_flow": (
            "python -m experiments.main --config=configs/xor_flow.py:ste,"
            "depth=2 --workdir=runs/xor_ste2",
            "python -m experiments.main --config=configs/xor_flow.py:sfe_full,"
            "baseline=self_critic --workdir=runs/xor_full_sc",
            "python -m experiments.main --config=configs/xor_flow.py:"
            "sfe_special,baseline=running_average "
            "--workdir=runs/xor_special_ra",
        ),
        "dvaepp": (
            "python -m experiments.main --config=configs/dvaepp.py:factorial "
            "--workdir=runs/dvaepp_fact",
            "python -m experiments.main --config=configs/dvaepp.py:rbm,"
            "layers=2 --workdir=runs/dvaepp_rbm",
        ),
        "dvaepp_conv": (
            "python -m experiments.main --config=configs/dvaepp_conv.py:mixed "
            "--workdir=/tmp/dvaepp_conv_mixed",
        ),
        "hdvae": (
            "python -m experiments.main --config=configs/hdvae.py:discrete "
            "--workdir=/tmp/hdvae_discrete",
            "python -m experiments.main --config=configs/hdvae.py:normal "
            "--workdir=/tmp/hdvae_normal",
        ),
        "multi_device": (
            _wrapped("XLA_FLAGS=--xla_force_host_platform_device_count=4 "
                     "python -m experiments.main",
                     "--config=configs/test.py --workdir=/tmp/dp4"),
        ),
    },
    docs("sbn"): {"sbn_more": (COMPARE_SBN, BENCHMARK_TRAINING)},
    docs("xor_flow"): {"xor_flow_more": (COMPARE_FLOWS, COMPARE_FLOWS_FLOOR,
                                          BENCHMARK_XOR_FLOW)},
    docs("dvaepp"): {"dvaepp_more": (COMPARE_DVAEPP, BENCHMARK_DVAEPP)},
    docs("dvaepp_conv"): {"dvaepp_conv_more": (COMPARE_DVAEPP_CONV_DIGITS,
                                                BENCHMARK_DVAEPP_CONV)},
    docs("hdvae"): {"hdvae_more": (
        COMPARE_HDVAE,
        "python -m experiments.benchmark hdvae   "
        "# 6 layers, discrete vs Gaussian cost")},
    RESULTS_README: {
        "seeds": (
            "# DVAE++, Table 2's linear two-layer rows",
            _seeds("dvaepp.py", "factorial,layers=2;directed,layers=2;"
                   "directed,layers=2,elbo=marginal;rbm,layers=2;"
                   "rbm,layers=2,smoothing=spike_and_exp", 10000, 1000,
                   "seeds_dvaepp"),
            "# the RBM row's negative phase: PCD 100 x 5, 100 x 40, "
            "100 x 100, tempering 8 x 5; spike-and-exp at 100 x 100",
            _seeds("dvaepp.py", "rbm,layers=2;rbm,layers=2,sweeps=40;"
                   "rbm,layers=2,sweeps=100;rbm,layers=2,tempering=8;"
                   "rbm,layers=2,smoothing=spike_and_exp,sweeps=100",
                   10000, 1000, "seeds_dvaepp_negative_phase"),
            _seeds("dvaepp_conv.py", "mixed;all_continuous", 3000, 1000,
                   "seeds_dvaepp_conv"),
            _seeds("hdvae.py", "discrete;normal;discrete,layers=2;"
                   "normal,layers=2", 2000, 500, "seeds_hdvae"),
            "# HD-VAE's relaxation bias delta (Table 4) at L = 1",
            _seeds("hdvae.py", "discrete,units=12;discrete,units=24;"
                   "discrete,units=48", 2000, 500, "seeds_hdvae_bias"),
            "# HD-VAE without relaxation: unbiased estimators against "
            "Gumbel-softmax at L = 1",
            _wrapped(
                "python -m experiments.compare --config=configs/hdvae.py",
                '--rows=discrete '
                '--estimators=gumbel_softmax,rloo,rebar,relax',
                "--seeds=0,1,2 --steps=2000 --eval_every_steps=500",
                "--workdir=runs/seeds_hdvae_estimators "
                "--results=benchmark_results/seeds_hdvae_estimators"),
        ),
        "dvaepp_conv_compare": (COMPARE_DVAEPP_CONV,),
        "dvaepp_conv_digits": (COMPARE_DVAEPP_CONV_DIGITS,),
        "dvaepp_conv_cost": (BENCHMARK_DVAEPP_CONV,),
        "hdvae_compare": (COMPARE_HDVAE,),
        "estimators": ("python -m experiments.benchmark estimators   "
                       "# writes benchmark_results/estimators.md",),
        "flows": (COMPARE_FLOWS, COMPARE_FLOWS_FLOOR),
        "xor_flow_speed": (BENCHMARK_XOR_FLOW,),
        "dvaepp": (COMPARE_DVAEPP,),
        "dvaepp_cost": (BENCHMARK_DVAEPP,),
        "sbn_estimators": (COMPARE_SBN,),
        "training": (BENCHMARK_TRAINING,),
    },
}

BEGIN = re.compile(r"^<!-- commands: (\w+) -->$")
END = "<!-- /commands -->"


def is_command(line: str) -> bool:
  """Whether a block line is a command (not a comment or an empty line)."""
  return bool(line) and not line.startswith("#")


def commands(path: str | None = None) -> list[tuple[str, str]]:
  """`(where, command)` of every command of `BLOCKS` (of file `path`
  only, when given), each command once, in file and block order; `where`
  is "<file>#<block>"."""
  out, seen = [], set()
  for file, blocks in BLOCKS.items():
    if path is not None and file != path:
      continue
    for block, lines in blocks.items():
      for line in lines:
        if is_command(line) and line not in seen:
          seen.add(line)
          out.append((f"{file}#{block}", line))
  return out


def arguments(command: str) -> list[str]:
  """The shell words of a command (continuations joined, a trailing
  "# note" dropped)."""
  return shlex.split(command.replace("\\\n", " "), comments=True)


MAIN_WORDS = ("python", "-m", "experiments.main")


def main_command(line: str) -> tuple[dict, list[str]] | None:
  """`(settings, args)` of an `experiments.main` command line: the
  `VAR=value` environment settings before it and the arguments after
  `python -m experiments.main`; an install before `&&` is dropped. None
  for any other line (another command, or prose)."""
  if " ".join(MAIN_WORDS) not in line:
    return None
  try:
    words = arguments(line)
  except ValueError:  # prose with an unbalanced quote
    return None
  if "&&" in words:
    words = words[len(words) - words[::-1].index("&&"):]
  settings = {}
  while words and "=" in words[0] and not words[0].startswith("-"):
    key, value = words.pop(0).split("=", 1)
    settings[key] = value
  if tuple(words[:3]) != MAIN_WORDS:
    return None
  return settings, words[3:]


def config_file(args: list[str]) -> str:
  """The config file's name (e.g. "hdvae.py") of a command's
  `--config=configs/<file>[:ROW]`."""
  return [os.path.basename(a.split("=", 1)[1].split(":", 1)[0])
          for a in args if a.startswith("--config=")][0]


def render(lines) -> str:
  """A block's markdown: its lines in a bash fence."""
  return "```bash\n" + "\n".join(lines) + "\n```"


def rewrite(text: str, blocks: dict, file: str) -> str:
  """`text` with every marked block replaced by its rendering.

  Raises:
    ValueError: for a marker of an unknown block, an unclosed one, or a
      block of `blocks` that `text` does not mark.
  """
  lines = text.split("\n")
  out, found, i = [], [], 0
  while i < len(lines):
    match = BEGIN.match(lines[i])
    out.append(lines[i])
    i += 1
    if not match:
      continue
    name = match.group(1)
    if name not in blocks:
      raise ValueError(f"{file}: marker of an unknown command block "
                       f"{name!r}; the blocks are {sorted(blocks)}.")
    try:
      end = lines.index(END, i)
    except ValueError:
      raise ValueError(f"{file}: command block {name!r} is not closed by "
                       f"{END!r}.") from None
    out.append(render(blocks[name]))
    out.append(END)
    found.append(name)
    i = end + 1
  missing = [b for b in blocks if b not in found]
  if missing:
    raise ValueError(f"{file}: no marker for the command blocks {missing}.")
  return "\n".join(out)


def stale_files(root: str = ROOT, write: bool = False) -> list[str]:
  """The files whose command blocks differ from `BLOCKS` (rewritten when
  `write`)."""
  stale = []
  for file, blocks in BLOCKS.items():
    path = os.path.join(root, file)
    with open(path) as fh:
      text = fh.read()
    new = rewrite(text, blocks, file)
    if new != text:
      stale.append(file)
      if write:
        with open(path, "w") as fh:
          fh.write(new)
  return stale


def main(argv: list[str]) -> int:
  check = "--check" in argv[1:]
  stale = stale_files(write=not check)
  verb = "differ from" if check else "rewritten from"
  for file in stale:
    print(f"{file}: command blocks {verb} experiments/commands.py")
  return 1 if (check and stale) else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
