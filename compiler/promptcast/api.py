"""The decorators users write (`@pc.predict`, `@pc.chain_of_thought`, ..., `@pc.program`).

There is one decorator per entry of the runtime's registry of module kinds
(`promptcast_runtime.kinds.KINDS`); this module defines none by hand. A decorated function stays
callable during development: the call goes through the step `promptcast_runtime.build_step`
makes from the same spec the generated module holds, with the function's current state (the
candidate an optimizer is trying, else the lock's entry, else zero-shot) and the configured LM.
Decorating is cheap: the source is parsed (libcst) on the first call, not at import.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar, overload

from promptcast_runtime import (
    LM,
    AsyncPartialStream,
    PartialStream,
    Prediction,
    Step,
    current_lm,
)
from promptcast_runtime import hooks as runtime_hooks
from promptcast_runtime.kinds import KINDS, Kind
from promptcast_runtime.streaming import Answer

from . import context, ir
from .context import TraceRecord
from .errors import PromptcastError

P = ParamSpec("P")
R = TypeVar("R")


class DecoratorError(PromptcastError, TypeError):
    """A decorator was given options its kind does not take (raised at import, naming the
    function's file and line)."""


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}: " if code is not None else ""


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__name__}"


class LMFunction(Generic[P, R]):
    """A function whose body is an LM call described by its signature and docstring."""

    def __init__(self, fn: Callable[P, R], kind: ir.ModuleKind, options: dict[str, Any]) -> None:
        spec = KINDS[kind]
        known = [o.name for o in spec.options]
        unknown = set(options) - set(known)
        where = _where(fn)
        if unknown:
            raise DecoratorError(
                f"{where}@{kind} got unknown option(s) {sorted(unknown)}; known: {known}"
            )
        for option in spec.options:
            if option.name not in options:
                if option.required:
                    raise DecoratorError(f"{where}@{kind} needs `{option.name}=`: {option.doc}")
                continue
            problem = option.check(options[option.name])
            if problem:
                raise DecoratorError(
                    f"{where}@{kind}: {option.error(options[option.name], problem)}"
                )
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.kind = kind
        self.options = options
        self.qualname = _qualname(fn)
        self._lock = threading.Lock()
        self._signature: ir.Signature | None = None
        self._annotations: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<promptcast {self.kind} {self.qualname}>"

    @property
    def signature(self) -> ir.Signature:
        """The IR of this function, from its source (the same frontend `build` uses)."""
        with self._lock:
            if self._signature is None:
                from .frontend.package import signature_of_function

                self._signature = signature_of_function(self.fn)
            return self._signature

    @property
    def annotations(self) -> dict[str, Any]:
        with self._lock:
            if self._annotations is None:
                self._annotations = typing.get_type_hints(self.fn)
            return self._annotations

    def state(self) -> ir.FunctionState:
        """The state a call uses now: candidate (engine) > lock file > zero-shot."""
        candidate = context.candidate_state(self.qualname)
        if candidate is not None:
            return candidate
        return _dev_lock_state(self.signature)

    def predictor(self, state: ir.FunctionState | None = None) -> Step[R]:
        """The runtime step this function runs through in `state` (default: its current one),
        built by the runtime factory from the spec the generated module would hold."""
        from .steps import dev_step

        tools = tuple(self.options.get("tools") or ())
        media = str(_dev_lock_path())  # where the lock's demo images are (Image inputs only)
        return dev_step(self.signature, state or self.state(), self.annotations, tools, media)

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Positional and keyword arguments -> the input mapping the prompt renders."""
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def forward(self, *args: P.args, **kwargs: P.kwargs) -> Prediction[R]:
        """Call the LM and return the full prediction record (fields, messages, completion)."""
        inputs = self.bind(*args, **kwargs)
        lm: LM = context.active_lm() or current_lm()
        prediction = self.predictor().forward(inputs, lm)
        self._trace(prediction)
        return prediction

    async def aforward(self, *args: P.args, **kwargs: P.kwargs) -> Prediction[R]:
        """`forward` awaited: the same messages and parsing (the runtime's `aforward`)."""
        inputs = self.bind(*args, **kwargs)
        lm: LM = context.active_lm() or current_lm()
        prediction = await self.predictor().aforward(inputs, lm)
        self._trace(prediction)
        return prediction

    async def acall(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """The awaitable call; the module-level `<name>_async` twin runs this."""
        return (await self.aforward(*args, **kwargs)).value

    def stream(self, *args: P.args, **kwargs: P.kwargs) -> PartialStream[R]:
        """Partial results as the completion arrives, the answer last (the runtime's
        `stream_forward`, as the generated `<name>_stream` runs it); traced once done."""
        inputs = self.bind(*args, **kwargs)
        lm: LM = context.active_lm() or current_lm()
        return self._traced(self.predictor().stream_forward(inputs, lm))

    def astream(self, *args: P.args, **kwargs: P.kwargs) -> AsyncPartialStream[R]:
        """`stream` as an async generator (the generated `<name>_astream`)."""
        inputs = self.bind(*args, **kwargs)
        lm: LM = context.active_lm() or current_lm()
        return self._atraced(self.predictor().astream_forward(inputs, lm))

    def _traced(self, parts: PartialStream[R]) -> PartialStream[R]:
        for part in parts:
            if part.prediction is not None:
                self._trace(part.prediction)
            yield part

    async def _atraced(self, parts: AsyncPartialStream[R]) -> AsyncPartialStream[R]:
        async for part in parts:
            if part.prediction is not None:
                self._trace(part.prediction)
            yield part

    def _trace(self, prediction: Answer[R]) -> None:
        tracer = context.active_tracer()
        if tracer is not None:
            tracer.add(
                TraceRecord(
                    self.qualname,
                    prediction.inputs,  # what the answering call rendered (+ a trajectory)
                    prediction.fields,
                    prediction.value,
                    prediction.messages,
                    prediction.completion,
                    function=self,
                )
            )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.forward(*args, **kwargs).value


class Program(Generic[P, R]):
    """Plain Python composing LM functions; the unit `optimize` runs, traces and scores."""

    def __init__(self, fn: Callable[P, R]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.qualname = _qualname(fn)

    def __repr__(self) -> str:
        return f"<promptcast program {self.qualname}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if not runtime_hooks.ACTIVE:
            return self.fn(*args, **kwargs)
        with runtime_hooks.scope("program", self.qualname):  # tracing nests its steps' calls
            return self.fn(*args, **kwargs)


def _decorator(kind: Kind) -> Any:
    @overload
    def decorate(fn: Callable[P, R], /) -> LMFunction[P, R]: ...
    @overload
    def decorate(**options: Any) -> Callable[[Callable[P, R]], LMFunction[P, R]]: ...

    def decorate(fn: Any = None, /, **options: Any) -> Any:
        if fn is None:
            return lambda f: decorate(f, **options)
        if not callable(fn):
            raise TypeError(f"@{kind.name} decorates a function, got {fn!r}")
        function = LMFunction(fn, kind.name, options)
        _define_async_twin(function)
        _define_stream_twins(function)
        return function

    decorate.__name__ = decorate.__qualname__ = kind.name
    options = "\n".join(f"    {o.name}: {o.doc}" for o in kind.options)
    decorate.__doc__ = (
        f"`{kind.example}`: make the decorated typed function an LM step that {kind.summary}."
        f"\n\nOptions:\n{options}"
    )
    return decorate


DECORATORS: dict[str, Any] = {name: _decorator(kind) for name, kind in KINDS.items()}
"""One decorator per registered module kind, by name (`pc.predict`, `pc.react`, ...)."""


def __getattr__(name: str) -> Any:
    """`promptcast.api.predict` and friends: the decorators of the registry's kinds."""
    try:
        return DECORATORS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _define_async_twin(function: LMFunction[..., Any]) -> None:
    """Give the defining module `<name>_async`, as the generated module has it.

    So `from app.steps import classify_async` works the same in development and after a
    build. Only for module-level functions, and never over a name the module already has
    (the build then reports the clash).
    """
    fn = function.fn
    namespace = getattr(fn, "__globals__", None)
    if namespace is None or fn.__qualname__ != fn.__name__:
        return
    name = f"{fn.__name__}_async"

    async def twin(*args: Any, **kwargs: Any) -> Any:
        return await function.acall(*args, **kwargs)

    twin.__name__ = twin.__qualname__ = name
    twin.__module__ = fn.__module__
    twin.__doc__ = (
        f"Awaitable `{fn.__name__}`: the same prompt and parsing, without a thread per call."
    )
    namespace.setdefault(name, twin)


def _define_stream_twins(function: LMFunction[..., Any]) -> None:
    """Give the defining module `<name>_stream` and `<name>_astream`, as the generated module
    has them (same rules as `_define_async_twin`)."""
    fn = function.fn
    namespace = getattr(fn, "__globals__", None)
    if namespace is None or fn.__qualname__ != fn.__name__:
        return

    def stream(*args: Any, **kwargs: Any) -> PartialStream[Any]:
        return function.stream(*args, **kwargs)

    def astream(*args: Any, **kwargs: Any) -> AsyncPartialStream[Any]:
        return function.astream(*args, **kwargs)

    kinds = ((stream, "_stream", "streamed"), (astream, "_astream", "streamed asynchronously"))
    for twin, suffix, how in kinds:
        twin.__name__ = twin.__qualname__ = fn.__name__ + suffix
        twin.__module__ = fn.__module__
        twin.__doc__ = f"`{fn.__name__}`, {how}: partial results as they arrive, the answer last."
        namespace.setdefault(twin.__name__, twin)


def program(fn: Callable[P, R]) -> Program[P, R]:
    """Mark a function composing LM steps as a program that is traced and optimized end to end."""
    return Program(fn)


def configure(
    *,
    lm: LM | None = None,
    lock: str | Path | None = None,
    lm_params: dict[str, Any] | None = None,
) -> None:
    """Set the development defaults: the LM calls use, the lock file states come from, and the
    project's sampling parameters (instead of `[tool.promptcast] lm_params`)."""
    if lm_params is not None:
        from promptcast_runtime.kinds import check_lm_params

        problem = check_lm_params(lm_params)
        if problem:
            raise TypeError(f"configure(lm_params=...) must be {problem}")
        context.SETTINGS.lm_params = dict(lm_params)
    if lm is not None:
        if not callable(getattr(lm, "complete", None)):
            raise TypeError(f"{lm!r} is not an LM: it needs a complete(messages, **params) method")
        context.SETTINGS.lm = lm
    if lock is not None:
        context.SETTINGS.lock_path = Path(lock)


def _dev_lock_path() -> Path:
    """The lock development calls read: PROMPTCAST_LOCK, else ./promptcast.lock.json."""
    from .lockfile import LOCK_NAME

    return context.SETTINGS.lock_path or Path(os.environ.get("PROMPTCAST_LOCK", LOCK_NAME))


def _dev_lock_state(signature: ir.Signature) -> ir.FunctionState:
    """The state from the configured lock file (PROMPTCAST_LOCK, else ./promptcast.lock.json),
    or zero-shot with the project's sampling parameters; a run's `--lm-param` on top."""
    from .lockfile import load_lock_cached

    path = _dev_lock_path()
    state = load_lock_cached(path).state_for(signature, context.project_lm_params())
    return state.with_lm_params(context.active_run_lm_params())
