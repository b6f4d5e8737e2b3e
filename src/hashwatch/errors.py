"""The one exception tree of hashwatch.

Every error the library raises on purpose derives from :class:`HashwatchError`. The CLI turns
them into exit codes, the HTTP API into status codes, each in one place.
"""

from __future__ import annotations

__all__ = [
    "AuditLogError",
    "CaseNotFoundError",
    "CaseRefusedError",
    "ConfigError",
    "DatabaseConflictError",
    "DatabaseValueError",
    "DecodeBudgetError",
    "DecodeError",
    "EntryNotFoundError",
    "ExchangeError",
    "FeedVerificationError",
    "HashwatchError",
    "IndexFormatError",
    "InvalidHashError",
    "KeyNotFoundError",
    "ListExistsError",
    "ListFormatError",
    "ListNotFoundError",
    "PaymentsInputError",
    "PeerNotFoundError",
    "ReviewConflictError",
    "SignInError",
    "UserNotFoundError",
    "WebhookNotFoundError",
]


class HashwatchError(Exception):
    """Base class of every error hashwatch raises on purpose."""

    exit_code = 1


class ConfigError(HashwatchError):
    """A setting is missing or malformed (database URL, data directory, option)."""

    exit_code = 2


class InvalidHashError(HashwatchError, ValueError):
    """A hash value does not have the shape its type requires."""

    exit_code = 2

    def __init__(self, hash_type: str, value: str, reason: str) -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"invalid {hash_type} hash {shown!r}: {reason}")
        self.hash_type = hash_type
        self.value = value
        self.reason = reason


class DecodeError(HashwatchError):
    """Media could not be decoded (corrupt, truncated, unsupported, too large)."""


class DecodeBudgetError(DecodeError):
    """Decoding would take more pixels than the decode budget allows (``max_decode_pixels``)."""


class ListFormatError(HashwatchError):
    """A hash-list file is malformed; ``where`` names the line or record."""

    exit_code = 3

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


class ListNotFoundError(HashwatchError, LookupError):
    """No hash list with that name exists."""

    exit_code = 4


class ListExistsError(HashwatchError):
    """A hash list with that name exists already (and the call would create it)."""

    exit_code = 4


class EntryNotFoundError(HashwatchError, LookupError):
    """No entry matches the given hash or id in that list."""

    exit_code = 4


class IndexFormatError(HashwatchError):
    """A persisted index file is unreadable, of another version, or corrupt."""


class AuditLogError(HashwatchError):
    """The audit log cannot be continued (its last complete line is unreadable)."""


class KeyNotFoundError(HashwatchError, LookupError):
    """No API key with that name exists."""

    exit_code = 4


class WebhookNotFoundError(HashwatchError, LookupError):
    """No webhook or webhook delivery with that id exists."""

    exit_code = 4


class DatabaseValueError(HashwatchError):
    """The database refused a value (too long or malformed for its column). The message
    never holds the statement's parameters: they may be list data."""

    exit_code = 2


class DatabaseConflictError(HashwatchError):
    """The database refused a change that conflicts with a stored record (a constraint).
    The message never holds the statement's parameters or the conflicting key."""

    exit_code = 4


class CaseNotFoundError(HashwatchError, LookupError):
    """No case with that case number or case id is in the database."""

    exit_code = 4


class CaseRefusedError(HashwatchError):
    """A case directory cannot be imported: it fails verification or is not a finished scan."""

    exit_code = 3


class UserNotFoundError(HashwatchError, LookupError):
    """No user account with that name exists."""

    exit_code = 4


class SignInError(HashwatchError):
    """A sign-in was refused. The message is the same whether the name is unknown, the
    password wrong, the account locked or disabled, so it tells a guesser nothing."""

    exit_code = 1


class ReviewConflictError(HashwatchError):
    """A review action does not fit the target's state: a vote on a settled target, a split
    of an item that is in no cluster, a second decision, a revoked decision revoked again."""

    exit_code = 3


class ExchangeError(HashwatchError):
    """Sharing with another organisation failed: a peer unreachable or answering outside its
    documented format, a feed not published, a signing key missing or too open."""

    exit_code = 5


class FeedVerificationError(ExchangeError):
    """A peer's feed failed verification (bad signature, a checkpoint that does not extend the
    last one, a page that does not fit its checkpoint): nothing from it was applied."""

    exit_code = 6


class PeerNotFoundError(ExchangeError, LookupError):
    """No peer (subscription) with that name exists."""

    exit_code = 4


class PaymentsInputError(ConfigError):
    """A transaction file does not fit the column mapping (``column`` names what is missing)."""

    def __init__(self, message: str, *, path: str, column: str | None = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.column = column
