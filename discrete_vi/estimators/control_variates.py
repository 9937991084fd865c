"""REBAR and RELAX (placeholder)."""
def rebar(*a, **k): raise NotImplementedError
def relax(*a, **k): raise NotImplementedError
def init_rebar(*a, **k): raise NotImplementedError
def init_relax(*a, **k): raise NotImplementedError
