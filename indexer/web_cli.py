"""``newswire serve``: the search page and HTTP JSON API on their own."""

from __future__ import annotations

import sys
from typing import Any

import click

from newswire.settings import Settings


@click.command("serve", help="Serve the search page and JSON API (OpenAPI at /openapi.json) "
               "until SIGINT/SIGTERM. Binds to 127.0.0.1:8600 unless NEWSWIRE_WEB__HOST/PORT or "
               "the options say otherwise. Write routes need NEWSWIRE_WEB__TOKEN; without it "
               "every write is refused.")
@click.option("--host", help="Bind address (default 127.0.0.1; 0.0.0.0 exposes it to the network).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8600).")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> None:
    from indexer.web import run_web

    updates: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if updates:
        settings = settings.model_copy(update={"web": settings.web.model_copy(update=updates)})
    sys.exit(run_web(settings))


commands: list[click.Command] = [serve]
