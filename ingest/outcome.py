"""A poll's outcome -> the feed's next state (pure: time and randomness are passed in)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ingest.parse import REASON_TEXT, ParsedFeed
from ingest.schedule import Hints, cache_max_age, is_unhealthy, next_interval, publishing_interval
from ingest.state import FeedState, utc
from newswire.http import FetchResult
from newswire.settings import PollSettings


def outcome_reason(result: FetchResult, parsed: ParsedFeed | None) -> str | None:
    """The one code a poll is counted under: None = fine (new content or 304)."""
    if result.reason is not None:
        return result.reason
    if result.status == 304:
        return None
    if parsed is not None and parsed.reason is not None:
        return parsed.reason
    return None


def after_poll(
    feed: FeedState,
    result: FetchResult,
    parsed: ParsedFeed | None,
    *,
    now: float,
    poll: PollSettings,
    rand: float,
) -> FeedState:
    """The feed's state after one poll (counts, validators, errors, next poll time)."""
    reason = outcome_reason(result, parsed)
    moved_to = result.permanent_url if result.permanent_url and not result.reason else None
    common = {
        "polls": feed.polls + 1,
        "last_poll": now,
        "last_status": result.status,
        "first_poll": feed.first_poll or now,
        "fetch_url": moved_to or feed.fetch_url,
    }
    if reason is not None:
        first_error = feed.first_error_at or now
        unhealthy = is_unhealthy(utc(first_error), utc(now) or datetime.now(UTC))
        errors = feed.error_count + 1
        interval = next_interval(
            poll, ok=False, rate_interval=feed.rate_interval, previous=feed.interval,
            error_count=errors, unhealthy=unhealthy,
            hints=Hints(retry_after=result.retry_after), rand=rand,
        )
        text = result.error or REASON_TEXT.get(reason) or (parsed.bozo if parsed else None) or reason
        return replace(
            feed, **common, errors=feed.errors + 1, error_count=errors, first_error_at=first_error,
            last_error=text[:500], last_error_reason=reason, unhealthy=unhealthy,
            interval=interval, next_poll=now + interval,
        )

    rate = feed.rate_interval
    floor = feed.hint_floor
    updates: dict[str, object] = {}
    if result.status == 304:
        updates["not_modified"] = feed.not_modified + 1
        max_age = cache_max_age(result.headers)
        hints = Hints(max_age=max_age, update_period=floor)
    else:
        assert parsed is not None
        observed = publishing_interval((e.published for e in parsed.entries), utc(now) or
                                       datetime.now(UTC))
        rate = observed if observed is not None else rate
        hints = Hints(max_age=cache_max_age(result.headers), ttl=parsed.ttl_seconds,
                      update_period=parsed.update_seconds)
        floor = max((v for v in (parsed.ttl_seconds, parsed.update_seconds) if v), default=None)
        updates.update(
            etag=result.headers.get("etag"), last_modified=result.headers.get("last-modified"),
            title=parsed.title or feed.title, hub=parsed.hub, site_url=parsed.site_url,
            entries_rejected=feed.entries_rejected + len(parsed.rejected),
        )
    interval = next_interval(
        poll, ok=True, rate_interval=rate, previous=feed.interval, error_count=0,
        unhealthy=False, hints=hints, rand=rand,
    )
    return replace(
        feed, **common, **updates, last_success=now, error_count=0, first_error_at=None,
        unhealthy=False, rate_interval=rate, hint_floor=floor, interval=interval,
        next_poll=now + interval,
    )
