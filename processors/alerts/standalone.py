"""A Faust worker running only the alert agents (tests, benchmarks, a separate alerts tier).

In the pipeline the alert agents run inside the processor worker (``processors.worker``
calls ``install``); this module builds the same agents on an app of their own::

    python -m processors.alerts.standalone        # settings from NEWSWIRE_* env
"""

from __future__ import annotations

import sys

import faust

from newswire import runtime
from newswire.cli import setup_logging
from newswire.settings import Settings, load_settings
from newswire.topics import ensure_topics
from processors import fetch_idle
from processors.alerts.agent import AlertService, install
from processors.faust_auth import faust_credentials
from processors.alerts.channels import RetryPolicy


def build_app(settings: Settings, *, app_id: str | None = None,
              policy: RetryPolicy | None = None,
              flush_interval: float | None = None) -> tuple[faust.App, AlertService]:
    kafka = settings.kafka
    if not kafka.bootstrap_servers:
        raise RuntimeError("NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS must be set")
    (settings.data_dir / "faust-alerts").parent.mkdir(parents=True, exist_ok=True)
    fetch_idle.install()  # as the processor: an idle consumer must not spin on noida
    app = faust.App(
        app_id or f"{kafka.topic_prefix}-alerts",
        broker=";".join(f"kafka://{host}" for host in kafka.bootstrap_servers.split(",")),
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        datadir=str(settings.data_dir / "faust-alerts"),
        web_enabled=False,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_acks=-1,
        broker_commit_interval=1.0,
        # ~50 alert-state changelog writes per matched article: batch them into a few
        # produce requests instead of one request (and one broker save) each
        producer_linger=0.005,
        # a full batch of one partition makes aiokafka's send wait until it is drained,
        # and Faust's producer buffer sends one message at a time: a small batch size puts
        # every other topic's messages behind the alert state's changelog
        producer_max_batch_size=262_144,
        # static membership, as the processor: a worker restarted after a crash takes the
        # dead one's place in the group at once (noida never evicts it otherwise)
        consumer_group_instance_id=runtime.instance_id(settings, "alerts"),
    )
    service = install(app, settings, policy=policy, flush_interval=flush_interval)
    return app, service


def main() -> int:
    settings = load_settings()
    setup_logging(settings.log_level)
    ensure_topics(settings)
    policy = None
    if len(sys.argv) > 1 and sys.argv[1] == "--fast-retries":  # tests: short backoff
        policy = RetryPolicy(attempts=3, initial=0.05, maximum=0.2, timeout=5.0)
    app, _ = build_app(settings, policy=policy)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          redirect_stdouts=False, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
