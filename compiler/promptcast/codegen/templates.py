"""Finds and renders the jinja2 templates in `templates/`, from a checkout or an installed wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2


def templates_dir() -> Path:
    """`promptcast/templates` inside a wheel, else the checkout's top-level `templates/`."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "templates", package.parents[1] / "templates"):
        if (candidate / "step.py.j2").is_file():
            return candidate
    raise FileNotFoundError(f"promptcast templates not found near {package}")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # we emit Python, and every value is already a Python literal
    )


def render_template(name: str, **values: Any) -> str:
    return _environment().get_template(name).render(**values)
