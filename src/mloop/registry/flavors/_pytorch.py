"""PyTorch modules: exported with ``torch.export`` (the default), or a ``state_dict`` plus the
module's class, or (deprecated by PyTorch, kept for opt-in) TorchScript.

``export`` (``model.pt2``) traces the module in eval mode on the input example, with the batch
dimension left dynamic, and needs no Python code of the model's to load. A ``state_dict``
(``state_dict.pt``) holds only tensors, read with ``torch.load(weights_only=True)``; loading it
imports the module's class by name and constructs it with the recorded ``init_kwargs``.
TorchScript (``model.pt``) is what PyTorch deprecated in favour of ``torch.export``; it warns on
every use and is chosen only by ``serializer="torchscript"``. Everything runs on the CPU.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mloop.errors import InvalidValueError, UntrustedModelError
from mloop.registry.flavors._base import LoadOptions, Predictor, SavedFlavor, SaveOptions
from mloop.registry.flavors._imports import class_path, import_class, optional_import, versions
from mloop.registry.flavors._outputs import drop_unit_column
from mloop.registry.flavors._pyfunc import json_problem

if TYPE_CHECKING:
    import pandas as pd
    import torch

SCRIPT_FILE = "model.pt"
EXPORT_FILE = "model.pt2"
STATE_FILE = "state_dict.pt"
SERIALIZERS = ("export", "state_dict", "torchscript")


class TorchPredictor:
    """A loaded module in eval mode; rows go in as one float32 tensor."""

    classes: list[Any] | None = None

    def __init__(self, native: Any) -> None:
        self.native = native

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The module's output (the first, if it returns several); ``[rows, 1]`` as ``[rows]``."""
        import torch

        # A copy: pandas may hand out a read-only view, which torch warns about.
        inputs = torch.from_numpy(frame.to_numpy(dtype=np.float32, copy=True))
        with torch.no_grad():
            output = self.native(inputs)
        if isinstance(output, tuple | list):
            output = output[0]
        return drop_unit_column(output.detach().cpu().numpy())


def _is_module(model: Any) -> bool:
    return any(
        cls.__module__ == "torch.nn.modules.module" and cls.__name__ == "Module"
        for cls in type(model).__mro__
    )


class TorchFlavor:
    """``torch.nn.Module`` instances (including scripted ones), run on the CPU."""

    name: ClassVar[str] = "pytorch"

    def detect(self, model: Any) -> bool:
        """True for instances of ``torch.nn.Module`` subclasses."""
        return _is_module(model)

    def save(self, model: Any, folder: Path, options: SaveOptions) -> SavedFlavor:
        """Write ``model.pt2`` (``torch.export``, the default), ``state_dict.pt`` or
        ``model.pt`` (TorchScript)."""
        serializer = options.serializer or "export"
        if serializer not in SERIALIZERS:
            raise InvalidValueError(
                f"the pytorch flavor has no serializer {serializer!r}; use 'export' (the "
                "default), 'state_dict' or 'torchscript'"
            )
        with optional_import("torch", "torch", "saving a PyTorch model"):
            import torch
        if not isinstance(model, torch.nn.Module):
            raise InvalidValueError(
                "the pytorch flavor saves torch.nn.Module instances, "
                f"not {type(model).__qualname__}"
            )
        if serializer == "export":
            data = {"serializer": serializer}
            _save_export(model, folder, options)
        elif serializer == "torchscript":
            data = {"serializer": serializer, "compiled_by": _save_script(model, folder, options)}
        else:
            data = _save_state_dict(model, folder, options)
        return SavedFlavor(data=data, requirements=versions("torch", "numpy"))

    def load(self, folder: Path, data: dict[str, Any], options: LoadOptions) -> Predictor:
        """Read the module back onto the CPU, in eval mode."""
        serializer = data.get("serializer")
        if serializer not in SERIALIZERS:
            raise InvalidValueError(
                f"this pytorch model package uses serializer {serializer!r}, which this version "
                f"of mloop cannot read (it knows {', '.join(SERIALIZERS)}); upgrade mloop"
            )
        with optional_import("torch", "torch", "loading a PyTorch model"):
            import torch
        if serializer == "export":
            # An exported program has no train mode to leave: it was traced in eval mode.
            return TorchPredictor(torch.export.load(folder / EXPORT_FILE).module())
        if serializer == "torchscript":
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(folder / SCRIPT_FILE), map_location="cpu"
            )
        else:
            module = _load_state_dict(folder, data)
        module.eval()
        return TorchPredictor(module)


