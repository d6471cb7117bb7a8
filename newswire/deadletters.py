"""The dead-letter limit every stage shares: halt instead of dead-lettering a whole topic.

A dead letter is the right outcome for one bad record. When most records of a stage fail at
once the cause is nearly always a bad deploy or a broken dependency, not bad input, and
dead-lettering everything would empty the topic into the DLQ. A stage then stops without
committing (exit code ``HALTED``), so the records wait in Kafka for the fixed stage.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from newswire.settings import DeadLetterSettings

HALTED = 3  # exit code: too many dead letters, stopped without committing


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
