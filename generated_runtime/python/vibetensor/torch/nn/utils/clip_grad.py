"""clip_grad_norm_ / clip_grad_value_ with PyTorch's formulas (total norm of the per-tensor norms,
clip coefficient max_norm / (total_norm + 1e-6) clamped to 1)."""
import math

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
        norms = [norm(g, norm_type) for g in tensors]
        if math.isinf(norm_type):
            total = stack(norms).amax()
        else:
            total = norm(stack(norms), norm_type)
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
        for g in grads:
            g.mul_(clip_coef_clamped.to(g.dtype))


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
