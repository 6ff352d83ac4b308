"""optim.Adam and optim.AdamW with PyTorch's update (bias corrections, amsgrad, maximize; AdamW decays the weights
by lr * weight_decay before the Adam step). Note [Fused Adam step]: on the CPU the default (foreach/fused None) and
fused=True update every parameter of a group that shares a step count and a device with one `_fused_adam_` call
(one pass over memory on the CPU, one launch per 24 tensors on CUDA; spec 02); foreach=False, amsgrad, other dtypes
and non-contiguous tensors take the per-parameter ops, which compute the same thing."""
import math

from .._ops import call
from ..autograd import no_grad
from .optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay or self._decoupled)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                may_fuse = group["foreach"] is not False and not group["amsgrad"]
                fused, single = [], []
                for p in group["params"]:
                    if p.grad is not None:
                        (fused if may_fuse and _fusable(p) else single).append(p)
                if fused:
                    self._fused_group(group, fused)
                for p in single:
                    self._single(group, p, self._state(group, p))
        return loss

    def _state(self, group, p):
        state = self.state[p]
        if len(state) == 0:
            from .. import zeros_like, tensor, float32
            state["step"] = tensor(0.0, dtype=float32)
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        state["step"].add_(1)
        return state

    def _fused_group(self, group, params):
        beta1, beta2 = group["betas"]
        by_step = {}
        for p in params:
            state = self._state(group, p)
            lists = by_step.setdefault((state["step"].item(), str(p.device)), ([], [], [], []))
            for lst, t in zip(lists, (p, p.grad, state["exp_avg"], state["exp_avg_sq"])):
                lst.append(t)
        lr = group["lr"]
        for (step, _), lists in by_step.items():
            try:
                call("_fused_adam_", *lists, lr, beta1, beta2, group["eps"], group["weight_decay"],
                     lr / (1 - beta1 ** step), math.sqrt(1 - beta2 ** step), group["decoupled_weight_decay"],
                     group["maximize"])
            except ValueError:  # e.g. moments loaded from a state_dict in another layout: it wrote nothing
                for p in lists[0]:
                    self._single(group, p, self.state[p])

    def _single(self, group, p, state):
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        amsgrad, maximize, decoupled = group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]
        grad = p.grad if not maximize else -p.grad
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        if wd != 0:
            if decoupled:
                p.mul_(1 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = state["step"].item()
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = math.sqrt(bias_correction2)
        if amsgrad:
            max_sq = state["max_exp_avg_sq"]
            max_sq.copy_(max_sq.maximum(exp_avg_sq))
            denom = (max_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        else:
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)


_FUSED_DTYPES = None


def _fusable(p):
    """Whether `_fused_adam_` takes p and its grad (Note [Fused Adam step]); the kernel checks the rest."""
    global _FUSED_DTYPES
    if _FUSED_DTYPES is None:
        from .. import float32, float64
        _FUSED_DTYPES = (float32, float64)
    g = p.grad
    return p.is_contiguous() and g.is_contiguous() and g.dtype is p.dtype and p.dtype in _FUSED_DTYPES


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
