"""The engine's view of a user's program: the one way optimizers run it.

Optimizers see a program only through this interface and the IR (DESIGN, "Optimizers see the
program only through the IR and the engine"): run the program with these candidate states on
this input and get its output plus the trace of every LM step it called; find which steps a
program calls, as `ir.Signature`s. The decorators, the development context (which candidate a
call uses, which tracer records it) and how a `@pc.program` is discovered all stay behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promptcast_runtime import LM, Completion, Message

from ..api import LMFunction, Program
from ..context import Tracer, TraceRecord, candidate, run_lm_params
from ..ir import FunctionState, Signature

States = Mapping[str, FunctionState]


@dataclass(frozen=True)
class StepCall:
    """One LM step call of a program run: which step, the inputs its answering call rendered
    (a ReAct step's include its `trajectory`), its output fields -- together exactly a demo of
    that call -- and the exact exchange with the LM."""

    qualname: str
    inputs: Mapping[str, Any]
    fields: dict[str, Any]
    value: Any
    messages: list[Message]
    completion: Completion


@dataclass(frozen=True)
class ProgramRun:
    """What one run produced: the program's output and every step call it made."""

    output: Any
    calls: tuple[StepCall, ...]


class RunFailed(Exception):  # noqa: N818 -- carries the calls made before the failure
    """The program raised; `calls` are the step calls that completed before it did."""

    def __init__(self, error: BaseException, calls: tuple[StepCall, ...]) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.calls = calls


class ProgramEngine:
    """Runs one target -- an LM function or a `@pc.program` -- for an optimizer.

    `lm` serves every call (the run's metered, budgeted LM); `lm_params` are the run's
    `--lm-param` overrides, applied to any step whose state the candidate does not set.
    """

    def __init__(
        self, target: Any, lm: LM | None, lm_params: Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(target, (LMFunction, Program)):
            raise TypeError(f"{target!r} is not an LM function or a @pc.program")
        self.target = target
        self.lm = lm
        self.lm_params = dict(lm_params) if lm_params else None
        self._functions: dict[str, LMFunction[..., Any]] = {}

    @property
    def qualname(self) -> str:
        return self.target.qualname

    @property
    def is_step(self) -> bool:
        """Whether the target is itself one LM step (not a program composing several)."""
        return isinstance(self.target, LMFunction)

    def run(self, inputs: Mapping[str, Any], states: States | None) -> ProgramRun:
        """The target's output for `inputs` with these candidate states (None: the steps'
        current states), and every step call it made; `RunFailed` if it raised."""
        tracer = Tracer()
        try:
            with candidate(states=states, lm=self.lm, tracer=tracer), run_lm_params(self.lm_params):
                output = self.target(**inputs)
        except Exception as exc:
            raise RunFailed(exc, self._calls(tracer.records)) from exc
        return ProgramRun(output, self._calls(tracer.records))

    def output(self, inputs: Mapping[str, Any], states: States | None) -> Any:
        """Only the output (no trace kept): what scoring needs."""
        with candidate(states=states, lm=self.lm), run_lm_params(self.lm_params):
            return self.target(**inputs)

    def steps(self) -> dict[str, Signature] | None:
        """The steps the target is known to call without running it: itself for an LM
        function; None for a program (see `steps_seen` and `steps_named`)."""
        if isinstance(self.target, LMFunction):
            self._functions[self.target.qualname] = self.target
            return {self.target.qualname: self.target.signature}
        return None

    def steps_seen(self, calls: tuple[StepCall, ...]) -> dict[str, Signature]:
        """The signatures of the steps these calls came from."""
        return {c.qualname: self._functions[c.qualname].signature for c in calls}

    def steps_named(self) -> dict[str, Signature]:
        """The LM functions a program's code names (its globals referenced from its bytecode):
        the steps a program calls when tracing it found none (every traced run failed)."""
        found: dict[str, Signature] = {}
        if not isinstance(self.target, Program):
            return self.steps() or {}
        fn = self.target.fn
        stack = [fn.__code__]
        while stack:
            code = stack.pop()
            for name in code.co_names:
                value = fn.__globals__.get(name)
                if isinstance(value, LMFunction):
                    self._functions.setdefault(value.qualname, value)
                    found.setdefault(value.qualname, value.signature)
            stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
        return found

    def zero_shot(
        self,
        qualname: str,
        project_lm_params: Mapping[str, Any] | None,
        run_lm_params: Mapping[str, Any] | None,
    ) -> FunctionState:
        """Step `qualname`'s unoptimized state, with the sampling it will be scored with
        (kind < project < decorator < this run)."""
        signature = self._functions[qualname].signature
        state = FunctionState.zero_shot(signature, dict(project_lm_params or {}))
        return state.with_lm_params(dict(run_lm_params) if run_lm_params else None)

    def training_turns(
        self,
        qualname: str,
        state: FunctionState,
        inputs: Mapping[str, Any],
        answer: Mapping[str, Any],
    ) -> list[Message] | None:
        """The conversation one call of step `qualname` in `state` teaches a model: the exact
        messages the step sends for `inputs` (the runtime step the built module builds from
        the same spec), then `answer` (JSON-form output fields) as the step's adapter renders
        an assistant turn. None for a kind whose calls are not one predictor's (a ReAct loop)
        or an adapter that renders no assistant turns."""
        from promptcast_runtime.adapters import get_adapter
        from promptcast_runtime.predictor import Predictor

        step = self._functions[qualname].predictor(state)
        if not isinstance(step, Predictor):
            return None
        render = getattr(get_adapter(step.adapter), "assistant_message", None)
        if render is None:
            return None
        messages = step.messages(inputs)
        return [*messages, {"role": "assistant", "content": render(step.signature, dict(answer))}]

    def _calls(self, records: list[TraceRecord]) -> tuple[StepCall, ...]:
        calls = []
        for record in records:
            if isinstance(record.function, LMFunction):
                self._functions.setdefault(record.qualname, record.function)
            calls.append(
                StepCall(
                    record.qualname,
                    record.inputs,
                    record.fields,
                    record.value,
                    record.messages,
                    record.completion,
                )
            )
        return tuple(calls)
