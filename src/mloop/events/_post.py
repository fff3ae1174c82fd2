"""One webhook POST over the standard library's urllib, and what its answer means.

2xx is delivered. Connection errors, timeouts, 5xx, 408 and 429 are worth another try (with the
receiver's numeric ``Retry-After`` on 429 and 503). 3xx is refused without following it: a
redirect would send the signed event somewhere nobody registered. Any other 4xx means the
receiver will not take this event, so it is not sent again. Error texts are short, one line,
and name neither the URL (it may carry credentials) nor the secret.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = ["Outcome", "post"]

MAX_ERROR = 200  # characters of an error text
_READ_LIMIT = 64 * 1024  # bytes of a receiver's answer read (and dropped) before closing
_RETRY_STATUSES = frozenset({408, 429})
_BAD_URL = "cannot send to this URL; check it with `mloop webhooks list` and add it again"
_RETRY_AFTER = re.compile(r"\s*(\d{1,10})(\.\d+)?\s*")


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, worth retrying, or refused for good."""

    ok: bool
    retry: bool = False
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait

    @classmethod
    def delivered(cls) -> Outcome:
        return cls(ok=True)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib then raises HTTPError with the 3xx status."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


_opener = urllib.request.build_opener(_RefuseRedirects())


def _clean(text: object, limit: int = MAX_ERROR) -> str:
    """One printable line of at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not isinstance(value, str):
        return None
    match = _RETRY_AFTER.fullmatch(value)
    return float(match.group(1) + (match.group(2) or "")) if match else None


def _for_status(status: int, reason: object, headers: Message | None) -> Outcome:
    described = _clean(f"HTTP {status} {reason or ''}".strip(), 80)
    if 300 <= status < 400:
        location = headers.get("Location") if headers is not None else None
        try:
            target = urlsplit(location).hostname if isinstance(location, str) else None
        except ValueError:
            target = None
        where = f" to {_clean(target, 80)}" if target else ""
        return Outcome(
            ok=False,
            error=f"{described}: the receiver redirects{where}; mloop does not follow "
            "redirects, so register the final URL",
        )
    if status >= 500 or status in _RETRY_STATUSES:
        retry_after = _retry_after(headers) if status in (429, 503) else None
        return Outcome(ok=False, retry=True, error=described, retry_after=retry_after)
    return Outcome(ok=False, error=f"{described}: the receiver refused the event")


def _connection_error(reason: object, timeout: float) -> Outcome:
    if isinstance(reason, TimeoutError):
        return Outcome(ok=False, retry=True, error=f"timed out after {timeout:g}s")
    if isinstance(reason, ConnectionRefusedError):
        return Outcome(ok=False, retry=True, error="connection refused")
    if isinstance(reason, socket.gaierror):
        return Outcome(ok=False, retry=True, error=f"host name lookup failed: {_clean(reason)}")
    return Outcome(ok=False, retry=True, error=f"cannot reach the receiver: {_clean(reason)}")


def _basic_auth(parts: SplitResult) -> tuple[str, str]:
    """The URL without its credentials, and the Authorization header they make."""
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, "Basic " + base64.b64encode(pair).decode("ascii")


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> Outcome:
    """POST ``body`` to ``url`` once and classify the answer. Never raises for network errors.

    ``timeout`` bounds each blocking step (connect, send, each read), as sockets do.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return Outcome(ok=False, error="the URL does not parse")
    if parts.scheme not in ("http", "https"):  # the store checks this too; urllib opens file:
        return Outcome(ok=False, error="not an http:// or https:// URL")
    sent = dict(headers)
    if "@" in parts.netloc:  # https://user:password@host/...: urllib wants it as a header
        url, sent["Authorization"] = _basic_auth(parts)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url, data=body, headers=sent, method="POST"
    )
    try:
        response: Any = _opener.open(request, timeout=timeout)
        with response:
            response.read(_READ_LIMIT)
        return Outcome.delivered()
    except urllib.error.HTTPError as error:
        with error:
            return _for_status(error.code, error.reason, error.headers)
    except urllib.error.URLError as error:
        return _connection_error(error.reason, timeout)
    except TimeoutError as error:  # a read after the connection was made
        return _connection_error(error, timeout)
    except http.client.InvalidURL:  # its message quotes the URL, which is not for logs
        return Outcome(ok=False, error=_BAD_URL)
    except http.client.HTTPException as error:  # e.g. the receiver closed without answering
        return Outcome(ok=False, retry=True, error=f"bad answer: {_clean(type(error).__name__)}")
    except ValueError:  # urllib refuses the URL itself (and quotes it)
        return Outcome(ok=False, error=_BAD_URL)
    except OSError as error:
        return _connection_error(error, timeout)
