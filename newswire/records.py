"""The messages that travel between the stages: defined once, imported everywhere.

Every record is frozen, typed, carries a ``schema_version`` and uses UTC datetimes.
On the wire a record is compact JSON (``to_bytes``/``from_bytes``); the Kafka key is
always ``Record.key`` (a hash of the canonical URL, see ``newswire.keys``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def _to_utc(value: datetime | None) -> datetime | None:
    # Naive datetimes are taken as UTC; aware ones are converted, so no local time leaks in.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UTCDateTime = Annotated[datetime, AfterValidator(_to_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Self:
        return cls.model_validate_json(raw)


class FeedEntry(Record):
    """One item of a feed, as the poller publishes it to the entries topic."""

    key: str
    url: str  # canonical URL, tracking parameters removed
    link: str  # the link exactly as the feed gave it (resolved against the feed URL)
    guid: str | None = None
    title: str | None = None
    summary: str | None = None
    published: UTCDateTime | None = None
    feed: str  # URL of the feed it came from
    source: str  # host of the article URL
    polled_at: UTCDateTime = Field(default_factory=utcnow)
    content_hash: str = ""  # hash of title+summary: a change re-publishes as an update
    update: bool = False


class CleanArticle(Record):
    """What the cleaning stage makes of one fetched page (pure output of ``clean``)."""

    url: str
    canonical_url: str | None = None
    title: str | None = None
    text: str
    author: str | None = None
    published: UTCDateTime | None = None
    language: str | None = None
    sitename: str | None = None
    image: str | None = None
    tags: tuple[str, ...] = ()  # the publisher's own section/tags
    partial: bool = False  # text fell back to the feed summary or is too short to be a story
    flags: tuple[str, ...] = ()  # e.g. "paywall", "cookie_wall", "liveblog_index", "summary_fallback"


class ConflictTag(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    score: float
    evidence: tuple[str, ...] = ()


class EventTypeTag(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    event_type: str
    score: float


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    country: str | None = None
    lat: float
    lon: float


class Casualties(BaseModel):
    model_config = ConfigDict(frozen=True)
    killed: int | None = None
    injured: int | None = None
    killed_sentence: str | None = None
    injured_sentence: str | None = None


class Tags(Record):
    """Pure output of the ``tag`` stage."""

    conflict_related: bool = False
    conflict_score: float = 0.0
    conflicts: tuple[ConflictTag, ...] = ()
    event_types: tuple[EventTypeTag, ...] = ()
    actors: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    casualties: Casualties | None = None


class Article(Record):
    """An enriched article: what the processors publish and the indexer stores.

    ``id`` is the key (hash of the canonical URL) and the search document id.
    """

    id: str
    url: str
    canonical_url: str | None = None
    title: str | None = None
    text: str = ""
    summary: str | None = None
    author: str | None = None
    published: UTCDateTime | None = None
    ingested: UTCDateTime = Field(default_factory=utcnow)
    language: str | None = None
    sitename: str | None = None
    source: str = ""
    feed: str | None = None
    image: str | None = None
    fetched_url: str | None = None  # where the page was fetched in the end (after redirects)
    redirects: tuple[str, ...] = ()  # each redirect's target, in order (empty: none)
    section_tags: tuple[str, ...] = ()
    partial: bool = False
    flags: tuple[str, ...] = ()
    fingerprint: str | None = None  # 64-bit SimHash of the text, hex
    story_id: str | None = None  # groups near-duplicate copies of one story
    # tags
    conflict_related: bool = False
    conflict_score: float = 0.0
    conflicts: tuple[ConflictTag, ...] = ()
    event_types: tuple[EventTypeTag, ...] = ()
    actors: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    casualties: Casualties | None = None

    @property
    def key(self) -> str:
        return self.id


class DeadLetter(Record):
    """A message a stage could not handle, with why. Headers carry the same facts for tooling."""

    stage: Literal["poll", "process", "index", "alert"]
    reason: str
    error: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: str | None = None  # the original value (utf-8, replaced), truncated
    at: UTCDateTime = Field(default_factory=utcnow)
