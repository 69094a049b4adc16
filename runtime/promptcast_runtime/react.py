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

`protocol="tools"` runs the same loop over the endpoint's native tool calls instead
(`tool_calls.py`): the tools go out as the request's `tools`, the model answers with
`tool_calls` (several per turn), each result goes back as a `role: tool` message, and a reply
without a tool call ends the loop. The trajectory is written in the same text either way, so
the answer call, its demos and everything cut from them are the same in both protocols.

Demos are whole successful runs (inputs, `trajectory`, `reasoning`, outputs), which is what the
lock keeps. The answer call learns from them as they are; the turn call learns from turns cut
out of them here (`turn_demos`), so a development call and a built module, which both build
the step from the same demos, teach the turns alike. Which turns, and why, is said there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from . import hooks as _hooks
from .adapters import Demo
from .errors import ParseError
from .lm import (
    LM,
    Completion,
    Message,
    ToolCall,
    as_completion,
    complete_async,
    current_lm,
)
from .predictor import INCOMPLETE, Prediction, Predictor
from .signature import REASONING, Field, Signature
from .streaming import WholeStream
from .tool_calls import NOT_JSON as _NOT_JSON
from .tool_calls import PROTOCOLS, TEXT_PROTOCOL, TOOLS_PROTOCOL

T = TypeVar("T")

FINISH = "finish"
MAX_TURN_DEMOS = 6
"""At most this many turn demos reach the turn call (two trajectories' worth, see `turn_demos`)."""
MAX_TURN_DEMO_CHARS = 6000
"""...and at most this many characters of trajectory in their inputs (~1.5k tokens)."""
TURNS_PER_RUN = 3
"""Turns taken from one run: the first working call of each of two tools, then the finish."""
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
        (
            "You work in turns. In each turn, think, then pick one tool and its arguments; you"
            " will see its result as an observation in the trajectory. When you have what you"
            f" need, pick `{FINISH}` (with arguments {{}})."
        ),
        "",
        "Tools:",
        *(f"{i}. {describe_tool(fn)}" for i, fn in enumerate(tools, 1)),
        f"{len(tools) + 1}. {FINISH}(): you have enough to answer.",
    ]
    return "\n".join(lines)


