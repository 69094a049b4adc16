"""Streaming a compiled step: partial results as the completion arrives, the answer last.

`f_stream(...)` (generated beside every compiled `f`, and in development) returns a generator of
`Partial` items; `f_astream(...)` the same as an async generator::

    for part in classify_stream(question):
        show(part.fields)            # {"reasoning": "The question asks", ...} so far
        if part.done:
            answer = part.value      # == classify(question) for the same completion

What an item holds (`Partial`): `fields`, the output fields decided so far -- a `str` field as
far as it is written, growing token by token; any other field only once it is complete, parsed
by the adapter's own parse (`partials.py`); chain of thought's `reasoning` comes first, as the
model writes it. The last item has `done` set and the `prediction` that `forward` would return
for the same completion: its fields, and the caller's `value`. Items before it are provisional;
the last one is the answer, and where the whole completion does not parse (or was cut off by
the token limit) the stream raises `ParseError` instead of yielding it, exactly as `f` would.

One path: the messages, the request parameters, the parse, the parse retries and the hooks are
the plain call's (`Predictor._settle` decides the final item); only the transport differs. The
built-in client streams over server-sent events (`sse.py`); a user's LM streams if it has
`stream(messages, **params)` (and, for `f_astream`, `astream`) yielding text pieces (`str`, or
`Completion`s whose text is the piece and whose metadata, where set, is the whole call's). An
LM without a stream method still works: it is called once, and the stream yields one item,
the final one. Kinds whose answer is not one completion (ReAct, multi-chain comparison, an
ensemble) do the same (`WholeStream`): their intermediate calls are not the answer.

Closing the generator (`break`, `.close()`, `aclose()`) closes the connection; the hooks then
see the call fail with `GeneratorExit`. A fault after content arrived raises `StreamError`
(an `LMError`) with the text and fields so far; before that, the client retries as usual.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

from .errors import LMError, StreamError

if TYPE_CHECKING:
    from .hooks import Call
    from .lm import LM, Completion, Message
    from .signature import Signature

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Answer(Protocol[T_co]):
    """What the last item of a stream carries: the `Prediction` the plain call returns (this
    protocol spells its fields, so this module need not import `predictor.py`, which imports
    it)."""

    @property
    def value(self) -> T_co: ...

    @property
    def fields(self) -> dict[str, Any]: ...

    @property
    def messages(self) -> list[Message]: ...

    @property
    def completion(self) -> Completion: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...


class Partial(Generic[T]):
    """One item of a stream: the fields decided so far; on the last item, the answer.

    `fields` maps output field names to values (a `str` field's text so far; other fields
    once complete), in output order. `text` is the raw completion so far. `done` is True on
    the last item only, which also has `prediction` (what `forward` returns) and `value` (what
    the plain call returns). `attempt` counts opt-in parse retries: a new attempt starts its
    fields afresh.
    """

    __slots__ = ("attempt", "done", "fields", "prediction", "text")

    def __init__(
        self,
        fields: dict[str, Any],
        text: str,
        attempt: int = 0,
        prediction: Answer[T] | None = None,
    ) -> None:
        self.fields = fields
        self.text = text
        self.attempt = attempt
        self.prediction = prediction
        self.done = prediction is not None

    @property
    def value(self) -> T:
        """The caller's value, on the last item; ValueError on a partial one (no guess)."""
        if self.prediction is None:
            raise ValueError(
                "a partial result has no value yet: read `fields`, or `value` once `done`"
            )
        return self.prediction.value

    def __repr__(self) -> str:
        return f"Partial(fields={self.fields!r}, done={self.done})"


PartialStream = Generator[Partial[T], None, None]
"""What `f_stream(...)` returns: a generator of `Partial[T]` (closable with `.close()`)."""

AsyncPartialStream = AsyncGenerator[Partial[T], None]
"""What `f_astream(...)` returns: an async generator of `Partial[T]` (`aclose()`)."""


