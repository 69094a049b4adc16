"""The compiler's intermediate representation: what a decorated function *is*, independent of source.

The frontend turns libcst trees into these objects; the engine, optimizers, lock file and codegen
only ever see these. Everything here is frozen and JSON-serialisable so it can be hashed (the
signature hash in the lock) and written to the lock with a stable key order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from promptcast_runtime.adapters import ADAPTERS
from promptcast_runtime.kinds import AUTO_ADAPTER, get_kind, step_lm_params
from promptcast_runtime.tool_calls import AUTO_PROTOCOL, TEXT_PROTOCOL

ModuleKind = str
"""Which LM module kind a decorated function compiles to: a key of the runtime's registry
(`promptcast_runtime.kinds.KINDS`), the one table of kinds every layer reads."""

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
    "history",
    "image",
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


SINGLE_OUTPUT_NAMES = ("answer", "output")
"""Name of the one output field of a function returning a plain type, in order of preference
(the first one that is not already an input name)."""

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
    tools: tuple[ToolSpec, ...] = ()
    """Tool-calling kinds only: the functions the model may call, as the source names them."""
    options: tuple[tuple[str, Any], ...] = ()
    """The decorator's other options as written (`parse_retries`, `max_iters`, `lm_params`,
    ...), sorted by name; `option()` falls back to the kind's default for the rest."""

    def __hash__(self) -> int:
        return hash(self.hash())

    def option(self, name: str) -> Any:
        """The value of a kind option: as written in the decorator, else the kind's default."""
        given = dict(self.options)
        if name in given:
            return given[name]
        return get_kind(self.kind).option(name).default

    @property
    def parse_retries(self) -> int:
        """Opt-in: extra LM calls that show the model its unparsable answer (default: none)."""
        return int(self.option("parse_retries"))

    @property
    def max_iters(self) -> int:
        """Tool-calling kinds: the most tool-calling turns before the answer is extracted."""
        return int(self.option("max_iters"))

    @property
    def declared_lm_params(self) -> dict[str, Any]:
        """The decorator's `lm_params` (empty when it sets none)."""
        return dict(self.option("lm_params"))

    def kind_options(self) -> dict[str, Any]:
        """Every fixed (non-state, literal) option of the kind, defaults filled in: what a
        step spec's `options` holds."""
        kind = get_kind(self.kind)
        return {
            o.name: self.option(o.name)
            for o in kind.options
            if not o.state and o.source == "literal"
        }

    def hash(self) -> str:
        """A stable hash of everything that shapes the prompt and the parse.

        A lock entry records it; when the source changes the fields, types, module kind or
        docstring of a function, the hash changes and `build` refuses the stale entry.
        Locations are excluded: moving a function within a file does not invalidate its lock.
        """
        payload = asdict(self)
        payload.pop("location")
        payload.pop("options")
        # Fields and options added after the first lock format count only when set, so adding
        # one with a default never invalidates the locks users already have. Options sit at
        # the top level of the payload, where `parse_retries` and `max_iters` always were.
        if not payload["tools"]:
            payload.pop("tools")
        defaults = get_kind(self.kind).defaults()
        for key, value in self.options:
            if value != defaults.get(key, _NO_DEFAULT):
                payload[key] = _plain(value)
        return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


_NO_DEFAULT = object()


