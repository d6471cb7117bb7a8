"""CLI commands of the ingest service (poll, feeds)."""

import click

commands: list[click.Command] = []
