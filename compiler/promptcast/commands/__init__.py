"""Click commands that need the engine (optimize, eval, compile), kept apart from cli.py."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the engine commands to the `promptcast` group (their modules import lazily)."""
    from .compile import compile_command
    from .eval import eval_command
    from .optimize import optimize

    group.add_command(optimize)
    group.add_command(eval_command)
    group.add_command(compile_command)
