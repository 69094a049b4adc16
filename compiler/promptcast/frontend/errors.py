"""Located compile errors: what went wrong, where, and what the compiler supports instead.

The frontend never stops at the first problem in a package. Every check appends a `Diagnostic`
to a list; once the whole package has been read, `raise_if_any` raises one `CompileError`
holding all of them, sorted by location, so a user fixes everything in one round trip. The CLI
turns a `CompileError` into exit code 2 and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from promptcast import ir
from promptcast.errors import PromptcastError


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the user's source.

    `source_text` is the offending code exactly as written (an annotation, a decorator, a
    statement); `supported` says, where it helps, what would have been accepted.
    """

    location: ir.SourceLocation
    message: str
    source_text: str = ""
    supported: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.path, self.location.line, self.location.column, self.message)

    def render(self) -> str:
        """`path:line:col: message`, then the offending text and what is supported, indented."""
        lines = [f"{self.location}: {self.message}"]
        text = self.source_text.strip("\n")
        if text:
            shown = text.splitlines()
            if len(shown) > 6:
                shown = [*shown[:6], "..."]
            lines.extend("    " + line for line in shown)
        if self.supported:
            lines.append(f"    supported: {self.supported}")
        return "\n".join(lines)


class CompileError(PromptcastError):
    """The user's source cannot be compiled; carries every diagnostic found, sorted by location."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        unique = {(d.sort_key(), d.source_text, d.supported): d for d in diagnostics}
        self.diagnostics: tuple[Diagnostic, ...] = tuple(unique[k] for k in sorted(unique))
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.diagnostics)
        body = "\n".join(d.render() for d in self.diagnostics)
        noun = "error" if count == 1 else "errors"
        return f"{body}\n{count} {noun}" if count else "compile error"

    def __str__(self) -> str:
        return self.render()


def raise_if_any(diagnostics: Iterable[Diagnostic]) -> None:
    """Raise a `CompileError` carrying `diagnostics`, if there are any."""
    collected = list(diagnostics)
    if collected:
        raise CompileError(collected)
