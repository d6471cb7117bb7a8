"""Text fingerprints and story ids: near-duplicate copies of one story share a ``story_id``.

``simhash`` is a 64-bit SimHash over word 3-shingles (character 5-grams for scripts written
without spaces), so small edits move few bits. ``StoryIndex`` finds an earlier article
within ``max_distance`` bits through LSH bands: by the pigeonhole principle two hashes that
differ in at most k bits agree exactly on at least one of k+1 bands, so a lookup is one
indexed query per band, never a scan.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MASK64 = (1 << 64) - 1
SHINGLE = 3  # words per shingle: robust to single-word edits, specific enough for news text
CHAR_GRAM = 5  # characters per shingle for unspaced scripts (CJK, Thai, ...)
MAX_DISTANCE = 7  # Hamming bits: wire copies with a byline/boilerplate differ by 3-8, distinct stories by 18+

_WORD = re.compile(r"\w+")


def _features(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    if not words:
        return []
    # Unspaced scripts come out as a few very long "words": use character grams instead.
    if sum(map(len, words)) > 12 * len(words):
        joined = "".join(words)
        return [joined[i:i + CHAR_GRAM] for i in range(max(len(joined) - CHAR_GRAM + 1, 1))]
    if len(words) < SHINGLE:
        return [" ".join(words)]
    # zip of shifted lists: the same shingles as slicing per position, a third less CPU.
    return list(map(" ".join, zip(*(words[i:] for i in range(SHINGLE)))))


def _hashes(features: list[str]) -> np.ndarray:
    # A stable hash (not Python's salted hash()): fingerprints are stored and compared
    # across processes and restarts. One joined buffer read as little-endian uint64 costs
    # a third less CPU than an int per feature; the values are the same.
    blake = hashlib.blake2b
    raw = b"".join([blake(f.encode(), digest_size=8).digest() for f in features])
    return np.frombuffer(raw, dtype="<u8")


def simhash(text: str) -> int:
    """64-bit SimHash of ``text`` (0 for text without words)."""
    features = _features(text)
    if not features:
        return 0
    hashes = _hashes(features)
    # bits[i, j] = bit j of hash i; a bit is set in the result when most features set it.
    # unpackbits on the little-endian bytes: column j is bit j, without a 64-wide shift.
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(features)
    return int.from_bytes(np.packbits(votes > 0, bitorder="little").tobytes(), "little")


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & MASK64).bit_count()


def _bands(fingerprint: int, count: int) -> list[int]:
    """Split 64 bits into ``count`` contiguous bands (as equal as possible)."""
    out, start = [], 0
    for i in range(count):
        width = 64 // count + (1 if i < 64 % count else 0)
        out.append((fingerprint >> start) & ((1 << width) - 1))
        start += width
    return out


def _signed(value: int) -> int:
    # SQLite integers are signed 64-bit.
    return value - (1 << 64) if value >= 1 << 63 else value


class StoryIndex:
    """Assigns story ids to near-duplicate texts; SQLite file, or in memory when ``path`` is None.

    Thread-safe (one lock); meant for one writer process. Entries older than
    ``retention_days`` (by the ``when`` of the newest assignment) are pruned, so the index
    stays bounded; a story that comes back after that starts a new group.
    """

    def __init__(self, path: Path | None, *, max_distance: int = MAX_DISTANCE,
                 retention_days: float = 7.0, prune_every: int = 1000) -> None:
        self.max_distance = max_distance
        self.band_count = max_distance + 1
        self.retention = timedelta(days=retention_days)
        self.prune_every = prune_every
        self._since_prune = 0
        self._lock = threading.Lock()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS articles (
                article_id TEXT PRIMARY KEY, fingerprint INTEGER NOT NULL,
                story_id TEXT NOT NULL, seen REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS articles_seen ON articles(seen);
            CREATE TABLE IF NOT EXISTS bands (
                band INTEGER NOT NULL, value INTEGER NOT NULL, article_id TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS bands_lookup ON bands(band, value);
            CREATE INDEX IF NOT EXISTS bands_article ON bands(article_id);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
            """
        )
        row = self.db.execute("SELECT value FROM meta WHERE name='bands'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('bands', ?)", (str(self.band_count),))
        elif int(row[0]) != self.band_count:
            raise ValueError(f"story index {path} was built with {row[0]} bands, "
                             f"not {self.band_count}; use a new file")

    def assign(self, article_id: str, fingerprint: int, *, when: datetime) -> str:
        """The story id of ``article_id``: the first article id of its near-duplicate group.

        Idempotent: an article already known keeps the story id it was given.
        """
        fingerprint &= MASK64
        seen = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        with self._lock:
            known = self.db.execute("SELECT story_id FROM articles WHERE article_id=?",
                                    (article_id,)).fetchone()
            if known:
                return str(known[0])
            story_id = article_id
            if fingerprint:  # an empty text's fingerprint (0) groups with nothing
                story_id = self._nearest(fingerprint) or article_id
            bands = _bands(fingerprint, self.band_count)
            self.db.execute("BEGIN")
            try:
                self.db.execute("INSERT INTO articles VALUES (?,?,?,?)",
                                (article_id, _signed(fingerprint), story_id, seen))
                self.db.executemany("INSERT INTO bands VALUES (?,?,?)",
                                    [(i, v, article_id) for i, v in enumerate(bands)])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self._since_prune += 1
            if self._since_prune >= self.prune_every:
                self._prune_locked(seen)
            return story_id

    def _nearest(self, fingerprint: int) -> str | None:
        best: tuple[int, float, str] | None = None
        for band, value in enumerate(_bands(fingerprint, self.band_count)):
            rows = self.db.execute(
                "SELECT a.fingerprint, a.story_id, a.seen FROM bands b "
                "JOIN articles a ON a.article_id = b.article_id "
                "WHERE b.band=? AND b.value=? LIMIT 200", (band, value)).fetchall()
            for other, story_id, seen in rows:
                distance = hamming(fingerprint, other & MASK64)
                if distance <= self.max_distance and (
                        best is None or (distance, seen) < (best[0], best[1])):
                    best = (distance, seen, story_id)
        return best[2] if best else None

    def prune(self, now: datetime) -> int:
        """Forget entries older than the retention window before ``now``; returns how many."""
        with self._lock:
            return self._prune_locked(now.timestamp())

    def _prune_locked(self, now: float) -> int:
        self._since_prune = 0
        cutoff = now - self.retention.total_seconds()
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM bands WHERE article_id IN "
                        "(SELECT article_id FROM articles WHERE seen < ?)", (cutoff,))
        removed = self.db.execute("DELETE FROM articles WHERE seen < ?", (cutoff,)).rowcount
        self.db.execute("COMMIT")
        if removed:
            log.info("story index pruned removed=%d", removed)
        return removed

    def __len__(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self.db.close()
