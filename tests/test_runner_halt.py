"""`newswire up` does not restart a stage that halted on the dead-letter limit."""

from __future__ import annotations

import threading
import time

import pytest

from newswire import runtime
from newswire.runner import Child, Supervisor
from newswire.settings import Settings
from newswire.topics import ensure_topics
from tests.test_indexer import produce


@pytest.mark.integration
def test_a_halted_service_is_not_restarted_and_status_says_so(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    produce(kafka_settings, [(f"bad-{i}".encode(), b"\x00garbage") for i in range(300)])
    supervisor = Supervisor(kafka_settings)
    supervisor.children = [Child("indexer", ("index",))]
    supervisor.facts = {"kafka": kafka_settings.kafka.bootstrap_servers}
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        deadline = time.monotonic() + 120
        while not supervisor.children[0].halted:
            assert runner.is_alive() and time.monotonic() < deadline, "the indexer never halted"
            time.sleep(0.2)
        first_pid_gone = supervisor.children[0].proc is None
        time.sleep(3)  # longer than the first restart backoff (2 s): it must stay down
        assert first_pid_gone and supervisor.children[0].proc is None
        facts = runtime.read_unchecked(kafka_settings.data_dir)
        assert facts is not None and facts["halted"] == ["indexer"]
        assert facts["kafka"] == kafka_settings.kafka.bootstrap_servers
    finally:
        supervisor.stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
