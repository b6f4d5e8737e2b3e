"""Small helpers the adapters for other exchanges share (created by the adapters' work, H4).

* :func:`require_pytx` imports python-threatexchange (the optional ``exchange`` extra) or says
  how to install it: the NCMEC, StopNCII and ThreatExchange adapters use its maintained
  clients rather than re-writing those wire formats.
* :func:`peer_errors` turns what an HTTP client raises into :class:`ExchangeError` naming the
  peer and the HTTP status only: request URLs can carry tokens (ThreatExchange puts its access
  token in the query string), so they never reach a message or a log.
* :func:`known_hash` maps a peer's hash type and value onto a hashwatch signal type.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from hashwatch.errors import ExchangeError, InvalidHashError
from hashwatch.signals.types import normalize_hash, parse_hash_type

__all__ = ["known_hash", "peer_errors", "require_pytx"]

INSTALL_HINT = "pip install 'hashwatch[exchange]'"


def require_pytx(module: str, what: str) -> ModuleType:
    """Import ``module`` from python-threatexchange, or raise ExchangeError saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExchangeError(
            f"the {what} exchange needs python-threatexchange: {INSTALL_HINT}"
        ) from None


@contextmanager
def peer_errors(peer: str, what: str) -> Iterator[None]:
    """Raise ExchangeError for a failed request to ``peer``, with the status but no URL."""
    try:
        yield
    except ExchangeError:
        raise
    except Exception as exc:  # requests, httpx, XML and JSON errors alike
        status = getattr(getattr(exc, "response", None), "status_code", None)
        detail = f"HTTP {status}" if status is not None else type(exc).__name__
        raise ExchangeError(f"peer {peer!r}: {what} failed ({detail})") from None


def known_hash(hash_type: str, value: str) -> tuple[str, str] | None:
    """``(hashwatch type name, canonical value)``, or None for a type or value we cannot use."""
    try:
        parsed = parse_hash_type(hash_type)
        return parsed.value, normalize_hash(parsed, value)
    except InvalidHashError:
        return None
