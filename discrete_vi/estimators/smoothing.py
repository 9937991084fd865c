"""Smoothing-transformation estimators (placeholder)."""
def overlapping_exponential(*a, **k): raise NotImplementedError
def overlapping_logistic(*a, **k): raise NotImplementedError
def spike_and_exp(*a, **k): raise NotImplementedError
def power_function(*a, **k): raise NotImplementedError
