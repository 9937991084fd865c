"""ARM and DisARM (placeholder)."""
def arm(*a, **k): raise NotImplementedError
def disarm(*a, **k): raise NotImplementedError
