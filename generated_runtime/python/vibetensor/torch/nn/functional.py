"""nn.functional: the core's NN helpers (vibetensor/torch/_functional.py, composed of differentiable ops)
plus the few that need autograd-aware behaviour."""
from .._functional import *  # noqa: F401,F403
from .. import _functional as _core
from .._ops import call

# names the star-import may skip (underscore-free helpers are all public already)
for _n in dir(_core):
    if not _n.startswith("_"):
        globals()[_n] = getattr(_core, _n)
del _n


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: F811
    return _core.softmax(input, dim, _stacklevel, dtype)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,  # noqa: F811
              sparse=False):
    out = call("embedding", weight, input)
    if padding_idx is not None and out.requires_grad:
        # no gradient flows into the padding row (torch semantics): stop it with a mask on the output
        # forward unchanged (the padding row's values), gradient blocked for the padding positions
        keep = call("ne", input, padding_idx if padding_idx >= 0 else weight.shape[0] + padding_idx)
        out = call("where", call("unsqueeze", keep, -1), out, out.detach())
    return out
