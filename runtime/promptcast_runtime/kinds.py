"""The registry of module kinds: the one table every layer reads.

A kind (`predict`, `chain_of_thought`, `react`, ...) is defined here once: the options its
decorator takes (names, defaults, validation and the words of their errors), the outputs it adds
(chain of thought's `reasoning`), its sampling defaults, and the runtime class that runs it. The
compiler's decorators, frontend, IR and code generator, and this runtime's `build_step`, all read
this table; help texts and error messages that list kinds are generated from it. Adding a kind is
one runtime module with a class whose constructor takes the kind's options by name, plus one
entry in `KINDS`.

Stdlib only and cheap to import: runtime classes are imported when a
step of that kind is built (each entry's `runtime` is a function that imports it), so a module
without a ReAct step never imports `react.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .adapters import ADAPTERS
from .signature import REASONING, Field
from .tool_calls import PROTOCOL_CHOICES, TEXT_PROTOCOL

AUTO_ADAPTER = "auto"
"""`adapter="auto"`: the optimizer scores each adapter zero-shot and locks the better one."""

ADAPTER_CHOICES = (*ADAPTERS, AUTO_ADAPTER)
"""Values the `adapter=` option accepts."""


RESERVED_LM_PARAMS = frozenset(
    {
        "messages",
        "model",
        "stream",
        "n",
        "response_format",
        "api_key",
        "api_base",
        "base_url",
        "rollout",
    }
)
"""Request keys a step's `lm_params` may not set: the runtime, the adapter, the LM client or a
sampling strategy owns them, and setting them here would break every call."""


class Option(NamedTuple):
    """One keyword a kind's decorator accepts.

    `check(value)` returns None for a valid value, else what is wrong, in words an error message
    can quote after "`name` must be ...". `source` says how the frontend reads the value:
    "literal" (a plain Python literal) or "functions" (names of functions, e.g. tools). `state`
    options seed the step's optimizable state (the adapter, the sampling parameters) rather than
    its fixed shape.
    """

    name: str
    default: Any
    check: Callable[[Any], str | None]
    doc: str
    source: str = "literal"
    required: bool = False
    state: bool = False
    wrong: str = ""
    """How an error names a bad value, a format string over `value` (default: "`name` must be
    <what check says>, not <value>")."""

    def error(self, value: Any, problem: str) -> str:
        """The message for a bad `value` that `check` described as `problem`."""
        if self.wrong:
            return self.wrong.format(value=value)
        return f"`{self.name}` must be {problem}, not {value!r}"


class Kind(NamedTuple):
    """One module kind: what a decorator of that name compiles to."""

    name: str
    summary: str
    """What a step of this kind does, as a clause: "answers directly"."""
    runtime: Callable[[], Any]
    """Returns the runtime class (imported on first use). `build_step` constructs it as
    `cls(signature, returns, demos=, adapter=, lm_params=, **fixed_options)`: every option that
    is not state, by its own name."""
    options: tuple[Option, ...]
    extra_outputs: tuple[Field, ...] = ()
    """Outputs the kind adds before the declared ones; the caller never sees them."""
    lm_params: Mapping[str, Any] = MappingProxyType({})
    """Sampling defaults of a zero-shot step of this kind (merged under the decorator's)."""
    example: str = ""
    """How the decorator is written, for help texts: `@pc.react(tools=[...])`."""

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(f"@{self.name} has no option {name!r}")

    def defaults(self) -> dict[str, Any]:
        """Every option's default, by name."""
        return {o.name: o.default for o in self.options}

    def runtime_class(self) -> Any:
        return self.runtime()

    @property
    def reserved_names(self) -> tuple[str, ...]:
        """Field names the kind uses itself, which a user's inputs and outputs may not."""
        return tuple(f.name for f in self.extra_outputs)


def _whole(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        return f"a whole number from {low} to {high}"

    return check


def _adapter(value: Any) -> str | None:
    if value in ADAPTER_CHOICES:
        return None
    return ", ".join(repr(a) for a in ADAPTER_CHOICES)


def check_lm_params(value: Any) -> str | None:
    """None when `value` is a valid `lm_params` mapping, else what is wrong with it."""
    if not isinstance(value, Mapping):
        return "a dict of request parameters, e.g. {'max_tokens': 1024, 'temperature': 0.0}"
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            return f"a dict with string keys, not {key!r}"
        if key in RESERVED_LM_PARAMS:
            return (
                f"free of {key!r}: the runtime, adapter or client sets it (reserved: "
                + ", ".join(sorted(RESERVED_LM_PARAMS))
                + ")"
            )
        problem = json_problem(item, max_depth=20)
        if problem:
            return f"plain JSON values; {key!r} is {problem}"
    temperature = value.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, (int, float))
        and not isinstance(temperature, bool)
        and 0 <= temperature <= 2
    ):
        return f"a temperature from 0 to 2, not {temperature!r}"
    max_tokens = value.get("max_tokens")
    if max_tokens is not None and not (
        isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1
    ):
        return f"a whole max_tokens of at least 1, not {max_tokens!r}"
    stop = value.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        return f"a stop that is a string or a list of strings, not {stop!r}"
    return None


def json_problem(value: Any, max_depth: int = 100, depth: int = 0) -> str | None:
    """None when `value` is plain JSON a lock, a spec and a request can all hold (finite
    numbers, valid Unicode text, string keys, at most `max_depth` levels), else what is not."""
    if depth > max_depth:
        return f"nested more than {max_depth} levels deep"
    if isinstance(value, str):
        return text_problem(value)
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r}, not a finite number"
    if isinstance(value, (list, tuple)):
        items = (json_problem(v, max_depth, depth + 1) for v in value)
        return next((p for p in items if p), None)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a dict with the non-string key {key!r}"
            problem = text_problem(key) or json_problem(item, max_depth, depth + 1)
            if problem:
                return problem
        return None
    return f"a {type(value).__name__}"


