"""Which embedded store: tantivy or SQLite FTS5? Measured on the same articles and queries.

    .venv/bin/python bench/store_choice.py [--docs 20000] [--rounds 5]

Both get the same synthetic-but-realistic articles (real texts, ``indexer.synthetic``),
written in batches of 2,000 (one commit/transaction each), and answer the same searches the
search page makes: top 20 hits with a highlighted snippet + three facets (conflicts,
event_types, countries) + a daily date histogram. Reported: write throughput, size on disk,
search p50/p95.

tantivy is ``indexer.embedded.EmbeddedStore`` itself. The SQLite side is a fair, indexed
design: an FTS5 table (``porter unicode61`` tokenizer) for title/text with its own content
(for ``snippet()``), an articles table (dates), and a (field, value, rowid)-indexed tag table
for the facets; a search materialises the matching rowids once, then facets and histogram
are GROUP BYs over them.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.embedded import EmbeddedStore  # noqa: E402
from indexer.query import keyword_values  # noqa: E402
from indexer.store import SearchRequest, effective_published  # noqa: E402
from indexer.synthetic import load_texts, synthetic_articles  # noqa: E402
from newswire.records import Article  # noqa: E402

CONFLICT_DEV = ROOT.parent / "shared" / "data" / "conflict-dev"
FACETS = ("conflicts", "event_types", "countries")
BATCH = 2000
# (newswire query, the same in FTS5 syntax; None = everything)
QUERIES = [
    ("*", None),
    ("police", "police"),
    ("killed police", "killed police"),
    ('"armed forces"', '"armed forces"'),
    ("drug OR cartel", "drug OR cartel"),
    ("guerrilla -colombia", "guerrilla NOT colombia"),
    ("kidnap*", "kidnap*"),
    ("president minister government", "president minister government"),
    ('"security forces" OR "armed men"', '"security forces" OR "armed men"'),
]


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS articles(
                rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, published INTEGER, body TEXT);
            CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
                title, text, tokenize='porter unicode61');
            CREATE TABLE IF NOT EXISTS tags(rowid INTEGER, field TEXT, value TEXT);
            CREATE INDEX IF NOT EXISTS tags_fv ON tags(field, value, rowid);
            CREATE INDEX IF NOT EXISTS tags_r ON tags(rowid);
        """)

    def upsert(self, articles: list[Article]) -> None:
        with self.db:
            for a in articles:
                old = self.db.execute("SELECT rowid FROM articles WHERE id=?", (a.id,)).fetchone()
                if old:
                    self.db.execute("DELETE FROM fts WHERE rowid=?", old)
                    self.db.execute("DELETE FROM tags WHERE rowid=?", old)
                    self.db.execute("DELETE FROM articles WHERE rowid=?", old)
                cur = self.db.execute(
                    "INSERT INTO articles(id, published, body) VALUES (?,?,?)",
                    (a.id, int(effective_published(a).timestamp()),
                     a.model_dump_json(exclude={"text", "title"})))
                rowid = cur.lastrowid
                self.db.execute("INSERT INTO fts(rowid, title, text) VALUES (?,?,?)",
                                (rowid, a.title or "", a.text or ""))
                kw = keyword_values(a)
                self.db.executemany("INSERT INTO tags VALUES (?,?,?)",
                                    [(rowid, f, v) for f in FACETS for v in kw[f]])

    def search(self, fts_query: str | None) -> dict:
        db = self.db
        db.execute("DROP TABLE IF EXISTS temp.m")
        if fts_query is None:
            db.execute("CREATE TEMP TABLE m AS SELECT rowid FROM articles")
            top = db.execute(
                "SELECT a.rowid, a.body, substr(f.text, 1, 240) FROM articles a "
                "JOIN fts f ON f.rowid = a.rowid ORDER BY a.published DESC LIMIT 20").fetchall()
        else:
            db.execute("CREATE TEMP TABLE m AS SELECT rowid FROM fts WHERE fts MATCH ?",
                       (fts_query,))
            top = db.execute(
                "SELECT f.rowid, a.body, snippet(fts, 1, '<mark>', '</mark>', '…', 30) "
                "FROM fts f JOIN articles a ON a.rowid = f.rowid WHERE fts MATCH ? "
                "ORDER BY rank LIMIT 20", (fts_query,)).fetchall()
        total = db.execute("SELECT count(*) FROM m").fetchone()[0]
        facets = {
            f: db.execute(
                "SELECT value, count(*) c FROM tags WHERE field=? AND rowid IN "
                "(SELECT rowid FROM m) GROUP BY value ORDER BY c DESC LIMIT 20", (f,)).fetchall()
            for f in FACETS
        }
        histogram = db.execute(
            "SELECT published / 86400 d, count(*) FROM articles WHERE rowid IN "
            "(SELECT rowid FROM m) GROUP BY d ORDER BY d").fetchall()
        return {"total": total, "hits": top, "facets": facets, "histogram": histogram}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def size_of(path: Path) -> float:
    files = [path] if path.is_file() else list(path.rglob("*"))
    extra = [Path(str(path) + s) for s in ("-wal", "-shm")]
    return sum(f.stat().st_size for f in files + extra if f.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    texts = load_texts(CONFLICT_DEV)
    articles = list(synthetic_articles(texts, args.docs, seed=3))
    mean = statistics.mean(len(a.text) for a in articles)
    print(f"{len(articles)} articles, mean text {mean:.0f} chars")
    with tempfile.TemporaryDirectory(prefix="newswire-choice-") as tmpname:
        tmp = Path(tmpname)
        tantivy_store = EmbeddedStore(tmp / "tantivy", writer=True)
        tantivy_store.ensure()
        sqlite_store = SqliteStore(tmp / "fts5.db")
        rows = []
        writers = (("tantivy", tantivy_store.upsert), ("sqlite-fts5", sqlite_store.upsert))
        for name, write in writers:
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(articles), BATCH):
                write(articles[i: i + BATCH])
            if name == "tantivy":  # its merges run in background threads: count them
                tantivy_store.close()
            rate = len(articles) / (time.perf_counter() - t)
            per_cpu = len(articles) / max(time.process_time() - c, 1e-9)
            rows.append((name, rate, per_cpu))
        tantivy_store = EmbeddedStore(tmp / "tantivy")

        timings: dict[str, list[float]] = {"tantivy": [], "sqlite-fts5": []}
        for _ in range(args.rounds + 1):  # the first round warms caches and is dropped
            round_t: dict[str, list[float]] = {"tantivy": [], "sqlite-fts5": []}
            for ours, fts in QUERIES:
                t = time.perf_counter()
                a = tantivy_store.search(SearchRequest(query=ours, facets=FACETS,
                                                       histogram="day"))
                round_t["tantivy"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                b = sqlite_store.search(fts)
                round_t["sqlite-fts5"].append((time.perf_counter() - t) * 1000)
                assert a.total > 0 and b["total"] > 0
            if _:
                for k, v in round_t.items():
                    timings[k].extend(v)
        sizes = {"tantivy": size_of(tmp / "tantivy"), "sqlite-fts5": size_of(tmp / "fts5.db")}
        print(f"{'store':12} {'write art/s':>12} {'art/CPU-s':>10} {'disk MB':>8} "
              f"{'search p50 ms':>14} {'p95 ms':>8}")
        for name, rate, per_cpu in rows:
            ts = timings[name]
            print(f"{name:12} {rate:12,.0f} {per_cpu:10,.0f} {sizes[name]:8.0f} "
                  f"{statistics.median(ts):14.1f} {pct(ts, 95):8.1f}")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        tantivy_store.close()


if __name__ == "__main__":
    main()
