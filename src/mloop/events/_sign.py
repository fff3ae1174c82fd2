"""Signing webhook bodies, and checking signatures on the receiving end.

A webhook with a secret gets ``X-Mloop-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw
request body under the secret. Receivers recompute it over the bytes they received (before
parsing the JSON: re-serialized JSON need not be byte-identical) and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "signature", "verify_signature"]

SIGNATURE_HEADER = "X-Mloop-Signature"
_PREFIX = "sha256="


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def signature(body: bytes, secret: str | bytes) -> str:
    """The ``X-Mloop-Signature`` value for ``body``: ``'sha256=' + hex HMAC-SHA256``."""
    return _PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str | bytes, header: str | None) -> bool:
    """True when ``header`` (the ``X-Mloop-Signature`` value) signs ``body`` with ``secret``.

    ``body`` is the raw request body as received. A missing or malformed header is False.

    >>> verify_signature(b'{}', "s3cret", signature(b'{}', "s3cret"))
    True
    """
    if not isinstance(header, str) or not header.isascii() or not header.startswith(_PREFIX):
        return False
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(
            f"verify_signature needs the raw request body as bytes, not {type(body).__name__}; "
            "sign-checking re-encoded JSON would fail"
        )
    expected = signature(bytes(body), secret).encode("ascii")
    return hmac.compare_digest(expected, header.strip().lower().encode("ascii"))
