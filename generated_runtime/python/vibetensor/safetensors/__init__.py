"""SafeTensors for vibetensor: ``load_file``, ``save_file``, ``load`` and ``save`` (bytes), the same
names and behaviour as ``safetensors.torch``.

Files written here are byte-identical to the ``safetensors`` package's output for the same tensors and
metadata, and its files load here. ``load_file`` memory-maps the file (copy-on-write): tensors are
zero-copy views of the mapping, writes to them never reach the file. Malformed input raises ValueError
naming the problem (truncated file, header length past the end, overlapping or out-of-range offsets,
unknown dtype, invalid UTF-8/JSON, duplicate names); an unreadable path raises OSError.
"""
import os

from .. import _C

__all__ = ["load_file", "save_file", "load", "save", "save_model", "load_model"]


def _native(t, name):
    if isinstance(t, _C.Tensor):
        return t
    for attr in ("_c", "_impl", "_tensor"):
        inner = getattr(t, attr, None)
        if isinstance(inner, _C.Tensor):
            return inner
    raise TypeError(f"safetensors: value of '{name}' must be a vibetensor Tensor, got {type(t).__name__}")


def _flatten(tensors, metadata):
    if not isinstance(tensors, dict):
        raise TypeError(f"safetensors: expected a dict of name -> Tensor, got {type(tensors).__name__}")
    names, values = [], []
    for k, v in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"safetensors: tensor names must be str, got {type(k).__name__}")
        names.append(k)
        values.append(_native(v, k))
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"safetensors: metadata must be a dict of str -> str, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"safetensors: metadata must map str to str, got {k!r}: {v!r}")
        metadata = dict(metadata)
    return names, values, metadata


def _to_dict(result, device):
    names, values, _meta = result
    if device not in (None, "cpu") and str(device) != "cpu":
        import vibetensor.torch as vt  # noqa: F401  (moves through the overlay's .to())
        return {n: v.to(device) for n, v in zip(names, values)}
    return dict(zip(names, values))


def save(tensors, metadata=None):
    """The ``.safetensors`` serialisation of ``tensors`` (dict name -> Tensor) as bytes."""
    names, values, metadata = _flatten(tensors, metadata)
    return _C._safetensors_save_bytes(names, values, metadata)


def save_file(tensors, filename, metadata=None):
    """Writes ``tensors`` to ``filename`` (atomically: a temporary file renamed into place)."""
    names, values, metadata = _flatten(tensors, metadata)
    _C._safetensors_save_file(names, values, metadata, os.fspath(filename))


def load(data):
    """Tensors (dict name -> Tensor, CPU) from ``.safetensors`` bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"safetensors.load: expected bytes, got {type(data).__name__}")
    return _to_dict(_C._safetensors_load_bytes(bytes(data)), None)


def load_file(filename, device="cpu"):
    """Tensors (dict name -> Tensor) from a ``.safetensors`` file, memory-mapped."""
    return _to_dict(_C._safetensors_load_file(os.fspath(filename)), device)


def load_metadata(filename):
    """The ``__metadata__`` dict of a file (None when it has none)."""
    return _C._safetensors_load_file(os.fspath(filename))[2]


def save_model(model, filename, metadata=None):
    """Saves ``model.state_dict()``."""
    save_file(dict(model.state_dict()), filename, metadata)


def load_model(model, filename, strict=True):
    """Loads a file into ``model`` through ``load_state_dict``."""
    return model.load_state_dict(load_file(filename), strict=strict)
