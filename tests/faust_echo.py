"""A tiny Faust worker that copies ``<prefix>.echo-in`` to ``<prefix>.echo-out``, connecting
with the pipeline's own ``faust_credentials(settings.kafka)``: run as a child process by
tests/test_secure_connections.py to prove Faust/aiokafka reach a TLS (and SASL) broker::

    python -m tests.faust_echo      # settings from NEWSWIRE_* env
"""

from __future__ import annotations

import logging

import faust

from newswire.cli import setup_logging
from newswire.settings import load_settings
from processors.faust_auth import faust_credentials


def build_app() -> faust.App:
    settings = load_settings()
    kafka = settings.kafka
    assert kafka.bootstrap_servers
    app = faust.App(
        f"{kafka.topic_prefix}-echo",
        broker=";".join(f"kafka://{host}" for host in kafka.bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        datadir=str(settings.data_dir / "faust-echo"),
        web_enabled=False,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(settings.topic("echo-in"), **raw)
    sink = app.topic(settings.topic("echo-out"), **raw)

    @app.agent(source)
    async def echo(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=b"echo:" + (event.value or b""))
            logging.getLogger("faust_echo").info("echoed key=%s", event.key)

    return app


def main() -> None:
    setup_logging("DEBUG")  # as the services at their most verbose
    app = build_app()
    worker = faust.Worker(app, loglevel="debug", quiet=True, redirect_stdouts=False,
                          override_logging=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
