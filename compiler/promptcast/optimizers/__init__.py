"""Optimizers: one module each, all behind `base.Optimizer`; `make_optimizer` builds one by name.

`--optimizer-arg max_labeled_demos=4` values arrive as text; they are converted to the type of
the optimizer's parameter (its dataclass field) so a typo or a bad value is a clear error.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from typing import Any

from .base import (
    CandidateRecord,
    OptimizationError,
    OptimizationResult,
    OptimizationTask,
    Optimizer,
    RunUsage,
    optimize,
)
from .registry import OPTIMIZERS

__all__ = [
    "OPTIMIZERS",
    "CandidateRecord",
    "OptimizationError",
    "OptimizationResult",
    "OptimizationTask",
    "Optimizer",
    "RunUsage",
    "make_optimizer",
    "optimize",
    "parse_optimizer_args",
]


def optimizer_class(name: str) -> type[Optimizer]:
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise OptimizationError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    module_name, _, attr = spec.partition(":")
    cls: type[Optimizer] = getattr(importlib.import_module(module_name), attr)
    return cls


def make_optimizer(name: str, args: Mapping[str, Any] | None = None) -> Optimizer:
    """The optimizer `name` with parameters `args` (text values are converted to field types)."""
    cls = optimizer_class(name)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls)) if f.init}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, raw in (args or {}).items():
        if key not in fields:
            raise OptimizationError(
                f"optimizer {name!r} has no parameter {key!r}; "
                f"parameters: {', '.join(f'{k}={fields[k].default!r}' for k in fields)}"
            )
        values[key] = _convert(name, key, raw, hints[key])
    return cls(**values)


def parse_optimizer_args(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`("k=4", "max_rounds=2")` -> `{"k": "4", "max_rounds": "2"}`."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptimizationError(f"--optimizer-arg {pair!r}: expected KEY=VALUE")
        args[key.strip()] = value.strip()
    return args


def _convert(optimizer: str, key: str, raw: Any, annotation: Any) -> Any:
    allowed = typing.get_args(annotation) or (annotation,)
    if not isinstance(raw, str):
        if type(raw) in allowed or (raw is None and type(None) in allowed):
            return raw
        if float in allowed and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        raise OptimizationError(f"{optimizer} {key}={raw!r}: expected {annotation}")
    text = raw.strip()
    if type(None) in allowed and text.lower() in ("none", "null", ""):
        return None
    for kind in (bool, int, float):
        if kind not in allowed:
            continue
        try:
            if kind is bool:
                if text.lower() in ("true", "1", "yes"):
                    return True
                if text.lower() in ("false", "0", "no"):
                    return False
                continue
            return kind(text)
        except ValueError:
            continue
    if str in allowed:
        return text
    raise OptimizationError(f"{optimizer} {key}={raw!r}: expected {annotation}")
