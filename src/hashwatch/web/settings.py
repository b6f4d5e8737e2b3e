"""Settings of ``hashwatch serve``, built once and passed to :func:`create_app`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from hashwatch.errors import ConfigError
from hashwatch.store.users import UserPolicy

__all__ = ["ServeSettings"]

_ENV = "HASHWATCH_SERVE_"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and background jobs of the HTTP service (environment: ``HASHWATCH_SERVE_*``)."""

    max_upload_bytes: int = 50 * 1024 * 1024  # media uploads are held in memory, never on disk
    max_list_upload_bytes: int = 2 * 1024 * 1024 * 1024  # list files, spooled to <data>/spool
    max_json_bytes: int = 1024 * 1024  # any JSON body (the match call: >= 512 B per signal)
    max_signals: int = 1000  # signals in one JSON match call
    rate_per_s: float = 200.0  # default per key, for the whole server (all its workers)
    burst: float = 400.0
    workers: int = 1  # processes of this server: each enforces 1/workers of a key's rate
    retention_days: float = 30.0  # match records
    refresh_interval_s: float = 1.0  # change-sequence poll (freshness across replicas)
    purge_interval_s: float = 3600.0
    webhook_interval_s: float = 0.5
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 2.0
    webhook_timeout_s: float = 5.0
    sync_interval_s: float = 300.0  # peers synced this often in the background (0: off)
    audit_log: Path | None = None  # default: <data dir>/serve-audit.log
    background: bool = True  # run the poller, delivery loop and purge job
    public_docs: bool = False  # /docs, /redoc, /openapi.json without a key
    metrics_public: bool = False  # /metrics without a key (else an admin key)
    decode_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    decode_queue: int = 8  # uploads waiting for a decode slot; beyond: 503
    decode_wait_s: float = 10.0  # longest wait for a decode slot; beyond: 503
    retry_after_s: int = 5  # Retry-After of a 503 (database or decoders busy)
    # Webhooks and what a match reveals (docs/serve.md, "Webhooks" and "What a match reveals").
    webhook_lease_s: float = 30.0  # a delivery's lease, renewed while it is being sent
    webhook_allow_hosts: str = ""  # hosts and CIDRs allowed besides public addresses
    default_disclosure: str = "banded"  # exact, banded or hidden: keys without their own
    disclosure_bands: str = "8,16,24"  # band edges; the list's threshold ends the last
    signals_per_window: int = 100_000  # signals one key may match per window (0: no cap)
    signal_window_s: float = 3600.0
    probe_window_s: float = 600.0  # probing: near-identical PDQ queries of one key in this window
    probe_distance: int = 2  # ... within this many bits of another query of the key
    probe_neighbours: int = 32  # ... this many of them flag the key
    probe_throttle: bool = False  # a flagged key is refused (429) until its window ends
    # Query-only peers (docs/exchange.md, "Query-only sharing"): rate, disclosure, probing.
    peer_rate_per_s: float = 10.0  # requests/s of a peer key without its own --rate
    peer_disclosure: str = "banded"  # what a peer key's matches reveal, unless its own
    peer_throttle: float = 0.1  # a flagged peer's rate is cut to this share of it
    peer_probe_window_s: float = 3600.0  # a peer's PDQ queries are watched this long
    peer_probe_scan_queries: int = 64  # unmatched, far-apart, non-picture hashes that flag
    peer_probe_scan_far: int = 64  # ... each more than this many bits from the others
    peer_probe_weight_slack: int = 2  # ... with a weight outside 128 +- this
    peer_probe_sweep_queries: int = 12  # a walk this long around a hit flags
    peer_probe_sweep_radius: int = 32  # ... within this many bits of the hit
    peer_probe_sweep_step: int = 2  # ... each step at most this many bits
    # People (docs/serve.md, "People"): sign-in lockout, session timeouts, the cookie.
    login_max_failures: int = 5  # wrong passwords in a row before an account locks
    login_lockout_s: float = 900.0  # how long it stays locked (an admin may unlock sooner)
    session_idle_s: float = 1800.0  # a session unused this long ends
    session_lifetime_s: float = 43200.0  # a session ends this long after sign-in
    cookie_secure: bool = False  # always mark the cookie Secure (else: when the request is TLS)

    def user_policy(self) -> UserPolicy:
        return UserPolicy(
            max_failures=self.login_max_failures,
            lockout_s=self.login_lockout_s,
            session_idle_s=self.session_idle_s,
            session_lifetime_s=self.session_lifetime_s,
        )

    @property
    def json_limit(self) -> int:
        """The cap of a JSON body: ``max_json_bytes``, raised to hold ``max_signals`` signals."""
        return max(self.max_json_bytes, 512 * self.max_signals)

    @classmethod
    def from_env(cls, **overrides: object) -> ServeSettings:
        """Defaults, then ``HASHWATCH_SERVE_<FIELD>`` variables, then ``overrides``."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(_ENV + f.name.upper())
            if raw is None:
                continue
            try:
                if f.name == "audit_log":
                    values[f.name] = Path(raw)
                elif f.type == "str":
                    values[f.name] = raw
                elif f.type == "bool":
                    values[f.name] = raw.lower() in ("1", "true", "yes", "on")
                elif f.type in ("int",):
                    values[f.name] = int(raw)
                else:
                    values[f.name] = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{_ENV}{f.name.upper()}: not a number: {raw!r}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes started by uvicorn."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[_ENV + f.name.upper()] = str(value)
        return out
