"""Settings, built once and passed in: never read from globals deep inside the library."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from hashwatch.errors import ConfigError

__all__ = ["DEFAULT_PDQ_THRESHOLD", "MIN_PDQ_QUALITY", "Settings"]

DEFAULT_PDQ_THRESHOLD = 31  # Meta's published match distance for PDQ
MIN_PDQ_QUALITY = 50  # Meta's rule: hashes of lower quality are not matched
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970  # Pillow's decompression-bomb limit (2 x 89 MP)
# Pixels one file may decode over all its frames (= hashwatch.signals.image's default).
DEFAULT_MAX_DECODE_PIXELS = 268_435_456


@dataclass(frozen=True)
class Settings:
    """Where hashwatch keeps its state and how it hashes.

    ``database_url`` is a SQLAlchemy URL: ``sqlite:///path`` (the default, in the user's data
    directory) or ``postgresql+psycopg://user@host/db`` for server mode.
    """

    database_url: str
    data_dir: Path
    pdq_policy: str = "fast"
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Decode budget per file (HASHWATCH_MAX_DECODE_PIXELS; docs/signals.md); 0: none.
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS
    min_pdq_quality: int = MIN_PDQ_QUALITY
    # Also hash the picture inside a uniform border (HASHWATCH_BORDER_TRIM=off turns it off).
    border_trim: bool = True
    # Which runner hashes work units (``hashwatch.runner.RUNNERS``): "local", a process pool.
    runner: str = "local"
    # The Ray cluster the "ray" runner uses (HASHWATCH_RAY_ADDRESS; None: RAY_ADDRESS or local).
    ray_address: str | None = None
    # The PDQ index: "local" (in this process) or "ray-shards:N" (N Ray actors,
    # hashwatch.matching.sharded; HASHWATCH_INDEX), and how long a query waits for a shard
    # that is reloading (HASHWATCH_INDEX_WAIT_S; 0: it fails at once, naming the shard).
    index: str = "local"
    index_wait_s: float = 0.0
    # The share of a list's live entries a replace import may withdraw without --force
    # (HASHWATCH_MAX_WITHDRAW_SHARE, 0 to 1; docs/lists.md).
    max_withdraw_share: float = 0.5
    # Zips larger than this many bytes are scanned as parts of member ranges that workers
    # share (HASHWATCH_ARCHIVE_SPLIT_BYTES; 0: never; hashwatch.scan.archive_split).
    archive_split_bytes: int = 1 << 30

    @classmethod
    def from_env(
        cls, database_url: str | None = None, data_dir: str | Path | None = None
    ) -> Settings:
        """Settings from arguments, then ``HASHWATCH_*`` environment variables, then defaults."""
        env = os.environ
        base = Path(data_dir or env.get("HASHWATCH_DATA_DIR") or user_data_dir("hashwatch"))
        url = database_url or env.get("HASHWATCH_DATABASE_URL")
        if not url:
            url = f"sqlite:///{base / 'hashwatch.sqlite3'}"
        if "://" not in url:
            raise ConfigError(f"database URL {url!r} is not a URL (e.g. sqlite:///hw.db)")
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # psycopg 3 is the driver we ship; SQLAlchemy's bare scheme means psycopg2.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        policy = env.get("HASHWATCH_PDQ_POLICY", "fast")
        try:
            max_pixels = int(env.get("HASHWATCH_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))
        except ValueError as exc:
            raise ConfigError("HASHWATCH_MAX_IMAGE_PIXELS must be an integer") from exc
        try:
            budget = int(env.get("HASHWATCH_MAX_DECODE_PIXELS", DEFAULT_MAX_DECODE_PIXELS))
        except ValueError as exc:
            raise ConfigError("HASHWATCH_MAX_DECODE_PIXELS must be an integer") from exc
        if budget < 0:
            raise ConfigError("HASHWATCH_MAX_DECODE_PIXELS must be 0 (no budget) or more")
        try:
            withdraw = float(env.get("HASHWATCH_MAX_WITHDRAW_SHARE", "0.5"))
        except ValueError as exc:
            raise ConfigError("HASHWATCH_MAX_WITHDRAW_SHARE must be a number") from exc
        if not 0 <= withdraw <= 1:
            raise ConfigError("HASHWATCH_MAX_WITHDRAW_SHARE must be between 0 and 1")
        return cls(
            database_url=url,
            data_dir=base,
            pdq_policy=policy,
            max_image_pixels=max_pixels,
            max_decode_pixels=budget,
            runner=env.get("HASHWATCH_RUNNER", "local").strip().lower() or "local",
            ray_address=env.get("HASHWATCH_RAY_ADDRESS") or None,
            index=env.get("HASHWATCH_INDEX", "local").strip().lower() or "local",
            index_wait_s=_float_env("HASHWATCH_INDEX_WAIT_S", 0.0),
            max_withdraw_share=withdraw,
            archive_split_bytes=int(_float_env("HASHWATCH_ARCHIVE_SPLIT_BYTES", 1 << 30)),
            border_trim=_switch_env("HASHWATCH_BORDER_TRIM", True),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///`` URL (None for in-memory or other databases)."""
        if not self.is_sqlite:
            return None
        rest = self.database_url.split(":///", 1)[-1] if ":///" in self.database_url else ""
        if not rest or rest == ":memory:":
            return None
        return Path(rest.split("?", 1)[0])

    @property
    def index_path(self) -> Path:
        """The persisted PDQ index lives beside the database it mirrors.

        For SQLite that is the database file's directory; for a server database it is the data
        directory, under a name derived from the URL (without credentials), so two databases
        never share one index file.
        """
        db_file = self.sqlite_path
        if db_file is not None:
            return db_file.with_name(db_file.name + ".pdqindex")
        safe = self.database_url
        if "@" in safe:
            scheme, rest = safe.split("://", 1)
            safe = scheme + "://" + rest.split("@", 1)[1]
        tag = hashlib.sha256(safe.encode()).hexdigest()[:16]
        return self.data_dir / "indexes" / f"{tag}.pdqindex"


def _float_env(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number") from exc
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more")
    return value


def _switch_env(name: str, default: bool) -> bool:
    """An on/off setting: on, off, 1, 0, true, false, yes, no (any case); unset: ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "1", "true", "yes"):
        return True
    if raw in ("off", "0", "false", "no"):
        return False
    raise ConfigError(f"{name} must be on or off")
