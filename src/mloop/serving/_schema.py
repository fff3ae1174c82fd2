"""The OpenAPI schema of ``POST /predict``'s body, built from the served model's signature."""

from __future__ import annotations

from typing import Any

from mloop.serving._served import ServedModel

__all__ = ["predict_body_schema"]

_JSON_TYPES = {
    "bool": {"type": "boolean"},
    "float32": {"type": "number"},
    "float64": {"type": "number"},
    "string": {"type": "string"},
    "category": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _value(dtype: str, nullable: bool) -> dict[str, Any]:
    schema = dict(_JSON_TYPES.get(dtype, {"type": "integer"}))
    if nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def predict_body_schema(served: ServedModel) -> dict[str, Any]:
    """Records, bare records, columns, dataframe_split, or one object of entity keys."""
    signature = served.model.signature
    if signature is None:
        record: dict[str, Any] = {"type": "object"}
        columns: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "array"}}
    else:
        values = {s.name: _value(s.dtype, s.nullable) for s in signature.inputs}
        record = {
            "type": "object",
            "properties": values,
            "required": list(values),
            "additionalProperties": False,
        }
        columns = {
            "type": "object",
            "properties": {name: {"type": "array", "items": v} for name, v in values.items()},
            "required": list(values),
            "additionalProperties": False,
        }
    records = {"type": "array", "items": record, "minItems": 1}
    options: list[dict[str, Any]] = [
        {
            "title": "records",
            "type": "object",
            "properties": {"records": records},
            "required": ["records"],
            "additionalProperties": False,
        },
        {**records, "title": "bare records"},
        {
            "title": "columns",
            "type": "object",
            "properties": {"columns": columns},
            "required": ["columns"],
            "additionalProperties": False,
        },
        {
            "title": "dataframe_split (pandas orient='split', as MLflow takes it)",
            "type": "object",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array"}},
                    },
                    "required": ["columns", "data"],
                }
            },
            "required": ["dataframe_split"],
            "additionalProperties": False,
        },
    ]
    if served.needs is not None:
        keys = {
            k: {"anyOf": [{"type": "integer"}, {"type": "string"}]} for k in served.needs.join_keys
        }
        options.append(
            {
                "title": "entity keys (features are looked up in the online store)",
                "type": "object",
                "properties": keys,
                "required": list(keys),
            }
        )
    return {"oneOf": options}
