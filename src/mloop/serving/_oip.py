"""The Open Inference Protocol (KServe v2 / Triton) REST bodies, for one served model.

``infer`` takes either convention clients use:

- one 1-D input per signature column, named as the column (MLServer's pandas codec);
- one 2-D input ``[rows, n_columns]`` in signature order (KServe's scikit-learn server).

Tensors come as JSON ``data`` (flat, row-major, or nested), or as raw bytes after a JSON header
(the binary tensor extension, ``Inference-Header-Content-Length``), as tritonclient sends them.
Outputs are named tensors ``predict`` and, where the model has probabilities, ``predict_proba``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from mloop.serving._payload import Columns, PayloadError
from mloop.serving._served import Outputs, ServedModel

__all__ = ["DATATYPES", "decode_infer", "encode_infer", "model_metadata"]

# signature dtype -> OIP datatype
DATATYPES = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    "datetime": "BYTES",
    "category": "BYTES",
}
_NUMPY = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
MAX_ELEMENTS = 10_000_000


def model_metadata(served: ServedModel) -> dict[str, Any]:
    signature = served.model.signature
    inputs = [
        {"name": spec.name, "datatype": DATATYPES.get(spec.dtype, "BYTES"), "shape": [-1]}
        for spec in (signature.inputs if signature is not None else ())
    ]
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": _output_type(served), "shape": [-1]}
    ]
    if served.model.has_proba:
        classes = served.model.classes
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes or []) or -1]}
        )
    return {
        "name": served.name,
        "versions": [served.label] if served.label else [],
        "platform": f"mloop_{served.model.flavor}",
        "inputs": inputs,
        "outputs": outputs,
    }


def _output_type(served: ServedModel) -> str:
    signature = served.model.signature
    if signature is not None and signature.outputs:
        return DATATYPES.get(signature.outputs[0].dtype, "BYTES")
    classes = served.model.classes
    if classes:
        kinds = {type(c) for c in classes}
        if kinds <= {int, np.int64, np.int32}:
            return "INT64"
        if kinds <= {str, np.str_}:
            return "BYTES"
    return "FP64"


def _split_binary(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        return _json(body), b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise PayloadError(
            400,
            f"Inference-Header-Content-Length is {header_length!r}, but the body has "
            f"{len(body)} bytes; it must be the length of the JSON header",
        )
    cut = int(header_length)
    return _json(body[:cut]), body[cut:]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise PayloadError(400, f"the body is not valid JSON: {error}") from None


def _bytes_elements(raw: bytes, name: str) -> list[str]:
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise PayloadError(400, f"input {name!r}: BYTES data ends inside a length prefix")
        size = int.from_bytes(raw[at : at + 4], "little")
        at += 4
        if at + size > len(raw):
            raise PayloadError(400, f"input {name!r}: BYTES element runs past the data")
        items.append(raw[at : at + size].decode("utf-8", errors="replace"))
        at += size
    return items


def _tensor(
    spec: Any, index: int, rest: bytes, offset: int
) -> tuple[str, list[int], list[Any], int]:
    """(name, shape, flat values, new offset) of one input tensor."""
    if not isinstance(spec, dict):
        raise PayloadError(422, f"inputs[{index}] must be an object, not {type(spec).__name__}")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str) or not name:
        raise PayloadError(422, f"inputs[{index}].name must be a non-empty string")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(n) is int and n >= 0 for n in shape)
    ):
        raise PayloadError(
            422, f"input {name!r}: shape must be [rows] or [rows, columns] of integers >= 0"
        )
    if not isinstance(datatype, str) or (datatype not in _NUMPY and datatype != "BYTES"):
        raise PayloadError(
            422, f"input {name!r}: datatype {datatype!r} is not an OIP datatype (FP64, INT64, ...)"
        )
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise PayloadError(413, f"input {name!r} has {count} elements; the limit is {MAX_ELEMENTS}")
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(rest):
            raise PayloadError(
                400, f"input {name!r}: binary_data_size {size!r} does not fit the body"
            )
        raw = rest[offset : offset + size]
        offset += size
        if datatype == "BYTES":
            flat: list[Any] = _bytes_elements(raw, name)
        else:
            dtype = _NUMPY[datatype]
            if len(raw) != count * dtype.itemsize:
                raise PayloadError(
                    400,
                    f"input {name!r}: {len(raw)} bytes of {datatype} do not make shape {shape}",
                )
            flat = np.frombuffer(raw, dtype=dtype).tolist()
    else:
        data = spec.get("data")
        if not isinstance(data, list):
            raise PayloadError(422, f"input {name!r}: data must be a list of values")
        flat = _flatten(data, name)
    if len(flat) != count:
        raise PayloadError(
            422, f"input {name!r}: shape {shape} needs {count} values; data has {len(flat)}"
        )
    return name, shape, flat, offset


def _flatten(data: list[Any], name: str) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []
    for row in data:
        if isinstance(row, list):
            if any(isinstance(v, list) for v in row):
                raise PayloadError(422, f"input {name!r}: data nests deeper than two levels")
            flat.extend(row)
        else:
            flat.append(row)
    return flat


def decode_infer(
    body: bytes,
    header_length: str | None,
    columns: tuple[str, ...] | None,
    model: str,
    max_rows: int,
) -> tuple[Columns, int, dict[str, Any]]:
    """(columns, rows, request header) of an ``infer`` body for a model taking ``columns``
    (its signature's input columns, in order; None without a signature)."""
    header, rest = _split_binary(body, header_length)
    if not isinstance(header, dict):
        raise PayloadError(422, "the infer body must be a JSON object with 'inputs'")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise PayloadError(422, "'inputs' must be a non-empty list of tensors")
    tensors, offset = [], 0
    for index, spec in enumerate(inputs):
        name, shape, flat, offset = _tensor(spec, index, rest, offset)
        tensors.append((name, shape, flat))
    if (
        len(tensors) == 1
        and len(tensors[0][1]) == 2
        and (columns is None or tensors[0][0] not in columns)
    ):
        name, (rows, width), flat = tensors[0]
        if columns is None:
            raise PayloadError(
                422,
                f"model {model} has no signature, so a 2-D input cannot be mapped to "
                "columns; send one 1-D input per column, named as the column",
            )
        if width != len(columns):
            raise PayloadError(
                422,
                f"input {name!r} has {width} columns; model {model} takes {len(columns)} "
                f"({', '.join(columns[:10])}{', ...' if len(columns) > 10 else ''}), in that order",
            )
        _rows(rows, max_rows)
        result: Columns = {c: flat[i::width] for i, c in enumerate(columns)}
        return result, rows, header
    result = {}
    counts = set()
    for name, shape, flat in tensors:
        if len(shape) == 2 and shape[1] != 1:
            raise PayloadError(
                422,
                f"input {name!r} has shape {shape}; per-column inputs must be [rows] or "
                "[rows, 1] (or send a single [rows, columns] input)",
            )
        if name in result:
            raise PayloadError(422, f"input {name!r} is given twice")
        result[name] = flat
        counts.add(shape[0])
    if len(counts) != 1:
        raise PayloadError(422, f"the inputs have different row counts: {sorted(counts)}")
    rows = counts.pop()
    _rows(rows, max_rows)
    return result, rows, header


def _rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise PayloadError(422, "the request has no rows; send at least one")
    if rows > max_rows:
        raise PayloadError(413, f"the request has {rows} rows; the limit is {max_rows}")


def encode_infer(
    served: ServedModel, outputs: Outputs, ids: list[str], header: dict[str, Any]
) -> dict[str, Any]:
    wanted = header.get("outputs")
    names = None
    if isinstance(wanted, list):
        names = {o.get("name") for o in wanted if isinstance(o, dict)}
    rows = len(outputs.predictions)
    tensors = []
    if names is None or "predict" in names:
        predictions = outputs.predictions
        shape = [rows]
        if predictions and isinstance(predictions[0], list):
            shape = [rows, len(predictions[0])]
            predictions = [v for row in predictions for v in row]
        tensors.append(
            {
                "name": "predict",
                "datatype": _datatype(predictions),
                "shape": shape,
                "data": predictions,
            }
        )
    if outputs.probabilities is not None and (names is None or "predict_proba" in names):
        width = len(outputs.probabilities[0]) if rows else 0
        flat = [p for row in outputs.probabilities for p in row]
        tensors.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [rows, width], "data": flat}
        )
    response: dict[str, Any] = {
        "model_name": served.name,
        "model_version": served.label,
        "outputs": tensors,
        "parameters": {"prediction_ids": ",".join(ids)},
    }
    if isinstance(header.get("id"), str):
        response["id"] = header["id"]
    return response


def _datatype(values: list[Any]) -> str:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, float):
        return "FP64"
    return "BYTES"
