"""Soak test of `newswire up` (issue 8): hours at a steady feed load, sampled every minute.

A loopback FeedWorld (tests/feedworld.py) reveals ``--rate`` new items per second across
``--feeds`` feeds, each linking to a real news page from ../shared/data/extraction-dev. The
real pipeline runs as `newswire up` in a fresh data dir. Every ``--interval`` seconds one row
is recorded: articles indexed, throughput, lag per stage, dead letters, RSS and open file
descriptors per process. Optional faults halfway through:

    --es-outage   search store = Elasticsearch API of a separate noida-db, stopped for
                  ``--outage-seconds`` (default 60) then restarted on the same port/data dir
    --kill ROLE   kill -9 one service (poll|process|index|serve|broker) by PID

At the end the feeds stop growing, the pipeline is given ``--drain`` seconds to catch up and
every revealed item is looked up in the index (missing = lost). Rows go to
OUT/samples.csv and OUT/samples.jsonl, the summary to OUT/summary.json and stdout.

    .venv/bin/python bench/soak.py --duration 3600 --rate 0.5 --es-outage --out /tmp/soak
    .venv/bin/python bench/soak.py --duration 300 --kill process
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.store import open_store  # noqa: E402
from newswire import ops, runtime  # noqa: E402
from newswire.broker import EmbeddedServer  # noqa: E402
from newswire.settings import load_settings  # noqa: E402
from tests.feedworld import FeedWorld, components, load_pages, process_tree, start_up  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "extraction-dev"
log = logging.getLogger("soak")


def per_process(up_pid: int) -> dict[str, dict[str, float]]:
    """RSS (MB) and open fds per labelled process; pool workers summed under one label."""
    out: dict[str, dict[str, float]] = {}
    for label, proc in process_tree(up_pid):
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss / 2**20
                fds = proc.num_fds()
        except psutil.Error:
            continue
        row = out.setdefault(label, {"rss_mb": 0.0, "fds": 0, "n": 0})
        row["rss_mb"] = round(row["rss_mb"] + rss, 1)
        row["fds"] += fds
        row["n"] += 1
    return out


class Counter:
    """Counts the index from outside (a reader; the indexer is the one writer)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.store: Any = None

    def count(self) -> int | None:
        try:
            if self.store is None:
                if not self.settings.search.uses_elasticsearch and \
                        not (self.settings.data_dir / "index").exists():
                    return 0
                self.store = open_store(self.settings)
            self.store.refresh()
            return int(self.store.count())
        except Exception as exc:  # noqa: BLE001 - store down during an outage: a gap, not a crash
            log.info("count unavailable: %r", exc)
            if self.settings.search.uses_elasticsearch and self.store is not None:
                self.store = None
            return None

    def missing(self, keys: dict[str, int]) -> list[int]:
        if self.store is None:
            self.count()
        return sorted(i for key, i in keys.items() if self.store.get(key) is None)