def _save_export(model: torch.nn.Module, folder: Path, options: SaveOptions) -> None:
    """Export ``model`` (in eval mode) by tracing it on the input example, batch size dynamic."""
    import torch

    if options.input_example is None:
        raise InvalidValueError(
            f"saving {type(model).__qualname__} needs an input_example: it is exported with "
            "torch.export, which runs it on the example; or save it with "
            "serializer='state_dict' (and init_kwargs) to store only its weights"
        )
    example = torch.from_numpy(options.input_example.to_numpy(dtype=np.float32, copy=True))
    if len(example) < 2:  # a batch of one would be specialized to exactly one row
        example = example.repeat(2, 1)
    was_training = model.training
    model.eval()
    try:
        batch: Any = {0: torch.export.Dim("batch")}
        # The shapes mirror forward's parameters; ``forward(self, *inputs)`` takes a tuple.
        first = next(iter(inspect.signature(model.forward).parameters.values()), None)
        if first is not None and first.kind is inspect.Parameter.VAR_POSITIONAL:
            batch = (batch,)
        program = torch.export.export(model, (example,), dynamic_shapes=(batch,))
    except Exception as error:  # export fails in many ways; all mean "cannot be exported"
        raise InvalidValueError(
            f"torch.export cannot export {type(model).__qualname__}: {error}; save it with "
            "serializer='state_dict' instead"
        ) from error
    finally:
        model.train(was_training)
    torch.export.save(program, folder / EXPORT_FILE)


def _save_script(model: torch.nn.Module, folder: Path, options: SaveOptions) -> str:
    """Script ``model``, or trace it with the input example; return which was done."""
    import torch

    was_training = model.training
    model.eval()  # so that a trace records inference behaviour (dropout off, batch-norm stats)
    try:
        try:
            compiled: Any = torch.jit.script(model)
            how = "script"
        except Exception as error:  # scripting fails in many ways; all mean "trace"
            if options.input_example is None:
                raise InvalidValueError(
                    f"TorchScript cannot script {type(model).__qualname__}; give an "
                    "input_example so that it can be traced instead, or save it with "
                    f"serializer='state_dict'. TorchScript says: {error}"
                ) from error
            example = torch.from_numpy(options.input_example.to_numpy(dtype=np.float32, copy=True))
            compiled = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
            how = "trace"
    finally:
        model.train(was_training)
    compiled.save(str(folder / SCRIPT_FILE))
    return how


def _save_state_dict(model: torch.nn.Module, folder: Path, options: SaveOptions) -> dict[str, Any]:
    import torch

    cls = type(model)
    path = class_path(cls, "PyTorch module")
    init_kwargs = options.extra.get("init_kwargs", {})
    if not isinstance(init_kwargs, dict):
        raise InvalidValueError(
            f"init_kwargs must be a dict of {cls.__qualname__}'s constructor arguments, "
            f"not {type(init_kwargs).__name__}"
        )
    problem = json_problem(init_kwargs)
    if problem is not None:
        raise InvalidValueError(f"init_kwargs must be JSON values to be recorded: {problem}")
    try:
        inspect.signature(cls).bind(**init_kwargs)
    except TypeError as error:
        raise InvalidValueError(
            f"init_kwargs {init_kwargs!r} do not fit {cls.__qualname__}'s constructor ({error}); "
            "pass as init_kwargs the arguments that construct the module"
        ) from None
    torch.save(model.state_dict(), folder / STATE_FILE)
    return {"serializer": "state_dict", "class": path, "init_kwargs": init_kwargs}


def _load_state_dict(folder: Path, data: dict[str, Any]) -> torch.nn.Module:
    import torch

    path = str(data.get("class", ""))
    cls = import_class(path)
    if not issubclass(cls, torch.nn.Module):
        raise UntrustedModelError(
            f"this PyTorch model package names class {path!r}, which is not a torch.nn.Module; "
            "mloop will not construct it"
        )
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    module: torch.nn.Module = cls(**data.get("init_kwargs", {}))
    module.load_state_dict(state)
    return module
