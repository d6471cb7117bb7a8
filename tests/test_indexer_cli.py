"""``newswire index`` as a real process (SIGTERM) and ``newswire search`` output and errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import parse_date
from indexer.embedded import EmbeddedStore
from newswire.cli import main
from newswire.records import Article, ConflictTag
from newswire.settings import Settings, child_env
from tests.test_indexer import art, lag, produce_articles, wait_for

NEWSWIRE = str(Path(sys.executable).with_name("newswire"))


@pytest.mark.integration
def test_index_service_indexes_then_stops_on_sigterm(kafka_settings: Settings) -> None:
    env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([NEWSWIRE, "index"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        produce_articles(kafka_settings, [art(i) for i in range(12)])
        wait_for(lambda: proc.poll() is None and lag(kafka_settings) == 0,
                 "the indexer process to commit", timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"indexer stopped documents=12" in err
    assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 12


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = EmbeddedStore(tmp_path / "index", writer=True)
    store.ensure()
    store.upsert([
        Article(id="a", url="https://a.example/1", title="Shelling hits Kharkiv", text="x y",
                source="a.example", countries=("UA",), published=datetime(2026, 5, 2, tzinfo=UTC),
                conflicts=(ConflictTag(id="ukraine-russia", name="Ukraine", score=1.0),)),
        Article(id="b", url="https://b.example/2", title="Talks in Doha", text="ceasefire",
                source="b.example", countries=("QA",), published=datetime(2026, 5, 3, tzinfo=UTC)),
    ])
    store.close()
    return tmp_path


def test_search_json_table_filters_and_errors(data_dir: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["search", "--json", "--data-dir", str(data_dir), "*"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["total"] == 2 and {"total", "hits", "facets"} <= set(body)

    out = runner.invoke(main, ["--data-dir", str(data_dir), "search", "--json", "*",
                               "--conflict", "ukraine-russia", "--until", "2026-05-02"])
    assert [h["id"] for h in json.loads(out.output)["hits"]] == ["a"]

    out = runner.invoke(main, ["search", "--data-dir", str(data_dir), "kharkiv"])
    assert out.exit_code == 0
    assert "1 results" in out.output and "Shelling hits Kharkiv" in out.output
    assert "https://a.example/1" in out.output

    out = runner.invoke(main, ["search", "--data-dir", str(data_dir), "kharkiv OR"])
    assert out.exit_code == 2 and "bad query" in out.output
    out = runner.invoke(main, ["search", "--data-dir", str(data_dir), "*", "--since", "May"])
    assert out.exit_code == 2 and "not a date" in out.output


def test_search_joins_words_and_names_a_missing_index(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["search", "--json", "--data-dir", str(data_dir), "Shelling",
                               "Kharkiv"])
    assert out.exit_code == 0, out.output
    assert [h["id"] for h in json.loads(out.output)["hits"]] == ["a"]
    everything = runner.invoke(main, ["search", "--json", "--data-dir", str(data_dir)])
    assert json.loads(everything.output)["total"] == 2
    empty = tmp_path / "never-ran"
    out = runner.invoke(main, ["search", "--data-dir", str(empty), "kharkiv"])
    assert out.exit_code == 1 and "no search index in" in out.output


def test_search_cursor_walks_every_hit_once(data_dir: Path) -> None:
    runner = CliRunner()
    seen, cursor = [], None
    for _ in range(4):
        args = ["search", "--json", "--data-dir", str(data_dir), "*", "--sort", "date",
                "--size", "1", *(["--cursor", cursor] if cursor else [])]
        out = runner.invoke(main, args)
        assert out.exit_code == 0, out.output
        body = json.loads(out.output)
        seen += [h["id"] for h in body["hits"]]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    assert sorted(seen) == ["a", "b"] and len(seen) == 2
    table = runner.invoke(main, ["search", "--data-dir", str(data_dir), "*", "--size", "1"])
    assert "next page: --cursor " in table.output
    out = runner.invoke(main, ["search", "--data-dir", str(data_dir), "*", "--cursor", "junk"])
    assert out.exit_code == 2 and "not a search cursor" in out.output


def test_index_options_come_from_settings() -> None:
    from indexer.consumer import IndexerOptions
    from newswire.settings import load_settings

    settings = load_settings(index={"membership": "group"},
                             dead_letters={"max_share": 0.2, "window": 50, "min_records": 10})
    options = IndexerOptions.from_settings(settings)
    assert (options.membership, options.dead_letter_max_share, options.dead_letter_window,
            options.dead_letter_min_records) == ("group", 0.2, 50, 10)
    assert IndexerOptions.from_settings(settings, membership="assign").membership == "assign"


def test_parse_date() -> None:
    assert parse_date("2026-05-02") == datetime(2026, 5, 2, tzinfo=UTC)
    assert parse_date("2026-05-02", end=True) == datetime(2026, 5, 3, tzinfo=UTC)
    assert parse_date("2026-05-02T10:00:00+02:00") == datetime(2026, 5, 2, 8, tzinfo=UTC)
    assert parse_date("2026-05-02T10:00") == datetime(2026, 5, 2, 10, tzinfo=UTC)


def test_index_without_kafka_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    out = CliRunner().invoke(main, ["index", "--data-dir", str(tmp_path)])
    assert out.exit_code == 1
    assert "no Kafka configured" in out.output


@pytest.mark.integration
def test_second_indexer_on_the_same_index_fails_clearly(kafka_settings: Settings) -> None:
    holder = EmbeddedStore(kafka_settings.data_dir / "index", writer=True)
    holder.ensure()  # like a running indexer
    try:
        out = CliRunner(env=child_env(kafka_settings)).invoke(main, ["index"])
    finally:
        holder.close()
    assert out.exit_code == 1
    assert "locked by another writer" in out.output


@pytest.mark.integration
def test_index_service_killed_9_is_replaced_by_a_new_one(kafka_settings: Settings) -> None:
    """kill -9 leaves no goodbye to the broker. The replacement must take up the partitions
    at once (noida never evicts a dead group member; the embedded store's indexer assigns
    its partitions itself) and read on from the committed offsets."""
    env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_LOG_LEVEL": "INFO"}

    def start(log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([NEWSWIRE, "index"], env=env, stdout=subprocess.DEVNULL,
                                stderr=log.open("wb"), start_new_session=True)

    logs = kafka_settings.data_dir.parent
    first = start(logs / "first.log")
    second = None
    try:
        produce_articles(kafka_settings, [art(i) for i in range(12)])
        wait_for(lambda: first.poll() is None and lag(kafka_settings) == 0,
                 "the first indexer to commit", timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        produce_articles(kafka_settings, [art(i) for i in range(12, 30)])
        second = start(logs / "second.log")
        wait_for(lambda: second.poll() is None and lag(kafka_settings) == 0,
                 "the replacement indexer to take up the partitions", timeout=60)
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert "membership=assign" in (logs / "second.log").read_text()
    assert EmbeddedStore(kafka_settings.data_dir / "index").count() == 30


@pytest.mark.integration
def test_index_service_halts_with_exit_code_3_on_a_flood_of_garbage(
        kafka_settings: Settings) -> None:
    from tests.test_indexer import produce

    produce(kafka_settings, [(f"bad-{i}".encode(), b"\x00garbage") for i in range(300)])
    env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_LOG_LEVEL": "INFO"}
    proc = subprocess.run([NEWSWIRE, "index"], env=env, capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err[-2000:]
    assert "indexer halted: too many dead letters stage=index" in err
    assert "reasons=bad_record" in err
    assert lag(kafka_settings) > 0  # the batch that crossed the limit is still there
