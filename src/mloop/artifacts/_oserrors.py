"""Turning the OSErrors of file systems into mloop's ArtifactError, where the two meet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mloop.errors import ArtifactError

__all__ = ["translate_oserrors"]


@contextmanager
def translate_oserrors(action: str, uri: str) -> Iterator[None]:
    """Re-raise an OSError from the block as ArtifactError saying what could not be done where.

    Callers handle FileNotFoundError themselves first when "missing" has a meaning for them.
    """
    try:
        yield
    except OSError as exc:
        raise ArtifactError(f"could not {action} in the artifact store {uri}: {exc}") from exc
