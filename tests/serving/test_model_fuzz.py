"""Fuzzing the model server's API from its own OpenAPI schema: no input gives a 5xx.

Schemathesis generates bodies, paths and headers for every operation, valid ones (positive)
and ones the schema forbids (negative); every answer must be below 500, and every refusal a
JSON body that says what is wrong.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from mloop.serving import create_model_app

from .conftest import MODEL, Project


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_input_gets_a_server_error(project: Project, mode: GenerationMode) -> None:
    app = create_model_app(f"{MODEL}@production", poll_interval=None, prediction_log=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/v2/models/{name}/infer"}
    statuses: list[int] = []
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.lower() != "post":
            continue  # only bodies can break the schema: any string is a valid path segment
        examples = 30 if operation.method.upper() == "POST" else 5

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call()
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text)
            if response.status_code >= 400:
                assert response.json()["detail"], response.text

        call()
    if mode is GenerationMode.POSITIVE:
        assert 200 in statuses  # valid bodies were scored, not only refused
    else:
        assert any(400 <= status < 500 for status in statuses)
