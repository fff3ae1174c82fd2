"""What an online store is: the latest feature values per entity, written atomically per batch.

Values are kept per feature view as one record per entity key: the feature values (JSON-able
scalars: int, float, str, bool, None; timestamps as ISO-8601 strings) and the event time of
the row they came from. A ``write`` is all-or-nothing: readers see the whole batch or none of
it, so a materialization that dies halfway leaves the previous values visible and complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ._codec import Batch

__all__ = ["EntityKey", "OnlineRead", "OnlineStore", "Status"]

# One entity's key values, in the view's join-key order, e.g. (42,) or ("eu", 7).
EntityKey = tuple[Any, ...]
Status = Literal["present", "null_value", "not_found"]


@dataclass(frozen=True)
class OnlineRead:
    """Rows in the order the keys were asked for; one value and one status per feature."""

    values: list[list[Any]]
    statuses: list[list[Status]]
    event_times_ms: list[int | None]  # the source row's event time, None when not found


class OnlineStore(Protocol):
    """An online store backend (SQLite, Redis)."""

    uri: str

    def write(
        self,
        view: str,
        keys: Sequence[EntityKey],
        values: Sequence[Sequence[Any]],
        features: Sequence[str],
        event_times_ms: Sequence[int],
    ) -> int:
        """Upsert one record per key, atomically; returns the number of records stored.

        ``values[i]`` holds the features of ``keys[i]`` in ``features`` order, and
        ``event_times_ms[i]`` the event time of its source row. A record replaces the stored
        one whole, and only if its event time is not older (a late, older row never overwrites
        a newer value; it is skipped and not counted). A key given twice counts once: its row
        with the later event time wins. Every value is checked before anything is written.
        """
        ...

    def write_batch(self, batch: Batch) -> int:
        """``write`` for a batch already checked and encoded by ``pack_records`` or
        ``pack_arrow`` (the latter converts Arrow columns a column at a time)."""
        ...

    def read(self, view: str, keys: Sequence[EntityKey], features: Sequence[str]) -> OnlineRead:
        """The stored values of ``features`` for each key, in ``keys`` order, in one round trip.

        A key with no record reads as None values with status ``not_found``; so does a feature
        its record lacks (added to the view after the record was written). A stored missing
        value (None, NaN) reads as None with status ``null_value``.
        """
        ...

    def drop_view(self, view: str) -> None:
        """Forget every record of ``view``."""
        ...

    def close(self) -> None: ...
