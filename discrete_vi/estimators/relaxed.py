"""Relaxed and straight-through estimators (placeholder)."""
def straight_through(*a, **k): raise NotImplementedError
def gumbel_softmax(*a, **k): raise NotImplementedError
def st_gumbel_softmax(*a, **k): raise NotImplementedError
def gumbel_rao(*a, **k): raise NotImplementedError
