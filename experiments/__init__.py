"""Experiment entry points: `python -m experiments.main`, `experiments.compare`,
`experiments.benchmark`."""
