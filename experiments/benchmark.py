"""The benchmarks: `python -m experiments.benchmark NAME [OUTPUT.md] [ARGS...]`.

Every benchmark is a report, never a timed test. `BENCHMARKS` lists them,
each with its module in `experiments/benchmarks/`, its default output file
and what it measures (`python -m experiments.benchmark --help` prints
them). The report is printed and written to OUTPUT.md (default the
entry's), headed by the command, the commit and the machine
(`measure.header`). Timings are best-of-repeats wall-clock in one process,
reported as ratios to a reference timed round-robin with them
(`measure.time_interleaved`), because other jobs may share the machine.
"""

import os
import shlex
import sys
from typing import Callable, NamedTuple

from experiments.benchmarks import categorical
from experiments.benchmarks import compilation
from experiments.benchmarks import dvaepp
from experiments.benchmarks import dvaepp_conv
from experiments.benchmarks import estimators
from experiments.benchmarks import evaluation
from experiments.benchmarks import hdvae
from experiments.benchmarks import measure
from experiments.benchmarks import startup
from experiments.benchmarks import training
from experiments.benchmarks import xor_flow


class Benchmark(NamedTuple):
  """One subcommand.

  Attributes:
    run: `run(*args) -> markdown`, args the command line's ARGS.
    output: the default output file.
    description: one line for `--help`.
    args: how ARGS read in the usage line ("" without any).
  """
  run: Callable[..., str]
  output: str
  description: str
  args: str = ""


BENCHMARKS = {
    "estimators": Benchmark(
        estimators.report, "benchmark_results/estimators.md",
        "bias, variance and cost of every binary estimator"),
    "categorical": Benchmark(
        categorical.report, "benchmark_results/categorical.md",
        "bias, variance and cost of the categorical estimators, up to a "
        "memory layer's size (N = 16, K = 256)"),
    "training": Benchmark(
        training.report, "benchmark_results/training.md",
        "SBN train steps/s against dense-layer floors; a 5000-sample bound"),
    "xor_flow": Benchmark(
        xor_flow.report, "benchmark_results/xor_flow.md",
        "XOR flows' train steps/s and the sequential sampler vs D"),
    "dvaepp": Benchmark(
        dvaepp.report, "benchmark_results/dvaepp.md",
        "the RBM prior's cost: Gibbs share of the step, AIS, chain memory"),
    "dvaepp_ais": Benchmark(
        dvaepp.ais_report, "benchmark_results/dvaepp_ais.md",
        "AIS with 1,000 vs 10,000 temperatures on a trained RBM",
        "[RUN_DIR]"),
    "dvaepp_conv": Benchmark(
        dvaepp_conv.report, "benchmark_results/dvaepp_conv.md",
        "paper-size conv DVAE++ step, Gibbs share, compile time, memory",
        "[mnist] [cifar10]"),
    "hdvae": Benchmark(
        hdvae.report, "benchmark_results/hdvae.md",
        "6-layer HD-VAE, discrete vs Gaussian: step time and XLA memory"),
    "compile": Benchmark(
        compilation.report, "benchmark_results/compile.md",
        "cold compile time of each program of the quick commands' runs",
        "[FILE:ARG ...]"),
    "startup": Benchmark(
        startup.report, "benchmark_results/startup.md",
        "seconds from each documented command to its first train step, "
        "cold and warm compilation cache", "[all]"),
    "evaluation": Benchmark(
        evaluation.report, "benchmark_results/evaluation.md",
        "the bound's cost per example and sample, vs each continuous twin",
        "[FAMILY ...]"),
}


def usage() -> str:
  """The command line and every benchmark, one per line."""
  width = max(len(name) for name in BENCHMARKS)
  lines = ["usage: python -m experiments.benchmark NAME [OUTPUT.md] "
           "[ARGS...]", "", "NAME (default OUTPUT.md):"]
  for name, b in BENCHMARKS.items():
    lines.append(f"  {name:<{width}}  {b.description} ({b.output})"
                 + (f"; ARGS: {b.args}" if b.args else ""))
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  """Runs `argv[1]`'s benchmark; writes and prints its report."""
  if len(argv) < 2 or argv[1] in ("-h", "--help"):
    if len(argv) < 2:
      raise SystemExit(usage())
    print(usage())
    return
  name = argv[1]
  if name not in BENCHMARKS:
    raise SystemExit(f"unknown benchmark {name!r}; choose one of "
                     f"{', '.join(BENCHMARKS)}.\n\n{usage()}")
  benchmark = BENCHMARKS[name]
  output = argv[2] if len(argv) > 2 else benchmark.output
  report = benchmark.run(*argv[3:])
  command = "python -m experiments.benchmark " + " ".join(
      shlex.quote(a) for a in argv[1:])
  report = measure.header(command, output) + report
  os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
  with open(output, "w") as fh:
    fh.write(report)
  sys.stdout.write(report)
  sys.stdout.write(f"\nwritten to {output}\n")


if __name__ == "__main__":
  main(sys.argv)
