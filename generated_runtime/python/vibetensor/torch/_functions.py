"""Top-level torch functions whose Python signature differs from the op schema (overloads, varargs,
aliases). Everything else at the top level is generated from the op table (see __init__.py)."""
import builtins
import math
import numbers

from . import _tensor as _T
from ._ops import call, write_out
from ._tensor import Tensor


def max(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return _T._max(input, dim, keepdim)


def min(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return _T._min(input, dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return write_out("var", out, _T._var(input, dim, unbiased, keepdim, correction=correction))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return write_out("std", out, _T._std(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    c = _T._correction(unbiased, correction)
    return call("var", input, dim, correction=c, keepdim=keepdim), call("mean", input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    c = _T._correction(unbiased, correction)
    return call("std", input, dim, correction=c, keepdim=keepdim), call("mean", input, dim, keepdim)


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    return write_out("norm", out, _T._norm(input, p, dim, keepdim, dtype))


def amax(input, dim=(), keepdim=False, *, out=None):
    return write_out("amax", out, _T._amax(input, dim, keepdim))


def amin(input, dim=(), keepdim=False, *, out=None):
    return write_out("amin", out, _T._amin(input, dim, keepdim))


def logsumexp(input, dim, keepdim=False, *, out=None):
    return write_out("logsumexp", out, _T._logsumexp(input, dim, keepdim))


def all(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return call("all", input, dim, keepdim, out=out)


def any(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return call("any", input, dim, keepdim, out=out)


def softmax(input, dim, dtype=None, *, out=None):
    return call("softmax", input, dim, dtype, out=out)


def log_softmax(input, dim, dtype=None, *, out=None):
    return call("log_softmax", input, dim, dtype, out=out)


def where(condition, input=None, other=None, *, out=None):
    if input is None and other is None:
        return _T._nonzero(condition, as_tuple=True)
    return call("where", condition, input, other, out=out)


def cat(tensors, dim=0, *, out=None):
    return write_out("cat", out, call("cat", list(tensors), dim))


def stack(tensors, dim=0, *, out=None):
    return write_out("stack", out, call("stack", list(tensors), dim))


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t.unsqueeze(0) if t.ndim == 1 else t for t in tensors], 0)


def split(tensor, split_size_or_sections, dim=0):
    return _T._split(tensor, split_size_or_sections, dim)


def reshape(input, shape):
    return call("reshape", input, list(shape))


def permute(input, dims):
    return call("permute", input, list(dims))


def squeeze(input, dim=None):
    return call("squeeze", input, dim)


def flip(input, dims):
    return call("flip", input, [dims] if isinstance(dims, numbers.Integral) else list(dims))


def tile(input, dims):
    return _T._tile(input, dims)


def movedim(input, source, destination):
    return _T._movedim(input, source, destination)


def flatten(input, start_dim=0, end_dim=-1):
    return call("flatten", input, start_dim, end_dim)


def nonzero(input, *, out=None, as_tuple=False):
    return write_out("nonzero", out, _T._nonzero(input, as_tuple=as_tuple))


def argwhere(input):
    return call("nonzero", input)


def count_nonzero(input, dim=None):
    return _T._count_nonzero(input, dim)


def clamp_min(input, min):  # noqa: A002
    return call("clamp", input, min, None)


def clamp_max(input, max):  # noqa: A002
    return call("clamp", input, None, max)


def floor_divide(input, other, *, out=None):
    return call("div", input, other, rounding_mode="floor", out=out)


def true_divide(input, other, *, out=None):
    return call("div", input, other, out=out)


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_nonzero(input):
    return bool(input)


def broadcast_shapes(*shapes):
    from ._size import Size
    out = []
    for s in shapes:
        s = [s] if isinstance(s, numbers.Integral) else list(s)
        n = builtins.max(len(out), len(s))
        a = [1] * (n - len(out)) + out
        b = [1] * (n - len(s)) + s
        r = []
        for x, y in zip(a, b):
            if x != y and x != 1 and y != 1:
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape. "
                                   f"Mismatch is between {a} and {b}.")
            r.append(y if x == 1 else x)
        out = r
    return Size(out)


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    shape = broadcast_shapes(*[t._sizes() for t in tensors])
    return tuple(call("expand", t, list(shape)) for t in tensors)


def broadcast_to(input, size):
    return call("expand", input, list(size))


def chunk(input, chunks, dim=0):
    return call("chunk", input, chunks, dim)


def unbind(input, dim=0):
    return call("unbind", input, dim)


def transpose(input, dim0, dim1):
    return call("transpose", input, dim0, dim1)


# ---- einsum ------------------------------------------------------------------------------------
# Note [einsum]: a composition of differentiable ops, so autograd needs no formula of its own.
# 1. Parse the equation; every operand's dims get labels: letters map to their code (>= 65) and the dims an
#    ellipsis covers map to 0..E-1 (E = the most dims any ellipsis covers; ellipses align to the right).
# 2. Global label order = the output labels (implicit output: the ellipsis, then the letters seen exactly once,
#    sorted) followed by the summed labels. Each operand takes diagonals for repeated labels, is permuted into
#    that order and gets size-1 dims for the labels it lacks, so all operands have the same rank.
# 3. Operands are contracted pairwise left to right. For a pair (A, B) a label that is needed later (output or a
#    later operand) is a batch dim (both sizes > 1) or stays on the side that has it; a label needed no longer is
#    contracted through bmm (both sizes > 1) or summed on the side that has it. bmm runs on A as
#    [batch, left, contracted] and B as [batch, contracted, right].
# 4. The result has size 1 at every summed label: a reshape gives the output shape.


def _einsum_sublist(args):
    """einsum(op0, sub0, op1, sub1, ..., [sub_out]) -> (equation, operands)."""
    def letters(sub):
        out = []
        for v in sub:
            if v is Ellipsis:
                out.append("...")
            elif isinstance(v, numbers.Integral) and 0 <= v < 52:
                out.append(chr(ord("A") + v) if v < 26 else chr(ord("a") + v - 26))
            else:
                raise ValueError(f"einsum(): expected subscript to be within the range [0, 52), but got {v}")
        return "".join(out)
    args = list(args)
    out = args.pop() if len(args) % 2 else None
    eq = ",".join(letters(s) for s in args[1::2])
    if out is not None:
        eq += "->" + letters(out)
    return eq, args[0::2]


def _einsum_parse(equation, shapes):
    """Returns (labels per operand as lists of ints, output labels, ellipsis dims E)."""
    eq = equation.replace(" ", "")
    arrow = eq.find("->")
    lhs, rhs = (eq, None) if arrow < 0 else (eq[:arrow], eq[arrow + 2:])
    terms = lhs.split(",")
    if len(terms) < len(shapes):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    if len(terms) > len(shapes):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")

    def scan(term, opi, pos):
        """-> (list of letters or None for the ellipsis)."""
        res, i, has_ell = [], 0, False
        while i < len(term):
            c = term[i]
            if c == ".":
                if has_ell:
                    raise RuntimeError(f"einsum(): found '.' for operand {opi} for which an ellipsis was already "
                                       f"found")
                if term[i:i + 3] != "...":
                    raise RuntimeError(f"einsum(): found '.' for operand {opi} that is not part of any ellipsis")
                has_ell = True
                res.append(None)
                i += 3
                continue
            if not (("a" <= c <= "z") or ("A" <= c <= "Z")):
                raise RuntimeError(f"einsum(): invalid subscript given at index {pos + i} in the equation string, "
                                   f"subscripts must be in [a-zA-Z]")
            res.append(ord(c))
            i += 1
        return res

    pos, raw = 0, []
    for i, term in enumerate(terms):
        raw.append(scan(term, i, pos))
        pos += len(term) + 1
    ell = 0
    for i, (r, shape) in enumerate(zip(raw, shapes)):
        nlab = sum(1 for x in r if x is not None)
        if None in r:
            if nlab > len(shape):
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({nlab}) is more than the "
                                   f"number of dimensions ({len(shape)}) for operand {i}")
            ell = builtins.max(ell, len(shape) - nlab)
        elif nlab != len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({nlab}) does not match the "
                               f"number of dimensions ({len(shape)}) for operand {i} and no ellipsis was given")
    labels = []
    for r, shape in zip(raw, shapes):
        labs = []
        for x in r:
            if x is None:
                k = len(shape) - (len(r) - 1)
                labs.extend(range(ell - k, ell))
            else:
                labs.append(x)
        labels.append(labs)
    if rhs is None:
        counts = {}
        for labs in labels:
            for x in labs:
                counts[x] = counts.get(x, 0) + 1
        out = list(range(ell)) + sorted(x for x, c in counts.items() if c == 1 and x >= 65)
    else:
        seen = {x for labs in labels for x in labs}
        out, have_ell = [], False
        i = 0
        while i < len(rhs):
            c = rhs[i]
            if c == ".":
                if have_ell:
                    raise RuntimeError("einsum(): found '.' for output but an ellipsis (...) was already found")
                if rhs[i:i + 3] != "...":
                    raise RuntimeError("einsum(): found '.' for output that is not part of any ellipsis (...)")
                have_ell = True
                out.extend(range(ell))
                i += 3
                continue
            if not (("a" <= c <= "z") or ("A" <= c <= "Z")):
                raise RuntimeError(f"einsum(): invalid subscript given at index {len(lhs) + 2 + i} in the equation "
                                   f"string, subscripts must be in [a-zA-Z]")
            if ord(c) in out:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
            if ord(c) not in seen:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any input "
                                   f"operand")
            out.append(ord(c))
            i += 1
    return labels, out, ell


def _einsum_align(x, labs, order, opi):
    """Diagonals for repeated labels, then permute into `order` with size-1 dims for absent labels."""
    labs = list(labs)
    while True:
        rep = next(((i, j) for i in range(len(labs)) for j in range(i + 1, len(labs)) if labs[i] == labs[j]), None)
        if rep is None:
            break
        i, j = rep
        si, sj = x._sizes()[i], x._sizes()[j]
        if si != sj:
            raise RuntimeError(f"einsum(): subscript {chr(labs[i])} is repeated for operand {opi} but the sizes "
                               f"don't match, {sj} != {si}")
        x = call("diagonal", x, 0, i, j)
        lab = labs[i]
        labs = [v for k, v in enumerate(labs) if k not in (i, j)] + [lab]
    pos = {v: k for k, v in enumerate(labs)}
    perm = [pos[v] for v in order if v in pos]
    if perm != list(range(len(perm))):
        x = call("permute", x, perm)
    sizes = x._sizes()
    full, k = [], 0
    for v in order:
        if v in pos:
            full.append(sizes[k])
            k += 1
        else:
            full.append(1)
    if len(full) != len(sizes):
        x = call("reshape", x, full)
    return x


def _einsum_sum(x, dims):
    return call("sum", x, dims, True) if dims else x


def _einsum_pair(a, b, keep):
    """Contracts two aligned operands; keep[d] says whether global label d is needed afterwards."""
    sa, sb = a._sizes(), b._sizes()
    sum_a = [d for d in range(len(keep)) if not keep[d] and sa[d] != 1 and sb[d] == 1]
    sum_b = [d for d in range(len(keep)) if not keep[d] and sb[d] != 1 and sa[d] == 1]
    a, b = _einsum_sum(a, sum_a), _einsum_sum(b, sum_b)
    sa, sb = a._sizes(), b._sizes()
    batch = [d for d in range(len(keep)) if keep[d] and sa[d] != 1 and sb[d] != 1]
    left = [d for d in range(len(keep)) if keep[d] and sa[d] != 1 and sb[d] == 1]
    right = [d for d in range(len(keep)) if keep[d] and sa[d] == 1 and sb[d] != 1]
    contr = [d for d in range(len(keep)) if not keep[d] and sa[d] != 1 and sb[d] != 1]
    ones = [d for d in range(len(keep)) if sa[d] == 1 and sb[d] == 1]
    if not contr:
        return call("mul", a, b)  # nothing to contract: a broadcast product
    prod = lambda ds, s: math.prod(s[d] for d in ds)  # noqa: E731
    nb, nl, nr, nk = prod(batch, sa), prod(left, sa), prod(right, sb), prod(contr, sa)
    a3 = call("reshape", call("permute", a, batch + left + contr + right + ones), [nb, nl, nk])
    b3 = call("reshape", call("permute", b, batch + contr + right + left + ones), [nb, nk, nr])
    r = call("bmm", a3, b3)
    # r is [batch, left, right]; put every global label back (size 1 where contracted or absent)
    order = batch + left + right
    r = call("reshape", r, [sa[d] for d in batch] + [sa[d] for d in left] + [sb[d] for d in right])
    rest = [d for d in range(len(keep)) if d not in order]
    r = call("reshape", r, [sa[d] if d in batch or d in left else sb[d] for d in order] + [1] * len(rest))
    inv = [0] * len(keep)
    for k, d in enumerate(order + rest):
        inv[d] = k
    return call("permute", r, inv)


def einsum(*args):
    if len(args) < 2:
        raise ValueError("einsum(): must specify the equation string and at least one operand, or at least one "
                         "operand and its subscripts list")
    if isinstance(args[0], str):
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = operands[0]
    else:
        equation, operands = _einsum_sublist(args)
    operands = list(operands)
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): expected a Tensor for operand {i}, got {type(op).__name__}")
    for op in operands[1:]:
        if op.dtype is not operands[0].dtype:
            raise RuntimeError(f"einsum(): expected scalar type {operands[0].dtype} but found {op.dtype}")
    labels, out, ell = _einsum_parse(equation, [op._sizes() for op in operands])
    order = list(out)
    for labs in labels:
        for v in labs:
            if v not in order:
                order.append(v)
    xs = [_einsum_align(op, labs, order, i) for i, (op, labs) in enumerate(zip(operands, labels))]
    # every label's size must agree where it is not 1 (size-1 dims broadcast)
    seen = {}
    for i, x in enumerate(xs):
        for d, s in enumerate(x._sizes()):
            if s == 1 or d in seen and seen[d] == s:
                continue
            if d in seen and seen[d] != 1:
                lab = order[d]
                name = chr(lab) if lab >= 65 else "..."
                raise RuntimeError(f"einsum(): subscript {name} has size {s} for operand {i} which does not "
                                   f"broadcast with previously seen size {seen[d]}")
            seen[d] = s
    nout = len(out)
    res = xs[0]
    if len(xs) == 1:
        res = _einsum_sum(res, [d for d in range(nout, len(order)) if res._sizes()[d] != 1])
    for j in range(1, len(xs)):
        later = {order.index(v) for labs in labels[j + 1:] for v in labs}
        res = _einsum_pair(res, xs[j], [d < nout or d in later for d in range(len(order))])
    if len(res._sizes()) != nout:  # the summed labels are size 1 now
        res = call("reshape", res, list(res._sizes()[:nout]))
    return res


def sort(input, dim=-1, descending=False, *, stable=False, out=None):
    return _T._sort(input, dim, descending, stable=stable, out=out)


def argsort(input, dim=-1, descending=False, *, stable=False):
    return _T._argsort(input, dim, descending, stable=stable)


def msort(input, *, out=None):
    return write_out("sort", out, _T._msort(input))


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):  # noqa: A002
    return _T._topk(input, k, dim, largest, sorted, out=out)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):
    return _T._kthvalue(input, k, dim, keepdim, out=out)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    diff = call("abs", call("sub", input, other))
    tol = call("add", call("mul", call("abs", other), rtol), atol)
    close = call("logical_or", call("eq", input, other), call("le", diff, tol))
    if equal_nan:
        close = call("logical_or", close, call("logical_and", call("isnan", input), call("isnan", other)))
    return close


def equal(input, other):
    return input.shape == other.shape and bool(call("all", call("eq", input, other)))


def result_type(tensor1, tensor2):
    from .. import _C
    a = tensor1 if isinstance(tensor1, Tensor) else _C.scalar_tensor(tensor1, None)
    b = tensor2 if isinstance(tensor2, Tensor) else _C.scalar_tensor(tensor2, None)
    return _C.result_type_of([a, b])


def can_cast(from_, to):
    return not (from_.is_floating_point and not to.is_floating_point) and not (
        from_.name != "bool" and to.name == "bool")