class ReAct(WholeStream[T], Generic[T]):  # streams as one final item
    """One ReAct step with its state frozen in: the turn predictor and the answer predictor.

    `demos` are whole successful runs (inputs, trajectory, reasoning, outputs): the answer
    predictor's examples as they are, and the turn predictor's cut into turns (`turn_demos`).
    `returns` is as for `Predictor`. `protocol` is "text" (the turn predictor's fields) or
    "tools" (native tool calls, `tool_calls.py`); in tools mode the turns get no demos: the
    chat API has no place for an example conversation that is not this one's own history, and
    prior assistant tool calls for another question would read as calls already made for this
    one. The answer call keeps its whole-run demos in both.
    """

    __slots__ = ("extract", "max_iters", "protocol", "signature", "step", "tool_schemas", "tools")

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
        teach_turns: bool = False,
        protocol: str = TEXT_PROTOCOL,
    ) -> None:
        names = [fn.__name__ for fn in tools]
        if len(set(names)) != len(names) or FINISH in names:
            raise ValueError(f"tool names must be unique and not {FINISH!r}: {names}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        self.signature = signature
        self.tools = {fn.__name__: fn for fn in tools}
        self.max_iters = max_iters
        self.protocol = protocol
        self.tool_schemas: tuple[dict[str, Any], ...] = ()
        if protocol == TOOLS_PROTOCOL:
            from .tool_calls import tool_schema

            self.tool_schemas = tuple(tool_schema(fn, describe_tool(fn)) for fn in tools)
            teach_turns = False  # see the class docstring
        inputs = (*signature.inputs, TRAJECTORY)
        self.step: Predictor[str] = Predictor(
            Signature(step_instructions(signature.instructions, tools), inputs, STEP_OUTPUTS),
            returns="next_tool_name",
            demos=turn_demos(demos, [f.name for f in signature.inputs], self.tools)
            if teach_turns
            else (),
            adapter=adapter,
            lm_params=lm_params,
            parse_retries=parse_retries,
        )
        self.step.role = "turn"
        outputs = tuple(f for f in signature.outputs if f.name != REASONING.name)
        self.extract: Predictor[T] = Predictor(
            Signature(signature.instructions, inputs, (REASONING, *outputs)),
            returns=returns,
            demos=demos,
            adapter=adapter,
            lm_params=lm_params,
            parse_retries=parse_retries,
        )
        self.extract.role = "answer"

    @property
    def demos(self) -> tuple[Demo, ...]:
        return self.extract.demos

    def _scope(self, kind: str, **attributes: Any) -> Any:
        """A hooks scope (agent run, turn, tool call) when hooks are on, else a no-op."""
        if not _hooks.ACTIVE:
            return _NO_SCOPE
        origin = self.extract.origin
        return _hooks.scope(kind, origin.name if origin else "", **attributes)

    def __repr__(self) -> str:
        return (
            f"ReAct(tools={list(self.tools)}, max_iters={self.max_iters}, "
            f"protocol={self.protocol!r})"
        )

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The first turn's messages (empty trajectory): what `promptcast inspect` shows."""
        if self.protocol == TOOLS_PROTOCOL:
            return self._native_messages(inputs)
        return self.step.messages({**inputs, TRAJECTORY.name: ""})

    def forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """Run the loop, then extract the answer; its `inputs` hold the whole `trajectory`."""
        if self.protocol == TOOLS_PROTOCOL:
            return self._native_forward(inputs, lm, params)
        with self._scope("agent", tools=list(self.tools)):
            trajectory: list[str] = []
            for turn in range(self.max_iters):
                with self._scope("turn", index=turn):
                    values = {**inputs, TRAJECTORY.name: "\n\n".join(trajectory)}
                    try:
                        fields = self.step.forward(values, lm, **params).fields
                    except ParseError as exc:
                        trajectory.append(_unreadable(turn, exc))
                        break
                    call = _take_turn(turn, fields, trajectory)
                    if call is None:
                        break
                    trajectory.append(_observation_entry(turn, self._observe(*call)))
            text = "\n\n".join(trajectory)
            return self.extract.forward({**inputs, TRAJECTORY.name: text}, lm, **params)

    def __call__(self, **inputs: Any) -> T:
        return self.forward(inputs).value

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """`forward` from a coroutine: LM calls awaited; tools run in a worker thread."""
        import asyncio

        if self.protocol == TOOLS_PROTOCOL:
            return await self._native_aforward(inputs, lm, params)
        with self._scope("agent", tools=list(self.tools)):
            trajectory: list[str] = []
            for turn in range(self.max_iters):
                with self._scope("turn", index=turn):
                    values = {**inputs, TRAJECTORY.name: "\n\n".join(trajectory)}
                    try:
                        fields = (await self.step.aforward(values, lm, **params)).fields
                    except ParseError as exc:
                        trajectory.append(_unreadable(turn, exc))
                        break
                    call = _take_turn(turn, fields, trajectory)
                    if call is None:
                        break
                    # The thread runs in a copy of this context: the tool scope nests here.
                    observation = await asyncio.to_thread(self._observe, *call)
                    trajectory.append(_observation_entry(turn, observation))
            text = "\n\n".join(trajectory)
            return await self.extract.aforward({**inputs, TRAJECTORY.name: text}, lm, **params)

    async def acall(self, **inputs: Any) -> T:
        return (await self.aforward(inputs)).value

    # --- the tools protocol (native tool calls) ---------------------------------------------

    def _native_messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The first request's messages in tools mode: the task, then the inputs."""
        from .tool_calls import inputs_message, instructions

        missing = [f.name for f in self.signature.inputs if f.name not in inputs]
        if missing:
            raise TypeError(f"missing input(s): {', '.join(missing)}")
        return [
            {"role": "system", "content": instructions(self.signature.instructions)},
            {"role": "user", "content": inputs_message(self.signature.inputs, inputs)},
        ]

    def _native_request(self, model: LM, params: Mapping[str, Any]) -> dict[str, Any]:
        """A turn's request: the turn predictor's sampling (the state's, a sample's, the
        call's), the tools with `tool_choice="auto"`, and no response format (a JSON mode
        would forbid tool calls)."""
        request = self.step._request(model, params)
        request.pop("response_format", None)
        request["tools"] = [dict(schema) for schema in self.tool_schemas]
        # OpenAI's default with tools, said outright: llama-cpp-python's function-calling chat
        # formats read a missing tool_choice as "none" and hide the tools from the model.
        request.setdefault("tool_choice", "auto")
        return request

    def _native_forward(
        self, inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
    ) -> Prediction[T]:
        model = lm if lm is not None else current_lm()
        with self._scope("agent", tools=list(self.tools)):
            messages = self._native_messages(inputs)
            request = self._native_request(model, params)
            self._check_origin(model)
            trajectory: list[str] = []
            calls_made = 0
            for turn in range(self.max_iters):
                with self._scope("turn", index=turn):
                    hook = _start_hook(self.step, model, messages, request)
                    try:
                        completion = as_completion(model.complete(list(messages), **request))
                    except BaseException as exc:
                        if hook is not None:
                            hook.failed(exc, 0, None)
                        raise
                    _finish_hook(hook, completion, messages)
                    outcome = _native_turn(calls_made, completion, trajectory)
                    if outcome is None:
                        break
                    messages.append(outcome[0])
                    for call, args, problem, entry in outcome[1]:
                        trajectory.append(entry)
                        observation = (
                            problem if problem is not None else self._observe(call.name, args)
                        )
                        trajectory.append(_observation_entry(calls_made, observation))
                        messages.append(_tool_result(call, observation))
                        calls_made += 1
            text = "\n\n".join(trajectory)
            return self.extract.forward({**inputs, TRAJECTORY.name: text}, lm, **params)

    async def _native_aforward(
        self, inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
    ) -> Prediction[T]:
        import asyncio

        model = lm if lm is not None else current_lm()
        with self._scope("agent", tools=list(self.tools)):
            messages = self._native_messages(inputs)
            request = self._native_request(model, params)
            self._check_origin(model)
            trajectory: list[str] = []
            calls_made = 0
            for turn in range(self.max_iters):
                with self._scope("turn", index=turn):
                    hook = _start_hook(self.step, model, messages, request)
                    try:
                        completion = await complete_async(model, list(messages), **request)
                    except BaseException as exc:
                        if hook is not None:
                            hook.failed(exc, 0, None)
                        raise
                    _finish_hook(hook, completion, messages)
                    outcome = _native_turn(calls_made, completion, trajectory)
                    if outcome is None:
                        break
                    messages.append(outcome[0])
                    for call, args, problem, entry in outcome[1]:
                        trajectory.append(entry)
                        observation = (
                            problem
                            if problem is not None
                            else await asyncio.to_thread(self._observe, call.name, args)
                        )
                        trajectory.append(_observation_entry(calls_made, observation))
                        messages.append(_tool_result(call, observation))
                        calls_made += 1
            text = "\n\n".join(trajectory)
            return await self.extract.aforward({**inputs, TRAJECTORY.name: text}, lm, **params)

    def _check_origin(self, model: LM) -> None:
        origin = self.step.origin
        if origin is not None and model is not origin.checked:
            origin.check(model)  # once per LM object: the optimized-for warning

    def _observe(self, name: str, args: Any) -> str:
        """Run one tool (inside a hooks "tool" scope that records its arguments and result)."""
        with self._scope("tool", tool=name, arguments=args) as scope:
            observation = self._run_tool(name, args)
            if scope is not None:
                scope.attributes["observation"] = observation
            return observation

    def _run_tool(self, name: str, args: Any) -> str:
        """Run one tool; anything that goes wrong is told to the model instead of raised."""
        from .coerce import render

        fn = self.tools.get(name)
        if fn is None:
            if self.protocol == TOOLS_PROTOCOL:  # no `finish` tool: a reply without calls ends
                return (
                    f"{_NO_TOOL}{name!r}; the tools are: {', '.join(self.tools)} (reply without"
                    " a tool call when you have what you need)"
                )
            known = ", ".join([*self.tools, FINISH])
            return f"{_NO_TOOL}{name!r}; the tools are: {known}"
        if not isinstance(args, Mapping):
            return f"{_NOT_AN_OBJECT}{render(args)}"
        try:
            bound = _bind_arguments(fn, dict(args))
        except (TypeError, ValueError) as exc:
            return f"{_BAD_ARGUMENTS}{tool_header(fn)}: {exc}"
        try:
            return render(fn(*bound.args, **bound.kwargs))
        except Exception as exc:  # noqa: BLE001 -- a tool's failure is an observation
            return f"{name}{_FAILED}{type(exc).__name__}: {exc}"


def _native_turn(
    first: int, completion: Completion, trajectory: list[str]
) -> tuple[Message, list[tuple[ToolCall, Any, str | None, str]]] | None:
    """Read one tools-protocol reply: the assistant message to repeat and, per call (numbered
    from `first`), its parsed arguments (or why they do not parse) and its text-protocol turn
    entry, which the caller writes before the call's observation, so the trajectory reads as
    the text protocol's; or None when the loop ends (the last entry written here).

    A reply without tool calls is the `finish` turn (its text the thought); one cut off by the
    token limit (or the content filter) is an unreadable turn, as a text turn that does not
    parse: the loop ends and the answer is extracted from what was gathered.
    """
    from .coerce import render
    from .tool_calls import assistant_turn, parse_arguments

    if completion.finish_reason in INCOMPLETE and not completion.tool_calls:
        why = INCOMPLETE[completion.finish_reason]
        trajectory.append(_unreadable_entry(first, f"the reply {why}"))
        return None
    if not completion.tool_calls:
        trajectory.append(_turn_entry(first, completion.text.strip(), FINISH, "{}"))
        return None
    calls: list[tuple[ToolCall, Any, str | None, str]] = []
    for index, call in enumerate(completion.tool_calls):
        args, problem = parse_arguments(call)
        shown = render(args) if problem is None else call.arguments
        thought = completion.text.strip() if index == 0 else ""
        calls.append((call, args, problem, _turn_entry(first + index, thought, call.name, shown)))
    return assistant_turn(completion.text, completion.tool_calls), calls


def _tool_result(call: ToolCall, observation: str) -> Message:
    from .tool_calls import tool_result

    return tool_result(call, observation)


def _start_hook(step: Predictor[Any], model: LM, messages: Sequence[Message], request: Any) -> Any:
    """A hooks record of one tools-protocol turn call (role "turn"), when hooks are on."""
    if not _hooks.ACTIVE:
        return None
    return _hooks.start_call(step, model, list(messages), request)


def _finish_hook(hook: Any, completion: Completion, messages: Sequence[Message]) -> None:
    if hook is None:
        return
    names = [call.name for call in completion.tool_calls]
    fields = {"tool_calls": [dict(call._asdict()) for call in completion.tool_calls]}
    hook.finished(Prediction(names, fields, list(messages), completion), 0)


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
        _turn_entry(
            turn, str(fields["next_thought"]), name, render(args) if args is not None else "{}"
        )
    )
    return None if name.lower() == FINISH else (name, args)


