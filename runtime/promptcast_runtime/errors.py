"""The two ways a compiled LM call fails, so callers can tell a bad answer from a bad connection."""

from __future__ import annotations


class PromptcastRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class ParseError(PromptcastRuntimeError, ValueError):
    """The model answered, but the answer does not fit the declared output type.

    Carries the raw completion so it can be logged or shown. No second LM call is made unless
    the step opted into `parse_retries`.
    """

    def __init__(self, message: str, *, field: str | None, expected: str, raw: str) -> None:
        self.field = field
        self.expected = expected
        self.raw = raw
        self.reason = message
        where = f"field `{field}`" if field else "the completion"
        snippet = raw if len(raw) <= 500 else raw[:500] + f"... ({len(raw)} chars)"
        super().__init__(
            f"could not parse {where} as {expected}: {message}\nraw completion: {snippet!r}"
        )


class LMError(PromptcastRuntimeError):
    """The LM could not be reached or answered with something that is not a completion."""


class StreamError(LMError):
    """A streamed completion broke off after part of the answer had arrived (a dropped
    connection, a malformed event, an error event from the server).

    `text` is the completion text received before the fault, `fields` the partial fields the
    stream had shown from it. Never retried: content already reached the caller, and a second
    request could answer differently.
    """

    def __init__(self, message: str, *, text: str = "", fields: dict[str, object] | None = None):
        super().__init__(message)
        self.text = text
        self.fields: dict[str, object] = dict(fields or {})
