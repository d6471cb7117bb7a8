"""Prometheus metrics of the poller (the same figures `newswire feeds status` shows)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FEED_POLLS = Counter("newswire_feed_polls_total", "Feed polls by outcome", ["outcome"])
NOT_MODIFIED = Counter("newswire_feed_not_modified_total", "Polls answered 304 Not Modified")
POLL_ERRORS = Counter("newswire_feed_errors_total", "Failed feed polls by reason", ["reason"])
ENTRIES_PUBLISHED = Counter("newswire_entries_published_total",
                            "Entries published to Kafka", ["kind"])
ENTRIES_REJECTED = Counter("newswire_entries_rejected_total",
                           "Feed entries that could not become records", ["reason"])
FEEDS = Gauge("newswire_feeds", "Feeds being polled", ["health"])
WEBSUB = Counter("newswire_websub_total", "WebSub events (requested, refused, verified, pushed)",
                 ["event"])
