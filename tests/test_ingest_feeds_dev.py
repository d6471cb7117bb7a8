"""Every real feed in ../shared/data/feeds-dev goes through `newswire poll --once --dry-run PATH`
with no crash and no entry lost compared with feedparser's own parse of the same file: each
entry feedparser finds is either printed or counted as rejected with a reason."""

from __future__ import annotations

import json
import re
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from newswire.cli import main
from tests.conftest import SHARED_DATA, shared_path

FEEDS_DEV = SHARED_DATA / "feeds-dev"
FILES = sorted(p.name for p in FEEDS_DEV.glob("*") if p.suffix != ".csv") if FEEDS_DEV.is_dir() \
    else ["<feeds-dev missing>"]
SUMMARY = re.compile(r"^feed=.* entries=(\d+) rejected=(\d+)(.*)$", re.MULTILINE)


def test_the_corpus_is_there() -> None:
    assert len(list(shared_path("feeds-dev").glob("*.xml"))) > 50


@pytest.mark.parametrize("name", FILES)
def test_dry_run_loses_no_entry(name: str, tmp_path: Path) -> None:
    path = shared_path("feeds-dev", name)
    expected = len(feedparser.parse(path.read_bytes()).entries)
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "poll", "--once",
                                       "--dry-run", str(path)], catch_exceptions=False)
    if expected == 0 and result.exit_code == 1:
        return  # nothing to lose, and the file was reported as unreadable
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert set(line) == {"id", "url", "title", "published", "summary", "feed"}
        assert line["url"].startswith(("http://", "https://")) and len(line["id"]) == 16
    summary = SUMMARY.search(result.stderr)
    assert summary, result.stderr
    printed, rejected = int(summary.group(1)), int(summary.group(2))
    assert printed == len(lines)
    assert printed + rejected == expected
    if rejected:  # every rejection is counted under a named reason
        reasons = dict(re.findall(r" (\w+)=(\d+)", summary.group(3)))
        assert sum(int(v) for k, v in reasons.items() if k != "bozo") == rejected
