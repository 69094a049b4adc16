"""MultiChainComparison: m reasoning attempts, then one call that compares them and answers.

As DSPy's `dspy.MultiChainComparison`: the step first draws `m` chain-of-thought attempts at
the task (the step's own signature with a `reasoning` output, its demos, each attempt sampled
at `attempt_temperature` with its own seed so the attempts differ and a seeded server repeats
them), then makes one more call whose inputs are the task's plus every attempt, and whose
outputs are a `reasoning` that weighs them and the final typed answer.

Demos teach the attempts (they are chain-of-thought demos: inputs, reasoning, outputs); the
comparison call sees the attempts instead. A traced call of this step is recorded as the
comparison's reasoning and answer for the task's inputs -- exactly a demo of the attempts.

An attempt whose answer does not parse is shown to the comparison as unreadable rather than
guessed at; if no attempt can be read there is nothing to compare, and the last `ParseError`
is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from .adapters import Demo
from .coerce import render
from .errors import ParseError
from .lm import LM, Message
from .predictor import Prediction, Predictor
from .signature import REASONING, Field, Signature
from .streaming import WholeStream

T = TypeVar("T")

COMPARE = (
    "Several independent attempts at this task are given as inputs (attempt_1, attempt_2,"
    " ...). Compare their reasoning and answers, work out which is right -- or correct them"
    " all -- and give the final answer."
)


def attempt_field(index: int) -> Field:
    return Field(f"attempt_{index}", str, f"Attempt {index}: its reasoning and its answer.")


class MultiChainComparison(WholeStream[T], Generic[T]):  # streams as one final item
    """One multi-chain-comparison step with its state frozen in."""

    __slots__ = ("attempt", "attempt_temperature", "compare", "m", "signature")

    def __init__(
        self,
        signature: Signature,
        returns: str | type,
        m: int = 3,
        attempt_temperature: float = 0.7,
        demos: Sequence[Demo] = (),
        adapter: str = "chat",
        lm_params: Mapping[str, Any] | None = None,
        parse_retries: int = 0,
    ) -> None:
        self.signature = signature
        self.m = m
        self.attempt_temperature = attempt_temperature
        outputs = tuple(f for f in signature.outputs if f.name != REASONING.name)
        reasoned = signature._replace(outputs=(REASONING, *outputs))
        self.attempt: Predictor[T] = Predictor(
            reasoned, returns, demos, adapter, lm_params, parse_retries
        )
        attempts = tuple(attempt_field(i) for i in range(1, m + 1))
        self.compare: Predictor[T] = Predictor(
            reasoned._replace(
                instructions=f"{signature.instructions}\n\n{COMPARE}",
                inputs=(*signature.inputs, *attempts),
            ),
            returns,
            (),
            adapter,
            lm_params,
            parse_retries,
        )
        self.attempt.role, self.compare.role = "attempt", "compare"

    @property
    def demos(self) -> tuple[Demo, ...]:
        return self.attempt.demos

    def __repr__(self) -> str:
        return f"MultiChainComparison(m={self.m}, demos={len(self.demos)})"

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The first attempt's messages: what `promptcast inspect` shows."""
        return self.attempt.messages(inputs)

    def attempt_params(self, index: int) -> dict[str, Any]:
        """Attempt `index`'s sampling: hotter than the step, and a seed of its own."""
        seed = int(self.attempt.lm_params.get("seed", 0))
        return {"temperature": self.attempt_temperature, "seed": seed + index}

    def forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        texts: list[str] = []
        error: ParseError | None = None
        for index in range(self.m):
            try:
                attempt = self.attempt.forward(
                    inputs, lm, **{**params, **self.attempt_params(index)}
                )
            except ParseError as exc:
                error = exc
                texts.append(_unreadable(exc))
                continue
            texts.append(self._describe(attempt.fields))
        values = self._compare_inputs(inputs, texts, error)
        return _as_task(self.compare.forward(values, lm, **params), inputs)

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """`forward` awaited: the attempts one after another (as `forward`), then the
        comparison, so both forms send the same requests in the same order."""
        texts: list[str] = []
        error: ParseError | None = None
        for index in range(self.m):
            try:
                attempt = await self.attempt.aforward(
                    inputs, lm, **{**params, **self.attempt_params(index)}
                )
            except ParseError as exc:
                error = exc
                texts.append(_unreadable(exc))
                continue
            texts.append(self._describe(attempt.fields))
        values = self._compare_inputs(inputs, texts, error)
        return _as_task(await self.compare.aforward(values, lm, **params), inputs)

    def __call__(self, **inputs: Any) -> T:
        return self.forward(inputs).value

    async def acall(self, **inputs: Any) -> T:
        return (await self.aforward(inputs)).value

    def _describe(self, fields: Mapping[str, Any]) -> str:
        answer = "; ".join(
            f"{name}: {render(value)}" for name, value in fields.items() if name != REASONING.name
        )
        return f"Reasoning: {fields.get(REASONING.name, '')}\nAnswer: {answer}"

    def _compare_inputs(
        self, inputs: Mapping[str, Any], texts: list[str], error: ParseError | None
    ) -> dict[str, Any]:
        if error is not None and all(t.startswith(_UNREADABLE) for t in texts):
            raise error  # nothing readable to compare: the attempts' own error
        return {
            **inputs,
            **{attempt_field(i).name: text for i, text in enumerate(texts, 1)},
        }


def _as_task(result: Prediction[T], inputs: Mapping[str, Any]) -> Prediction[T]:
    """The comparison's answer recorded against the task's own inputs (not the attempts), so
    a trace of it is a demo of the attempts."""
    return Prediction(result.value, result.fields, result.messages, result.completion, inputs)


_UNREADABLE = "(this attempt's answer could not be read"


def _unreadable(error: ParseError) -> str:
    return f"{_UNREADABLE}: {error.reason})"
