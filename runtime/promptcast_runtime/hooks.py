"""Callbacks on every LM call a step makes: what a service owner needs to see production.

A hook is any object with some of these methods (subclass `Hook` for no-op defaults):

    call_started(call)     before the request is sent (messages and parameters are final)
    call_finished(call)    the answer parsed: `call.value`, `call.fields`, `call.completion`
    call_failed(call)      it raised: `call.error` (a ParseError carries the raw text)
    scope_started(scope)   a unit of work around calls opened: a program, a ReAct agent run,
    scope_finished(scope)  one of its turns, a tool call (`scope.kind`, `scope.name`)

Hooks are registered for the whole process (`add_hook`, `remove_hook`: a tracing exporter set
up once at start) or for one context (`with hooked(hook): ...`, context-local like `using`:
asyncio tasks inherit it, a thread pool needs `propagate`). Both kinds see a call.

Why this shape: DSPy's callbacks and users' requests (Langfuse, vendor-neutral tracing) ask for
exactly these moments; an OpenTelemetry exporter (`promptcast_runtime.otel`) is one hook among
others, and this module imports nothing beyond the standard library.

No cost when nothing is registered: the call path reads one module attribute, `ACTIVE` (the
number of global hooks plus open `hooked` blocks in the process), and makes no function call
unless it is non-zero (`bench/call_count.py` counts the calls). A hook that raises is reported
as a `HookWarning` (the warnings filter shows each distinct one once) and otherwise ignored:
tracing must never break the traced program.
"""

from __future__ import annotations

import _thread
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

ACTIVE = 0
"""Global hooks + open `hooked` blocks, process-wide. Zero: the call path skips hooks unseen."""

_lock = _thread.allocate_lock()
_global: tuple[Any, ...] = ()
_local: ContextVar[tuple[Any, ...]] = ContextVar("promptcast_runtime_hooks", default=())
_current_call: ContextVar[Call | None] = ContextVar("promptcast_runtime_call", default=None)
_current_scope: ContextVar[Scope | None] = ContextVar("promptcast_runtime_scope", default=None)


class HookWarning(RuntimeWarning):
    """A hook raised; the call it observed went on as if the hook were not there."""


class Hook:
    """No-op base class: override the moments you need."""

    def call_started(self, call: Call) -> None:
        """Before the request is sent."""

    def call_finished(self, call: Call) -> None:
        """After the answer was parsed into `call.value`."""

    def call_failed(self, call: Call) -> None:
        """After the call raised `call.error` (transport, parse or cut-off answer)."""

    def scope_started(self, scope: Scope) -> None:
        """A program, agent run, turn or tool call began."""

    def scope_finished(self, scope: Scope) -> None:
        """It ended (`scope.error` is set when it raised)."""


def add_hook(hook: Any) -> None:
    """Register `hook` for every call in this process (until `remove_hook`)."""
    global _global, ACTIVE
    with _lock:
        if any(h is hook for h in _global):
            return
        _global = (*_global, hook)
        ACTIVE += 1


def remove_hook(hook: Any) -> None:
    """Unregister a hook added with `add_hook` (nothing happens if it was not)."""
    global _global, ACTIVE
    with _lock:
        kept = tuple(h for h in _global if h is not hook)
        if len(kept) != len(_global):
            _global = kept
            ACTIVE -= 1


@contextmanager
def hooked(*hooks: Any) -> Iterator[None]:
    """Add `hooks` for the calls made in this context (thread- and task-local, nestable)."""
    global ACTIVE
    token = _local.set((*_local.get(), *hooks))
    with _lock:
        ACTIVE += 1
    try:
        yield
    finally:
        with _lock:
            ACTIVE -= 1
        _local.reset(token)


def active_hooks() -> tuple[Any, ...]:
    """The hooks a call made here would notify: global ones first, then this context's."""
    return (*_global, *_local.get())


def _notify(hooks: Sequence[Any], method: str, event: Any) -> None:
    for hook in hooks:
        fn = getattr(hook, method, None)
        if fn is None:
            continue
        try:
            fn(event)
        except Exception as exc:  # noqa: BLE001 -- a tracing fault must not break the call
            import warnings

            warnings.warn(
                f"promptcast hook {hook!r}.{method} raised {type(exc).__name__}: {exc}",
                HookWarning,
                stacklevel=2,
            )


