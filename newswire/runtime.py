"""What a running ``newswire up`` tells other commands: where its embedded broker listens.

``up`` writes ``DATA_DIR/runtime.json`` at start and removes it at stop; commands such as
``status`` and ``dlq`` read it when no Kafka is configured, so they reach the embedded broker.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from newswire.settings import Settings

FILENAME = "runtime.json"


def write(settings: Settings, **facts: Any) -> Path:
    path = settings.data_dir / FILENAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **facts}))
    tmp.replace(path)  # atomic: readers never see half a file
    return path


def clear(settings: Settings) -> None:
    (settings.data_dir / FILENAME).unlink(missing_ok=True)


def read_unchecked(data_dir: Path) -> dict[str, Any] | None:
    """The file's facts, whether or not its writer still runs (for messages only)."""
    try:
        facts = json.loads((data_dir / FILENAME).read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def read(settings: Settings) -> dict[str, Any] | None:
    facts = read_unchecked(settings.data_dir)
    if facts is None:
        return None
    try:
        os.kill(int(facts["pid"]), 0)
    except (KeyError, ValueError, ProcessLookupError, PermissionError):
        return None  # left behind by a process that is gone
    return facts


def with_kafka(settings: Settings) -> Settings:
    """Settings whose Kafka is known: configured, or the running embedded broker's."""
    if settings.kafka.bootstrap_servers:
        return settings
    facts = read(settings)
    if not facts or not facts.get("kafka"):
        raise RuntimeError(
            f"no Kafka configured and no running `newswire up` found in {settings.data_dir} "
            "(set NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS or start `newswire up`)"
        )
    return settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"bootstrap_servers": facts["kafka"]})
    })


def instance_id(settings: Settings, role: str) -> str:
    """A stable consumer-group member id (static membership) for one service instance.

    Host name plus data dir: a restarted service takes its old place in the group at once
    instead of waiting for (or, on noida, never getting) the dead member's eviction.
    Containers and pods have their own host names, so replicas never collide.
    """
    where = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]
    return f"{settings.kafka.topic_prefix}-{role}-{socket.gethostname()}-{where}"
