"""A compiled LM step: signature + frozen state -> render, call, parse, build the return value.

Generated modules hold one `Predictor` per decorated function, built from literals. The
compiler's engine builds the very same object from a candidate state while optimizing, so the
prompt it scores is the prompt that ships (DESIGN principle 1, "one path").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import hooks as _hooks
from .adapters import Demo, get_adapter
from .coerce import object_fields
from .conversation import conversation_for
from .errors import ParseError
from .lm import LM, Completion, Message, as_completion, complete_async, current_lm
from .rollout import HINT_DESCRIPTION, HINT_FIELD, current_hint, note_lm, sample_params
from .signature import Field, Signature
from .streaming import StreamingStep

if TYPE_CHECKING:  # imported by build_step only for a knn step: a plain step never loads it
    from .nearest import NearestDemos

T = TypeVar("T")

_UNPINNED: Mapping[str, Any] = {}
"""The request of a step with no trained model pins no `model` (read only)."""


INCOMPLETE = {
    "length": "was cut off by the token limit",
    "content_filter": "was withheld or cut by the provider's content filter",
}
"""Finish reasons of a completion that is not a whole answer, and what happened to it."""


def retry_message(error: ParseError) -> str:
    """The user turn that asks for a corrected answer after a parse failure."""
    where = f"the field `{error.field}`" if error.field else "your answer"
    return (
        f"The answer above could not be used: {where} must be {error.expected} "
        f"({error.reason}). Answer again, in exactly the format asked for."
    )


class Prediction(Generic[T]):
    """Everything one call produced: the value the caller gets, and what led to it.

    `inputs` are the input fields the answering call rendered -- the caller's, plus whatever
    the step added itself (a ReAct step's `trajectory`) -- so inputs and `fields` together are
    exactly a demo of that call.
    """

    __slots__ = ("completion", "fields", "inputs", "messages", "value")

    def __init__(
        self,
        value: T,
        fields: dict[str, Any],
        messages: list[Message],
        completion: Completion,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.value = value
        self.fields = fields
        self.messages = messages
        self.completion = completion
        self.inputs: Mapping[str, Any] = inputs if inputs is not None else {}

    def __repr__(self) -> str:
        return f"Prediction(value={self.value!r}, fields={self.fields!r})"


class Predictor(StreamingStep[T], Generic[T]):  # stream(): streaming.py, off this path
    """One LM step with its optimized state frozen in.

    `returns` says how parsed output fields become the caller's value: the name of the one
    output field to return, or a class (NamedTuple, dataclass, ...) built from the fields.
    Fields that the class does not take (such as chain-of-thought `reasoning`) are dropped.
    """

    __slots__ = (
        "_prefix",
        "adapter",
        "conversation",
        "demos",
        "format_params",
        "lm_params",
        "nearest",
        "origin",
        "parse_retries",
        "returns",
        "role",
        "signature",
    )

    def __init__(
        self,
        signature: Signature,
        returns: str | type,
        demos: Sequence[Demo] = (),
        adapter: str = "chat",
        lm_params: Mapping[str, Any] | None = None,
        parse_retries: int = 0,
    ) -> None:
        # A plain class, not a dataclass: importing dataclasses alone costs ~5 ms.
        self.signature = signature
        self.returns = returns
        self.demos = tuple(demos)
        self.adapter = adapter
        self.lm_params = dict(lm_params or {})
        self.parse_retries = parse_retries
        self._prefix: tuple[tuple[str, str], ...] | None = None
        # A step with a History or Image input renders through `conversation.py`; None for
        # every other step, whose call path stays as it was.
        self.conversation = conversation_for(signature, adapter)
        # Set by `build_step`: the function's name and target model (hooks, the model check).
        self.origin: _hooks.StepOrigin | None = None
        self.role = "predict"
        # Set by `build_step` for a spec with `nearest` (knn): demos chosen per call.
        self.nearest: NearestDemos | None = None
        # Set by `build_step` for a json spec with `response_format` (the structured output the
        # optimizer chose for the endpoint): sent over the adapter's plain JSON mode.
        self.format_params: Mapping[str, Any] = {}

    def __repr__(self) -> str:
        return (
            f"Predictor(instructions={self.signature.instructions[:40]!r}, "
            f"demos={len(self.demos)}, adapter={self.adapter!r})"
        )

    def messages(self, inputs: Mapping[str, Any]) -> list[Message]:
        """The exact messages a call with these inputs sends."""
        missing = [f.name for f in self.signature.inputs if f.name not in inputs]
        if missing:
            raise TypeError(f"missing input(s): {', '.join(missing)}")
        adapter = get_adapter(self.adapter)
        hint = current_hint()
        nearest = self.nearest
        demos = self.demos if nearest is None else nearest.select(inputs)
        if self.conversation is not None:
            return self._conversation_messages(adapter, demos, inputs, hint)
        if hint is not None:  # inside `refine`, after a weak attempt: one more input field
            hinted = self.signature._replace(
                inputs=(*self.signature.inputs, Field(HINT_FIELD, str, HINT_DESCRIPTION))
            )
            return [
                *adapter.prefix(hinted, demos),
                {
                    "role": "user",
                    "content": adapter.user_message(hinted, {**inputs, HINT_FIELD: hint}),
                },
            ]
        if nearest is not None:  # this call's own demos: nothing to reuse across calls
            chosen = list(adapter.prefix(self.signature, demos))
            chosen.append({"role": "user", "content": adapter.user_message(self.signature, inputs)})
            return chosen
        prefix = self._prefix
        if prefix is None:
            # System message and demo turns never change for a step: render them once.
            # (Two threads racing here compute the same value; either may be kept.)
            rendered = adapter.prefix(self.signature, self.demos)
            prefix = self._prefix = tuple((m["role"], m["content"]) for m in rendered)
        messages: list[Message] = [{"role": role, "content": content} for role, content in prefix]
        messages.append({"role": "user", "content": adapter.user_message(self.signature, inputs)})
        return messages

    def _conversation_messages(
        self, adapter: Any, demos: Sequence[Demo], inputs: Mapping[str, Any], hint: str | None
    ) -> list[Message]:
        """`messages` of a step with a History or Image input (`conversation.py`)."""
        assert self.conversation is not None
        if hint is None:
            return self.conversation.messages(
                adapter, self.signature, demos, inputs, cacheable=self.nearest is None
            )
        hinted = self.signature._replace(
            inputs=(*self.signature.inputs, Field(HINT_FIELD, str, HINT_DESCRIPTION))
        )
        return self.conversation.messages(adapter, hinted, demos, {**inputs, HINT_FIELD: hint})

    def parse(self, text: str) -> dict[str, Any]:
        """Output field name -> typed value; `ParseError` if the text does not fit."""
        return get_adapter(self.adapter).parse(self.signature, text)

    def build(self, fields: Mapping[str, Any]) -> T:
        """The caller's value from parsed output fields."""
        if isinstance(self.returns, str):
            value: Any = fields[self.returns]
        else:
            # The class's own fields, so an extra output (chain-of-thought `reasoning`) is
            # dropped while a class that declares a field of that name still gets it.
            names = object_fields(self.returns)
            value = self.returns(**{name: fields[name] for name in names if name in fields})
        return value  # type: ignore[no-any-return]

    def _begin(
        self, inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
    ) -> tuple[list[Message], LM, dict[str, Any], _hooks.Call | None]:
        """What every call does before its first request -- plain, awaited or streamed: the
        messages, the LM (the optimized-for check once per LM object), the request, and the
        hooks record (None unless hooks are registered: one attribute read, hooks.ACTIVE)."""
        messages = self.messages(inputs)
        model = lm if lm is not None else current_lm()
        origin = self.origin
        if origin is not None and model is not origin.checked:
            origin.check(model)
        request = self._request(model, params)
        call = _hooks.start_call(self, model, messages, request) if _hooks.ACTIVE else None
        return messages, model, request, call

    def forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """Render, call the LM once, parse; with the full record, for tracing and inspection."""
        messages, model, request, call = self._begin(inputs, lm, params)
        try:  # the loop binds `attempt` and `completion` before anything in it can raise
            for attempt in range(self.parse_retries + 1):
                completion = None  # a failed attempt reports its own completion, or none
                completion = as_completion(model.complete(messages, **request))
                outcome = self._settle(inputs, messages, completion, attempt)
                if isinstance(outcome, Prediction):
                    if call is not None:
                        call.finished(outcome, attempt)
                    return outcome
                messages = outcome
        except BaseException as exc:
            if call is not None:
                call.failed(exc, attempt, completion)
            raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aforward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> Prediction[T]:
        """`forward` as a coroutine: the same messages, request and parsing, awaited."""
        messages, model, request, call = self._begin(inputs, lm, params)
        try:
            for attempt in range(self.parse_retries + 1):
                completion = None
                completion = await complete_async(model, messages, **request)
                outcome = self._settle(inputs, messages, completion, attempt)
                if isinstance(outcome, Prediction):
                    if call is not None:
                        call.finished(outcome, attempt)
                    return outcome
                messages = outcome
        except BaseException as exc:
            if call is not None:
                call.failed(exc, attempt, completion)
            raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _request(self, model: LM, params: Mapping[str, Any]) -> dict[str, Any]:
        """The call's parameters. Inside a sampling strategy the sample's rollout, temperature
        and seed override the state's, and the LM is noted for `refine`'s advice. A step with a
        trained model (spec `model`) names it as the request's `model`, under the state's and
        the call's own parameters: `forward(inputs, model=...)` still picks another."""
        sampled = sample_params()
        if sampled:
            note_lm(model)
        origin = self.origin
        pinned = {"model": origin.model} if origin is not None and origin.model else _UNPINNED
        return {
            **get_adapter(self.adapter).request_params,
            **self.format_params,
            **pinned,
            **self.lm_params,
            **sampled,
            **params,
        }

    def _settle(
        self,
        inputs: Mapping[str, Any],
        messages: list[Message],
        completion: Completion,
        attempt: int,
    ) -> Prediction[T] | list[Message]:
        """One completion's outcome, for `forward` and `aforward` alike: the Prediction, or
        after a parse failure the messages of the opt-in repair attempt (the model's answer and
        what was wrong with it); the ParseError once retries are spent."""
        if completion.finish_reason in INCOMPLETE:
            # Never parse an answer the model did not finish as if it were whole ("12" of
            # "123", half a refusal), and never pay for a retry that would stop the same way.
            why = INCOMPLETE[completion.finish_reason]
            if completion.finish_reason == "length":
                limit = self.lm_params.get("max_tokens")
                why += (f", max_tokens={limit}" if limit is not None else "") + (
                    "; raise max_tokens with the step's lm_params, or a --lm-param"
                )
            raise ParseError(
                f"the answer {why} (finish_reason {completion.finish_reason!r})",
                field=None,
                expected="a complete answer",
                raw=completion.text,
            )
        try:
            fields = self.parse(completion.text)
        except ParseError as error:
            if attempt >= self.parse_retries:
                raise
            return [
                *messages,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": retry_message(error)},
            ]
        return Prediction(self.build(fields), fields, messages, completion, inputs)

    def __call__(self, **inputs: Any) -> T:
        return self.forward(inputs).value

    async def acall(self, **inputs: Any) -> T:
        """Awaitable `__call__`: what a generated `<name>_async` function returns."""
        return (await self.aforward(inputs)).value
