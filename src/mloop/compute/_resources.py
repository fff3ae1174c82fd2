"""What a task needs to run: CPUs, GPUs and memory."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ByteSize, TypeAdapter, ValidationError

from mloop.errors import InvalidValueError, ResourcesUnavailableError

__all__ = ["Resources", "check_local", "local_cpus", "parse_memory"]

_BYTES = TypeAdapter(ByteSize)
MAX_MEMORY = 2**53  # bytes; sizes are exact below it (pydantic computes them in floats)


def parse_memory(value: int | str) -> int:
    """Bytes from an int or a size such as ``"512MiB"``, ``"2GiB"``, ``"1.5 GB"``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidValueError(
            f"memory must be a number of bytes or a size such as '2GiB', not {value!r}"
        )
    if isinstance(value, str):
        try:
            value = int(_BYTES.validate_python(value.strip()))
        except ValidationError:
            raise InvalidValueError(
                f"memory {value!r} is not a size; write bytes or a size such as '512MiB' or '2GiB'"
            ) from None
    if value <= 0:
        raise InvalidValueError(f"memory must be more than 0 bytes, not {value}")
    if value > MAX_MEMORY:
        raise InvalidValueError(
            f"memory {value} bytes is more than 8 PiB, which no machine has; check the unit"
        )
    return value


def _amount(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return number


@dataclass(frozen=True, init=False)
class Resources:
    """What one task needs: ``cpu`` and ``gpu`` (fractions allowed) and ``memory`` in bytes.

        Resources(cpu=2, memory="4GiB")
        Resources.parse({"cpu": 2, "gpu": 1})
        Resources.parse("cpu=2,memory=4GiB")

    Ray schedules a task only where these are free; the local executors check that the machine
    has them at all and otherwise run tasks as they come.
    """

    cpu: float
    gpu: float
    memory: int | None

    def __init__(self, cpu: float = 1.0, gpu: float = 0.0, memory: int | str | None = None) -> None:
        object.__setattr__(self, "cpu", _amount("cpu", cpu))
        object.__setattr__(self, "gpu", _amount("gpu", gpu))
        object.__setattr__(self, "memory", None if memory is None else parse_memory(memory))

    @classmethod
    def parse(cls, spec: Resources | Mapping[str, Any] | str | None) -> Resources:
        """Resources from Resources, a mapping or ``"cpu=2,gpu=1,memory=2GiB"`` (None: defaults)."""
        if spec is None:
            return cls()
        if isinstance(spec, Resources):
            return spec
        if isinstance(spec, str):
            pairs: dict[str, Any] = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, sep, raw = part.partition("=")
                if not sep:
                    raise InvalidValueError(
                        f"resources {spec!r}: {part!r} is not key=value; "
                        "write e.g. 'cpu=2,gpu=1,memory=2GiB'"
                    )
                key = key.strip()
                pairs[key] = raw.strip() if key == "memory" else _number(key, raw.strip())
            spec = pairs
        if not isinstance(spec, Mapping):
            raise InvalidValueError(
                "resources must be Resources, a mapping or a string like 'cpu=2,memory=2GiB', "
                f"not {type(spec).__name__}"
            )
        unknown = sorted(str(key) for key in spec if key not in ("cpu", "gpu", "memory"))
        if unknown:
            raise InvalidValueError(
                f"unknown resources {', '.join(map(repr, unknown))}; known: cpu, gpu, memory"
            )
        return cls(**spec)


def _number(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidValueError(f"resource {key}={raw!r} is not a number") from None


def local_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_local(resources: Resources, executor: str) -> None:
    """Refuse a task that needs more CPUs or memory than this machine has."""
    cpus = local_cpus()
    if resources.cpu > cpus:
        raise ResourcesUnavailableError(
            f"the task asks for cpu={resources.cpu:g} but the {executor} executor runs on a "
            f"machine with {cpus} CPUs; ask for at most {cpus} or use the ray executor on a cluster"
        )
    memory = _physical_memory()
    if resources.memory is not None and memory is not None and resources.memory > memory:
        raise ResourcesUnavailableError(
            f"the task asks for memory={resources.memory} bytes but this machine has {memory}; "
            "ask for less or use the ray executor on a cluster"
        )
