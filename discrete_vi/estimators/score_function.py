"""Score-function estimators (placeholder: being written this session)."""
def reinforce(*a, **k): raise NotImplementedError
def rloo(*a, **k): raise NotImplementedError
def vimco(*a, **k): raise NotImplementedError
def init_reinforce(*a, **k): raise NotImplementedError
