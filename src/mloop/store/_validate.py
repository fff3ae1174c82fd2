"""Checks on names and values that every way into the store applies before writing.

Decisions (documented in docs/tracking.md):
- keys (metric, param, tag names) are 1-250 characters of letters, digits and ``_ - . / : space``,
  not starting or ending with a space and with no ``..`` segment or leading ``/``;
- param values are strings up to 6,000 characters; ints, floats and bools are stored as their
  ``str()`` and lists/dicts as JSON; anything else is refused;
- metric values are finite real numbers: NaN and ±inf are **rejected** (SQLite would turn NaN
  into NULL, so storing them could not round-trip on every backend); steps are integers.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

from mloop.errors import InvalidKeyError, InvalidValueError

MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_NAME_LENGTH = 256
_KEY_RE = re.compile(r"[A-Za-z0-9_\-./: ]+")


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is an acceptable metric/param/tag name, else raise InvalidKeyError."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"{what} must be a string, not {type(key).__name__}: {key!r}")
    if not key:
        raise InvalidKeyError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"{what} {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.fullmatch(key) or key != key.strip() or key.startswith("/"):
        raise InvalidKeyError(
            f"{what} {key!r} has characters mloop does not allow; use letters, digits, "
            "spaces (not at either end) and _ - . / :"
        )
    if ".." in key.split("/"):
        raise InvalidKeyError(f"{what} {key!r} must not contain a '..' segment")
    return key


def check_name(name: object, what: str) -> str:
    """An experiment or run name: a non-empty printable string of at most 256 characters."""
    if not isinstance(name, str):
        raise InvalidValueError(f"{what} must be a string, not {type(name).__name__}")
    if not name.strip():
        raise InvalidValueError(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValueError(f"{what} is {len(name)} characters; the limit is {MAX_NAME_LENGTH}")
    if not name.isprintable():
        raise InvalidValueError(f"{what} {name!r} contains control characters")
    return name


def param_value(key: str, value: Any) -> str:
    """The stored text of a param value; refuses types that have no faithful text form."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | numbers.Number):
        text = str(value)
    elif isinstance(value, list | tuple | dict):
        try:
            text = json.dumps(value, sort_keys=True, default=_refuse)
        except (TypeError, ValueError) as error:
            raise InvalidValueError(f"param {key!r}: {error}") from None
    else:
        raise InvalidValueError(
            f"param {key!r} has a value of type {type(value).__name__}; log a str, number, "
            "bool, None, or a list/dict of those"
        )
    if len(text) > MAX_PARAM_LENGTH:
        raise InvalidValueError(
            f"param {key!r} is {len(text)} characters long; the limit is {MAX_PARAM_LENGTH} "
            "(log long values as an artifact instead)"
        )
    return text


def tag_value(key: str, value: Any) -> str:
    """The stored text of a tag value: a string (numbers and bools are turned into text)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | numbers.Number):
        text = str(value)
    else:
        raise InvalidValueError(
            f"tag {key!r} must be a string, number or bool, not {type(value).__name__}"
        )
    if len(text) > MAX_TAG_LENGTH:
        raise InvalidValueError(f"tag {key!r} is {len(text)} characters; limit {MAX_TAG_LENGTH}")
    return text


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def metric_value(key: str, value: Any) -> float:
    """A metric value as float: a finite real number (bools and NaN/inf are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidValueError(
            f"metric {key!r} must be a real number, not {type(value).__name__}: {value!r}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidValueError(
            f"metric {key!r} is {number}; mloop stores only finite values (NaN and inf are "
            "rejected so every backend round-trips them) - log a sentinel or a tag instead"
        )
    return number


def metric_step(key: str, step: Any) -> int:
    """A metric step: an integer (numpy integers too), not a bool or a float."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidValueError(
            f"step of metric {key!r} must be an integer, not {type(step).__name__}: {step!r}"
        )
    number = int(step)
    if not -(2**63) <= number < 2**63:
        raise InvalidValueError(f"step of metric {key!r} is out of the 64-bit range: {number}")
    return number


_MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")
RESERVED_ALIASES = frozenset({"latest"})


def check_model_name(name: object) -> str:
    """A registered model's name: it appears in ``models:/name@alias`` URIs and in paths."""
    if not isinstance(name, str):
        raise InvalidKeyError(f"model name must be a string, not {type(name).__name__}")
    if not _MODEL_NAME_RE.fullmatch(name) or name.endswith("."):
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise InvalidKeyError(
            f"model name {shown!r} is not allowed; use 1-128 letters, digits and _ . - "
            "starting with a letter or digit (no '/', '@', ':' or spaces)"
        )
    return name


def check_alias(alias: object) -> str:
    """An alias (``production``, ``challenger``, ...): a letter, then letters, digits, _ or -."""
    if not isinstance(alias, str):
        raise InvalidKeyError(f"alias must be a string, not {type(alias).__name__}")
    if not _ALIAS_RE.fullmatch(alias):
        shown = alias if len(alias) <= 60 else alias[:57] + "..."
        raise InvalidKeyError(
            f"alias {shown!r} is not allowed; use 1-64 letters, digits, _ and -, starting "
            "with a letter (a number would be read as a version)"
        )
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidKeyError(
            f"alias {alias!r} is reserved: '@latest' always means the newest version"
        )
    return alias


MAX_VERSION = 2**31 - 1  # model_versions.version is a 32-bit INTEGER


def check_version(version: object) -> int:
    """A model version number: a positive integer (``3``, or the string ``"3"``)."""
    if isinstance(version, bool):
        raise InvalidValueError(f"model version must be a positive integer, not {version!r}")
    number = version
    if isinstance(version, str) and version.isascii() and version.isdecimal():
        number = int(version)
    if not isinstance(number, int) or not 1 <= number <= MAX_VERSION:
        raise InvalidValueError(
            f"model version must be a positive integer up to {MAX_VERSION}, not {version!r}"
        )
    return number
