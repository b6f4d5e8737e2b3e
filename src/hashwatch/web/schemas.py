"""Request and response bodies of the HTTP API (they document themselves in OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hashwatch.errors import ConfigError
from hashwatch.lists.model import CategoryScheme, EntryStatus, ListKind, check_list_name
from hashwatch.signals.types import HashType, normalize_hash, parse_hash_type
from hashwatch.store.list_import import check_category_map
from hashwatch.store.service import Disclosure, Role

__all__ = [
    "LIST_NAME_ERROR",
    "CreateKey",
    "CreateList",
    "CreateWebhook",
    "EntryIn",
    "EntryStatusChange",
    "ListName",
    "MatchRequest",
    "MatchSignalIn",
    "NewEntries",
    "SignalIn",
    "UpdateKey",
    "UpdateList",
    "valid_list_name",
]


class SignalIn(BaseModel):
    """One hash to match: ``{"type": "pdq", "value": "<64 hex>"}``."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="md5, sha1, sha256, ed2k, sha1_base32 or pdq")
    value: str = Field(max_length=200)
    quality: int | None = Field(None, ge=0, le=100, description="PDQ quality, if known")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return parse_hash_type(value).value  # InvalidHashError is a ValueError: a 422

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        htype = info.data.get("type")
        if htype is None:
            return value  # the type's own error is reported
        return normalize_hash(HashType(htype), value)

    @property
    def hash_type(self) -> HashType:
        return HashType(self.type)


CONTENT_ID = r"^[^\x00-\x1f\x7f]+$"  # printable: it is logged and sent in webhook events


class MatchSignalIn(SignalIn):
    """A signal to match, optionally naming the content it was computed from."""

    content_id: str | None = Field(
        None, min_length=1, max_length=200, pattern=CONTENT_ID, description="overrides the call's"
    )


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[MatchSignalIn] = Field(min_length=1, max_length=1000)
    content_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=CONTENT_ID,
        description="Your id of the content these signals came from: its matches make one "
        "webhook event and are recorded under it.",
    )


def valid_list_name(name: str) -> str:
    """The store's one list-name rule (:func:`check_list_name`) as a pydantic validator: a
    422 of type ``list_name`` whose message never repeats the name."""
    try:
        return check_list_name(name)
    except ConfigError as exc:
        raise PydanticCustomError(LIST_NAME_ERROR, str(exc)) from None


LIST_NAME_ERROR = "list_name"
ListName = Annotated[str, AfterValidator(valid_list_name)]


class CreateList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ListName
    kind: ListKind = ListKind.KNOWN
    scheme: CategoryScheme = CategoryScheme.NONE
    source_org: str | None = Field(None, max_length=200)
    pdq_threshold: int = Field(31, ge=0, le=256)
    description: str | None = Field(None, max_length=10_000)


class UpdateList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ListKind | None = None
    scheme: CategoryScheme | None = None
    source_org: str | None = Field(None, max_length=200)
    pdq_threshold: int | None = Field(None, ge=0, le=256)
    description: str | None = Field(None, max_length=10_000)
    category_map: dict[str, str] | None = None
    video_min_compared_pct: float | None = Field(None, ge=0, le=100)
    video_min_query_pct: float | None = Field(None, ge=0, le=100)

    @field_validator("category_map")
    @classmethod
    def _category_map(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        try:
            return check_category_map(value)  # the store's rule: one bound, one message
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class FrameIn(BaseModel):
    """One hashed frame of a known video (a vPDQ line)."""

    model_config = ConfigDict(extra="forbid")
    frame: int = Field(ge=0)
    timestamp: float = Field(ge=0)
    pdq: str
    quality: int = Field(ge=0, le=100)

    @field_validator("pdq")
    @classmethod
    def _pdq(cls, value: str) -> str:
        return normalize_hash(HashType.PDQ, value)


class EntryIn(BaseModel):
    """An entry to add: its hashes (the first is its key), a video's frame hashes, and the
    curator's facts."""

    model_config = ConfigDict(extra="forbid")
    hashes: list[SignalIn] = Field(min_length=1, max_length=16)
    frames: list[FrameIn] = Field(
        default_factory=list, max_length=100_000, description="vPDQ frames of a video"
    )
    category: str | None = Field(None, max_length=64)
    series: str | None = Field(None, max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    comment: str | None = Field(None, max_length=10_000)

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, tags: list[str]) -> list[str]:
        if any(len(t) > 200 for t in tags):
            raise ValueError("a tag has at most 200 characters")
        return tags


class NewEntries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[EntryIn] = Field(min_length=1, max_length=10_000)


class EntryStatusChange(BaseModel):
    """Entries named by any of their hashes or by id."""

    model_config = ConfigDict(extra="forbid")
    hashes: list[SignalIn] = Field(default_factory=list, max_length=10_000)
    entry_ids: list[int] = Field(default_factory=list, max_length=10_000)
    reason: str | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> EntryStatusChange:
        if not self.hashes and not self.entry_ids:
            raise ValueError("name entries by 'hashes' or 'entry_ids'")
        if any(i < 1 or i > 2**62 for i in self.entry_ids):
            raise ValueError("entry_ids are positive integers")
        return self


STATUS_ACTIONS: dict[str, EntryStatus] = {
    "revoke": EntryStatus.REVOKED,
    "dispute": EntryStatus.DISPUTED,
    "reinstate": EntryStatus.ACTIVE,
}


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    rate_per_s: int | None = Field(None, ge=1, le=1_000_000)
    disclosure: Disclosure | None = Field(
        None, description="What matches reveal: exact, banded or hidden (default: the server's)"
    )
    signals_per_window: int | None = Field(
        None, ge=0, le=10**9, description="Signals per window (0: no cap; default: the server's)"
    )


class UpdateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disclosure: Disclosure | None = None
    rate_per_s: int | None = Field(None, ge=1, le=1_000_000)
    signals_per_window: int | None = Field(None, ge=0, le=10**9)


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://", max_length=2000)
    list: str | None = Field(None, max_length=200, description="only matches in this list")
    category: str | None = Field(None, max_length=64, description="only this category")


def jsonable(value: Any) -> Any:
    """Dates as ISO strings (list infos and import rows hold datetimes)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
