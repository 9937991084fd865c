"""MuProp (placeholder)."""
def muprop(*a, **k): raise NotImplementedError
