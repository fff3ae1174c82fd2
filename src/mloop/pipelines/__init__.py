"""Pipelines (paper component C3): ``@step`` and ``@pipeline``, cached, retried, recorded.

    from mloop.pipelines import pipeline, step

    @step
    def load(n: int) -> list[int]:
        return list(range(n))

    @step
    def total(values: list[int]) -> int:
        return sum(values)

    @pipeline
    def numbers(n: int = 10):
        return total(load(n))

    result = numbers.run(n=5)          # result.output == 10; a rerun comes from the cache

Each pipeline run and each step is a run in the metadata store (steps are child runs), every
output an artifact with lineage. See docs/pipelines.md.
"""

from __future__ import annotations

from mloop.pipelines._graph import Graph, Output
from mloop.pipelines._pipeline import Pipeline, pipeline
from mloop.pipelines._project import find_pipeline, load_pipelines
from mloop.pipelines._result import PipelineResult, StepResult, StepState
from mloop.pipelines._schedule import Schedule
from mloop.pipelines._scheduler import Scheduler
from mloop.pipelines._step import Step, StepOptions, step
from mloop.pipelines._triggers import on_alert, on_alias_changed, on_new_data
from mloop.pipelines._values import PickleSerializer, Serializer

__all__ = [
    "Graph",
    "Output",
    "PickleSerializer",
    "Pipeline",
    "PipelineResult",
    "Schedule",
    "Scheduler",
    "Serializer",
    "Step",
    "StepOptions",
    "StepResult",
    "StepState",
    "find_pipeline",
    "load_pipelines",
    "on_alert",
    "on_alias_changed",
    "on_new_data",
    "pipeline",
    "step",
]
