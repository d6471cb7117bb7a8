"""Shared fixtures: real servers started by the test session, on loopback.

A server that cannot start fails the tests that need it (an error, never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newswire.broker import EmbeddedServer
from newswire.settings import Settings, load_settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
SEED_STORY = SHARED_DATA / "seed" / "000_7e306b04c98bd332.txt"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; fail loudly (not skip) when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared data missing: {path} (tests read ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def noida(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One noida-db serving Kafka and the Elasticsearch API for the whole session."""
    server = EmbeddedServer(tmp_path_factory.mktemp("noida"), with_elasticsearch=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_settings(noida: EmbeddedServer, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings pointing at the session broker, with a topic prefix unique to the test."""
    prefix = "t" + str(abs(hash(request.node.nodeid)) % 10**10)
    return load_settings(
        data_dir=tmp_path / "data",
        kafka={"bootstrap_servers": noida.bootstrap, "topic_prefix": prefix, "partitions": 2},
        fetch={"allow_private_networks": True, "per_host_min_gap": 0.0},
    )


@pytest.fixture
def seed_story() -> str:
    return shared_path("seed", "000_7e306b04c98bd332.txt").read_text()
