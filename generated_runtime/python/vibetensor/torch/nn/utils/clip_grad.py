"""clip_grad_norm_ / clip_grad_value_ with PyTorch's formulas (total norm of the per-tensor norms,
clip coefficient max_norm / (total_norm + 1e-6) clamped to 1). With foreach None or True, tensors of one device and
dtype (float32/float64) take the list ops `_stacked_norms` and `_foreach_mul_` (Note [Clip lists] in
src/vbt/cpu/optim_kernels.cpp): two multi-tensor launches on CUDA instead of two per parameter. foreach=False, and
lists that mix devices or dtypes, take the per-tensor ops, which compute the same thing."""
import math

from ..._ops import call
from ...autograd import no_grad
from ..._tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    from ... import stack, tensor, norm
    norm_type = float(norm_type)
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    if len(tensors) == 0:
        return tensor(0.0)
    with no_grad():
        if _one_list(tensors, foreach):
            norms = call("_stacked_norms", tensors, norm_type)
        else:
            norms = stack([norm(g, norm_type) for g in tensors])
        total = norms.amax() if math.isinf(norm_type) else norm(norms, norm_type)
    if error_if_nonfinite and (bool(total.isnan().item()) or bool(total.isinf().item())):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    grads = _grads(parameters)
    if not grads:
        return
    with no_grad():
        clip_coef = float(max_norm) / (total_norm + 1e-6)
        clip_coef_clamped = clip_coef.clamp(max=1.0)
        if _one_list(grads, foreach):
            call("_foreach_mul_", grads, clip_coef_clamped.to(grads[0].device).to(grads[0].dtype))
            return
        for g in grads:
            g.mul_(clip_coef_clamped.to(g.dtype))


_LIST_DTYPES = None


def _one_list(tensors, foreach):
    """Whether the list ops take `tensors` (Note [Clip lists]): foreach not False, one device, one dtype of
    float32/float64."""
    global _LIST_DTYPES
    if foreach is False:
        return False
    if _LIST_DTYPES is None:
        from ... import float32, float64
        _LIST_DTYPES = (float32, float64)
    dt, dev = tensors[0].dtype, tensors[0].device
    return dt in _LIST_DTYPES and all(t.dtype is dt and t.device == dev for t in tensors)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
