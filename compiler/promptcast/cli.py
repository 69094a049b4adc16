"""The `promptcast` command line. Thin: parse flags, call the layers, print, pick the exit code.

Exit codes: 0 success; 1 `build --check` found stale files, or `optimize`/`compile` kept the
lock because the new result does not beat its state (or an eval below a threshold);
2 bad input (source, data, lock, paths), with the error naming the file and line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .commands.common import fail, fail_on, user_errors
from .config import load_config


class _Commands(click.Group):
    """The `promptcast` group: a user error escaping any command becomes its one line and exit
    code (2); every other exception keeps its traceback (exit 1) -- it is a bug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except user_errors() as exc:
            fail_on(exc)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="promptcast")
def main() -> None:
    """Compile language-model programs into plain Python modules."""


@main.command()
@click.argument("src", type=click.Path(path_type=Path), required=False)
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output directory.")
@click.option("--lock", "lock_path", type=click.Path(path_type=Path), help="Lock file to read.")
@click.option("--vendor-runtime", is_flag=True, default=None, help="Copy the runtime into OUT.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if OUT is stale.")
def build(
    src: Path | None,
    out: Path | None,
    lock_path: Path | None,
    vendor_runtime: bool | None,
    check: bool,
) -> None:
    """Source package + lock -> generated tree. Makes no LM call."""
    from .codegen.build import check_paths, plan_build, stale_files, write_tree
    from .config import project_lm_params
    from .lockfile import load_lock

    config = load_config()
    src = src or config.path("source")
    out = out or config.path("out")
    if src is None or out is None:
        fail("give SRC and -o OUT (or set `source` and `out` in [tool.promptcast])")
    if not src.exists():
        fail(f"{src}: no such file or directory")
    lock_file = lock_path or config.lock_path()
    vendor = vendor_runtime if vendor_runtime is not None else bool(config.get("vendor_runtime"))
    check_paths(src, out)
    lock = load_lock(lock_file, required=lock_path is not None)
    plan = plan_build(src, lock, vendor_runtime=vendor, lm_params=project_lm_params(config))
    if check:
        stale = stale_files(plan, out)
        if stale:
            click.echo(f"{out} is stale; run `promptcast build`. Stale files:", err=True)
            for rel in stale:
                click.echo(f"  {rel}", err=True)
            sys.exit(1)
        click.echo(f"{out} is up to date ({len(plan.files)} files)")
        return
    write_tree(plan, out)
    click.echo(f"built {out}: {len(plan.generated)} compiled module(s), {len(plan.files)} files")


@main.command()
@click.argument("target")
@click.option(
    "--input", "-i", "inputs", multiple=True, metavar="NAME=VALUE", help="An input value."
)
@click.option("--lock", "lock_path", type=click.Path(path_type=Path), help="Lock file to read.")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
def inspect(target: str, inputs: tuple[str, ...], lock_path: Path | None, as_json: bool) -> None:
    """Print the exact messages MODULE:FUNCTION sends for the given inputs."""
    from .api import LMFunction
    from .context import SETTINGS
    from .media import known_images, readable_content
    from .targets import load_target

    config = load_config()
    SETTINGS.lock_path = lock_path or config.lock_path()
    function = load_target(target)
    if not isinstance(function, LMFunction):
        fail(f"{target} is a program; inspect one of the LM functions it calls")
    values = _parse_inputs(function, inputs)
    step = function.predictor()
    # An ensemble sends one request per member: show each (a knn step's `messages` already
    # holds the demos chosen for these inputs).
    members = getattr(step, "member_messages", None)
    from promptcast_runtime import HistoryError, ImageError

    try:
        conversations = members(values) if members is not None else [step.messages(values)]
    except (HistoryError, ImageError) as exc:
        fail(str(exc))
    known = known_images(values, function.state(), SETTINGS.lock_path)
    if as_json:
        shown = conversations if members is not None else conversations[0]
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for index, messages in enumerate(conversations):
        if members is not None:
            click.secho(f"=== ensemble member {index + 1} of {len(conversations)} ===", bold=True)
        for message in messages:
            click.secho(f"--- {message['role']} ---", bold=True)
            click.echo(readable_content(message["content"], known))


def _parse_inputs(function: Any, pairs: tuple[str, ...]) -> dict[str, Any]:
    """`name=value` pairs -> typed inputs (values coerced like model output: `3`, `[1, 2]`)."""
    from promptcast_runtime import ParseError, coerce

    from .media import input_value

    names = {f.name for f in function.signature.inputs}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in names:
            fail(f"--input {pair!r}: expected NAME=VALUE with NAME one of {sorted(names)}")
        try:
            special = input_value(raw, function.annotations[name])
            if special is not None:
                values[name] = special
                continue
            values[name] = coerce(raw, function.annotations[name])
        except (ParseError, ValueError, TypeError) as exc:
            reason = exc.reason if isinstance(exc, ParseError) else str(exc)
            fail(f"--input {name}={raw!r}: not a valid value for `{name}`: {reason}")
    missing = names - set(values)
    if missing:
        fail(f"missing --input for: {', '.join(sorted(missing))}")
    return values


def _register_commands() -> None:
    """Commands that live in their own modules (optimize, eval, compile, from-dspy)."""
    from .commands import register
    from .commands.from_dspy import from_dspy

    register(main)
    main.add_command(from_dspy)


_register_commands()
