"""Framework-neutral tensor plumbing for the parity checks: random inputs, layouts, conversions, output flattening.

Invariants:
- Inputs are numpy arrays made from a seeded numpy Generator; the same arrays are converted into each framework
  ``T`` (torch for the reference, the module under test for the candidate) through ``T.tensor(array)``, and a
  non-contiguous layout is then produced by the framework's own view ops (transpose, step slicing, offset, expand).
- bfloat16 has no numpy dtype: its values travel as float32 arrays holding exactly representable bf16 values and
  are converted with ``.to(T.bfloat16)`` / ``.to(T.float32)``.
- This file imports numpy only; whichever framework is passed in as ``T`` is the caller's business.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool")
FLOATS = ("float32", "float64", "float16", "bfloat16")
SIGNED_INTS = ("int8", "int16", "int32", "int64")
INTS = ("uint8",) + SIGNED_INTS
LAYOUTS = ("contiguous", "transposed", "strided", "offset", "expanded")


def storage_dtype(name: str) -> np.dtype:
    """The numpy dtype that carries values of dtype ``name`` (bfloat16 travels as float32)."""
    return np.dtype(np.float32 if name == "bfloat16" else name)


@dataclass(frozen=True)
class TensorArg:
    """One tensor argument of a case. ``dtype`` None means "the dtype under test"; ``high`` bounds index values."""

    shape: tuple[int, ...]
    domain: str = "any"  # any | positive | nonzero | unit | small | sparse | specials | mask | index | unique_index
    layout: str = "contiguous"
    dtype: str | None = None
    high: int | None = None

    def base_shape(self) -> tuple[int, ...]:
        """Shape of the contiguous tensor the layout's view is taken from."""
        s = list(self.shape)
        if self.layout == "transposed":
            s[-2], s[-1] = s[-1], s[-2]
        elif self.layout == "strided":
            s[-1] = 2 * s[-1]
        elif self.layout == "offset":
            s[0] += 1
        elif self.layout == "expanded":
            s[0] = 1
        return tuple(s)


