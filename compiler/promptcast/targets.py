"""`MODULE:FUNCTION` on the command line -> the decorated object it names."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from promptcast_runtime.kinds import kind_list

from .api import LMFunction, Program
from .errors import PromptcastError


class TargetError(PromptcastError):
    pass


def load_target(
    spec: str, directory: Path | None = None
) -> LMFunction[..., Any] | Program[..., Any]:
    """Import MODULE (from the current directory first) and return its decorated FUNCTION."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"{spec!r}: expected MODULE:FUNCTION, e.g. app.triage:question_type")
    root = str((directory or Path(".")).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"{spec}: cannot import {module_name!r} from {root}: {exc}") from None
    except SyntaxError as exc:  # also a source file that is not UTF-8
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else module_name
        raise TargetError(f"{where}: cannot import {module_name!r}: {exc.msg}") from None
    target = getattr(module, attr, None)
    if target is None:
        raise TargetError(f"{spec}: module {module_name!r} has no attribute {attr!r}")
    if not isinstance(target, (LMFunction, Program)):
        raise TargetError(
            f"{spec}: {attr!r} is not decorated with {kind_list(',', '@pc.')} or @pc.program"
        )
    return target
