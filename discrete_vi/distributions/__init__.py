"""Distributions over binary and categorical variables and their relaxations."""

from discrete_vi.distributions import bernoulli
from discrete_vi.distributions import categorical

__all__ = ["bernoulli", "categorical"]
