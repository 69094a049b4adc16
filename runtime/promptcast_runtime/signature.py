"""What one LM step declares: its instruction and its typed input and output fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .coerce import object_fields


class Field(NamedTuple):
    """A named, typed value going into or coming out of an LM call.

    `annotation` is the real Python type (`str`, `Literal[...]`, the user's dataclass): the adapter
    describes it in the prompt and `coerce` parses the model's text back into it.
    """

    name: str
    annotation: Any
    description: str = ""


class Signature(NamedTuple):
    """The task of one LM step: an instruction plus input and output fields, in order."""

    instructions: str
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]


REASONING = Field(
    "reasoning",
    str,
    "Think step by step about the inputs before giving the other outputs.",
)
"""The extra first output of a chain-of-thought step; the caller never sees it."""


def fields_from(cls: type, descriptions: Mapping[str, str]) -> tuple[Field, ...]:
    """Output fields for a structured return type (NamedTuple, dataclass, ...), in class order.

    Generated code uses this instead of spelling out each field's annotation, so the class
    stays the single source of truth for its field types.
    """
    return tuple(
        Field(name, annotation, descriptions.get(name, ""))
        for name, annotation in object_fields(cls).items()
    )
