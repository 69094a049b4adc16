"""Development-time context: which LM and which candidate states calls use, and who records them.

The engine runs a user's program many times with different candidate states, from many threads
at once. Each run sets its own states and tracer in a ContextVar, so concurrent runs never see
each other's. `configure()` sets process-wide defaults for interactive use.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptcast_runtime import LM, Completion, Message

from .ir import FunctionState


@dataclass(frozen=True)
class TraceRecord:
    """One decorated call: what went in, what came out, and the exact exchange with the LM."""

    qualname: str
    inputs: Mapping[str, Any]
    fields: dict[str, Any]
    value: Any
    messages: list[Message]
    completion: Completion
    function: Any = field(default=None, compare=False, repr=False)
    """The LMFunction that made the call, so an optimizer can map traces back to functions."""


@dataclass
class Tracer:
    """Collects the TraceRecords of one program run (thread-safe: a program may use threads)."""

    records: list[TraceRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: TraceRecord) -> None:
        with self._lock:
            self.records.append(record)

    def by_function(self) -> dict[str, list[TraceRecord]]:
        grouped: dict[str, list[TraceRecord]] = {}
        for record in self.records:
            grouped.setdefault(record.qualname, []).append(record)
        return grouped


@dataclass
class Settings:
    """Process-wide development defaults, set by `promptcast.configure`.

    `lm_params` are the project's sampling parameters (`[tool.promptcast] lm_params`), under
    every decorator's; None until first needed, then read from ./pyproject.toml.
    """

    lm: LM | None = None
    lock_path: Path | None = None
    lm_params: dict[str, Any] | None = None


SETTINGS = Settings()
_states: ContextVar[Mapping[str, FunctionState] | None] = ContextVar(
    "promptcast_states", default=None
)
_lm: ContextVar[LM | None] = ContextVar("promptcast_lm", default=None)
_tracer: ContextVar[Tracer | None] = ContextVar("promptcast_tracer", default=None)
_project_lm_params: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "promptcast_project_lm_params", default=None
)
_run_lm_params: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "promptcast_run_lm_params", default=None
)


@contextlib.contextmanager
def candidate(
    states: Mapping[str, FunctionState] | None = None,
    lm: LM | None = None,
    tracer: Tracer | None = None,
) -> Iterator[None]:
    """Run the enclosed calls with these states (by qualname), this LM and this tracer."""
    resets: list[Callable[[], None]] = []
    if states is not None:
        resets.append(functools.partial(_states.reset, _states.set(states)))
    if lm is not None:
        resets.append(functools.partial(_lm.reset, _lm.set(lm)))
    if tracer is not None:
        resets.append(functools.partial(_tracer.reset, _tracer.set(tracer)))
    try:
        yield
    finally:
        for reset in reversed(resets):
            reset()


@contextlib.contextmanager
def run_lm_params(params: Mapping[str, Any] | None) -> Iterator[None]:
    """Calls inside send these sampling parameters over their state's (a run's --lm-param)."""
    token = _run_lm_params.set(dict(params) if params else None)
    try:
        yield
    finally:
        _run_lm_params.reset(token)


def active_run_lm_params() -> dict[str, Any] | None:
    params = _run_lm_params.get()
    return dict(params) if params else None


@contextlib.contextmanager
def project_lm_params_of(params: Mapping[str, Any]) -> Iterator[None]:
    """Calls inside use these as the project's sampling parameters (a command's
    `[tool.promptcast] lm_params`), without changing the process-wide `configure` setting."""
    token = _project_lm_params.set(dict(params))
    try:
        yield
    finally:
        _project_lm_params.reset(token)


def project_lm_params() -> dict[str, Any]:
    """The project's sampling parameters: a command's (`project_lm_params_of`), else
    `configure(lm_params=...)`, else `[tool.promptcast] lm_params` of ./pyproject.toml (read
    once), else none."""
    scoped = _project_lm_params.get()
    if scoped is not None:
        return dict(scoped)
    if SETTINGS.lm_params is None:
        from .config import load_config
        from .config import project_lm_params as from_config

        SETTINGS.lm_params = from_config(load_config())
    return dict(SETTINGS.lm_params)


def candidate_state(qualname: str) -> FunctionState | None:
    states = _states.get()
    return states.get(qualname) if states is not None else None


def active_lm() -> LM | None:
    return _lm.get() or SETTINGS.lm


def active_tracer() -> Tracer | None:
    return _tracer.get()