def status(settings: Any) -> dict[str, Any] | None:
    try:
        return ops.pipeline_status(runtime.with_kafka(settings))
    except Exception as exc:  # noqa: BLE001 - broker restarting
        log.info("status unavailable: %r", exc)
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=3600, help="seconds of load")
    ap.add_argument("--rate", type=float, default=0.5, help="new feed items per second")
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--window", type=int, default=20, help="items shown per feed")
    ap.add_argument("--latency", type=float, default=0.05, help="article page latency, s")
    ap.add_argument("--interval", type=float, default=60, help="seconds between samples")
    ap.add_argument("--drain", type=float, default=300, help="seconds allowed to catch up")
    ap.add_argument("--es-outage", action="store_true",
                    help="Elasticsearch-API store, down for --outage-seconds halfway")
    ap.add_argument("--outage-seconds", type=float, default=60)
    ap.add_argument("--kill", choices=["poll", "process", "index", "serve", "broker"],
                    help="kill -9 this service halfway")
    ap.add_argument("--workers", type=int, default=0, help="extraction processes (0 = cores)")
    ap.add_argument("--out", type=Path, default=Path(f"/tmp/newswire-soak-{int(time.time())}"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("kafka", "elastic_transport", "elasticsearch", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)  # outages are expected here

    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = args.out / "data"
    pages = load_pages(DATA)
    articles = int(args.rate * args.duration) + 1
    world = FeedWorld(pages, articles, args.feeds, rate=args.rate, latency=args.latency,
                      window=args.window).start()
    env = {"NEWSWIRE_LOG_LEVEL": "WARNING", "NEWSWIRE_POLL__MIN_INTERVAL": "5",
           "NEWSWIRE_POLL__DEFAULT_INTERVAL": "15",
           "NEWSWIRE_PROCESS__WORKERS": str(args.workers)}
    es: EmbeddedServer | None = None
    overrides: dict[str, Any] = {}
    if args.es_outage:
        es = EmbeddedServer(args.out / "es", with_elasticsearch=True)
        es.start()
        env["NEWSWIRE_SEARCH__ELASTICSEARCH_URL"] = str(es.elasticsearch_url)
        overrides["search"] = {"elasticsearch_url": es.elasticsearch_url}
    settings = load_settings(data_dir=data_dir, **overrides)
    counter = Counter(settings)
    up = start_up(data_dir, world.feed_urls(), args.out / "up.log", env)
    log.info("soak started up_pid=%s out=%s world=%s articles=%s", up.pid, args.out,
             world.base, articles)

    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    started = time.monotonic()
    half = started + args.duration / 2
    fault_done = not (args.es_outage or args.kill)
    outage_end: float | None = None
    next_sample = started + args.interval
    last_count, last_t = 0, started
    jsonl = (args.out / "samples.jsonl").open("a")

    def sample(phase: str) -> None:
        nonlocal last_count, last_t
        now = time.monotonic()
        count = counter.count()
        st = status(settings)
        procs = per_process(up.pid)
        if es is not None and es.proc is not None:  # the search store's own process
            try:
                esp = psutil.Process(es.proc.pid)
                procs["es-store"] = {"rss_mb": round(esp.memory_info().rss / 2**20, 1),
                                     "fds": esp.num_fds(), "n": 1}
            except psutil.Error:
                pass
        row: dict[str, Any] = {
            "t_s": round(now - started), "phase": phase, "revealed": world.revealed(),
            "indexed": count,
            "per_s": round((count - last_count) / (now - last_t), 3)
            if count is not None else None,
            "lag": {k: v["lag"] for k, v in st["stages"].items()} if st else None,
            "produced": {k: v["produced"] for k, v in st["stages"].items()} if st else None,
            "dead_letters": st["dead_letters"] if st else None,
            "procs": procs,
        }
        if count is not None:
            last_count, last_t = count, now
        rows.append(row)
        jsonl.write(json.dumps(row) + "\n")
        jsonl.flush()
        log.info("t=%ss revealed=%s indexed=%s per_s=%s lag=%s dead=%s rss=%s", row["t_s"],
                 row["revealed"], count, row["per_s"], row["lag"], row["dead_letters"],
                 {k: v["rss_mb"] for k, v in procs.items()})

    code = 0
    try:
        while time.monotonic() - started < args.duration:
            if up.poll() is not None:
                log.error("newswire up exited early code=%s", up.returncode)
                code = 1
                break
            now = time.monotonic()
            if not fault_done and now >= half:
                fault_done = True
                if es is not None:
                    log.info("fault: stopping the search store for %ss", args.outage_seconds)
                    es.stop()
                    outage_end = now + args.outage_seconds
                    events.append({"t_s": round(now - started), "event": "es_stop"})
                if args.kill:
                    victim = components(up.pid).get(args.kill)
                    if victim is not None:
                        victim.send_signal(signal.SIGKILL)
                        log.info("fault: kill -9 %s pid=%s", args.kill, victim.pid)
                        events.append({"t_s": round(now - started), "event": f"kill {args.kill}",
                                       "pid": victim.pid})
            if outage_end is not None and now >= outage_end and es is not None:
                es.start()
                outage_end = None
                events.append({"t_s": round(time.monotonic() - started), "event": "es_start"})
                log.info("fault over: search store back")
            if now >= next_sample:
                next_sample += args.interval
                sample("load")
            time.sleep(0.5)

        # Drain: the feeds stop growing; everything revealed must become searchable.
        revealed = world.revealed()
        world.rate, world.n = 0.0, revealed
        expected = world.keys(revealed)
        drain_started = time.monotonic()
        missing: list[int] = list(range(revealed))
        while time.monotonic() - drain_started < args.drain and up.poll() is None:
            count = counter.count()
            if count is not None and count >= revealed:
                missing = counter.missing(expected)
                if not missing:
                    break
            time.sleep(5)
        else:
            try:
                missing = counter.missing(expected)
            except Exception:  # noqa: BLE001
                pass
        drain_s = time.monotonic() - drain_started
        sample("drained")
    finally:
        jsonl.close()
        stop_started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        try:
            up_code = up.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up_code = up.wait()
        stop_s = time.monotonic() - stop_started
        if es is not None:
            es.stop()
        world.stop()

    write_csv(args.out / "samples.csv", rows)
    summary = summarise(rows, events)
    summary.update({
        "command": " ".join(sys.argv), "out": str(args.out), "duration_s": args.duration,
        "rate": args.rate, "feeds": args.feeds, "revealed": revealed,
        "indexed_at_end": rows[-1]["indexed"] if rows else None,
        "missing_after_drain": len(missing), "missing_sample": missing[:20],
        "drain_s": round(drain_s, 1), "up_exit_code": up_code, "stop_s": round(stop_s, 1),
        "duplicates": (rows[-1]["indexed"] - revealed + len(missing))
        if rows and rows[-1]["indexed"] is not None else None,
    })
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return code or (1 if missing else 0)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    labels = sorted({label for r in rows for label in r["procs"]})
    stages = sorted({s for r in rows if r["lag"] for s in r["lag"]})
    dlq = sorted({s for r in rows if r["dead_letters"] for s in r["dead_letters"]})
    header = ["t_s", "phase", "revealed", "indexed", "per_s"]
    header += [f"lag_{s}" for s in stages] + [f"dlq_{s}" for s in dlq]
    header += [f"rss_mb_{p}" for p in labels] + [f"fds_{p}" for p in labels]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for r in rows:
            line = [r["t_s"], r["phase"], r["revealed"], r["indexed"], r["per_s"]]
            line += [(r["lag"] or {}).get(s) for s in stages]
            line += [(r["dead_letters"] or {}).get(s) for s in dlq]
            line += [r["procs"].get(p, {}).get("rss_mb") for p in labels]
            line += [r["procs"].get(p, {}).get("fds") for p in labels]
            out.writerow(line)


def summarise(rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"samples": 0, "events": events}
    load = [r for r in rows if r["phase"] == "load"] or rows
    first, last = load[0], load[-1]
    labels = sorted({label for r in rows for label in r["procs"]})

    def series(label: str, key: str) -> list[float]:
        return [r["procs"][label][key] for r in load if label in r["procs"]]

    procs = {}
    for label in labels:
        rss, fds = series(label, "rss_mb"), series(label, "fds")
        if rss:
            procs[label] = {"rss_mb_start": rss[0], "rss_mb_end": rss[-1], "rss_mb_max": max(rss),
                            "fds_start": fds[0], "fds_end": fds[-1], "fds_max": max(fds)}
    lags: dict[str, int] = {}
    for r in rows:
        for stage, lag in (r["lag"] or {}).items():
            lags[stage] = max(lags.get(stage, 0), lag)
    counted = [r for r in load if r["indexed"] is not None]
    span = counted[-1]["t_s"] - counted[0]["t_s"] if len(counted) > 1 else 0
    rate = (counted[-1]["indexed"] - counted[0]["indexed"]) / span if span else None
    return {
        "samples": len(rows), "events": events,
        "throughput_articles_per_s": round(rate, 3) if rate is not None else None,
        "indexed_first_sample": first["indexed"], "indexed_last_load_sample": last["indexed"],
        "max_lag": lags, "dead_letters_end": rows[-1]["dead_letters"],
        "per_process": procs,
    }


if __name__ == "__main__":
    sys.exit(main())
