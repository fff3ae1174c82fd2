"""ONNX models (an ``onnx.ModelProto``, or its bytes), run with ONNX Runtime on the CPU.

A frame is fed either as one ``[rows, columns]`` tensor, when the graph has a single input of that
shape, or as one ``[rows, 1]`` tensor per column, when the graph has one input per column (as
skl2onnx makes for per-column ``initial_types``). The first output is the prediction; a second
output of class probabilities (a 2-D tensor, or skl2onnx's ZipMap list of dicts) gives
``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError, SignatureError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import defined_in, optional_import, versions
from mloop.registry.flavors._outputs import as_array, drop_unit_column

if TYPE_CHECKING:
    import onnx
    import pandas as pd

MODEL_FILE = "model.onnx"

#: ONNX Runtime's tensor type names → the numpy type columns are cast to.
NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64,
    "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.str_,
}
_PROBABILITY_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
# Attributes of ai.onnx.ml operators that hold class labels, ZipMap's first.
_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_strings", "classlabels_ints")


class OnnxPredictor:
    """A loaded ``onnxruntime.InferenceSession``; ``predict`` returns its first output."""

    def __init__(self, native: Any, classes: list[Any] | None) -> None:
        self.native = native
        self.classes = classes
        self._inputs = list(native.get_inputs())
        self._outputs = [output.name for output in native.get_outputs()]

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
        columns = [str(column) for column in frame.columns]
        if len(self._inputs) == 1 and len(self._inputs[0].shape) == 2:
            single = self._inputs[0]
            width = single.shape[1]
            if not isinstance(width, int) or width == len(columns):
                return {single.name: frame.to_numpy().astype(_numpy_type(single))}
        if 1 < len(self._inputs) == len(columns):
            by_name = {i.name for i in self._inputs} == set(columns)
            return {
                i.name: (frame[i.name] if by_name else frame.iloc[:, position])
                .to_numpy()
                .reshape(-1, 1)
                .astype(_numpy_type(i))
                for position, i in enumerate(self._inputs)
            }
        shapes = ", ".join(f"{i.name} {i.shape}" for i in self._inputs)
        raise SignatureError(
            f"the ONNX model's inputs ({shapes}) do not fit a frame of {len(columns)} columns: "
            "mloop feeds one [rows, columns] input, or one [rows, 1] input per column"
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The graph's first output; a ``[rows, 1]`` result comes back as ``[rows]``."""
        result = self.native.run(self._outputs[:1], self._feed(frame))[0]
        return drop_unit_column(as_array(result))


class OnnxProbaPredictor(OnnxPredictor):
    """A loaded classifier whose second output holds class probabilities."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Class probabilities, one column per class in the order of ``classes``."""
        result = self.native.run(self._outputs[1:2], self._feed(frame))[0]
        if not isinstance(result, list):
            return as_array(result)
        # ZipMap: one {class: probability} dict per row.
        keys = self.classes if self.classes is not None else list(result[0]) if result else []
        table = np.asarray([[row[key] for key in keys] for row in result], dtype=np.float64)
        return table.reshape(len(result), len(keys))


def _numpy_type(node_arg: Any) -> Any:
    try:
        return NUMPY_TYPES[node_arg.type]
    except KeyError:
        raise SignatureError(
            f"the ONNX model's input {node_arg.name!r} has type {node_arg.type}, which mloop "
            f"cannot make from a frame column (it knows {', '.join(NUMPY_TYPES)})"
        ) from None


class OnnxFlavor:
    """ONNX graphs, saved as ``model.onnx`` and run with ONNX Runtime's CPU provider."""

    name: ClassVar[str] = "onnx"

    def detect(self, model: Any) -> bool:
        """True for an ``onnx.ModelProto`` (bytes of one need ``flavor="onnx"``)."""
        return type(model).__name__ == "ModelProto" and defined_in(model, "onnx")

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Check the graph, write ``model.onnx``; record inputs, outputs and class labels."""
        with optional_import("onnx", "onnx", "saving an ONNX model"):
            import onnx
            import onnx.checker
            from google.protobuf.message import DecodeError
        if isinstance(model, bytes | bytearray):
            try:
                model = onnx.load_model_from_string(bytes(model))
            except DecodeError as error:
                raise InvalidValueError(
                    f"the bytes given as an ONNX model do not parse as one: {error}"
                ) from error
        if not isinstance(model, onnx.ModelProto):
            raise InvalidValueError(
                f"the onnx flavor saves an onnx.ModelProto or its bytes, "
                f"not {type(model).__qualname__}"
            )
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as error:
            raise InvalidValueError(f"the ONNX model is not valid: {error}") from error
        (folder / MODEL_FILE).write_bytes(model.SerializeToString())
        initializers = {tensor.name for tensor in model.graph.initializer}
        data = {
            "inputs": [_describe(v) for v in model.graph.input if v.name not in initializers],
            "outputs": [v.name for v in model.graph.output],
            "classes": _class_labels(model),
        }
        return SavedFlavor(data=data, requirements=versions("onnx", "onnxruntime", "numpy"))

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Open ``model.onnx`` in an ``InferenceSession`` on the CPU."""
        with optional_import("onnxruntime", "onnx", "loading an ONNX model"):
            import onnxruntime
        session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), providers=["CPUExecutionProvider"]
        )
        classes = data.get("classes")
        outputs = session.get_outputs()
        if len(outputs) > 1 and _is_probabilities(outputs[1]):
            return OnnxProbaPredictor(session, classes)
        return OnnxPredictor(session, classes)


def _is_probabilities(output: Any) -> bool:
    if output.type.startswith("seq(map("):  # ZipMap
        return True
    return output.type in _PROBABILITY_TYPES and len(output.shape) == 2


def _describe(value: onnx.ValueInfoProto) -> dict[str, Any]:
    """Name, element type and shape (None for a dynamic dimension) of a graph input."""
    import onnx

    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": value.name, "type": kind, "shape": None}
    tensor = value.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    element = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
    return {"name": value.name, "type": element, "shape": shape}


def _class_labels(model: onnx.ModelProto) -> list[Any] | None:
    """The class labels an ai.onnx.ml classifier (or ZipMap) node holds, if any."""
    import onnx.helper

    nodes = sorted(model.graph.node, key=lambda node: node.op_type != "ZipMap")
    for node in nodes:
        for attribute in node.attribute:
            if attribute.name in _LABEL_ATTRIBUTES:
                labels = onnx.helper.get_attribute_value(attribute)
                return [x.decode() if isinstance(x, bytes) else int(x) for x in labels]
    return None
