"""What a pipeline run hands back: its run id, status, each step's state, and its outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["PipelineResult", "StepResult", "StepState"]

StepState = Literal["pending", "running", "finished", "cached", "failed", "skipped"]
DONE_STATES = ("finished", "cached")


@dataclass
class StepResult:
    """One step of a pipeline run."""

    key: str  # unique in the pipeline: the step's name, then name_2, name_3 for more calls
    step: str  # the step's name
    state: StepState = "pending"
    run_id: str | None = None
    attempts: int = 0
    error: str | None = None  # the failing step's traceback, as text
    log: str = ""  # what the step printed and logged
    seconds: float = 0.0
    cache_key: str | None = None
    cached_from: str | None = None  # for a cached step: the step run that made its outputs
    outputs: list[dict[str, Any]] = field(default_factory=list)


class _LazyOutputs(Mapping[str, Any]):
    """``"step.output"`` (or ``"step"`` for a step's only output) → value, loaded on access."""

    def __init__(self, names: list[str], load: Callable[[str], Any]) -> None:
        self._names = names
        self._load = load
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class PipelineResult:
    """A finished (or failed) pipeline run.

    ``output`` is what the pipeline function returned, with each step output replaced by its
    value. ``outputs["step"]`` / ``outputs["step.name"]`` reads any step's output (loaded from
    the artifact store on first access for steps that came from the cache).
    """

    run_id: str
    pipeline: str
    status: Literal["finished", "failed", "killed"]
    steps: dict[str, StepResult]
    output: Any
    outputs: Mapping[str, Any]
    error: str | None = None

    @property
    def cache_hits(self) -> int:
        """How many steps were not run because the cache held their outputs."""
        return sum(1 for s in self.steps.values() if s.state == "cached")

    @property
    def executed(self) -> int:
        """How many steps ran (successfully or not)."""
        return sum(1 for s in self.steps.values() if s.state in ("finished", "failed"))

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.state == "failed"]

    def __repr__(self) -> str:
        return (
            f"PipelineResult({self.pipeline!r}, run_id={self.run_id!r}, status={self.status!r}, "
            f"steps={len(self.steps)}, cached={self.cache_hits})"
        )