def _turn_entry(turn: int, thought: str, name: str, args: str) -> str:
    """One turn as the trajectory holds it (the one writer `split_trajectory` inverts)."""
    return f"thought_{turn}: {thought}\ntool_name_{turn}: {name}\ntool_args_{turn}: {args}"


def _observation_entry(turn: int, observation: str) -> str:
    return f"observation_{turn}: {observation}"


def _unreadable(turn: int, error: ParseError) -> str:
    return _unreadable_entry(turn, error.reason)


def _unreadable_entry(turn: int, reason: str) -> str:
    return f"[turn {turn + 1} could not be read: {reason}]"


class _NoScope:
    """What `ReAct._scope` gives when no hook is registered: enters and exits, nothing else."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SCOPE = _NoScope()


# What `_observe` writes when a call goes wrong: such a turn is never taught as a demo.
_NO_TOOL = "there is no tool named "
_NOT_AN_OBJECT = "the arguments must be a JSON object, got "
_BAD_ARGUMENTS = "bad arguments for "
_FAILED = " failed: "


# --- turn demos ---------------------------------------------------------------------------------


class Turn(NamedTuple):
    """One turn read back from a trajectory: what the turn call answered, and what followed.

    `before` is the trajectory as the turn call saw it; `observation` is None only for the
    `finish` turn that ends a run (a run stopped by `max_iters` ends with an observation).
    """

    number: int
    before: str
    thought: str
    tool_name: str
    tool_args: str
    observation: str | None


# Patterns as text (the `re` module caches them): the runtime compiles nothing, regexes included.
_ENTRY = r"(?m)^(thought|tool_name|tool_args|observation)_(\d+): "
_UNREADABLE_TAIL = r"(?s)(?:\A|\n\n)\[turn (\d+) could not be read: .*\]\Z"


def split_trajectory(text: str) -> list[Turn] | None:
    """The turns of a trajectory the loop wrote, or None where it cannot be split for certain.

    The text must be exactly what `forward` writes: `thought_k`, `tool_name_k`, `tool_args_k`
    and (unless the turn finished) `observation_k` for k = 0, 1, ... in order, optionally ending
    with one `[turn N could not be read: ...]` note. Any other marker line (a thought that
    itself holds `tool_name_3: ...` on a line of its own), a gap, or a text that does not come
    out byte for byte the same when written again is None: a trajectory is never guessed at.
    """
    tail = re.search(_UNREADABLE_TAIL, text)
    body = text[: tail.start()] if tail else text
    marks = list(re.finditer(_ENTRY, body))
    if not marks or marks[0].start() != 0:
        return None
    turns: list[Turn] = []
    finished = False
    i = 0
    while i < len(marks):
        if finished:
            return None  # something after a finish
        k = len(turns)
        kinds = [(m.group(1), int(m.group(2))) for m in marks[i : i + 4]]
        if kinds[:3] != [("thought", k), ("tool_name", k), ("tool_args", k)]:
            return None
        start = marks[i].start()
        values = [
            body[marks[j].end() : marks[j + 1].start() if j + 1 < len(marks) else len(body)]
            for j in range(i, min(i + 4, len(marks)))
        ]
        thought, name, args = values[0], values[1], values[2]
        if not (thought.endswith("\n") and name.endswith("\n")):
            return None
        thought, name = thought[:-1], name[:-1]
        observation: str | None = None
        if len(kinds) == 4 and kinds[3] == ("observation", k):
            if not args.endswith("\n\n") or name.lower() == FINISH:
                return None
            args = args[:-2]
            observation = values[3]
            if i + 4 < len(marks):
                if not observation.endswith("\n\n"):
                    return None
                observation = observation[:-2]
            i += 4
        else:
            if len(kinds) > 3 or name.lower() != FINISH:
                return None  # a tool call with no observation, not at the end
            finished = True
            i += 3
        before = body[: start - 2] if start else ""
        turns.append(Turn(k, before, thought, name, args, observation))
    if tail is not None and (finished or int(tail.group(1)) != len(turns) + 1):
        return None
    if _write_back(turns) != body:
        return None
    return turns


def _write_back(turns: Sequence[Turn]) -> str:
    entries: list[str] = []
    for turn in turns:
        entries.append(_turn_entry(turn.number, turn.thought, turn.tool_name, turn.tool_args))
        if turn.observation is not None:
            entries.append(_observation_entry(turn.number, turn.observation))
    return "\n\n".join(entries)


def _worked(turn: Turn, tools: Mapping[str, Callable[..., Any]]) -> bool:
    """The turn called a known tool with arguments it took, and the tool did not fail."""
    observation = turn.observation
    if turn.tool_name not in tools or observation is None:
        return False
    failures = (_NO_TOOL, _NOT_AN_OBJECT, _BAD_ARGUMENTS, _NOT_JSON, f"{turn.tool_name}{_FAILED}")
    return not observation.startswith(failures)


def _args_object(text: str) -> dict[str, Any] | None:
    """The tool arguments as the JSON object the trajectory shows, if it is exactly one."""
    import json

    from .coerce import render

    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or render(value) != text:
        return None
    return value


def pick_turns(turns: Sequence[Turn], tools: Mapping[str, Callable[..., Any]]) -> list[Turn]:
    """The turns of one run worth teaching: the first working call of each of (at most) two
    tools, in order, then the `finish` turn if the run finished.

    A failed call (its observation is the runtime's error text) and a call that repeats an
    earlier one (a loop) are never taught, nor are arguments that are not one JSON object.
    """
    picked: list[Turn] = []
    seen_calls: set[tuple[str, str]] = set()
    taught_tools: set[str] = set()
    for turn in turns:
        call = (turn.tool_name, turn.tool_args)
        repeated = call in seen_calls
        seen_calls.add(call)
        if _args_object(turn.tool_args) is None:
            continue
        if turn.tool_name.lower() == FINISH and turn.observation is None:
            picked.append(turn)
        elif (
            not repeated
            and _worked(turn, tools)
            and turn.tool_name not in taught_tools
            and len(taught_tools) < TURNS_PER_RUN - 1
        ):
            taught_tools.add(turn.tool_name)
            picked.append(turn)
    return picked


def turn_demos(
    demos: Sequence[Demo],
    input_names: Sequence[str],
    tools: Mapping[str, Callable[..., Any]],
) -> tuple[Demo, ...]:
    """The turn call's demos, cut out of whole-run demos: inputs + trajectory so far ->
    `next_thought`, `next_tool_name`, `next_tool_args`.

    Which turns (`pick_turns`): the first turn shows how to start (the tool, and its arguments
    as a JSON object); the first working call of a second tool shows how an observation feeds
    the next call (for a lookup + calculate agent: numbers from the lookup go into the
    expression); the finish shows when to stop, which saves the calls a run that loops to
    `max_iters` spends. Failed and repeated calls are left out: a small model copies what it
    is shown, mistakes included. Every turn demo repeats the trajectory so far, so a prompt
    grows with the square of the turns shown: runs are taken whole and in order while they fit
    in `MAX_TURN_DEMOS` turns and `MAX_TURN_DEMO_CHARS` characters of trajectory (two runs of
    three turns for a 4k-token context and a 0.5-1.5B model); one that does not fit is left
    out. A demo without a trajectory (a labeled example) or one that cannot be split
    (`split_trajectory`) teaches no turn; it still reaches the answer call.
    """
    out: list[Demo] = []
    chars = 0
    for demo in demos:
        text = demo.get(TRAJECTORY.name)
        if not isinstance(text, str):
            continue
        turns = split_trajectory(text)
        if turns is None:
            continue
        picked = pick_turns(turns, tools)
        size = sum(len(turn.before) for turn in picked)
        if (
            not picked
            or len(out) + len(picked) > MAX_TURN_DEMOS
            or chars + size > MAX_TURN_DEMO_CHARS
        ):
            continue
        chars += size
        inputs = {name: demo[name] for name in input_names if name in demo}
        for turn in picked:
            out.append(
                {
                    **inputs,
                    TRAJECTORY.name: turn.before,
                    "next_thought": turn.thought,
                    "next_tool_name": turn.tool_name,
                    "next_tool_args": _args_object(turn.tool_args),
                }
            )
    return tuple(out)
