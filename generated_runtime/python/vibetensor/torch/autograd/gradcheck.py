"""gradcheck: compares analytical gradients (the engine) with central finite differences, as
torch.autograd.gradcheck does (use float64 inputs)."""
import numpy as np

from ... import _C
from .._tensor import Tensor
from .grad_mode import no_grad


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs):
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **_ignored):
    from .. import from_numpy
    from . import grad as autograd_grad
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = _outputs(func, inputs)
    for k, out in enumerate(outs):
        if not out.requires_grad:
            continue
        n_out = out.numel()
        analytical = [np.zeros((inputs[i].numel(), n_out)) for i in diff]
        for j in range(n_out):
            g = np.zeros(n_out, dtype=np.float64)
            g[j] = 1.0
            gt = from_numpy(g.reshape(tuple(out.shape))).to(out.dtype)
            grads = autograd_grad([out], [inputs[i] for i in diff], [gt], retain_graph=True, allow_unused=True)
            for a, gr in zip(analytical, grads):
                if gr is not None:
                    a[:, j] = gr.detach().to(_C.float64).numpy().reshape(-1)
        for a, i in zip(analytical, diff):
            x = inputs[i]
            base = x.detach().to(_C.float64).numpy().copy().reshape(-1)
            numerical = np.zeros_like(a)
            for p in range(base.size):
                vals = []
                for sign in (1.0, -1.0):
                    pert = base.copy()
                    pert[p] += sign * eps
                    xi = from_numpy(pert.reshape(tuple(x.shape))).to(x.dtype)
                    args = list(inputs)
                    args[i] = xi
                    with no_grad():
                        vals.append(_outputs(func, args)[k].detach().to(_C.float64).numpy().reshape(-1))
                numerical[p, :] = (vals[0] - vals[1]) / (2 * eps)
            if not np.allclose(a, numerical, rtol=rtol, atol=atol):
                if raise_exception:
                    raise GradcheckError(f"Jacobian mismatch for output {k} with respect to input {i},\n"
                                         f"numerical:{numerical}\nanalytical:{a}\n")
                return False
    return True
