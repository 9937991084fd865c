"""The benchmarks' modules, one per subcommand of `experiments.benchmark`
(which lists them), and `measure`, what they all measure with."""