def text_problem(text: str) -> str | None:
    """None for valid Unicode text; a lone surrogate cannot be written as UTF-8."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "a string holding a lone surrogate (not valid Unicode text)"
    return None


def _tools(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and value and all(callable(t) for t in value):
        return None
    return "a non-empty list of the functions the model may call, e.g. tools=[add, lookup]"


ADAPTER = Option(
    "adapter",
    "chat",
    _adapter,
    "The message format: 'chat' ([[ ## field ## ]] sections), 'json' (one JSON object, JSON"
    " mode), 'dspy' (DSPy 3.4.1's ChatAdapter messages, byte for byte, for imported programs),"
    " or 'auto' (optimize scores chat and json and locks the better).",
    state=True,
    wrong="unknown adapter {value!r}",
)
LM_PARAMS = Option(
    "lm_params",
    MappingProxyType({}),
    check_lm_params,
    "Request parameters sent with every call besides the messages (temperature, max_tokens,"
    " stop, seed, ...), merged over the kind's defaults; recorded in the lock.",
    state=True,
)
PARSE_RETRIES = Option(
    "parse_retries",
    0,
    _whole(0, 5),
    "Extra LM calls that show the model its unparsable answer (default 0: a parse failure"
    " never costs a second call).",
)
TOOLS = Option(
    "tools",
    (),
    _tools,
    "The plain typed functions the model may call.",
    source="functions",
    required=True,
)
MAX_ITERS = Option("max_iters", 5, _whole(1, 50), "The most tool-calling turns before answering.")


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


TEACH_TURNS = Option(
    "teach_turns",
    False,
    _flag,
    "Whether the tool-choosing turns also see turn demos cut from the whole-run demos (default"
    " False: only the answer call sees demos; on qwen1.5b, 10 agent rows, bootstrap scored 0.70"
    " without turn demos and 0.40 with them, zero-shot 0.40).",
)


def _protocol(value: Any) -> str | None:
    if value in PROTOCOL_CHOICES:
        return None
    return ", ".join(repr(p) for p in PROTOCOL_CHOICES)


PROTOCOL = Option(
    "protocol",
    TEXT_PROTOCOL,
    _protocol,
    "How the turns call tools: 'text' (next_tool_name/next_tool_args fields the runtime"
    " parses), 'tools' (the endpoint's native tools/tool_calls, several calls per turn), or"
    " 'auto' (optimize scores both on dev and locks the better for the target model).",
    state=True,
    wrong="unknown protocol {value!r}",
)


def _temperature(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 2
    return None if ok else "a temperature from 0 to 2"


def _predictor() -> Any:
    from .predictor import Predictor

    return Predictor


def _react() -> Any:
    from .react import ReAct

    return ReAct


def _multi_chain() -> Any:
    from .multi_chain import MultiChainComparison

    return MultiChainComparison


_ANSWER = MappingProxyType({"temperature": 0.0, "max_tokens": 512})
_REASON = MappingProxyType({"temperature": 0.0, "max_tokens": 1024})

KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            Kind(
                "predict",
                "answers directly",
                _predictor,
                (ADAPTER, LM_PARAMS, PARSE_RETRIES),
                lm_params=_ANSWER,
                example="@pc.predict",
            ),
            Kind(
                "chain_of_thought",
                "reasons step by step in a `reasoning` output the caller never sees, then answers",
                _predictor,
                (ADAPTER, LM_PARAMS, PARSE_RETRIES),
                extra_outputs=(REASONING,),
                lm_params=_REASON,
                example="@pc.chain_of_thought",
            ),
            Kind(
                "react",
                "calls your tools in turns (ReAct), then answers",
                _react,
                (TOOLS, MAX_ITERS, TEACH_TURNS, PROTOCOL, ADAPTER, LM_PARAMS, PARSE_RETRIES),
                extra_outputs=(REASONING,),
                lm_params=_REASON,
                example="@pc.react(tools=[...])",
            ),
            Kind(
                "multi_chain_comparison",
                "draws m reasoning attempts, then compares them in one more call and answers"
                " (DSPy's MultiChainComparison)",
                _multi_chain,
                (
                    Option("m", 3, _whole(2, 10), "How many reasoning attempts to compare."),
                    Option(
                        "attempt_temperature",
                        0.7,
                        _temperature,
                        "The temperature of the attempts (each also gets its own seed).",
                    ),
                    ADAPTER,
                    LM_PARAMS,
                    PARSE_RETRIES,
                ),
                extra_outputs=(REASONING,),
                lm_params=_REASON,
                example="@pc.multi_chain_comparison(m=3)",
            ),
        )
    }
)
"""Every LM module kind, by decorator name, in the order help texts list them."""


def kind_list(word: str = "or", prefix: str = "@") -> str:
    """`@predict, @chain_of_thought or @react`: every kind, for messages and help texts."""
    names = [prefix + name for name in KINDS]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def get_kind(name: str) -> Kind:
    """The kind named `name`; ValueError naming the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown module kind {name!r}; known: {', '.join(KINDS)}") from None


def step_lm_params(kind: Kind, declared: Mapping[str, Any] | None) -> dict[str, Any]:
    """A zero-shot step's sampling parameters: the kind's defaults, then the decorator's."""
    return dict(sorted({**kind.lm_params, **(declared or {})}.items()))
