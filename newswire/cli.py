"""The ``newswire`` console script: one CLI, one sub-command per job.

Settings are built once here (options > NEWSWIRE_* env > config file > defaults) and
passed down; ``print``/``click.echo`` happens only in CLI layers.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from newswire.settings import Settings, load_settings

SETTINGS_HELP = """
Settings come from, strongest first: command-line options, environment variables
NEWSWIRE_* (nested with __, e.g. NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS=host:9092,
NEWSWIRE_SEARCH__ELASTICSEARCH_URL=https://host:9200, NEWSWIRE_SEARCH__API_KEY=...,
NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS=true, NEWSWIRE_WEB__PORT=8600), a TOML file
given by --config or NEWSWIRE_CONFIG, then defaults. With no Kafka and no Elasticsearch
named, `newswire up` starts an embedded broker (noida-db) and an embedded index (tantivy)
under the data dir. `newswire config` prints the effective settings (secrets hidden).
"""


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # The Kafka clients are chatty at INFO about every (re)connection, and kafka-python logs
    # the SASL/PLAIN password at DEBUG: keeping them at WARNING is a security measure too
    # (tests/test_secure_connections.py fails without it).
    for noisy in ("kafka", "aiokafka", "faust", "mode", "elastic_transport", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.group(help="newswire: streaming news ingestion, conflict tagging, search and alerts.\n"
             + SETTINGS_HELP)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="TOML config file (also NEWSWIRE_CONFIG).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where local state lives (also NEWSWIRE_DATA_DIR). Default ./newswire-data.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
              case_sensitive=False), help="Logging level (also NEWSWIRE_LOG_LEVEL).")
@click.version_option(package_name="newswire")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, data_dir: Path | None,
         log_level: str | None) -> None:
    settings = load_settings(config_file=config_file, data_dir=data_dir, log_level=log_level)
    setup_logging(settings.log_level)
    ctx.obj = settings


def settings_with(ctx: click.Context, **overrides: Any) -> Settings:
    """Sub-commands may repeat --data-dir after their name; apply such overrides once."""
    settings: Settings = ctx.obj
    clean = {k: v for k, v in overrides.items() if v is not None}
    if not clean:
        return settings
    return load_settings(**{**settings.model_dump(exclude_unset=True), **clean})


@main.command("config", help="Print the effective settings as JSON (secrets hidden).")
@click.pass_obj
def config_cmd(settings: Settings) -> None:
    click.echo(settings.model_dump_json(indent=2))


@main.command("topics", help="Create the declared Kafka topics that are missing (idempotent) and "
              "list them. Run once before the services on a real Kafka cluster.")
@click.option("--dry-run", is_flag=True, help="Only list the declared topics; do not connect.")
@click.pass_obj
def topics_cmd(settings: Settings, dry_run: bool) -> None:
    from kafka.errors import KafkaError

    from newswire import runtime
    from newswire.topics import TOPICS, ensure_topics

    created: set[str] = set()
    if not dry_run:
        try:  # a real cluster from the settings, or the running `up`'s embedded broker
            settings = runtime.with_kafka(settings)
            created = set(ensure_topics(settings))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        except KafkaError as exc:
            raise click.ClickException(
                f"Kafka at {settings.kafka.bootstrap_servers}: {type(exc).__name__}: {exc}"
            ) from None
    for spec in TOPICS:
        name = settings.topic(spec.name)
        partitions = spec.partitions or settings.kafka.partitions
        config = ",".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        state = "declared" if dry_run else ("created" if name in created else "exists")
        click.echo(f"{name}\tpartitions={partitions}\t{config}\t{state}")


@main.command(help="Run the whole pipeline in the foreground until SIGINT/SIGTERM.\n\n"
              "Starts the embedded broker (unless NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS is set), the "
              "feed poller, the Faust processor worker, the indexer and the search page/API. "
              "With no --feed/--feeds it polls a small built-in list of world-news feeds.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where local state lives (default ./newswire-data, NEWSWIRE_DATA_DIR).")
@click.option("--feed", "feeds", multiple=True, help="Feed URL to poll (repeatable).")
@click.option("--feeds", "feeds_file", type=click.Path(path_type=Path, dir_okay=False),
              help="File of feed URLs, one per line, or an OPML file.")
@click.option("--allow-private-networks", is_flag=True, default=None,
              help="Allow fetching loopback/private addresses (refused by default).")
@click.option("--port", type=int, help="Port of the search page and API (default 8600).")
@click.pass_context
def up(ctx: click.Context, data_dir: Path | None, feeds: tuple[str, ...],
       feeds_file: Path | None, allow_private_networks: bool | None, port: int | None) -> None:
    from newswire.runner import run_up

    settings = settings_with(ctx, data_dir=data_dir, feeds_file=feeds_file)
    updates: dict[str, Any] = {}
    if feeds:
        updates["feeds"] = list(feeds)
    if allow_private_networks:
        updates["fetch"] = settings.fetch.model_copy(update={"allow_private_networks": True})
    if port is not None:
        updates["web"] = settings.web.model_copy(update={"port": port})
    if updates:
        settings = settings.model_copy(update=updates)
    sys.exit(run_up(settings))


@main.command(help="Extract articles: JSON lines {id,url,html} on stdin -> JSON lines on stdout "
              "{id,url,canonical_url,title,text,author,published,language,sitename,image}. "
              "A record that cannot be extracted yields {id,error}; the rest go on.")
def extract() -> None:
    from processors.clean import extract_record

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("a JSON object is expected")
        except ValueError as exc:
            click.echo(json.dumps({"id": None, "error": f"bad input line: {exc}"}))
            continue
        click.echo(json.dumps(extract_record(record), ensure_ascii=False, default=str))


@main.command(help="Tag articles: JSON lines {id,title,text} on stdin -> JSON lines "
              "{id, conflict_related, conflicts, event_types, actors, countries, locations, "
              "casualties}.")
def tag() -> None:
    from processors.tag import tag_record

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("a JSON object is expected")
        except ValueError as exc:
            click.echo(json.dumps({"id": None, "error": f"bad input line: {exc}"}))
            continue
        click.echo(json.dumps(tag_record(record), ensure_ascii=False, default=str))


@main.command(help="Run the Faust processor worker (fetch, clean, tag, match alerts).")
@click.pass_obj
def process(settings: Settings) -> None:
    from processors.worker import run_worker

    sys.exit(run_worker(settings))


SERVICE_COMMAND_MODULES = (
    "ingest.cli",  # poll, feeds
    "indexer.cli",  # index, search
    "indexer.web_cli",  # serve
    "processors.cli",  # reprocess
    "processors.alerts.cli",  # alerts
    "newswire.ops_cli",  # status, dlq
)


def _register_service_commands() -> None:
    # Each service owns its own commands; the CLI only gathers them.
    import importlib
    import importlib.util

    for name in SERVICE_COMMAND_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:  # its parent package is not there either
            continue
        for command in importlib.import_module(name).commands:
            main.add_command(command)


_register_service_commands()
