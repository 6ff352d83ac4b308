"""NN helpers with torch.nn.functional's signatures (layer_norm, rms_norm, dropout, cross_entropy,
nll_loss, mse_loss, softmax, gelu, scaled_dot_product_attention, ...). They are composites of op-table
ops, so any wrapper layer (autograd) sees only primitive ops. vibetensor.torch.nn.functional (the nn
subsystem) re-exports these."""
import math
import numbers

from . import _dtype as D
from ._ops import call
from ._tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: {reduction} is not a valid value for reduction")


def _reduce(x, reduction):
    if reduction == "mean":
        return call("mean", x)
    if reduction == "sum":
        return call("sum", x)
    return x


# ---- activations -------------------------------------------------------------------------------

def relu(input, inplace=False):
    return call("relu", input, out=input) if inplace else call("relu", input)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return call("clamp", input, min_val, max_val, out=input if inplace else None)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    r = call("where", call("gt", input, 0), input, call("mul", input, negative_slope))
    return call("copy_", input, r) if inplace else r


def elu(input, alpha=1.0, inplace=False):
    r = call("where", call("gt", input, 0), input, call("mul", call("expm1", input), alpha))
    return call("copy_", input, r) if inplace else r


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return call("gelu", input, approximate=approximate)


def silu(input, inplace=False):
    return call("silu", input, out=input) if inplace else call("silu", input)


def sigmoid(input):
    return call("sigmoid", input)


def tanh(input):
    return call("tanh", input)


def softplus(input, beta=1.0, threshold=20.0):
    return call("softplus", input, beta, threshold)


def mish(input, inplace=False):
    return call("mul", input, call("tanh", call("softplus", input)))


