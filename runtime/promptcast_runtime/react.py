"""ReAct: an LM step that reasons, calls the user's own Python functions, then answers.

The loop follows DSPy's ReAct: each turn one call asks for `next_thought`, `next_tool_name`
and `next_tool_args` given the inputs and the trajectory so far; the named tool (a plain typed
function) runs and its result becomes the observation; `finish` ends the loop, as does
`max_iters`. A final call reads the whole trajectory and gives the typed outputs (with
reasoning first, as DSPy's ChainOfThought extraction).

What goes wrong becomes an observation the model can act on, never a crash: an exception in a
tool (its type and message), an unknown tool name (the list of tools), arguments that do not
fit the tool's signature (what it takes). A turn whose reply does not parse ends the loop, and
the answer is extracted from what was gathered.

Both calls go through `Predictor`, so rendering, parsing, sampling and async behave as
everywhere else. Tools are described from the functions themselves -- name, parameters with
their annotations, and the docstring -- so a built module and the source describe them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from .adapters import Demo
from .errors import ParseError
from .lm import LM, Message
from .predictor import Prediction, Predictor
from .signature import REASONING, Field, Signature

T = TypeVar("T")

FINISH = "finish"
TRAJECTORY = Field("trajectory", str, "What was thought, done and observed so far.")
STEP_OUTPUTS = (
    Field("next_thought", str, "Reason about the current situation and plan the next step."),
    Field("next_tool_name", str, "The tool to call next, exactly as named in the tool list."),
    Field("next_tool_args", dict[str, Any], "The tool's arguments as a JSON object."),
)


def describe_tool(fn: Callable[..., Any]) -> str:
    """`name(a: float, b: float): first paragraph of the docstring`."""
    import inspect

    doc = inspect.getdoc(fn) or ""
    summary = " ".join(doc.split("\n\n", 1)[0].split())
    return tool_header(fn) + (f": {summary}" if summary else "")


def tool_header(fn: Callable[..., Any]) -> str:
    """`name(a: float, b: float)`: how the model is told to call `fn`."""
    import inspect

    params = []
    for param in inspect.signature(fn).parameters.values():
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            params.append(param.name)
        else:
            shown = annotation if isinstance(annotation, str) else _type_name(annotation)
            params.append(f"{param.name}: {shown}")
    return f"{fn.__name__}({', '.join(params)})"


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation).replace("typing.", "")


def step_instructions(instructions: str, tools: Sequence[Callable[..., Any]]) -> str:
    """The turn prompt's instructions: the task, how the loop works, and the tools."""
    lines = [
        instructions,
        "",
        "You work in turns. In each turn, think, then pick one tool and its arguments; you"
        " will see its result as an observation in the trajectory. When you have what you"
        f" need, pick `{FINISH}` (with arguments {{}}).",
        "",
        "Tools:",
        *(f"{i}. {describe_tool(fn)}" for i, fn in enumerate(tools, 1)),
        f"{len(tools) + 1}. {FINISH}(): you have enough to answer.",
    ]
    return "\n".join(lines)


