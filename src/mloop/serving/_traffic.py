"""Canary and shadow references: ``churn@challenger:10%`` and ``churn@challenger``."""

from __future__ import annotations

from mloop.errors import InvalidValueError
from mloop.registry import parse_ref

__all__ = ["parse_canary", "parse_shadow"]


def parse_canary(spec: str) -> tuple[str, float]:
    """``"churn@challenger:10%"`` → ``("churn@challenger", 0.10)``."""
    if not isinstance(spec, str) or ":" not in spec or not spec.endswith("%"):
        raise InvalidValueError(
            f"canary {spec!r} must look like 'MODEL_REF:PCT%', e.g. 'churn@challenger:10%'"
        )
    ref, _, share = spec[:-1].rpartition(":")
    try:
        percent = float(share)
    except ValueError:
        percent = -1.0
    if not 0 < percent <= 100:
        raise InvalidValueError(
            f"canary share {share!r}% must be a number above 0 and at most 100, e.g. '10%'"
        )
    parse_ref(ref)  # names the problem with the reference itself
    return ref, percent / 100


def parse_shadow(spec: str) -> str:
    """The shadow reference, checked."""
    if not isinstance(spec, str) or not spec:
        raise InvalidValueError(
            f"shadow must be a model reference like 'churn@challenger', not {spec!r}"
        )
    parse_ref(spec)
    return spec