def _softmax_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return call("softmax", input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return call("log_softmax", input, dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(call("neg", input), dim, dtype=dtype)


# ---- normalisation -----------------------------------------------------------------------------

def _norm_dims(input, normalized_shape, op):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.ndim < k or tuple(input._sizes()[input.ndim - k:]) != normalized_shape:
        raise RuntimeError(f"{op}: Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size "
                           f"{list(input._sizes())}")
    return normalized_shape, list(range(input.ndim - k, input.ndim))


def _check_affine(t, normalized_shape, name, op):
    if t is not None and tuple(t._sizes()) != tuple(normalized_shape):
        raise RuntimeError(f"{op}: Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                           f"{list(t._sizes())} and normalized_shape = {list(normalized_shape)}")


def _fused_layer_norm_ok(input, weight, bias):
    """The fused kernels have no backward: use them only when no operand requires grad, all on the input's device
    and dtype (CPU: float32/float64; CUDA: any floating dtype)."""
    dev = input.device.type
    if dev not in ("cpu", "cuda") or input.requires_grad or not input.dtype.is_floating_point:
        return False
    if dev == "cpu" and input.dtype not in (D.float32, D.float64):
        return False
    for t in (weight, bias):
        if t is not None and (t.dtype != input.dtype or t.device != input.device or t.requires_grad):
            return False
    return True


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    normalized_shape, dims = _norm_dims(input, normalized_shape, "layer_norm")
    _check_affine(weight, normalized_shape, "weight", "layer_norm")
    _check_affine(bias, normalized_shape, "bias", "layer_norm")
    if _fused_layer_norm_ok(input, weight, bias):  # forward only: one pass per row instead of ~8 ops
        return call("_fused_layer_norm", input, list(normalized_shape), weight, bias, float(eps))
    mu = call("mean", input, dims, True)
    xc = call("sub", input, mu)
    var = call("mean", call("mul", xc, xc), dims, True)
    y = call("mul", xc, call("rsqrt", call("add", var, eps)))
    if weight is not None:
        y = call("mul", y, weight)
    if bias is not None:
        y = call("add", y, bias)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    normalized_shape, dims = _norm_dims(input, normalized_shape, "rms_norm")
    _check_affine(weight, normalized_shape, "weight", "rms_norm")
    if eps is None:
        eps = D.finfo(input.dtype).eps
    ms = call("mean", call("mul", input, input), dims, True)
    y = call("mul", input, call("rsqrt", call("add", ms, eps)))
    if weight is not None:
        y = call("mul", y, weight)
    return y


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    n = call("norm", input, p, [dim], True)
    return call("div", input, call("clamp", n, eps, None))


# ---- dropout -----------------------------------------------------------------------------------

def dropout(input, p=0.5, training=True, inplace=False):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        r = call("mul", input, 0)
    else:
        keep = call("bernoulli", call("empty", list(input._sizes()), dtype=input.dtype, device=input.device), 1.0 - p)
        r = call("mul", input, call("div", keep, 1.0 - p))
    return call("copy_", input, r) if inplace else r


# ---- losses ------------------------------------------------------------------------------------

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    _check_reduction(reduction, "mse_loss")
    d = call("sub", input, target)
    return _reduce(call("mul", d, d), reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _check_reduction(reduction, "l1_loss")
    return _reduce(call("abs", call("sub", input, target)), reduction)


def _class_dim_last(x):
    """(N, C, d1, ...) -> (N*d1*..., C); (C,) -> (1, C)."""
    if x.ndim == 1:
        return call("unsqueeze", x, 0)
    if x.ndim == 2:
        return x
    return call("reshape", call("movedim", x, [1], [x.ndim - 1]), [-1, x._sizes()[1]])


def _nll_core(logp, target, weight, ignore_index, op):
    """logp (M, C), target (M,) int. Returns (per-sample loss (M,), per-sample weight (M,))."""
    if target.dtype.is_floating_point or target.dtype is D.bool:
        raise RuntimeError(f"{op}: expected target of an integer dtype (class indices), got {target.dtype.name}")
    if target.numel() != logp._sizes()[0]:
        raise ValueError(f"{op}: Expected input batch_size ({logp._sizes()[0]}) to match target batch_size "
                         f"({target.numel()}).")
    C = logp._sizes()[1]
    valid = call("ne", target, ignore_index)
    safe = call("where", valid, target, 0)
    bad = call("logical_and", valid, call("logical_or", call("lt", safe, 0), call("ge", safe, C)))
    if call("any", bad).item():
        raise IndexError(f"{op}: Target {int(call('amax', call('where', bad, safe, -1), []).item())} is out of "
                         f"bounds (number of classes {C})")
    picked = call("squeeze", call("gather", logp, 1, call("unsqueeze", safe, 1)), [1])
    w = call("to_dtype", valid, logp.dtype, False)
    if weight is not None:
        if weight.ndim != 1 or weight.numel() != C:
            raise RuntimeError(f"{op}: weight tensor should be defined either for all {C} classes or no classes but "
                               f"got weight tensor of shape: {list(weight._sizes())}")
        w = call("mul", w, call("index_select", weight, 0, safe))
    return call("mul", call("neg", picked), w), w, valid


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    _check_reduction(reduction, "nll_loss")
    out_shape = list(target._sizes())
    logp = _class_dim_last(input)
    tgt = call("reshape", target, [-1])
    loss, w, _ = _nll_core(logp, tgt, weight, ignore_index, "nll_loss")
    if reduction == "none":
        return call("reshape", loss, out_shape)
    if reduction == "sum":
        return call("sum", loss)
    return call("div", call("sum", loss), call("sum", w))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dimension (classes)")
    C = input._sizes()[0 if input.ndim == 1 else 1]
    logp_full = call("log_softmax", input, 0 if input.ndim == 1 else 1, None)
    logp = _class_dim_last(logp_full)
    eps = float(label_smoothing)
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target._sizes()) != tuple(input._sizes()):
            raise RuntimeError(f"cross_entropy: expected target of shape {list(input._sizes())} (class "
                               f"probabilities), got {list(target._sizes())}")
        tp = _class_dim_last(target)
        if eps > 0:
            tp = call("add", call("mul", tp, 1.0 - eps), eps / C)
        prod = call("mul", logp, tp)
        if weight is not None:
            prod = call("mul", prod, weight)
        per = call("neg", call("sum", prod, [1]))
        if reduction == "none":
            shape = list(input._sizes())
            del shape[0 if input.ndim == 1 else 1]
            return call("reshape", per, shape)
        if reduction == "sum":
            return call("sum", per)
        n = per.numel()
        return call("div", call("sum", per), n)
    out_shape = list(target._sizes())
    tgt = call("reshape", target, [-1])
    nll, w, valid = _nll_core(logp, tgt, weight, ignore_index, "cross_entropy")
    if eps > 0:
        wl = logp if weight is None else call("mul", logp, weight)
        smooth = call("mul", call("neg", call("sum", wl, [1])), call("to_dtype", valid, logp.dtype, False))
        loss = call("add", call("mul", nll, 1.0 - eps), call("mul", smooth, eps / C))
    else:
        loss = nll
    if reduction == "none":
        return call("reshape", loss, out_shape)
    if reduction == "sum":
        return call("sum", loss)
    return call("div", call("sum", loss), call("sum", w))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    # log(1 + exp(-|x|)) + max(x, 0) - x * t
    sp = call("softplus", call("neg", call("abs", input)), 1, 20)
    if pos_weight is not None:
        lw = call("add", call("mul", call("sub", pos_weight, 1), target), 1)
        loss = call("add", call("mul", call("sub", 1, target), input),
                    call("mul", lw, call("add", sp, call("relu", call("neg", input)))))
    else:
        loss = call("sub", call("add", sp, call("relu", input)), call("mul", input, target))
    if weight is not None:
        loss = call("mul", loss, weight)
    return _reduce(loss, reduction)


# ---- layers ------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    return call("linear", input, weight, bias)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    if max_norm is not None:
        raise NotImplementedError("vibetensor: embedding with max_norm is not supported")
    return call("embedding", weight, input)


def one_hot(tensor, num_classes=-1):
    return call("one_hot", tensor, num_classes)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError("scaled_dot_product_attention: query, key and value must have at least 2 dims")
    if query._sizes()[-1] != key._sizes()[-1]:
        raise RuntimeError(f"scaled_dot_product_attention: query {list(query._sizes())} and key "
                           f"{list(key._sizes())} must have the same last dim")
    L, S = query._sizes()[-2], key._sizes()[-2]
    if enable_gqa and query.ndim >= 3 and key._sizes()[-3] != query._sizes()[-3]:
        rep = query._sizes()[-3] // key._sizes()[-3]
        key = call("flatten", call("expand", call("unsqueeze", key, -3),
                                   list(key._sizes()[:-2]) + [rep] + list(key._sizes()[-2:])), key.ndim - 3, key.ndim - 2)
        value = call("flatten", call("expand", call("unsqueeze", value, -3),
                                     list(value._sizes()[:-2]) + [rep] + list(value._sizes()[-2:])), value.ndim - 3,
                     value.ndim - 2)
    s = 1.0 / math.sqrt(query._sizes()[-1]) if scale is None else scale
    scores = call("mul", call("matmul", query, call("transpose", key, -2, -1)), s)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("scaled_dot_product_attention: explicit attn_mask should not be set when is_causal=True")
        keep = call("tril", call("ones", [L, S], dtype=D.bool, device=query.device), 0)  # on the inputs' device
        scores = call("masked_fill", scores, call("logical_not", keep), float("-inf"))
    elif attn_mask is not None:
        if attn_mask.dtype is D.bool:
            scores = call("masked_fill", scores, call("logical_not", attn_mask), float("-inf"))
        else:
            scores = call("add", scores, attn_mask)
    attn = call("softmax", scores, -1, None)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return call("matmul", attn, value)


# ---- pad ---------------------------------------------------------------------------------------
# Note [pad]: pad = (left, right) pairs from the last dim backwards. Constant mode fills a new tensor with the
# value and copies the (cropped, for negative pads) input into its interior (a copy_ into a view: autograd
# routes the gradient back through the view). The other modes gather along each padded dim with index_select
# and a host-built index (reflect: -j / 2(n-1)-j, replicate: clamp, circular: j mod n over the cropped range), so
# negative pads crop there too and gradients accumulate through index_select's backward.

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_index(mode, n, lo, hi):
    if mode == "reflect":
        return [-j if j < 0 else (2 * (n - 1) - j if j >= n else j) for j in range(-lo, n + hi)]
    if mode == "replicate":
        return [0 if j < 0 else (n - 1 if j >= n else j) for j in range(-lo, n + hi)]
    # circular crops first (negative pads), then wraps around what is left (torch's semantics)
    start, m = max(-lo, 0), n + min(lo, 0) + min(hi, 0)
    return [start + j % m for j in range(-max(lo, 0), m + max(hi, 0))]


def pad(input, pad, mode="constant", value=None):
    pad = tuple(pad)
    for p in pad:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise TypeError(f"pad(): argument 'pad' must be tuple of ints, but found element of type "
                            f"{type(p).__name__}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(pad) // 2
    if k > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    sizes = list(input._sizes())
    pairs = [(input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(k)]
    if mode == "constant":
        for d, lo, hi in pairs:
            if sizes[d] + min(lo, 0) + min(hi, 0) < 0:
                raise RuntimeError(f"pad: The input size {sizes[d]}, plus negative padding {lo} and {hi} resulted in "
                                   f"a negative output size, which is invalid. Check dimension {d} of your input.")
        src = input
        for d, lo, hi in pairs:  # crop first
            if lo < 0 or hi < 0:
                src = call("narrow", src, d, max(-lo, 0), sizes[d] + min(lo, 0) + min(hi, 0))
        if all(lo <= 0 and hi <= 0 for _, lo, hi in pairs):
            return call("clone", src)
        out_sizes = list(src._sizes())
        for d, lo, hi in pairs:
            out_sizes[d] += max(lo, 0) + max(hi, 0)
        out = call("full", out_sizes, 0 if value is None else value, dtype=input.dtype, device=input.device)
        dst = out
        for d, lo, hi in pairs:
            dst = call("narrow", dst, d, max(lo, 0), src._sizes()[d])
        call("copy_", dst, src)
        return out
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if not (1 <= k <= 3 and input.ndim in (k + 1, k + 2)):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    if mode != "circular" and any(s == 0 for s in sizes[1:]):
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {sizes}")
    for d, lo, hi in pairs:
        n = sizes[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({lo}, {hi}) at dimension {d} of input {sizes}")
        if mode == "circular" and (lo > n + min(hi, 0) or hi > n + min(lo, 0)):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if n + lo + hi < 0:
            raise RuntimeError(f"pad: The input size {n}, plus negative padding {lo} and {hi} resulted in a negative "
                               f"output size, which is invalid. Check dimension {d} of your input.")
    out = input
    for d, lo, hi in pairs:
        if lo == 0 and hi == 0:
            continue
        idx = _pad_index(mode, sizes[d], lo, hi)
        out = call("index_select", out, d, _index_tensor(idx, input.device))
    return call("clone", out) if out is input else out


def _index_tensor(values, device):
    from ._creation import tensor
    return tensor(values, dtype=D.int64, device=device)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("math", "numbers", "call", "Tensor", "D")]
