"""A publisher that answers 429 with a long Retry-After: the entry is dead-lettered (to be
replayed later) instead of holding a fetch slot, and its partition's commits, for an hour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kafka import KafkaProducer

from newswire.keys import canonical_url, url_key
from newswire.records import FeedEntry
from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics
from tests.test_processor import drain


class RateLimited(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(429)
        self.send_header("Retry-After", "3600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.integration
def test_a_long_retry_after_dead_letters_the_entry_at_once(kafka_settings: Settings,
                                                           tmp_path: Path) -> None:
    ensure_topics(kafka_settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = f"http://127.0.0.1:{server.server_address[1]}/story"
    held = FeedEntry(key=url_key(link), url=canonical_url(link), link=link, title="held",
                     summary="held", feed="f", source="127.0.0.1")
    producer = KafkaProducer(**kafka_settings.kafka.client_config())
    producer.send(kafka_settings.topic("entries"), key=held.key.encode(), value=held.to_bytes())
    producer.flush()
    producer.close()
    log = tmp_path / "worker.log"
    env = {**os.environ, **child_env(kafka_settings), "NEWSWIRE_PROCESS__WORKERS": "1",
           "NEWSWIRE_FETCH__OBEY_ROBOTS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "newswire", "process"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        letters = drain(kafka_settings, kafka_settings.topic("dlq.process"), 1, timeout=90)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()
    assert [json.loads(m.value)["reason"] for m in letters] == ["fetch:http_429"], \
        log.read_text()[-3000:]
    assert proc.returncode != 3  # the web's refusal never halts the stage
