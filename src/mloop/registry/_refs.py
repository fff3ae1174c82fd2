"""Model references: the strings users type to name a model.

=============================  ==========================================================
``models:/churn@production``   the version alias ``production`` of model ``churn`` points at
``models:/churn/3``            version 3 of ``churn``
``models:/churn@latest``       the newest version (``latest`` is reserved for this)
``churn@production``           the same, without the scheme (CLI style)
``churn/3``, ``churn``         version 3; the newest version
``runs:/<run_id>/model``       the model package run ``<run_id>`` logged as ``model``
a folder or ``.zip`` path      a package written by ``save_model`` (or unzipped from one)
=============================  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mloop.errors import InvalidInputError, InvalidValueError
from mloop.store import check_alias, check_key, check_model_name, check_version

__all__ = ["ModelRef", "parse_ref"]

_RUN_REF = re.compile(r"runs:/([0-9a-fA-F-]{1,64})/(.+)")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of (name + version/alias), (run_id + path), or path."""

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    path: Path | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.run_id is not None:
            return f"runs:/{self.run_id}/{self.artifact_path}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}"


def parse_ref(ref: object) -> ModelRef:
    """Parse a model reference (see the module docstring); InvalidValueError if it is none."""
    if isinstance(ref, Path):
        return ModelRef(path=ref)
    if not isinstance(ref, str):
        raise InvalidValueError(
            f"a model reference must be a string like 'churn@production', not {type(ref).__name__}"
        )
    if not ref or len(ref) > 2000:
        raise InvalidValueError("a model reference must be 1-2000 characters")
    if ref.startswith("runs:/"):
        match = _RUN_REF.fullmatch(ref)
        if match is None:
            raise InvalidValueError(
                f"run reference {ref!r} must look like runs:/<run_id>/<artifact path>"
            )
        return ModelRef(run_id=match[1], artifact_path=check_key(match[2], "artifact path"))
    body = ref.removeprefix("models:/")
    if "@" in body:
        name, _, alias = body.partition("@")
        alias = "latest" if alias.lower() == "latest" else check_alias(alias)
        return ModelRef(name=check_model_name(name), alias=alias)
    if body.count("/") == 1 and not ref.startswith(("/", ".")):
        name, _, version = body.partition("/")
        if version.isdecimal():
            return ModelRef(name=check_model_name(name), version=check_version(version))
    if ref.startswith("models:/"):
        return ModelRef(name=check_model_name(body), alias="latest")
    candidate = Path(ref)
    if "/" in ref or "\\" in ref or candidate.suffix == ".zip" or candidate.exists():
        return ModelRef(path=candidate)
    try:
        return ModelRef(name=check_model_name(ref), alias="latest")
    except InvalidInputError as error:
        raise InvalidValueError(
            f"{ref!r} is not a model reference; use 'name@alias', 'name/3', "
            "'models:/name@alias', 'runs:/<run_id>/model' or a package folder"
        ) from error
