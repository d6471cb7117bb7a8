"""The dead-letter limit every stage shares: halt instead of dead-lettering a whole topic.

A dead letter is the right outcome for one bad record. When most records of a stage fail at
once the cause is nearly always a bad deploy or a broken dependency, not bad input, and
dead-lettering everything would empty the topic into the DLQ. A stage then stops without
committing (exit code ``HALTED``), so the records wait in Kafka for the fixed stage.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from newswire.records import DeadLetter
from newswire.settings import DeadLetterSettings

HALTED = 3  # exit code: too many dead letters, stopped without committing

# A dead letter keeps the whole original value when the letter fits in this many bytes: under
# Kafka's default max.message.bytes and the producers' max.request.size (~1 MB), with room for
# headers. A bigger one keeps the head, says so in the ``payload_truncated`` header, and
# `newswire dlq replay` re-reads the original from its topic, partition and offset.
MAX_LETTER_BYTES = 900_000


def letter_message(letter: DeadLetter, original: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The DLQ value and headers of ``letter`` (its topic, partition, offset, key, stage,
    reason and error set) carrying as much of the ``original`` value as fits (pure)."""
    keep = len(original)
    while True:
        payload = original[:keep].decode("utf-8", "replace")
        value = letter.model_copy(update={"payload": payload}).to_bytes()
        if len(value) <= MAX_LETTER_BYTES or keep == 0:
            break
        # JSON escaping can grow the payload (quotes, control bytes): cut by the excess
        keep = max(0, min(keep - (len(value) - MAX_LETTER_BYTES), keep // 2 + keep // 4))
    headers = [
        ("original_topic", (letter.topic or "").encode()),
        ("original_partition", str(letter.partition).encode()),
        ("original_offset", str(letter.offset).encode()),
        ("stage", letter.stage.encode()),
        ("reason", letter.reason.encode()),
        ("exception", (letter.error or "")[:500].encode()),
        ("payload_bytes", str(len(original)).encode()),
    ]
    if keep < len(original):
        headers.append(("payload_truncated", b"1"))
    return value, headers


@dataclass
class DeadLetterLimit:
    """Halts a stage when too large a share of its recent records is dead-lettered (no I/O).

    The share is over the last ``window`` records (whole batches: the oldest batch is dropped
    while the rest still covers the window), and only once ``min_records`` were seen, so a
    few bad records at start do not halt."""

    max_share: float = 0.5
    window: int = 1000
    min_records: int = 100
    _batches: deque[tuple[int, int]] = field(default_factory=deque)
    _records: int = 0
    _dead: int = 0

    @classmethod
    def from_settings(cls, settings: DeadLetterSettings) -> DeadLetterLimit:
        return cls(settings.max_share, settings.window, settings.min_records)

    def add(self, records: int, dead: int) -> str | None:
        """Count a batch; the reason to halt, or None."""
        self._batches.append((records, dead))
        self._records += records
        self._dead += dead
        while len(self._batches) > 1 and self._records - self._batches[0][0] >= self.window:
            old_records, old_dead = self._batches.popleft()
            self._records -= old_records
            self._dead -= old_dead
        if self._records >= self.min_records and self._dead > self.max_share * self._records:
            return (f"{self._dead} of the last {self._records} records would be "
                    f"dead-lettered (limit {self.max_share:.0%})")
        return None
