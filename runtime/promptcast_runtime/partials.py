"""The output fields a completion still arriving already decides: what a stream shows early.

Two kinds of field, two rules (DESIGN principle 2, an error is better than a guess):

- a `str` field grows with the text: it is shown as far as it is written, less what the final
  parse may still strip (surrounding whitespace, an unfinished field marker or reasoning tag,
  a wrapper that names the field). Where the text could still turn into such a wrapper (a
  fence, `<answer>`, `Answer:`, a JSON object) it is held back until its section ends;
- any other field (`int`, `Literal`, a list, an object ...) is shown only once its section or
  JSON value is complete, and its value is what the adapter's own `parse` makes of the text so
  far (one path: the code that parses the final answer, never a guess at half a number).

What is shown is provisional: the final parse of the whole completion (`Predictor._settle`)
decides the answer, and may still reject it (a field written twice with different values).
The `chat` adapter is read by its `[[ ## field ## ]]` sections; the `json` adapter by a scanner
over the top-level object that decodes a string value's escapes as its characters arrive. The
`dspy` adapter shows nothing before the final item (see `PartialParser`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .adapters import _MARKER, NOT_SUPPLIED, get_adapter
from .coerce import _REASONING_TAGS, strip_reasoning
from .errors import ParseError
from .signature import Field, Signature

_NOTHING: Any = object()
"""A complete section that does not parse on its own: not shown (the final parse decides)."""

_OPEN_MARKER = r"\[\[\s*(?:#+\s*(?:\w+\s*(?:#+\s*\]?)?)?)?"
"""What an unfinished `[[ ## name ## ]]` at the end of the text can look like so far."""

_FENCE = "```"


class PartialParser:
    """Field name -> value for a completion so far; one per attempt of one streamed call.

    `feed(text)` takes the whole text received so far (not a delta) and returns the fields it
    decides, in the signature's output order. Complete fields are parsed once and kept.
    """

    def __init__(self, signature: Signature, adapter: str) -> None:
        self.signature = signature
        self.adapter = get_adapter(adapter)
        self.json = adapter == "json"
        # The dspy parse keeps DSPy's own quirks (a header's rest of line is cut at the stripped
        # line's offset) and falls back to the chat parse for the whole answer when one field
        # fails: no field is decided before the end, so its stream shows the final item only.
        self.final_only = adapter == "dspy"
        self.fields = {f.name.lower(): f for f in signature.outputs}
        self.order = [f.name for f in signature.outputs]
        self._complete: dict[tuple[str, str], Any] = {}

    def feed(self, text: str) -> dict[str, Any]:
        if self.final_only:
            return {}
        visible = strip_reasoning(_without_open_tag(text))
        found = self._json_fields(visible) if self.json else self._marker_fields(visible)
        return {name: found[name] for name in self.order if name in found}

    # --- the marker formats (chat, dspy) ---------------------------------------------------

    def _marker_fields(self, text: str) -> dict[str, Any]:
        matches = list(re.finditer(_MARKER, text))
        found: dict[str, Any] = {}
        seen: set[str] = set()
        for i, match in enumerate(matches):
            key = match.group(1).lower()
            field = self.fields.get(key)
            if field is None or key in seen:
                continue  # `completed`, an echoed input, a second copy: the final parse decides
            seen.add(key)
            if i + 1 < len(matches):  # the next marker closed this section
                value = self._parsed(field, text[: matches[i + 1].start()])
                if value is not _NOTHING:
                    found[field.name] = value
            elif field.annotation is str:
                grown = growing_text(text[match.end() :], field.name)
                if grown:
                    found[field.name] = grown
        return found

    def _parsed(self, field: Field, text: str) -> Any:
        """`field`'s value from `text`, which ends where its section does: the adapter's own
        parse of it, for a signature of that field alone."""
        key = (field.name, text)
        if key not in self._complete:
            alone = self.signature._replace(outputs=(field,))
            try:
                self._complete[key] = self.adapter.parse(alone, text)[field.name]
            except ParseError:
                self._complete[key] = _NOTHING
        return self._complete[key]

    # --- the json format -------------------------------------------------------------------

    def _json_fields(self, text: str) -> dict[str, Any]:
        start = text.find("{")
        if start < 0:
            return {}
        found: dict[str, Any] = {}
        seen: set[str] = set()
        for key_text, value_start, value_end in _members(text, start):
            try:
                key = json.loads(key_text)
            except ValueError:
                break
            field = self.fields.get(str(key).lower())
            if field is None or field.name.lower() in seen:
                continue
            seen.add(field.name.lower())
            if value_end is not None:
                raw = "{" + key_text + ": " + text[value_start:value_end].strip() + "}"
                value = self._parsed(field, raw)
                if value is not _NOTHING:
                    found[field.name] = value
            elif field.annotation is str and text.startswith('"', value_start):
                grown = _growing_json_string(text[value_start + 1 :])
                if grown is not None and not _may_be_no_answer(grown, field.name):
                    found[field.name] = grown
        return found


def growing_text(section: str, name: str) -> str | None:
    """The part of an open section of `str` field `name` that the final parse will keep as
    written: None while the text could still become a wrapper the parse strips."""
    text = section.lstrip()
    text = text[: _open_marker_start(text)].rstrip()
    if _may_be_no_answer(text, name) or _may_unwrap(text, name):
        return None
    return text


def _may_be_no_answer(text: str, name: str) -> bool:
    """Whether `text` may yet turn out to be what the parse reads as no answer (blank, the
    `{name}` placeholder, the demo filler): shown as text, it would vanish at the end."""
    stripped = text.strip()
    return NOT_SUPPLIED.startswith(stripped) or f"{{{name}}}".startswith(stripped)


def _open_marker_start(text: str) -> int:
    """Where an unfinished field marker at the end of `text` starts (len(text) if none)."""
    line_start = text.rfind("\n") + 1
    last = text[line_start:].lstrip(" \t")
    if last == "[":
        return line_start
    for match in re.finditer(r"(?m)^[ \t]*\[\[", text):
        if re.fullmatch(_OPEN_MARKER, text[match.end() - 2 :]):
            return match.start()
    return len(text)


def _may_unwrap(text: str, name: str) -> bool:
    """Whether `text` (stripped, the start of a field's value) may yet be read as a wrapper
    around the value: a fence, `<name>...</name>`, a `{"name": ...}` object, a `Name:` label."""
    if _FENCE.startswith(text[:3]) or text.startswith("{"):
        return True
    opening = f"<{name.lower()}>"
    if opening.startswith(text[: len(opening)].lower()):
        return True
    return _may_be_label(text, name)


def _may_be_label(text: str, name: str) -> bool:
    """Whether `text` starts, or may go on to start, with `**Final answer:**`-style label of
    `name` (`adapters._label_pattern`), which the final parse removes."""
    lowered = text.lower()
    i = len(lowered) - len(lowered.lstrip("*"))
    rest = lowered[i:]
    if not rest:
        return True
    options = [rest]
    if rest.startswith("final"):
        after = rest[5:]
        trimmed = after.lstrip(" \t")
        if not trimmed:
            return True
        if len(trimmed) < len(after):
            options.append(trimmed)
    elif "final".startswith(rest):
        return True
    label = name.lower()
    for option in options:
        k = 0
        while k < len(option) and k < len(label):
            ok = option[k] in " _" if label[k] == "_" else option[k] == label[k]
            if not ok:
                break
            k += 1
        else:
            if k == len(option):
                return True  # still a prefix of the label
            tail = option[k:].lstrip("*").lstrip(" \t")
            if not tail or tail.startswith(":"):
                return True
    return False


def _without_open_tag(text: str) -> str:
    """`text` less an unfinished reasoning tag at its end (`<thi`), which may yet hide what
    follows it (`strip_reasoning` drops a `<think>` block)."""
    at = text.rfind("<")
    if at < 0 or ">" in text[at:]:
        return text
    match = re.fullmatch(r"</?([A-Za-z]*)[ \t]*", text[at:])
    if match and any(tag.startswith(match.group(1).lower()) for tag in _REASONING_TAGS):
        return text[:at]
    return text


def _members(text: str, start: int) -> list[tuple[str, int, int | None]]:
    """The top-level members of the JSON object opening at `start`, as far as written:
    (key as written, where its value starts, where it ends or None while it is open).

    Stops at the first thing strict JSON does not allow (the final parse repairs it)."""
    members: list[tuple[str, int, int | None]] = []
    n = len(text)
    pos = start + 1
    while True:
        pos = _skip_space(text, pos)
        if pos >= n or text[pos] == "}":
            return members
        if text[pos] == ",":
            pos += 1
            continue
        if text[pos] != '"':
            return members
        key_end = _string_end(text, pos)
        if key_end is None:
            return members
        key = text[pos:key_end]
        pos = _skip_space(text, key_end)
        if pos >= n or text[pos] != ":":
            return members
        pos = _skip_space(text, pos + 1)
        if pos >= n:
            return members
        end = _string_end(text, pos) if text[pos] == '"' else _value_end(text, pos)
        members.append((key, pos, end))
        if end is None:
            return members
        pos = end


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _string_end(text: str, pos: int) -> int | None:
    """Just past the closing quote of the JSON string opening at `pos`; None if unclosed."""
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        i += 1
    return None


def _value_end(text: str, pos: int) -> int | None:
    """Where the non-string JSON value at `pos` ends (its delimiter `,` or `}` at the object's
    level); None while it may go on."""
    depth = 0
    i = pos
    while i < len(text):
        char = text[i]
        if char == '"':
            end = _string_end(text, i)
            if end is None:
                return None
            i = end
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return i
            depth -= 1
        elif char == "," and depth == 0:
            return i
        i += 1
    return None


def _growing_json_string(body: str) -> str | None:
    """The decoded characters of an unclosed JSON string so far (`body` follows its opening
    quote), less an unfinished escape at the end; None if it is not strict JSON."""
    cut = len(body)
    i = 0
    while i < len(body):
        if body[i] != "\\":
            i += 1
            continue
        if i + 1 >= len(body):
            cut = i
            break
        if body[i + 1] != "u":
            i += 2
            continue
        digits = body[i + 2 : i + 6]
        if len(digits) < 4:
            cut = i
            break
        if 0xD800 <= _hex(digits) <= 0xDBFF:  # a high surrogate: its low half must follow
            if len(body) < i + 12:
                cut = i
                break
            i += 12
            continue
        i += 6
    try:
        decoded = json.loads('"' + body[:cut] + '"')
    except ValueError:
        return None
    return decoded if isinstance(decoded, str) else None


def _hex(digits: str) -> int:
    try:
        return int(digits, 16)
    except ValueError:
        return -1
