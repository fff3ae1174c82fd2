"""``store.pipelines``: what pipeline runs record beyond runs themselves (the step cache)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["PipelineRecords"]


class PipelineRecords(Protocol):
    """The step cache of pipeline runs."""
