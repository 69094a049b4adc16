"""`promptcast compile`: optimize, then build -- the one command of a build step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..config import load_config
from .common import fail_on, user_errors
from .optimize import (
    DRY_RUN,
    KEPT,
    KEPT_EXIT_CODE,
    OptimizeOptions,
    optimize_flags,
    run_optimize,
)


@click.command(name="compile")
@optimize_flags
@click.option("--source", type=click.Path(path_type=Path), help="Source package to build.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output directory.")
@click.option("--vendor-runtime", is_flag=True, default=None, help="Copy the runtime into OUT.")
def compile_command(**flags: Any) -> None:
    """Optimize MODULE:FUNCTION (see `optimize`), then build SOURCE + lock into OUT."""
    from ..codegen.build import check_paths, plan_build, write_tree
    from ..lockfile import load_lock

    try:
        config = load_config()
        source = flags.get("source") or config.path("source")
        out = flags.get("out") or config.path("out")
        if source is None or out is None:
            raise click.UsageError(
                "give --source and --out (or set `source` and `out` in [tool.promptcast])"
            )
        if not Path(source).exists():
            raise click.UsageError(f"{source}: no such file or directory")
        check_paths(source, out)
        options = OptimizeOptions.resolve(config, flags)
        outcome = run_optimize(options, dry_run=bool(flags.get("dry_run")))
        if outcome == DRY_RUN:
            return
        vendor = flags.get("vendor_runtime")
        vendor = vendor if vendor is not None else bool(config.get("vendor_runtime"))
        plan = plan_build(source, load_lock(options.lock), vendor_runtime=vendor)
    except user_errors() as exc:
        fail_on(exc)
    write_tree(plan, out)
    click.echo(f"built {out}: {len(plan.generated)} compiled module(s), {len(plan.files)} files")
    if outcome == KEPT:  # built from the lock as it was; the stderr line says why
        sys.exit(KEPT_EXIT_CODE)