def round_to_bfloat16(a: np.ndarray) -> np.ndarray:
    """float32 array -> float32 array of the nearest bfloat16 values (round half to even)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).reshape(a.shape)


def make_array(rng: np.random.Generator, arg: TensorArg, dtype: str) -> np.ndarray:
    """Random values for ``arg`` (its base shape) in ``arg.dtype or dtype``, inside ``arg.domain``."""
    name = arg.dtype or dtype
    shape = arg.base_shape()
    if arg.domain in ("index", "unique_index"):
        if arg.domain == "unique_index":  # distinct along the last dim (scatter must not see duplicates)
            rows = int(np.prod(shape[:-1], dtype=np.int64))
            vals = np.stack([rng.permutation(arg.high)[: shape[-1]] for _ in range(rows)]) if rows else np.zeros(0)
            return vals.reshape(shape).astype(storage_dtype(name))
        return rng.integers(0, arg.high, size=shape).astype(storage_dtype(name))
    if name == "bool":
        return rng.random(shape) < 0.5
    if name in INTS:
        lo, hi = {"positive": (1, 6), "nonzero": (1, 6), "sparse": (0, 2)}.get(arg.domain, (-5, 6))
        if name == "uint8":
            lo, hi = max(lo, 0), hi + 4
        vals = rng.integers(lo, hi, size=shape)
        if arg.domain == "nonzero" and name != "uint8":
            vals = vals * rng.choice([-1, 1], size=shape)
        return vals.astype(storage_dtype(name))
    if arg.domain == "positive":
        vals = rng.uniform(0.1, 4.0, size=shape)
    elif arg.domain == "nonzero":
        vals = rng.uniform(0.5, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    elif arg.domain == "unit":
        vals = rng.uniform(-0.95, 0.95, size=shape)
    elif arg.domain == "small":
        vals = rng.uniform(-1.0, 1.0, size=shape)
    elif arg.domain == "sparse":
        vals = rng.uniform(-2.0, 2.0, size=shape) * (rng.random(shape) < 0.5)
    elif arg.domain == "specials":
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0])
        vals = rng.uniform(-3.0, 3.0, size=shape)
        vals = np.where(rng.random(shape) < 0.5, rng.choice(pool, size=shape), vals)
    else:
        vals = rng.uniform(-3.0, 3.0, size=shape)
    if name == "bfloat16":
        return round_to_bfloat16(vals.astype(np.float32))
    return vals.astype(storage_dtype(name))


def to_framework(T, array: np.ndarray, dtype: str):
    """A fresh contiguous T tensor holding ``array`` in dtype ``dtype``."""
    t = T.tensor(array)
    return t.to(T.bfloat16) if dtype == "bfloat16" else t


def apply_layout(t, layout: str, shape: tuple[int, ...]):
    """The view of base tensor ``t`` that has ``shape`` in ``layout`` (uses the framework's own view ops)."""
    if layout == "contiguous":
        return t
    if layout == "transposed":
        return t.transpose(-2, -1)
    if layout == "strided":
        return t[(Ellipsis, slice(None, None, 2))]
    if layout == "offset":
        return t[1:]
    if layout == "expanded":
        return t.expand(*shape)
    raise ValueError(f"unknown layout {layout!r}")


def dtype_name(T, dt) -> str:
    """The name of dtype object ``dt`` in framework ``T`` ("float32", ...), or its str() when it is none of ours."""
    for name in DTYPES:
        if getattr(T, name, None) == dt:
            return name
    return str(dt)


def is_tensor(x) -> bool:
    return all(hasattr(x, a) for a in ("shape", "dtype", "numpy"))


def to_numpy(T, t) -> tuple[str, tuple[int, ...], np.ndarray]:
    """(dtype name, shape, a numpy copy of the values) of tensor ``t`` of framework ``T``."""
    name = dtype_name(T, t.dtype)
    if hasattr(t, "detach"):
        t = t.detach()
    dev = getattr(t, "device", None)
    if dev is not None and str(getattr(dev, "type", dev)).split(":")[0] != "cpu":
        t = t.cpu()
    values = t.to(T.float32).numpy() if name == "bfloat16" else t.numpy()
    return name, tuple(int(s) for s in t.shape), np.array(values, copy=True)


def flatten_outputs(result, label: str = "out") -> list[tuple[str, object]]:
    """[(label, leaf)] for a tensor, a tuple/list (named tuples included) or a dict of them; leaves may be
    non-tensors (the comparison reports those)."""
    if isinstance(result, dict):
        return [pair for key, value in result.items() for pair in flatten_outputs(value, str(key))]
    if isinstance(result, (tuple, list)):
        return [pair for i, value in enumerate(result) for pair in flatten_outputs(value, f"{label}[{i}]")]
    return [(label, result)]


# Array files: ``<name>.arrays``: an 8-byte little-endian header length, a JSON index {key: [dtype, shape, offset]},
# then the raw bytes. Far faster than .npz for thousands of tiny arrays, and it never unpickles anything.
_SAFE_KINDS = "biuf"


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    index, chunks, offset = {}, [], 0
    for key, array in arrays.items():
        data = np.ascontiguousarray(array).tobytes()
        index[key] = [array.dtype.str, list(array.shape), offset]
        chunks.append(data)
        offset += len(data)
    header = json.dumps(index).encode()
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        f.writelines(chunks)


def load_arrays(path) -> dict[str, np.ndarray]:
    """The arrays of a file written by ``save_arrays``; raises ValueError when it is malformed."""
    with open(path, "rb") as f:
        blob = f.read()
    size = int.from_bytes(blob[:8], "little")
    index = json.loads(blob[8:8 + size])
    body = memoryview(blob)[8 + size:]
    arrays = {}
    for key, (dtype, shape, offset) in index.items():
        dt = np.dtype(dtype)
        if dt.kind not in _SAFE_KINDS or dt.itemsize > 8:
            raise ValueError(f"array {key}: unsupported dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or offset + count * dt.itemsize > len(body):
            raise ValueError(f"array {key}: out of bounds")
        arrays[key] = (np.frombuffer(body, dtype=dt, count=count, offset=offset).reshape(shape) if count
                       else np.empty(shape, dtype=dt))
    return arrays
