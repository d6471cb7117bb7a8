"""When to poll a feed next (pure: every input, including randomness and time, is passed in).

- A feed that answers follows its publishing rate: poll about twice per average gap between
  its recent entries, bounded by ``PollSettings.min_interval``/``max_interval``.
- The publisher's own hints are floors: ``Cache-Control: max-age``, RSS ``<ttl>``,
  ``sy:updatePeriod``/``sy:updateFrequency``, and ``Retry-After`` (on 429/503).
- Errors back off exponentially from the default interval; a feed failing for
  ``UNHEALTHY_AFTER`` is unhealthy and polled at ``max_interval``: rarely, never dropped.
- Jitter (+-10%) keeps thousands of feeds from moving in lock-step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from newswire.settings import PollSettings

JITTER = 0.10
UNHEALTHY_AFTER = timedelta(days=3)
RATE_WINDOW = timedelta(days=14)
RATE_ENTRIES = 20
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Hints:
    """What the publisher said about polling (all in seconds; None = not said)."""

    max_age: float | None = None
    ttl: float | None = None
    update_period: float | None = None
    retry_after: float | None = None

    def floor(self) -> float:
        return max((v for v in (self.max_age, self.ttl, self.update_period, self.retry_after)
                    if v is not None), default=0.0)


def cache_max_age(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``Cache-Control: max-age`` (``no-cache``/``no-store`` give None)."""
    value = (headers or {}).get("cache-control", "")
    if not value or "no-store" in value.lower() or "no-cache" in value.lower():
        return None
    match = _MAX_AGE.search(value)
    return float(match.group(1)) if match else None


def publishing_interval(published: Iterable[datetime | None], now: datetime) -> float | None:
    """Average seconds between the feed's recent entries, or None when it cannot be told.

    A feed that has gone quiet counts its silence as one more gap, so polling slows down.
    """
    recent = sorted(
        (p for p in published if p is not None and now - RATE_WINDOW <= p <= now + timedelta(hours=1)),
        reverse=True,
    )[:RATE_ENTRIES]
    if len(recent) < 2:
        return None
    span = (recent[0] - recent[-1]).total_seconds()
    gaps = len(recent) - 1
    silence = max(0.0, (now - recent[0]).total_seconds())
    average = span / gaps
    if silence > average:
        average = (span + silence) / (gaps + 1)
    return max(average, 1.0)


def is_unhealthy(first_error_at: datetime | None, now: datetime) -> bool:
    return first_error_at is not None and now - first_error_at >= UNHEALTHY_AFTER


def next_interval(
    poll: PollSettings,
    *,
    ok: bool,
    rate_interval: float | None,
    previous: float | None,
    error_count: int,
    unhealthy: bool,
    hints: Hints,
    rand: float,
) -> float:
    """Seconds until the next poll. ``rand`` is a uniform number in [0, 1) for the jitter."""
    low, high = poll.min_interval, max(poll.max_interval, poll.min_interval)
    if unhealthy:
        base = high
    elif not ok:
        base = poll.default_interval * 2.0 ** min(max(error_count - 1, 0), 20)
    elif rate_interval is not None:
        base = rate_interval / 2.0  # two polls per average gap: a story waits ~1/4 gap on average
    else:
        base = previous if previous is not None else poll.default_interval
    base = max(base, hints.floor())
    jittered = base * (1.0 + JITTER * (2.0 * rand - 1.0))
    return min(max(jittered, low), high)
