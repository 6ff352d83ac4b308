"""nn.functional: the core's NN helpers (vibetensor/torch/_functional.py, composed of differentiable ops)
plus the few that need autograd-aware behaviour."""
from .._functional import *  # noqa: F401,F403
from .. import _functional as _core
from .. import _dtype as _D
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


# ---- fused ops with a backward (Note [Fused NN ops] in src/vbt/cpu/reduce_kernels.cpp) --------------------------
# cross_entropy with class-index targets and no class weights, and layer_norm when an operand requires grad, run as
# one fused op (CUDA: any floating dtype; CPU: float32/float64) whose autograd formula is a fused backward op.
# Everything else takes the composites of vibetensor/torch/_functional.py.

def _fused_device_ok(t):
    dev = t.device.type
    if dev == "cuda":
        return t.dtype.is_floating_point
    return dev == "cpu" and t.dtype in (_D.float32, _D.float64)


def _fused_cross_entropy_ok(input, target, weight, reduction, label_smoothing):
    if weight is not None or input.ndim == 0 or not _fused_device_ok(input):
        return False
    if target.dtype.is_floating_point or target.dtype is _D.bool or target.device != input.device:
        return False
    if reduction not in ("none", "mean", "sum") or not 0.0 <= label_smoothing <= 1.0:
        return False
    sizes = list(input._sizes())
    if input.ndim == 1:
        return target.ndim == 0 and sizes[0] > 0
    C = sizes[1]
    return C > 0 and list(target._sizes()) == sizes[:1] + sizes[2:]


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: F811
                  reduction="mean", label_smoothing=0.0):
    if not _fused_cross_entropy_ok(input, target, weight, reduction, label_smoothing):
        return _core.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                                   label_smoothing)
    x = _core._class_dim_last(input)
    loss = call("_fused_cross_entropy", x, call("reshape", target, [-1]), int(ignore_index), float(label_smoothing),
                reduction)[0]
    if reduction == "none" and target.ndim != 1:
        return call("reshape", loss, list(target._sizes()))
    return loss


def _fused_layer_norm_grad_ok(input, weight, bias):
    if not _fused_device_ok(input):
        return False
    for t in (weight, bias):
        if t is not None and (t.dtype != input.dtype or t.device != input.device):
            return False
    return True


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: F811
    if _core._fused_layer_norm_ok(input, weight, bias) or not _fused_layer_norm_grad_ok(input, weight, bias):
        return _core.layer_norm(input, normalized_shape, weight, bias, eps)  # no grad (forward-only) or composite
    normalized_shape, _ = _core._norm_dims(input, normalized_shape, "layer_norm")
    _core._check_affine(weight, normalized_shape, "weight", "layer_norm")
    _core._check_affine(bias, normalized_shape, "bias", "layer_norm")
    return call("_fused_layer_norm_fwd", input, list(normalized_shape), weight, bias, float(eps))[0]