def model_name(lm: Any) -> str:
    """What an LM calls its model (`OpenAIClient.model`), else its class name."""
    name = getattr(lm, "model", None)
    return name if isinstance(name, str) and name else type(lm).__name__


class Call:
    """One LM call of a step, as hooks see it; filled in as it goes.

    `function` is the step's `module:function` (empty for a `Predictor` built by hand), `role`
    which call of the step it is ("predict"; a ReAct step's "turn" and "answer"; a
    multi-chain comparison's "attempt" and "compare"). `retries` counts the attempts beyond the
    first: transport retries of the built-in client plus opt-in parse retries.
    """

    __slots__ = (
        "_token",
        "completion",
        "error",
        "fields",
        "function",
        "hooks",
        "latency_s",
        "lm",
        "messages",
        "model",
        "params",
        "parent",
        "parse_retries",
        "role",
        "started",
        "store",
        "transport_retries",
        "value",
    )

    def __init__(
        self,
        hooks: tuple[Any, ...],
        function: str,
        role: str,
        lm: Any,
        messages: Sequence[Mapping[str, str]],
        params: Mapping[str, Any],
    ) -> None:
        self.hooks = hooks
        self.function = function
        self.role = role
        self.lm = lm
        self.model = model_name(lm)
        self.messages = list(messages)
        self.params = dict(params)
        self.parent = _current_scope.get()
        self.completion: Any = None
        self.value: Any = None
        self.fields: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.latency_s = 0.0
        self.parse_retries = 0
        self.transport_retries = 0
        self.store: dict[Any, Any] = {}  # per-hook state (an exporter's open span)
        self.started = time.perf_counter()
        self._token = _current_call.set(self)

    @property
    def retries(self) -> int:
        return self.parse_retries + self.transport_retries

    @property
    def usage(self) -> Mapping[str, int]:
        """The provider's token counts of the last completion (empty when not reported)."""
        usage = getattr(self.completion, "usage", None)
        return usage if isinstance(usage, Mapping) else {}

    @property
    def text(self) -> str | None:
        """The raw completion text (for a parse failure: the text that did not parse)."""
        if self.completion is not None:
            return str(self.completion.text)
        raw = getattr(self.error, "raw", None)
        return raw if isinstance(raw, str) else None

    def __repr__(self) -> str:
        return f"Call({self.function or '?'}:{self.role}, model={self.model!r})"

    def finished(self, prediction: Any, attempt: int) -> None:
        self._end(attempt)
        self.completion = prediction.completion
        self.value = prediction.value
        self.fields = dict(prediction.fields)
        _notify(self.hooks, "call_finished", self)

    def failed(self, error: BaseException, attempt: int, completion: Any = None) -> None:
        self._end(attempt)
        self.completion = completion
        self.error = error
        _notify(self.hooks, "call_failed", self)

    def _end(self, attempt: int) -> None:
        self.latency_s = time.perf_counter() - self.started
        self.parse_retries = attempt
        # Ended in another context (an awaited call moved): nothing to undo there.
        with suppress(ValueError):
            _current_call.reset(self._token)


def start_call(
    step: Any, lm: Any, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]
) -> Call | None:
    """The record of a call about to be sent, announced to the hooks; None when none are on.

    Only called when `ACTIVE` is non-zero: the disabled path never gets here.
    """
    hooks = active_hooks()
    if not hooks:
        return None
    origin = getattr(step, "origin", None)
    call = Call(
        hooks,
        getattr(origin, "name", "") or "",
        getattr(step, "role", "predict"),
        lm,
        messages,
        params,
    )
    _notify(hooks, "call_started", call)
    return call


def note_retry(reason: str) -> None:
    """The built-in client is about to retry a failed attempt (429, 5xx, a dropped connection):
    counted on the call in progress, if hooks watch it."""
    call = _current_call.get()
    if call is not None:
        call.transport_retries += 1


