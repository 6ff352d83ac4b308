"""Views share storage and the version counter; basic and advanced __getitem__/__setitem__; indexing
and shape ops (index_select, gather, scatter, ..., cat, stack, flip, roll, tril, repeat) vs PyTorch."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import assert_same, make_np, pair


def _base(name="float32", shape=(4, 5, 6), seed=0):
    return pair(make_np(shape, name, np.random.default_rng(seed)), name)


VIEW_CASES = [
    ("view", lambda x: x.view(20, 6)), ("view-1", lambda x: x.view(-1)), ("reshape", lambda x: x.reshape(2, -1, 3)),
    ("permute", lambda x: x.permute(2, 0, 1)), ("transpose", lambda x: x.transpose(0, 2)),
    ("t", lambda x: x[0].t()), ("expand", lambda x: x[:, :1].expand(4, 3, 6)),
    ("narrow", lambda x: x.narrow(1, 1, 3)), ("select", lambda x: x.select(2, -1)),
    ("squeeze", lambda x: x[:, :1].squeeze(1)), ("squeeze_all", lambda x: x[:1, :1].squeeze()),
    ("unsqueeze", lambda x: x.unsqueeze(-1)), ("flatten", lambda x: x.flatten(1)),
    ("unflatten", lambda x: x.unflatten(2, (2, 3))), ("as_strided", lambda x: x.as_strided((3, 3), (6, 1), 2)),
    ("diagonal", lambda x: x.diagonal(0, 1, 2)), ("movedim", lambda x: x.movedim(0, -1)),
    ("slice", lambda x: x[1:3, ::2, 4:]), ("T", lambda x: x[0].T), ("mT", lambda x: x.mT),
    ("view_as", lambda x: x.view_as(x)), ("split", lambda x: x.split(2, 2)[1]), ("chunk", lambda x: x.chunk(3, 1)[-1]),
    ("unbind", lambda x: x.unbind(1)[2]), ("split_sizes", lambda x: x.split([1, 5], 2)[1]),
]


@pytest.mark.parametrize("case", VIEW_CASES, ids=[c[0] for c in VIEW_CASES])
def test_views_share_storage_and_version(case):
    _, fn = case
    v, t = _base()
    vv, tv = fn(v), fn(t)
    assert_same(vv, tv)
    assert tuple(vv.stride()) == tuple(tv.stride())
    assert vv.storage_offset() == tv.storage_offset()
    assert vv._storage_id() == v._storage_id()
    before = v._version
    if case[0] == "expand":  # in-place writes to overlapping memory: not compared
        return
    vv.mul_(2)
    tv.mul_(2)
    assert_same(v, t)  # writes through the view reach the base
    if vv.numel():
        assert v._version == vv._version == before + 1


def test_contiguous_clone_reshape_copy():
    v, t = _base()
    p = v.permute(2, 0, 1)
    assert not p.is_contiguous()
    c = p.contiguous()
    assert c.is_contiguous() and c._storage_id() != v._storage_id()
    assert_same(c, t.permute(2, 0, 1).contiguous())
    assert v.contiguous()._storage_id() == v._storage_id()
    cl = v.clone()
    assert cl._storage_id() != v._storage_id()
    r = p.reshape(-1)  # must copy
    assert_same(r, t.permute(2, 0, 1).reshape(-1))
    with pytest.raises(RuntimeError):
        p.view(-1)
    with pytest.raises(RuntimeError):
        t.permute(2, 0, 1).view(-1)


def test_version_counter_inplace_and_setitem():
    v = vt.zeros(3, 4)
    view = v[1]
    ver = v._version
    v.add_(1)
    assert v._version == ver + 1 and view._version == v._version
    view.fill_(5)
    assert v._version == ver + 2
    v[0, 0] = 3.0
    assert v._version == ver + 3
    v[vt.tensor([0, 2])] = 1.0
    assert v._version == ver + 4
    v.zero_()
    assert v._version == ver + 5
    v.copy_(vt.ones(4))
    assert v._version == ver + 6 and v.tolist() == [[1.0] * 4] * 3
    out = vt.empty(3, 4)
    ov = out._version
    vt.add(v, 1, out=out)
    assert out._version == ov + 1


def _idx_pair(i):
    if isinstance(i, np.ndarray):
        return vt.tensor(i), torch.tensor(i)
    if isinstance(i, tuple):
        a = [_idx_pair(x) for x in i]
        return tuple(x[0] for x in a), tuple(x[1] for x in a)
    return i, i


GET_INDICES = [
    2, -1, slice(1, 3), slice(None, None, 2), (1, 2), (slice(None), 3), (Ellipsis, 1), (None, 0), (0, None, Ellipsis),
    (slice(None), None, slice(1, 4)), (Ellipsis, None), (slice(-3, None), slice(None, -1, 3)), (slice(10, 20),),
    np.array([0, 2, 3]), np.array([[0, 1], [3, 3]]), (np.array([0, 1]), np.array([2, 4])),
    (slice(None), np.array([4, 0, 1])), (np.array([1, 0]), slice(None), np.array([5, 2])),
    (slice(None), np.array([0, 1]), np.array([1, 2])), (Ellipsis, np.array([1, -1])), (1, np.array([0, 2])),
    np.array(2), (np.array([True, False, True, True]),), (np.array([[True] * 5, [False] * 5, [True] * 5,
                                                                   [False, True, False, True, False]]),),
    (slice(None), np.array([True, False, True, False, True])), (None, np.array([1, 2]), Ellipsis, 0),
]


@pytest.mark.parametrize("index", GET_INDICES, ids=[repr(i)[:40] for i in GET_INDICES])
def test_getitem(index):
    v, t = _base()
    iv, it = _idx_pair(index)
    assert_same(v[iv], t[it])


@pytest.mark.parametrize("index", GET_INDICES, ids=[repr(i)[:40] for i in GET_INDICES])
def test_setitem(index):
    v, t = _base(seed=1)
    iv, it = _idx_pair(index)
    t[it] = -7.0
    v[iv] = -7.0
    assert_same(v, t)
    v, t = _base(seed=2)
    shape = t[it].shape
    vals = make_np(tuple(shape), "float32", np.random.default_rng(3))
    vv, tv = pair(vals, "float32")
    t[it] = tv
    v[iv] = vv
    assert_same(v, t)
    if len(shape) >= 1 and shape[-1] > 0:  # broadcast value
        vv, tv = pair(vals[..., :1].copy(), "float32")
        t[it] = tv
        v[iv] = vv
        assert_same(v, t)


def test_getitem_basic_is_view_advanced_is_copy():
    v = vt.arange(12).reshape(3, 4)
    b = v[1:, ::2]
    assert b._storage_id() == v._storage_id()
    a = v[vt.tensor([0, 2])]
    assert a._storage_id() != v._storage_id()
    b[0, 0] = 100
    assert v[1, 0].item() == 100
    a[0, 0] = -1
    assert v[0, 0].item() == 0


def test_index_errors():
    v = vt.zeros(3, 4)
    with pytest.raises(IndexError):
        v[3]
    with pytest.raises(IndexError):
        v[0, 4]
    with pytest.raises(IndexError):
        v[0, 0, 0]
    with pytest.raises(IndexError):
        v[vt.tensor([0, 5])]
    with pytest.raises(IndexError):
        v[vt.tensor([1.0])]
    with pytest.raises(IndexError):
        v[vt.tensor([True, False])]
    with pytest.raises(ValueError):
        v[::-1]
    with pytest.raises(IndexError):
        v[vt.tensor([0, 3])] = 1.0
    with pytest.raises(RuntimeError):
        v[0] = vt.ones(5)


def test_index_ops():
    rng = np.random.default_rng(4)
    v, t = pair(make_np((4, 5), "float32", rng), "float32")
    iv, it = pair(np.array([3, 0, 0, 2]), "int64")
    assert_same(vt.index_select(v, 0, iv), torch.index_select(t, 0, it))
    assert_same(v.index_select(1, iv), t.index_select(1, it))
    gi = np.array([[0, 1, 4, 4, 2], [1, 0, 0, 3, 3], [2, 2, 2, 2, 2], [0, 0, 1, 1, 0]])
    gv, gt = pair(gi, "int64")
    assert_same(vt.gather(v, 1, gv[:, :3]), torch.gather(t, 1, gt[:, :3]))
    assert_same(vt.gather(v, 0, gv.remainder(4)), torch.gather(t, 0, gt.remainder(4)))
    src_v, src_t = pair(make_np((4, 5), "float32", rng), "float32")
    si = np.array([[0, 1, 2], [3, 4, 0], [1, 2, 3], [4, 0, 1]])
    sv, st = pair(si, "int64")
    assert_same(vt.scatter(v, 1, sv, src_v), torch.scatter(t, 1, st, src_t))
    assert_same(vt.scatter_add(v, 1, gv, src_v), torch.scatter_add(t, 1, gt, src_t))
    assert_same(vt.scatter(v, 1, sv, 2.5), torch.scatter(t, 1, st, 2.5))
    assert_same(vt.index_add(v, 0, iv, src_v, alpha=2), torch.index_add(t, 0, it, src_t, alpha=2))
    mv, mt = pair(make_np((4, 5), "bool", rng), "bool")
    assert_same(vt.masked_fill(v, mv, -1.0), torch.masked_fill(t, mt, -1.0))
    assert_same(v.masked_fill(mv[0], 3), t.masked_fill(mt[0], 3))
    assert_same(vt.masked_select(v, mv), torch.masked_select(t, mt))
    assert_same(vt.take_along_dim(v, gv, 1), torch.take_along_dim(t, gt, 1))
    assert_same(vt.nonzero(mv), torch.nonzero(mt))
    assert_same(vt.one_hot(iv, 5), torch.nn.functional.one_hot(it, 5))
    assert_same(vt.one_hot(iv), torch.nn.functional.one_hot(it))
    wv, wt = pair(make_np((6, 3), "float32", rng), "float32")
    ev, et = pair(np.array([[0, 5], [2, 2]]), "int64")
    assert_same(vt.embedding(wv, ev), torch.embedding(wt, et))
    # in-place forms
    v2, t2 = v.clone(), t.clone()
    ver = v2._version
    assert v2.masked_fill_(mv, 0.0) is v2
    t2.masked_fill_(mt, 0.0)
    v2.scatter_add_(1, gv, src_v)
    t2.scatter_add_(1, gt, src_t)
    v2.index_add_(0, iv, src_v)
    t2.index_add_(0, it, src_t)
    assert_same(v2, t2)
    assert v2._version == ver + 3
    with pytest.raises(IndexError):
        vt.index_select(v, 0, vt.tensor([4]))
    with pytest.raises(IndexError):
        vt.gather(v, 1, vt.tensor([[5]]))


@pytest.mark.parametrize("name", ["float32", "int64", "bool", "bfloat16"])
def test_shape_ops(name):
    rng = np.random.default_rng(5)
    v, t = pair(make_np((3, 4), name, rng), name)
    w, u = pair(make_np((2, 4), name, rng), name)
    assert_same(vt.cat([v, w]), torch.cat([t, u]))
    assert_same(vt.cat([v, v.t().t()], 1), torch.cat([t, t], 1))
    assert_same(vt.cat([v, vt.empty(0, 4, dtype=v.dtype)]), torch.cat([t, torch.empty(0, 4, dtype=t.dtype)]))
    assert_same(vt.stack([v, v], 1), torch.stack([t, t], 1))
    assert_same(vt.stack([v, v], -1), torch.stack([t, t], -1))
    assert_same(vt.flip(v, [0, 1]), torch.flip(t, [0, 1]))
    assert_same(v.flip(1), t.flip(1))
    assert_same(vt.roll(v, 1, 0), torch.roll(t, 1, 0))
    assert_same(vt.roll(v, [2, -1], [0, 1]), torch.roll(t, [2, -1], [0, 1]))
    assert_same(vt.roll(v, 3), torch.roll(t, 3))
    for d in [-1, 0, 2]:
        assert_same(vt.tril(v, d), torch.tril(t, d))
        assert_same(vt.triu(v, d), torch.triu(t, d))
    assert_same(v.repeat(2, 1, 3), t.repeat(2, 1, 3))
    assert_same(v.tile((2,)), t.tile((2,)))
    assert_same(vt.tile(v, (2, 2)), torch.tile(t, (2, 2)))
    assert_same(vt.split(v, [1, 3], 1), torch.split(t, [1, 3], 1))
    assert_same(vt.chunk(v, 2, 1), torch.chunk(t, 2, 1))
    assert_same(v.T.contiguous(), t.T.contiguous())


def test_shape_errors():
    v = vt.zeros(3, 4)
    with pytest.raises(RuntimeError):
        vt.cat([v, vt.zeros(3, 5)])
    with pytest.raises(RuntimeError):
        vt.stack([v, vt.zeros(4, 3)])
    with pytest.raises(RuntimeError):
        v.view(5, 3)
    with pytest.raises(RuntimeError):
        v.expand(3, 5)
    with pytest.raises(IndexError):
        v.transpose(0, 2)
    with pytest.raises(IndexError):
        v.select(0, 3)
    with pytest.raises(RuntimeError):
        v.reshape(-1, -1)


def test_zero_dim_views_to_all_ones_shapes():
    # a 0-dim tensor views as any all-ones shape (torch allows it; it used to raise "view size is not compatible")
    for shape in ((1,), (1, 1), (1, 1, 1)):
        t = torch.tensor(2.5)
        v = vt.tensor(2.5)
        w = v.view(*shape)
        assert tuple(w.shape) == tuple(t.view(*shape).shape)
        assert w.data_ptr() == v.data_ptr()  # a view, not a copy
        w.fill_(7.0)
        assert float(v.item()) == 7.0
    assert tuple(vt.tensor(1.0).view(1).view(()).shape) == ()
