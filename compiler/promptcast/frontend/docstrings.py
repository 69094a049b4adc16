"""Google-style (or plain prose) docstrings -> instructions and field descriptions.

A decorated function's docstring is its task: the prose becomes the zero-shot instruction and
the `Args:` / `Returns:` items become the descriptions of the input and output fields. This
module is a pure function of the docstring *text*, with no libcst, because it runs in two
places that must agree byte for byte: at build time on the evaluated CST string literal, and at
development time on `fn.__doc__`. Both are normalised with `inspect.cleandoc` first, so the
indentation the literal carries in the source does not matter.

Recognised section headers (a line that is only `Header:` at the docstring's left margin):
`Args`/`Arguments`/`Parameters`/`Params`, `Returns`/`Return`, `Attributes` (class docstrings),
and `Raises`/`Yields`, which are dropped. Everything else (including `Example:` or `Note:`
paragraphs) stays in the instructions, because it is what the user wants the model to read.
`Returns: text` on one line is accepted too.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_SECTION_ALIASES: dict[str, str] = {
    "args": "args",
    "arguments": "args",
    "parameters": "args",
    "params": "args",
    "returns": "returns",
    "return": "returns",
    "attributes": "attributes",
    "raises": "ignored",
    "yields": "ignored",
}

_HEADER = re.compile(r"^(?P<name>[A-Za-z]+)[ \t]*:[ \t]*(?P<rest>.*)$")
_ITEM = re.compile(
    r"^\*{0,2}(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*(?:\([^()\n]*\))?[ \t]*:(?:[ \t]+(?P<desc>.*))?$"
)


@dataclass(frozen=True)
class ParsedDocstring:
    """What a docstring says, split by purpose.

    `instructions`: the prose, without the recognised sections.
    `params`: `Args:` items, name -> description.
    `returns`: the whole `Returns:` text (the description of a single output).
    Item and `Returns:` descriptions are reflowed: the lines of a paragraph are joined with
    single spaces, paragraphs separated by one blank line. `instructions` keep their lines.
    `return_items`: `Returns:` items `name: description` (fields of a NamedTuple/dataclass output).
    `attributes`: `Attributes:` items (a class docstring describing its fields).
    """

    text: str
    instructions: str
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""
    return_items: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _reflow(lines: list[str]) -> str:
    """A field description as one line per paragraph.

    Continuation lines of a docstring item are wrapped for the source file, not meant as line
    breaks, so lines of a paragraph are joined with single spaces; blank lines separate
    paragraphs (kept as one blank line).
    """
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return "\n\n".join(paragraphs)


def _parse_items(lines: list[str]) -> dict[str, str]:
    """`name (type): description` items with indented continuation lines.

    An item starts at the section's smallest indentation; deeper lines continue it. Text that
    is not an item (e.g. a free-form `Returns:` sentence) yields no entry.
    """
    margins = [_indent(line) for line in lines if line.strip()]
    if not margins:
        return {}
    margin = min(margins)
    items: dict[str, str] = {}
    current: str | None = None
    first = ""
    rest: list[str] = []

    def flush() -> None:
        if current is not None and current not in items:
            items[current] = _reflow([first, *rest])

    for line in lines:
        if line.strip() and _indent(line) == margin:
            flush()
            match = _ITEM.match(line.strip())
            if match:
                current, first, rest = match["name"], match["desc"] or "", []
            else:
                current, first, rest = None, "", []
        elif current is not None:
            rest.append(line)
    flush()
    return items


def parse_docstring(docstring: str | None) -> ParsedDocstring:
    """Split `docstring` into instructions, parameter and return descriptions. Never raises."""
    text = inspect.cleandoc(docstring or "")
    lines = text.splitlines()
    prose: list[str] = []
    sections: dict[str, list[str]] = {}
    inline_returns: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER.match(line) if _indent(line) == 0 else None
        kind = _SECTION_ALIASES.get(header["name"].lower()) if header else None
        if header is None or kind is None or (header["rest"] and kind != "returns"):
            prose.append(line)
            i += 1
            continue
        if header["rest"]:
            inline_returns.append(header["rest"])
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > 0):
            body.append(lines[i])
            i += 1
        sections.setdefault(kind, []).extend(body)

    returns_lines = sections.get("returns", [])
    returns_text = _reflow([*inline_returns, *returns_lines])
    return ParsedDocstring(
        text=text,
        instructions=_join_prose(prose),
        params=_parse_items(sections.get("args", [])),
        returns=returns_text,
        return_items=_parse_items(returns_lines),
        attributes=_parse_items(sections.get("attributes", [])),
    )


def _join_prose(lines: list[str]) -> str:
    """Prose lines with trailing spaces removed and runs of blank lines collapsed to one."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip("\n")
