"""The demo's serving step: a real server, JSON and entity-key traffic, the log growing."""

from __future__ import annotations

from mloop.backends import backends
from mloop.demo._serve import serve_and_send_traffic

from .conftest import FEATURES, MODEL, Project


def test_serve_and_send_traffic_grows_the_prediction_log(project: Project) -> None:
    frame = project.frame.set_index("patient_id")
    records = [{f: float(frame.loc[p, f]) for f in FEATURES} for p in (10, 11)]
    ctx = backends()
    first = serve_and_send_traffic(ctx, f"{MODEL}@production", [1, 2, 3], records)
    assert first.failures == []
    assert (first.json_requests, first.entity_requests) == (2, 3)
    assert first.versions == {1: 5}
    assert first.log_rows_before == 0
    assert first.log_rows_after == 5
    assert first.url.startswith("http://127.0.0.1:")
    entity = [s for s in first.samples if "patient_id" in s["request"]]
    assert entity
    assert entity[0]["response"]["model"] == {"name": MODEL, "version": 1}
    second = serve_and_send_traffic(ctx, f"{MODEL}@production", [4, 99999])
    assert second.log_rows_before == 5
    assert second.log_rows_after == 6
    assert len(second.failures) == 1
    assert second.failures[0].startswith("404")
    assert "patient_id=99999" in second.failures[0]
