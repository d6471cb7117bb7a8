"""Idle backoff for aiokafka's fetcher, for brokers that answer fetches at once.

A Kafka fetch asks the broker to hold the request up to ``fetch_max_wait_ms`` (Faust asks
for 1.5 s) until data arrives, so an idle consumer sends a couple of requests a second.
The embedded broker (noida) ignores that wait and answers an empty fetch immediately, and
aiokafka's background fetch task then sends the next one at once: an idle Faust worker spun
a core (46% of one core measured, py-spy: all in ``Fetcher._proc_fetch_request``).

``install()`` wraps that method: after a fetch that brought nothing and came back *sooner*
than the broker was allowed to hold it, the task waits before the next fetch to the same
node. The wait doubles with each empty fetch in a row (from ``FIRST_PAUSE`` up to ``cap``) and
never exceeds what the broker could have held the request anyway, so against a real Kafka,
which holds empty fetches for the full wait, it changes nothing; any record resets it.
``cap`` bounds the latency this adds to the first record after an idle spell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.01  # seconds after the first empty fetch in a row
# Longest pause: the worst latency added to a record after idleness, per hop. Measured on
# an idle `newswire up`: cap 0.2 s -> processor 0.9% of a core, 0.05 s -> 2.4%; and 0.2 s
# added ~0.1 s to the median poll-to-searchable latency at 3 articles/s. 0.1 s between.
DEFAULT_CAP = 0.1

_STATE = "_newswire_idle_streak"


def idle_pause(elapsed: float, max_wait: float, streak: int, *,
               first: float = FIRST_PAUSE, cap: float = DEFAULT_CAP) -> float:
    """Seconds to wait after the ``streak``-th empty fetch in a row (1 = the first) that took
    ``elapsed`` seconds, when the broker was allowed to hold it ``max_wait`` seconds."""
    if streak < 1:
        return 0.0
    grown = first * 2.0 ** min(streak - 1, 30)
    return max(0.0, min(cap, grown, max_wait - max(0.0, elapsed)))


def install(cap: float = DEFAULT_CAP) -> bool:
    """Patch ``aiokafka.consumer.fetcher.Fetcher`` once per process; return True if this call
    patched it (False: already patched, or the aiokafka internals moved and nothing changed)."""
    from aiokafka.consumer import fetcher as fetcher_mod

    cls = fetcher_mod.Fetcher
    original = getattr(cls, "_proc_fetch_request", None)
    if original is None:
        log.warning("aiokafka Fetcher has no _proc_fetch_request; idle backoff not installed")
        return False
    if getattr(original, "_newswire_idle", False):
        return False

    async def proc_fetch_request(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
        started = time.monotonic()
        has_data = await original(self, assignment, node_id, request)
        streaks: dict[int, int] = self.__dict__.setdefault(_STATE, {})
        if has_data:
            streaks.pop(node_id, None)
            return has_data
        streaks[node_id] = streaks.get(node_id, 0) + 1
        pause = idle_pause(time.monotonic() - started, self._fetch_max_wait_ms / 1000,
                           streaks[node_id], cap=cap)
        if pause > 0:
            try:
                await asyncio.sleep(pause)
            except asyncio.CancelledError:
                # The original treats cancellation (close, unassignment) as "no result";
                # the fetch routine awaits these tasks and expects exactly that.
                return False
        return has_data

    proc_fetch_request._newswire_idle = True  # type: ignore[attr-defined]
    proc_fetch_request.__wrapped__ = original  # type: ignore[attr-defined]
    cls._proc_fetch_request = proc_fetch_request
    log.debug("aiokafka idle fetch backoff installed cap=%s", cap)
    return True
