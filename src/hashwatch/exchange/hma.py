"""The other direction: a python-threatexchange ``SignalExchangeAPI`` that reads a hashwatch
feed, so a Hasher-Matcher-Actioner (HMA) instance, or pytx's own CLI, can subscribe to a
hashwatch list.

It is importable only with the ``exchange`` extra (``pip install 'hashwatch[exchange]'``).
Every page is fetched and verified by hashwatch's own feed client
(:class:`~hashwatch.exchange.feed_client.FeedExchange`): the publisher's signature on each
checkpoint, the pinned origin, no rollback, consistency with the last verified checkpoint,
sequence numbers and the page's consistency proof. A page that fails raises
:class:`~hashwatch.errors.FeedVerificationError` before HMA sees any of it.

Records are keyed by the hashwatch entry key (a revocation is ``None`` for that key: pytx's
delta merge deletes it with all its hashes); ``naive_convert_to_signal_type`` maps each
entry's hashes onto the signal types HMA runs: ``pdq`` onto pytx's ``pdq``, ``md5`` onto
``video_md5`` (an MD5 of the file's bytes), any other by its name. Opinions go back through
hashwatch's own ``hashwatch peers`` subscription; this API does not send them
(``report_opinion`` raises ``NotImplementedError``, which pytx callers expect of an API that
takes none).

The token is read as pytx reads credentials: the ``HASHWATCH_FEED_TOKEN`` environment
variable or the file ``~/.hashwatch_feed_token``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from hashwatch.errors import ExchangeError
from hashwatch.exchange._http import INSTALL_HINT
from hashwatch.exchange.base import PeerConfig, RemoteEntry

try:
    from threatexchange.exchanges import auth
    from threatexchange.exchanges import fetch_state as state
    from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
    from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
    from threatexchange.signal_type.signal_base import SignalType
except ImportError:  # pragma: no cover - exercised by the extra's absence only
    raise ExchangeError(f"HMA's exchange API needs python-threatexchange: {INSTALL_HINT}") from None

__all__ = [
    "HashwatchCheckpoint",
    "HashwatchCollabConfig",
    "HashwatchCredentials",
    "HashwatchEntry",
    "HashwatchSignalExchangeAPI",
]

_API_NAME = "hashwatch"
# hashwatch signal type -> pytx SignalType name, where they differ
_PYTX_NAME = {"md5": "video_md5"}


@dataclass
class _HashwatchCollabRequired:
    url: str = field(metadata={"help": "the publisher's hashwatch service, https://..."})
    remote_list: str = field(metadata={"help": "the published list to read"})
    key: str = field(metadata={"help": "the publisher's verifier key (hashwatch exchange key)"})


@dataclass
class HashwatchCollabConfig(CollaborationConfigWithDefaults, _HashwatchCollabRequired):
    """A subscription to one hashwatch feed."""

    api: str = field(init=False, default=_API_NAME)
    origin: str = field(
        default="",
        metadata={"help": "the feed's origin to pin (default: the first checkpoint's)"},
    )


@dataclass
class HashwatchCheckpoint(state.FetchCheckpointBase):
    """Records applied, the right edge of their Merkle tree, the last verified checkpoint."""

    after: int = 0
    frontier: list[str] = field(default_factory=list)  # base64 hashes
    note: str | None = None
    origin: str | None = None

    def get_progress_timestamp(self) -> int | None:
        return None


@dataclass
class HashwatchEntry(state.FetchedSignalMetadata):
    """One published entry: its hashes, the publisher's category and dispute flag."""

    hashes: list[tuple[str, str]]
    category: str | None = None
    scheme: str | None = None
    disputed: bool = False

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        tags = {f"{self.scheme or ''}:{self.category}"} if self.category else set()
        opinions = [state.SignalOpinion(False, state.SignalOpinionCategory.POSITIVE_CLASS, tags)]
        if self.disputed:
            negative = state.SignalOpinionCategory.NEGATIVE_CLASS
            opinions.append(state.SignalOpinion(False, negative, set()))
        return opinions

    @classmethod
    def of(cls, entry: RemoteEntry) -> HashwatchEntry:
        return cls(
            [(h.hash_type, h.value) for h in entry.hashes],
            entry.category,
            entry.scheme,
            entry.disputed,
        )


