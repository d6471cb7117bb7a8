"""CLI commands of the processors service: ``newswire reprocess``."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click


@click.command("reprocess", help="Re-run cleaning and tagging over the pages archived under "
               "the data dir (DATA_DIR/processors/pages.sqlite) and publish the new articles "
               "to the articles topic, where the indexer upserts them by key. Use after an "
               "extractor or taxonomy upgrade. Kafka: NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS, or "
               "the embedded broker of a running `newswire up` on the same data dir.")
@click.option("--since", "since", metavar="DATE",
              help="Only pages fetched at or after DATE (YYYY-MM-DD or ISO-8601, UTC).")
@click.option("--source", "source", metavar="HOST",
              help="Only pages from HOST (subdomains included, e.g. reuters.com).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where local state lives (default ./newswire-data, NEWSWIRE_DATA_DIR).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def reprocess_cmd(ctx: click.Context, since: str | None, source: str | None,
                  data_dir: Path | None, no_progress: bool) -> None:
    from indexer.cli import parse_date
    from newswire.cli import settings_with
    from newswire.runtime import with_kafka
    from processors.reprocess import pages_path, run_reprocess

    settings = settings_with(ctx, data_dir=data_dir)
    since_at: datetime | None = parse_date(since) if since else None
    if not pages_path(settings).exists():
        raise click.ClickException(f"no page archive at {pages_path(settings)}")
    try:
        settings = with_kafka(settings)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    stats = run_reprocess(settings, since=since_at, source=source, progress=not no_progress)
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(stats.rejected.items())) or "none"
    click.echo(f"reprocessed {stats.seen} pages: {stats.published} articles published to "
               f"{settings.topic('articles')}; not usable: {rejected}", err=True)
    sys.exit(0)


commands: list[click.Command] = [reprocess_cmd]
