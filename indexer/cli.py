"""CLI commands of the indexer service (index, search, serve)."""

import click

commands: list[click.Command] = []