@dataclass
class HashwatchCredentials(auth.CredentialHelper):
    ENV_VARIABLE: t.ClassVar[str] = "HASHWATCH_FEED_TOKEN"
    FILE_NAME: t.ClassVar[str] = "~/.hashwatch_feed_token"

    token: str = field(metadata={"help": "the API key the publisher created for you"})

    @classmethod
    def _from_str(cls, s: str) -> HashwatchCredentials:
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return bool(self.token)


HashwatchDelta = state.FetchDelta[str, HashwatchEntry, HashwatchCheckpoint]


class HashwatchSignalExchangeAPI(
    auth.SignalExchangeWithAuth[HashwatchCollabConfig, HashwatchCredentials],
    SignalExchangeAPI[
        HashwatchCollabConfig, HashwatchCheckpoint, HashwatchEntry, str, HashwatchEntry
    ],
):
    """A hashwatch feed, verified page by page, as pytx and HMA fetch it."""

    def __init__(self, collab: HashwatchCollabConfig, token: str) -> None:
        self.collab = collab
        self.token = token

    @classmethod
    def for_collab(
        cls,
        collab: HashwatchCollabConfig,
        credentials: HashwatchCredentials | None = None,
    ) -> HashwatchSignalExchangeAPI:
        credentials = credentials or HashwatchCredentials.get(cls)
        return cls(collab, credentials.token)

    @classmethod
    def get_name(cls) -> str:
        return _API_NAME

    @staticmethod
    def get_config_cls() -> type[HashwatchCollabConfig]:
        return HashwatchCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[HashwatchCheckpoint]:
        return HashwatchCheckpoint

    @staticmethod
    def get_record_cls() -> type[HashwatchEntry]:
        return HashwatchEntry

    @staticmethod
    def get_credential_cls() -> type[HashwatchCredentials]:
        return HashwatchCredentials

    def fetch_iter(
        self,
        _supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: HashwatchCheckpoint | None,
    ) -> t.Iterator[HashwatchDelta]:
        from hashwatch.exchange.feed_client import FeedExchange

        origin = (checkpoint.origin if checkpoint else None) or self.collab.origin
        options = {"key": self.collab.key, **({"origin": origin} if origin else {})}
        feed = FeedExchange(
            PeerConfig(
                self.collab.name,
                self.collab.url,
                token=self.token,
                remote_list=self.collab.remote_list,
                options=options,
            )
        )
        resume = None
        if checkpoint is not None:
            resume = feed.checkpoint_from_json(
                {
                    "after": checkpoint.after,
                    "frontier": checkpoint.frontier,
                    "checkpoint": checkpoint.note,
                }
            )
        for delta in feed.fetch_iter(resume):
            saved = delta.checkpoint.to_json()
            yield state.FetchDelta(
                {
                    key: None if entry is None else HashwatchEntry.of(entry)
                    for key, entry in delta.updates.items()
                },
                HashwatchCheckpoint(
                    saved["after"], saved["frontier"], saved["checkpoint"], feed.origin
                ),
            )

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: HashwatchCollabConfig,
        fetched: t.Mapping[str, HashwatchEntry],
    ) -> dict[type[SignalType], dict[str, HashwatchEntry]]:
        by_name = {st.get_name(): st for st in signal_types}
        out: dict[type[SignalType], dict[str, HashwatchEntry]] = {}
        for entry in fetched.values():
            if entry is None:
                continue
            for hash_type, value in entry.hashes:
                st = by_name.get(_PYTX_NAME.get(hash_type, hash_type))
                if st is not None:
                    out.setdefault(st, {})[value] = entry
        return out
