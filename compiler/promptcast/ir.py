"""The compiler's intermediate representation: what a decorated function *is*, independent of source.

The frontend turns libcst trees into these objects; the engine, optimizers, lock file and codegen
only ever see these. Everything here is frozen and JSON-serialisable so it can be hashed (the
signature hash in the lock) and written to the lock with a stable key order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ModuleKind = Literal["predict", "chain_of_thought", "react"]
"""Which LM module a decorated function compiles to (more arrive with later issues)."""

TypeKind = Literal[
    "str",
    "int",
    "float",
    "bool",
    "none",
    "literal",
    "enum",
    "list",
    "dict",
    "optional",
    "tuple",
    "object",
]


@dataclass(frozen=True)
class SourceLocation:
    """Where something was written, for error messages (1-based line and column)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class TypeSchema:
    """A supported annotation, resolved.

    `source` is the annotation exactly as the user wrote it; codegen re-emits it verbatim so the
    generated signature reads like the original. `kind` and the rest describe it structurally for
    validation and hashing. User classes (`enum`, `object`) carry `name` and the `module` that
    defines them so the generated module can import them from where the user put them.
    """

    kind: TypeKind
    source: str
    args: tuple[TypeSchema, ...] = ()
    values: tuple[str | int | bool, ...] = ()
    name: str | None = None
    module: str | None = None
    fields: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class FieldSpec:
    """One input or output field: a name, its type and the description the prompt shows."""

    name: str
    type: TypeSchema
    description: str = ""


ReturnShape = Literal["single", "namedtuple", "dataclass", "typeddict", "pydantic"]
"""How the parsed output fields become the function's return value."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool of a `react` function, as the source names it.

    `expression` is the decorator's text for it (`add`, `tools.lookup`), which the generated
    module writes back; `header` and `doc` are read from the tool's `def` so that editing a
    tool's signature or docstring (what the model is told) makes the lock entry stale.
    """

    name: str
    expression: str
    header: str = ""
    doc: str = ""


@dataclass(frozen=True)
class Signature:
    """A decorated LM function as the frontend found it.

    `qualname` is `package.module:function`, the key of the function's lock entry.
    `instructions` is the docstring's prose (without the Args/Returns sections): the zero-shot
    instruction before any optimization.
    """

    qualname: str
    name: str
    module: str
    kind: ModuleKind
    instructions: str
    docstring: str
    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...]
    return_type: TypeSchema
    return_shape: ReturnShape
    location: SourceLocation
    adapter: str = "chat"
    """The message format declared in the decorator (`@pc.predict(adapter="json")`).

    "auto" leaves the choice to the optimizer, which scores chat and json on the dev set and
    freezes the better one into the lock; until then calls use chat."""
    parse_retries: int = 0
    """Opt-in: extra LM calls that show the model its unparsable answer (default: none)."""
    tools: tuple[ToolSpec, ...] = ()
    """`react` only: the functions the model may call."""
    max_iters: int = 5
    """`react` only: the most tool-calling turns before the answer is extracted."""

    def hash(self) -> str:
        """A stable hash of everything that shapes the prompt and the parse.

        A lock entry records it; when the source changes the fields, types, module kind or
        docstring of a function, the hash changes and `build` refuses the stale entry.
        Locations are excluded: moving a function within a file does not invalidate its lock.
        """
        payload = asdict(self)
        payload.pop("location")
        # Fields added after the first lock format count only when set, so adding a field
        # with a default never invalidates the locks users already have.
        for key, default in _LATER_FIELDS.items():
            if payload.get(key) == default:
                payload.pop(key)
        return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


_LATER_FIELDS: dict[str, Any] = {"parse_retries": 0, "tools": (), "max_iters": 5}
"""Signature fields newer than lock format 1, with the default at which they are not hashed."""

Demo = dict[str, Any]
"""One few-shot example: field name -> JSON-form value, inputs and outputs together."""


AUTO_ADAPTER = "auto"
AUTO_CHOICES = ("chat", "json")
"""What `adapter="auto"` chooses between, in order of preference on a tie."""


@dataclass(frozen=True)
class FunctionState:
    """The optimizable state of one function: what the optimizer searches, what codegen freezes."""

    instructions: str
    demos: tuple[Demo, ...] = ()
    adapter: str = "chat"
    lm_params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "instructions": self.instructions,
            "demos": [dict(d) for d in self.demos],
            "adapter": self.adapter,
            "lm_params": dict(self.lm_params),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionState:
        return cls(
            instructions=str(data["instructions"]),
            demos=tuple(dict(d) for d in data.get("demos", [])),
            adapter=str(data.get("adapter", "chat")),
            lm_params=dict(data.get("lm_params", {})),
        )

    @classmethod
    def zero_shot(cls, signature: Signature) -> FunctionState:
        """The state of a function nobody has optimized: its docstring, no demos.

        An `adapter="auto"` function starts on chat; the optimizer may switch it to json.
        """
        adapter = "chat" if signature.adapter == AUTO_ADAPTER else signature.adapter
        return cls(instructions=signature.instructions, adapter=adapter)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace variance: the basis of every hash we take."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