class _Text:
    """The completion as its pieces arrive: the text so far and the call's metadata."""

    __slots__ = ("finish_reason", "model", "parts", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: Mapping[str, int] = {}
        self.model = ""
        self.finish_reason = ""

    def add(self, item: object) -> bool:
        """Take one piece; True when it added text."""
        from .lm import Completion

        if isinstance(item, str):
            text = item
        elif isinstance(item, Completion):
            text = item.text
            self.usage = item.usage or self.usage
            self.model = item.model or self.model
            self.finish_reason = item.finish_reason or self.finish_reason
        else:
            raise LMError(f"an LM's stream must yield str or Completion, got {type(item).__name__}")
        if text:
            self.parts.append(text)
        return bool(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def completion(self) -> Completion:
        from .lm import Completion

        return Completion(self.text, dict(self.usage), self.model, self.finish_reason)


class _Progress(_Text):
    """One streamed attempt: the text so far, parsed as it grows by the adapter's partial
    parser, and the fields last shown (a new item only when they change)."""

    __slots__ = ("attempt", "parser", "shown")

    def __init__(self, predictor: _Settles[Any], attempt: int) -> None:
        from .partials import PartialParser

        super().__init__()
        self.parser = PartialParser(predictor.signature, predictor.adapter)
        self.shown: dict[str, Any] = {}
        self.attempt = attempt

    def take(self, piece: object) -> Partial[Any] | None:
        """Take one piece of the stream; the next partial result when the fields changed."""
        if not self.add(piece):
            return None
        text = self.text
        fields = self.parser.feed(text)
        if fields == self.shown:
            return None
        self.shown = fields
        return Partial(dict(fields), text, self.attempt)


def _broken(exc: LMError, progress: _Progress) -> NoReturn:
    """Re-raise an LMError from the LM's stream, as a StreamError saying what arrived where
    content had (a user LM's own LMError mid-stream); the built-in client's says it already."""
    fields = progress.shown
    if isinstance(exc, StreamError):
        exc.fields = dict(fields)
        raise exc
    if not progress.parts:
        raise exc
    raise StreamError(str(exc), text=progress.text, fields=dict(fields)) from exc


class _Settles(Protocol[T_co]):
    """The parts of a `Predictor` a streamed call uses: the plain call's own."""

    @property
    def signature(self) -> Signature: ...

    @property
    def adapter(self) -> str: ...

    @property
    def parse_retries(self) -> int: ...

    def _begin(
        self, inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
    ) -> tuple[list[Message], LM, dict[str, Any], Call | None]: ...

    def _settle(
        self,
        inputs: Mapping[str, Any],
        messages: list[Message],
        completion: Completion,
        attempt: int,
    ) -> Answer[T_co] | list[Message]: ...


class StreamingStep(Generic[T]):
    """`Predictor`'s streaming methods (a mixin: the plain call's path never runs this code).

    Generated code calls `stream(**inputs)` / `astream(**inputs)`; development and tools call
    `stream_forward(inputs, lm, **params)` / `astream_forward(...)`, `forward`'s twins.
    """

    __slots__ = ()

    def stream_forward(
        self: _Settles[T], inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> PartialStream[T]:
        """`forward`, yielding `Partial` results as the completion arrives; the last item
        holds the Prediction `forward` returns for the same completion."""
        return stream_predictor(self, inputs, lm, params)

    def astream_forward(
        self: _Settles[T], inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> AsyncPartialStream[T]:
        """`stream_forward` as an async generator (`aforward`'s transport)."""
        return astream_predictor(self, inputs, lm, params)

    def stream(self: _Settles[T], **inputs: Any) -> PartialStream[T]:
        """What a generated `<name>_stream` function returns."""
        return stream_predictor(self, inputs, None, {})

    def astream(self: _Settles[T], **inputs: Any) -> AsyncPartialStream[T]:
        """What a generated `<name>_astream` function returns."""
        return astream_predictor(self, inputs, None, {})


def stream_predictor(
    predictor: _Settles[T], inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
) -> PartialStream[T]:
    """`Predictor.stream_forward`: `forward`, yielding partial results on the way."""
    from .lm import as_completion

    messages, model, request, call = predictor._begin(inputs, lm, params)
    attempt, completion, final = 0, None, None
    try:
        for attempt in range(predictor.parse_retries + 1):
            completion = None
            native = getattr(model, "stream", None)
            if native is None:
                completion = as_completion(model.complete(messages, **request))
            else:
                text = _Progress(predictor, attempt)
                pieces = native(messages, **request)
                try:
                    for piece in pieces:
                        partial = text.take(piece)
                        if partial is not None:
                            yield partial
                except LMError as exc:
                    _broken(exc, text)
                finally:
                    close = getattr(pieces, "close", None)
                    if close is not None:
                        close()
                completion = text.completion()
            outcome = predictor._settle(inputs, messages, completion, attempt)
            if not isinstance(outcome, list):  # the Prediction; a list: the repair's messages
                final = outcome
                break
            messages = outcome
    except BaseException as exc:
        if call is not None:
            call.failed(exc, attempt, completion)
        raise
    assert final is not None and completion is not None  # the last attempt returns or raises
    if call is not None:
        call.finished(final, attempt)
    yield Partial(dict(final.fields), completion.text, attempt, final)


async def astream_predictor(
    predictor: _Settles[T], inputs: Mapping[str, Any], lm: LM | None, params: Mapping[str, Any]
) -> AsyncPartialStream[T]:
    """`Predictor.astream_forward`: `stream_predictor` on the caller's event loop."""
    from .lm import complete_async

    messages, model, request, call = predictor._begin(inputs, lm, params)
    attempt, completion, final = 0, None, None
    try:
        for attempt in range(predictor.parse_retries + 1):
            completion = None
            pieces = _pieces(model, messages, request)
            if pieces is None:
                completion = await complete_async(model, messages, **request)
            else:
                text = _Progress(predictor, attempt)
                try:
                    async for piece in pieces:
                        partial = text.take(piece)
                        if partial is not None:
                            yield partial
                except LMError as exc:
                    _broken(exc, text)
                finally:
                    close = getattr(pieces, "aclose", None)
                    if close is not None:
                        await close()
                completion = text.completion()
            outcome = predictor._settle(inputs, messages, completion, attempt)
            if not isinstance(outcome, list):  # the Prediction; a list: the repair's messages
                final = outcome
                break
            messages = outcome
    except BaseException as exc:
        if call is not None:
            call.failed(exc, attempt, completion)
        raise
    assert final is not None and completion is not None
    if call is not None:
        call.finished(final, attempt)
    yield Partial(dict(final.fields), completion.text, attempt, final)


def _pieces(model: Any, messages: list[Message], request: Mapping[str, Any]) -> Any:
    """The LM's async stream: its `astream`, else its sync `stream` read in worker threads,
    else None (no stream: the caller makes one plain call)."""
    native = getattr(model, "astream", None)
    if native is not None:
        return native(messages, **request)
    sync = getattr(model, "stream", None)
    if sync is None:
        return None
    return _threaded(sync(messages, **request))


async def _threaded(pieces: Any) -> AsyncGenerator[Any, None]:
    """A sync iterator read one item per worker-thread hop (a user LM with only `stream`)."""
    import asyncio

    end = object()
    iterator = iter(pieces)
    try:
        while (piece := await asyncio.to_thread(next, iterator, end)) is not end:
            yield piece
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


class WholeStream(Generic[T]):
    """Streaming for a kind whose answer is not one completion (ReAct, multi-chain comparison,
    an ensemble): the whole call runs, and the stream yields one item, the final one.

    A mixin: the class provides `forward` and `aforward` (the `Step` protocol)."""

    __slots__ = ()

    def stream_forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> PartialStream[T]:
        return _whole(self, inputs, lm, params)

    def astream_forward(
        self, inputs: Mapping[str, Any], lm: LM | None = None, **params: Any
    ) -> AsyncPartialStream[T]:
        return _awhole(self, inputs, lm, params)

    def stream(self, **inputs: Any) -> PartialStream[T]:
        return self.stream_forward(inputs)

    def astream(self, **inputs: Any) -> AsyncPartialStream[T]:
        return self.astream_forward(inputs)


def _whole(step: Any, inputs: Mapping[str, Any], lm: Any, params: Any) -> PartialStream[Any]:
    prediction = step.forward(inputs, lm, **params)
    yield Partial(dict(prediction.fields), _text_of(prediction), 0, prediction)


async def _awhole(
    step: Any, inputs: Mapping[str, Any], lm: Any, params: Any
) -> AsyncPartialStream[Any]:
    prediction = await step.aforward(inputs, lm, **params)
    yield Partial(dict(prediction.fields), _text_of(prediction), 0, prediction)


def _text_of(prediction: Answer[Any]) -> str:
    completion: Completion | None = getattr(prediction, "completion", None)
    return completion.text if completion is not None else ""