class ReAct(Generic[T]):
    """One ReAct step with its state frozen in: the turn predictor and the answer predictor.

    `demos` are whole successful runs (inputs, trajectory, reasoning, outputs): the answer
    predictor's examples. `returns` is as for `Predictor`.
    """

    __slots__ = ("signature", "tools", "max_iters", "step", "extract")

    def __init__(
        self,
        signature: Signature,
        returns: str | type,
        tools: Sequence[Callable[..., Any]],
        max_iters: int = 5,
        demos: Sequence[Demo] = (),
        adapter: str = "chat",
        lm_params: Mapping[str, Any] | None = None,
        parse_retries: int = 0,
    ) -> None:
        names = [fn.__name__ for fn in tools]
        if len(set(names)) != len(names) or FINISH in names:
            raise ValueError(f"tool names must be unique and not {FINISH!r}: {names}")
        self.signature = signature
        self.tools = {fn.__name__: fn for fn in tools}
        self.max_iters = max_iters
        inputs = (*signature.inputs, TRAJECTORY)
        self.step: Predictor[str] = Predictor(
            Signature(step_instructions(signature.instructions, tools), inputs, STEP_OUTPUTS),
            returns="next_tool_name",
            adapter=adapter,
            lm_params=lm_params,
            parse_retries=parse_retries,
        )
        outputs = tuple(f for f in signature.outputs if f.name != REASONING.name)
        self.extract: Predictor[T] = Predictor(
            Signature(signature.instructions, inputs, (REASONING, *outputs)),
            returns=returns,
            demos=demos,
            adapter=adapter,
            lm_params=lm_params,
            parse_retries=parse_retries,
        )

    @classmethod
    def from_spec(
        cls,
        signature: Signature,
        returns: str | type,
        *,
        demos: Sequence[Demo],
        adapter: str,
        lm_params: Mapping[str, Any],
        options: Mapping[str, Any],
        tools: Sequence[Callable[..., Any]] = (),
    ) -> ReAct[Any]:
        """The `react` step `build_step` asks for (see `kinds.KINDS`)."""
        return cls(
            signature,
            returns,
            tools=tools,
            max_iters=int(options["max_iters"]),
            demos=demos,
            adapter=adapter,
            lm_params=lm_params,
            parse_retries=int(options["parse_retries"]),
        )

    @property
    def demos(self) -> tuple[Demo, ...]:
        return self.extract.demos

    def __repr__(self) -> str:
        return f"ReAct(tools={list(self.tools)}, max_iters={self.max_iters})"

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The first turn's messages (empty trajectory): what `promptcast inspect` shows."""
        return self.step.messages({**inputs, TRAJECTORY.name: ""})

    def forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """Run the loop, then extract the answer; its `inputs` hold the whole `trajectory`."""
        trajectory: list[str] = []
        for turn in range(self.max_iters):
            values = {**inputs, TRAJECTORY.name: "\n\n".join(trajectory)}
            try:
                fields = self.step.forward(values, lm, **params).fields
            except ParseError as exc:
                trajectory.append(_unreadable(turn, exc))
                break
            call = _take_turn(turn, fields, trajectory)
            if call is None:
                break
            trajectory.append(f"observation_{turn}: {self._observe(*call)}")
        text = "\n\n".join(trajectory)
        return self.extract.forward({**inputs, TRAJECTORY.name: text}, lm, **params)

    def __call__(self, **inputs: Any) -> T:
        return self.forward(inputs).value

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """`forward` from a coroutine: LM calls awaited; tools run in a worker thread."""
        import asyncio

        trajectory: list[str] = []
        for turn in range(self.max_iters):
            values = {**inputs, TRAJECTORY.name: "\n\n".join(trajectory)}
            try:
                fields = (await self.step.aforward(values, lm, **params)).fields
            except ParseError as exc:
                trajectory.append(_unreadable(turn, exc))
                break
            call = _take_turn(turn, fields, trajectory)
            if call is None:
                break
            observation = await asyncio.to_thread(self._observe, *call)
            trajectory.append(f"observation_{turn}: {observation}")
        text = "\n\n".join(trajectory)
        return await self.extract.aforward({**inputs, TRAJECTORY.name: text}, lm, **params)

    async def acall(self, **inputs: Any) -> T:
        return (await self.aforward(inputs)).value

    def _observe(self, name: str, args: Any) -> str:
        """Run one tool; anything that goes wrong is told to the model instead of raised."""
        from .coerce import render

        fn = self.tools.get(name)
        if fn is None:
            known = ", ".join([*self.tools, FINISH])
            return f"there is no tool named {name!r}; the tools are: {known}"
        if not isinstance(args, Mapping):
            return f"the arguments must be a JSON object, got {render(args)}"
        try:
            bound = _bind_arguments(fn, dict(args))
        except (TypeError, ValueError) as exc:
            return f"bad arguments for {tool_header(fn)}: {exc}"
        try:
            return render(fn(*bound.args, **bound.kwargs))
        except Exception as exc:  # noqa: BLE001 -- a tool's failure is an observation
            return f"{name} failed: {type(exc).__name__}: {exc}"


def _bind_arguments(fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    """Bind model-given arguments to `fn`, coercing each to its annotation where there is one."""
    import inspect
    import typing

    from .coerce import _coerce_value

    signature = inspect.signature(fn)
    bound = signature.bind(**args)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 -- unresolvable annotations: pass values as given
        hints = {}
    for name, value in list(bound.arguments.items()):
        if name in hints:
            bound.arguments[name] = _coerce_value(value, hints[name])
    return bound


def _take_turn(
    turn: int, fields: Mapping[str, Any], trajectory: list[str]
) -> tuple[str, Any] | None:
    """Write the turn into the trajectory; the tool call it asks for, or None on `finish`."""
    from .coerce import render

    name = str(fields["next_tool_name"]).strip().strip("`").removesuffix("()")
    args = fields["next_tool_args"]
    trajectory.append(
        f"thought_{turn}: {fields['next_thought']}\n"
        f"tool_name_{turn}: {name}\n"
        f"tool_args_{turn}: {render(args) if args is not None else '{}'}"
    )
    return None if name.lower() == FINISH else (name, args)


def _unreadable(turn: int, error: ParseError) -> str:
    return f"[turn {turn + 1} could not be read: {error.reason}]"