class Scope:
    """A unit of work around LM calls: `kind` is "program", "agent", "turn" or "tool".

    `attributes` hold what is known about it (a turn's `index`; a tool's `arguments`, and after
    it ran its `observation`); `parent` is the enclosing scope, so a tracer can nest them.
    """

    __slots__ = (
        "attributes",
        "error",
        "hooks",
        "kind",
        "latency_s",
        "name",
        "parent",
        "started",
        "store",
    )

    def __init__(
        self, hooks: tuple[Any, ...], kind: str, name: str, attributes: dict[str, Any]
    ) -> None:
        self.hooks = hooks
        self.kind = kind
        self.name = name
        self.attributes = attributes
        self.parent = _current_scope.get()
        self.error: BaseException | None = None
        self.latency_s = 0.0
        self.store: dict[Any, Any] = {}
        self.started = time.perf_counter()

    def __repr__(self) -> str:
        return f"Scope({self.kind} {self.name!r})"


@contextmanager
def scope(kind: str, name: str, **attributes: Any) -> Iterator[Scope | None]:
    """Announce a program / agent / turn / tool scope around the code in the block.

    Yields the `Scope` (to add attributes as they become known), or None when no hook is on.
    """
    hooks = active_hooks() if ACTIVE else ()
    if not hooks:
        yield None
        return
    record = Scope(hooks, kind, name, attributes)
    token = _current_scope.set(record)
    _notify(hooks, "scope_started", record)
    try:
        yield record
    except BaseException as exc:
        record.error = exc
        raise
    finally:
        record.latency_s = time.perf_counter() - record.started
        _current_scope.reset(token)
        _notify(hooks, "scope_finished", record)


def program(name: str) -> Callable[[_F], _F]:
    """Decorator: announce each call of a plain function composing steps as a "program" scope,
    so a tracer nests its steps' calls under it (`@program("app.pipeline:answer")`).

    Development programs (`@pc.program`) are announced by themselves; in a built module, where
    the decorator is gone, put this on the program function to keep the nesting.
    """

    def decorate(fn: _F) -> _F:
        import functools
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def arun(*args: Any, **kwargs: Any) -> Any:
                with scope("program", name):
                    return await fn(*args, **kwargs)

            return arun  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if not ACTIVE:
                return fn(*args, **kwargs)
            with scope("program", name):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


class StepOrigin:
    """What a built step knows about itself, shared by the calls of one function: its name,
    the model its prompts were optimized for, and whether the mismatch warning was given.

    `check(lm)` warns once per function when `lm` names another model (an `OptimizedForWarning`;
    opt out with `warnings.filterwarnings("ignore", category=OptimizedForWarning)` or
    `PROMPTCAST_WARN_MODEL=0`). The predictor calls it only for an LM object it has not seen
    last, so a steady `using(lm)` pays it once.
    """

    __slots__ = ("checked", "model", "name", "optimized_for", "warned")

    def __init__(
        self, name: str, optimized_for: str | None = None, model: str | None = None
    ) -> None:
        self.name = name
        self.optimized_for = optimized_for
        self.model = model
        """A trained model the step's requests name (spec key `model`); None: the LM's own."""
        self.warned = False
        self.checked: Any = None

    def check(self, lm: Any) -> None:
        self.checked = lm
        target = self.optimized_for
        if self.warned or not target or self.model:
            return  # a step that names its trained model calls it whatever the LM's default
        name = getattr(lm, "model", None)
        if not isinstance(name, str) or not name or same_model(target, name):
            return
        import os

        if os.environ.get("PROMPTCAST_WARN_MODEL", "1").strip().lower() in ("0", "false", "no"):
            return
        import warnings

        self.warned = True
        warnings.warn(
            f"{self.name}: its prompts were optimized for {target!r} but it is called with "
            f"{name!r}; scores measured by `promptcast optimize` may not hold (re-optimize for "
            "this model, or silence this with PROMPTCAST_WARN_MODEL=0)",
            OptimizedForWarning,
            stacklevel=4,
        )


class OptimizedForWarning(UserWarning):
    """A built step is called with another model than the one its prompts were optimized for."""


def same_model(target: str, name: str) -> bool:
    """Whether the lock's `target` (`openai/qwen0.5b`, litellm spelling) and the name an LM
    reports (`qwen0.5b`) are the same model: equal, or equal once a provider prefix is dropped."""
    if target == name:
        return True
    return target.endswith("/" + name) or name.endswith("/" + target)
