"""The foundation's acceptance test: `newswire up` on a fresh data dir, end to end.

A loopback web server plays the outside world: an RSS feed whose item links (with utm_*
parameters) to a page carrying the seed story inside nav/sidebar/footer boilerplate, plus
broken things (an unreachable feed, malformed XML, a 404 page, a non-HTML page). The real
pipeline (embedded noida broker, poller, Faust worker, indexer, web) must make the story
searchable, tagged, with its URL cleaned, keep going past the bad input, stop on SIGTERM
within 10 s, and not duplicate the story on a second run over the same data dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newswire.broker import free_port
from tests.world import World

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

@pytest.fixture
def world(seed_story: str) -> Iterator[World]:
    with World(seed_story) as w:
        yield w


def newswire(*args: str, data_dir: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newswire", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]


def start_up(data_dir: Path, feeds: list[str], log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "newswire", "--data-dir", str(data_dir), "up",
            "--allow-private-networks", "--port", str(free_port())]
    for feed in feeds:
        args += ["--feed", feed]
    env = {**os.environ, "NEWSWIRE_FETCH__PER_HOST_MIN_GAP": "0"}
    return subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def search(data_dir: Path, query: str) -> dict:
    done = newswire("search", "--json", query, data_dir=data_dir)
    if done.returncode == 1 and "no search index in" in done.stderr:
        return {"total": 0, "hits": [], "facets": {}}  # the indexer has not created it yet
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def drained(data_dir: Path) -> bool:
    done = newswire("status", "--json", data_dir=data_dir)
    if done.returncode != 0:
        return False
    stages = json.loads(done.stdout)["stages"]
    return all(stage["lag"] == 0 for stage in stages.values())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"newswire up exited early ({proc.returncode}):\n{log.read_text()[-4000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; log tail:\n{log.read_text()[-6000:]}")


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"newswire up did not stop within 10 s of SIGTERM:\n{log.read_text()[-4000:]}")


def test_up_makes_the_seed_story_searchable_once(world: World, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "up.log"
    dead_port = free_port()
    feeds = [f"{world.base}/feed.xml", f"{world.base}/broken.xml",
             f"http://127.0.0.1:{dead_port}/unreachable.xml"]

    proc = start_up(data_dir, feeds, log)
    try:
        def found() -> dict | None:
            if not (data_dir / "index").exists():
                return None
            result = search(data_dir, "airstrikes Syria")
            return result if result["total"] >= 1 else None

        result = wait_for(found, 60, "the seed story to become searchable", proc, log)
        assert result["total"] == 1
        hit = result["hits"][0]
        assert hit["url"] == f"{world.base}/world/us-strikes-syria"  # tracking params gone
        assert "us-iran-proxy" in hit["conflicts"]
        assert "SY" in hit["countries"]
        # the bad inputs were met and the pipeline went on: the 404 and the PDF were fetched
        assert world.hits["/world/gone"] >= 1 and world.hits["/files/report.pdf"] >= 1
        assert world.hits["/broken.xml"] >= 1
        # the 404 was not indexed; the PDF stands as its feed summary, flagged partial
        everything = search(data_dir, "*")
        assert everything["total"] == 2
        assert {h["url"] for h in everything["hits"]} == {hit["url"], f"{world.base}/files/report.pdf"}
    finally:
        code = stop(proc, log)
    assert code == 0, log.read_text()[-4000:]

    polls_before = world.hits["/feed.xml"]
    proc = start_up(data_dir, feeds, log)
    try:
        wait_for(lambda: world.hits["/feed.xml"] > polls_before, 60, "the feed to be re-polled",
                 proc, log)
        # let anything the re-poll published flow through: every stage caught up, twice over
        wait_for(lambda: drained(data_dir) and drained(data_dir), 60, "stages to drain", proc, log)
        again = search(data_dir, "airstrikes Syria")
        assert again["total"] == 1
        assert search(data_dir, "*")["total"] == 2
        assert again["hits"][0]["id"] == hit["id"]
    finally:
        code = stop(proc, log)
    assert code == 0, log.read_text()[-5000:]
