"""Which files an ONNX graph loads besides itself (external data), read without the ``onnx`` package.

An ONNX file may keep tensors in other files (``TensorProto.data_location = EXTERNAL`` with an
``external_data`` entry ``location``); ONNX Runtime and TensorRT load them from the graph's folder.
The manifest hashes them too, so a changed weights file is caught like a changed graph. The runtime
installs without ``onnx``, hence this small reader of the protobuf wire format, which visits every
place a tensor can sit: initializers, sparse initializers, ``Constant``-style node attributes
(``t``, ``tensors``, ``sparse_tensor(s)``), subgraphs (``g``, ``graphs``), local functions and
training-info graphs. Field numbers are those of ``onnx/onnx.proto`` (ONNX 1.17).
"""

from __future__ import annotations

import mmap
import os
from typing import Iterator

from jamsdk.errors import InputError

# onnx.proto field numbers of the messages that can hold tensors (LEN-delimited fields only).
_MODEL = {7: "graph", 20: "training", 25: "function"}  # ModelProto.graph, training_info, functions
_TRAINING = {1: "graph", 2: "graph"}  # TrainingInfoProto.initialization, algorithm
_FUNCTION = {7: "node"}  # FunctionProto.node
_GRAPH = {1: "node", 5: "tensor", 15: "sparse"}  # GraphProto.node, initializer, sparse_initializer
_NODE = {5: "attribute"}  # NodeProto.attribute
_ATTRIBUTE = {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"}
_SPARSE = {1: "tensor", 2: "tensor"}  # SparseTensorProto.values, indices
_TENSOR_EXTERNAL_DATA = 13  # TensorProto.external_data: repeated StringStringEntryProto (key 1, value 2)
_TENSOR_DATA_LOCATION = 14  # TensorProto.data_location: 1 = EXTERNAL
_MAX_DEPTH = 100  # protobuf's own default recursion limit: deeper files do not load anywhere


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _skip_group(buf: memoryview, i: int, end: int, field: int, depth: int = 0) -> int:
    if depth > _MAX_DEPTH:  # 200,000 nested groups were a RecursionError; protobuf refuses them too
        raise ValueError("groups nested too deep")
    while i < end:
        key, i = _varint(buf, i)
        f, wire = key >> 3, key & 7
        if wire == 4:
            if f != field:
                raise ValueError("mismatched end of group")
            return i
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = _varint(buf, i)
            i += n
        elif wire == 5:
            i += 4
        elif wire == 3:
            i = _skip_group(buf, i, end, f, depth + 1)
        else:
            raise ValueError(f"wire type {wire}")
    raise ValueError("group without end")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field, wire type, value or start, end)`` of each field in ``buf[start:end]``."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield field, wire, value, i
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > end:
                raise ValueError("field runs past its message")
            yield field, wire, i, i + n
            i += n
        elif wire == 5:
            i += 4
        elif wire == 3:  # a (deprecated) group: protobuf parsers skip unknown ones, so must we
            i = _skip_group(buf, i, end, field)
        else:
            raise ValueError(f"wire type {wire}")
    if i != end:
        raise ValueError("message ends inside a field")


def _tensor(buf: memoryview, start: int, end: int, found: set[str]) -> None:
    external, locations = False, []
    for field, wire, a, b in _fields(buf, start, end):
        if field == _TENSOR_DATA_LOCATION and wire == 0:
            external = a == 1
        elif field == _TENSOR_EXTERNAL_DATA and wire == 2:
            key = value = None
            for f, w, x, y in _fields(buf, a, b):
                if w == 2 and f in (1, 2):
                    # Compared as bytes, as ONNX Runtime does: onnx.proto is proto2, whose C++ parser
                    # does not check UTF-8, so a key of invalid UTF-8 loads (and must not stop us).
                    raw = bytes(buf[x:y])
                    key, value = (raw, value) if f == 1 else (key, raw)
            if key == b"location" and value is not None:
                # A location that is not UTF-8 cannot match a manifest entry: it is reported unlisted.
                locations.append(value.decode("utf-8", "backslashreplace"))
    if external or locations:
        found.update(locations)


_KINDS = {"model": _MODEL, "training": _TRAINING, "function": _FUNCTION, "graph": _GRAPH, "node": _NODE,
          "attribute": _ATTRIBUTE, "sparse": _SPARSE}


def _walk(buf: memoryview, kind: str, start: int, end: int, found: set[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("graphs nested too deep")
    table = _KINDS[kind]
    for field, wire, a, b in _fields(buf, start, end):
        child = table.get(field) if wire == 2 else None
        if child == "tensor":
            _tensor(buf, a, b, found)
        elif child is not None:
            _walk(buf, child, a, b, found, depth + 1)


def external_files(path: str | os.PathLike[str]) -> list[str]:
    """The ``location`` of every external-data tensor of the ONNX file ``path``, sorted, as written.

    Raises:
        InputError: the file cannot be read or is not a well-formed ONNX protobuf.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise InputError(f"{path}: empty file, not an ONNX graph")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                buf = memoryview(mm)
                try:
                    found: set[str] = set()
                    _walk(buf, "model", 0, size, found, 0)
                finally:
                    buf.release()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a well-formed ONNX graph ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not a well-formed ONNX graph (nested too deep)") from None
    return sorted(found)


__all__ = ["external_files"]