def _plain(value: Any) -> Any:
    """A mapping option (`lm_params`) as a plain, sorted dict for hashing."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    return value


Demo = dict[str, Any]
"""One few-shot example: field name -> JSON-form value, inputs and outputs together."""


AUTO_CHOICES = tuple(a for a in ADAPTERS if a != "dspy")
"""What `adapter="auto"` chooses between (`AUTO_ADAPTER`), in order of preference on a tie
("dspy" reproduces DSPy's prompt for imported programs; it is chosen, never searched)."""


@dataclass(frozen=True)
class FunctionState:
    """The optimizable state of one function: what the optimizer searches, what codegen freezes."""

    instructions: str
    demos: tuple[Demo, ...] = ()
    adapter: str = "chat"
    lm_params: dict[str, Any] = field(default_factory=dict)
    nearest_k: int = 0
    """knn: each call shows the `nearest_k` demos of `demo_pool` most like its inputs (BM25,
    `promptcast_runtime.nearest`) instead of fixed `demos`; 0 means fixed demos."""
    demo_pool: tuple[Demo, ...] = ()
    members: tuple[FunctionState, ...] = ()
    """ensemble: the states whose answers are reduced by majority vote
    (`promptcast_runtime.ensemble`); this state's own fields are the first member's."""
    model: str = ""
    """A trained model this step calls (`finetune`): sent as the request's `model`, so the
    built module calls what the optimizer scored; "" means the caller's LM's own model."""
    protocol: str = ""
    """react: how the turns call tools, "text" or "tools" (native tool calls); "" is text,
    never chosen (a lock without the key). `protocol="auto"` settles it on dev."""
    response_format: str = ""
    """json adapter: the structured output the endpoint takes (`json_schema.RESPONSE_FORMATS`:
    "json_schema", or "json_object" with the schema), found by one probe at optimize time;
    "" is the plain JSON mode (a lock from before the probe, or a step never optimized)."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instructions": self.instructions,
            "demos": [dict(d) for d in self.demos],
            "adapter": self.adapter,
            "lm_params": dict(self.lm_params),
        }
        if self.nearest_k:  # only when set: every lock without knn stays byte-identical
            data["nearest"] = {"k": self.nearest_k, "pool": [dict(d) for d in self.demo_pool]}
        if self.model:  # only when set: every lock without a trained model stays byte-identical
            data["model"] = self.model
        if self.protocol:  # likewise
            data["protocol"] = self.protocol
        if self.response_format:
            data["response_format"] = self.response_format
        if self.members:
            data["ensemble"] = {
                "members": [m.to_json() for m in self.members],
                "reduce": "majority",
            }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionState:
        nearest = data.get("nearest") or {}
        return cls(
            instructions=str(data["instructions"]),
            demos=tuple(dict(d) for d in data.get("demos", [])),
            adapter=str(data.get("adapter", "chat")),
            lm_params=dict(data.get("lm_params", {})),
            nearest_k=nearest.get("k", 0),  # checked by lockfile.validate_entry, not coerced
            demo_pool=tuple(dict(d) for d in nearest.get("pool", [])),
            members=tuple(
                cls.from_json(m) for m in (data.get("ensemble") or {}).get("members", [])
            ),
            model=str(data.get("model", "")),
            protocol=str(data.get("protocol", "")),
            response_format=str(data.get("response_format", "")),
        )

    @classmethod
    def zero_shot(
        cls, signature: Signature, lm_params: dict[str, Any] | None = None
    ) -> FunctionState:
        """The state of a function nobody has optimized: its docstring, no demos, and the
        sampling parameters of its kind, then `lm_params` (the project's), then the
        decorator's -- the most specific wins.

        An `adapter="auto"` function starts on chat; the optimizer may switch it to json.
        """
        adapter = AUTO_CHOICES[0] if signature.adapter == AUTO_ADAPTER else signature.adapter
        project = {**(lm_params or {}), **signature.declared_lm_params}
        kind = get_kind(signature.kind)
        protocol = ""
        if any(o.name == "protocol" for o in kind.options):
            # "auto" starts on text, as an auto adapter starts on chat; the optimizer settles it.
            declared = str(signature.option("protocol"))
            protocol = "" if declared in (TEXT_PROTOCOL, AUTO_PROTOCOL) else declared
        return cls(
            instructions=signature.instructions,
            adapter=adapter,
            lm_params=step_lm_params(kind, project),
            protocol=protocol,
        )

    def with_lm_params(self, overrides: dict[str, Any] | None) -> FunctionState:
        """This state with `overrides` (a run's `--lm-param` flags) over its sampling."""
        if not overrides:
            return self
        merged = dict(sorted({**self.lm_params, **overrides}.items()))
        return replace(self, lm_params=merged)  # every other field (model, protocol, ...) kept


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace variance: the basis of every hash we take."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
