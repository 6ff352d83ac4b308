"""Hypothesis fuzzing of the SafeTensors parser: arbitrary and mutated inputs never crash the process,
every rejection is a ValueError, and every accepted file agrees with the reference package."""
import json
import struct

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

safetensors_torch = pytest.importorskip("safetensors.torch")

import vibetensor.torch as vt  # noqa: E402
import vibetensor.safetensors as vst  # noqa: E402

# derandomize: the gate must not flake; database=None: nothing written into the checkout.
_SETTINGS = dict(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

DT = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8, "BOOL": torch.bool,
      "BF16": torch.bfloat16, "F16": torch.float16, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8}


def _seed_file():
    return safetensors_torch.save({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                                   "b": torch.tensor([True, False]), "c": torch.arange(3, dtype=torch.int64)},
                                  metadata={"k": "v"})


SEED = _seed_file()


def _check(data):
    try:
        got = vst.load(data)
    except ValueError:
        return
    # accepted: the reference must accept it too and hold the same tensors
    ref = safetensors_torch.load(bytes(data))
    assert set(got) == set(ref)
    for k, v in ref.items():
        mine = torch.from_dlpack(got[k])  # no clone: a copy may normalise bool bytes
        assert mine.dtype == v.dtype and mine.shape == v.shape, k
        # bitwise (mutations make NaNs)
        assert torch.equal(mine.flatten().view(torch.uint8), v.flatten().view(torch.uint8)), k


@settings(**_SETTINGS)
@given(st.binary(max_size=200))
def test_random_bytes(data):
    _check(data)


@settings(**_SETTINGS)
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_valid_file(edits):
    data = bytearray(SEED)
    for pos, val in edits:
        data[pos] = val
    _check(bytes(data))


@settings(**_SETTINGS)
@given(st.integers(0, len(SEED)))
def test_truncated_valid_file(n):
    _check(SEED[:n])


_entry = st.fixed_dictionaries({
    "dtype": st.sampled_from(list(DT) + ["F8_E4M3", "C64", "XX", ""]),
    "shape": st.lists(st.integers(-2, 4), max_size=3),
    "data_offsets": st.lists(st.integers(-1, 80), min_size=0, max_size=3),
})


@settings(**_SETTINGS)
@given(st.dictionaries(st.text(max_size=4), _entry, max_size=4), st.integers(0, 96))
def test_structured_headers(header, nbytes):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    _check(struct.pack("<Q", len(raw)) + raw + bytes(range(nbytes)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda s: s != "__metadata__"),
                       st.tuples(st.sampled_from(list(DT)), st.lists(st.integers(0, 3), max_size=3)),
                       max_size=5),
       st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=1)))
def test_random_state_dicts_save_byte_identical(spec, metadata):
    # The reference writes the invalid header '{},"__metadata__":{}}' for no tensors plus metadata
    # (safetensors 0.8); vibetensor writes valid JSON there, so that one case is left out.
    assume(spec or metadata is None)
    ref = {}
    for i, (name, (code, shape)) in enumerate(spec.items()):
        g = torch.Generator().manual_seed(i)
        t = torch.randint(0, 2, shape, generator=g) if code == "BOOL" else torch.randint(0, 50, shape, generator=g)
        ref[name] = t.to(DT[code])
    mine = {k: vt.from_dlpack(v.clone()) for k, v in ref.items()}
    assert vst.save(mine, metadata=metadata) == safetensors_torch.save(ref, metadata=metadata)
