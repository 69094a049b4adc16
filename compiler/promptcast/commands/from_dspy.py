"""`promptcast from-dspy`: convert a DSPy program and its saved state into a promptcast project."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import fail


@click.command(name="from-dspy")
@click.argument("program", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help='The JSON state `program.save("program.json")` wrote (its instructions and demos go'
    " into the lock). Without it: the source's instructions, no demos.",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="Project directory."
)
@click.option("--package", help="Package name of the converted source (default: the file's).")
@click.option("--model", default="", help="Model the lock records, e.g. openai/qwen0.5b.")
@click.option(
    "--lm-param",
    "lm_param",
    multiple=True,
    metavar="K=V",
    help="A sampling parameter every converted step sends (V is JSON, else text), e.g."
    " max_tokens=128 to send what your dspy.LM(...) sent. Repeatable.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def from_dspy(
    program: Path,
    state: Path | None,
    out: Path,
    package: str | None,
    model: str,
    lm_param: tuple[str, ...],
    force: bool,
) -> None:
    """Convert the DSPy PROGRAM (a .py file) into promptcast source + lock in OUT.

    Reads the source statically: DSPy need not be installed and the program is never
    imported or run. What cannot be converted is an error naming the construct and its line
    (exit 2), and nothing is written.
    """
    from ..dspy_import import convert

    params = {}
    for pair in lm_param:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--lm-param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    done = convert(program, state, out, package=package, model=model, lm_params=params, force=force)
    for qualname, predictor in done.steps.items():
        click.echo(f"  {qualname}  <- {predictor} ({done.demos[qualname]} demos)")
    for note in done.notes:
        click.echo(f"  note: {note}", err=True)
    click.echo(
        f"wrote {out}: {done.package}/{done.module}.py ({len(done.steps)} step(s), program"
        f" {', '.join(done.programs)}), promptcast.lock.json, pyproject.toml;"
        f" next: cd {out} && promptcast build"
    )
