"""Prometheus counters of the poller. Feed health (the figures of `newswire feeds status`,
per feed and in total) is read from the state store on scrape: ``ingest.health_metrics``."""

from __future__ import annotations

from prometheus_client import Counter

FEED_POLLS = Counter("newswire_feed_polls_total", "Feed polls by outcome", ["outcome"])
NOT_MODIFIED = Counter("newswire_feed_not_modified_total", "Polls answered 304 Not Modified")
POLL_ERRORS = Counter("newswire_feed_errors_total", "Failed feed polls by reason", ["reason"])
ENTRIES_PUBLISHED = Counter("newswire_entries_published_total",
                            "Entries published to Kafka", ["kind"])
ENTRIES_REJECTED = Counter("newswire_entries_rejected_total",
                           "Feed entries that could not become records", ["reason"])
DEAD_LETTERS = Counter("newswire_poll_dead_letters_total",
                       "Feed entries dead-lettered to dlq.poll (once per entry)", ["reason"])
HOST_HOLDS = Counter("newswire_feed_host_holds_total",
                     "Polls put off because the feed's host asked us to wait (429/503 Retry-After)")
WEBSUB = Counter("newswire_websub_total", "WebSub events (requested, refused, verified, pushed)",
                 ["event"])
