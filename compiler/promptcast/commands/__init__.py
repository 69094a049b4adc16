"""Click commands that need the engine (optimize, eval, compile), kept apart from cli.py."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the engine commands to the `promptcast` group."""
