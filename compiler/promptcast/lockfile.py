"""`promptcast.lock.json`: the optimized state of every LM function, as reviewable JSON.

`optimize` writes it, `build` reads it (with the source and nothing else). Keys are sorted and
the JSON is indented, so a diff of two locks reads like a diff of prompts. An entry remembers
the signature hash it was optimized for; when the source changes that function's fields, types
or docstring, `build` refuses the stale entry by name instead of shipping a mismatched prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PromptcastError
from .fsutil import atomic_write_text
from .ir import FunctionState, Signature

LOCK_NAME = "promptcast.lock.json"
LOCK_FORMAT = 2
"""2: every state records the sampling parameters it was scored with (`lm_params`)."""
READABLE_FORMATS = (1, 2)

FORMAT_1_LM_PARAMS: dict[str, Any] = {"max_tokens": 256, "temperature": 0.0}
"""What every format-1 state was scored with: the engine sent these to every call, and the
lock recorded `{}`. Reading such a lock restores them, so a rebuild ships what was scored."""

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,199}")
"""What a model name in a lock may look like (it is printed into generated headers)."""


class LockError(PromptcastError):
    """The lock file is unreadable, holds values a build cannot use, or does not match the
    source."""


@dataclass(frozen=True)
class LockEntry:
    """One function's optimized state and how it was obtained."""

    signature_hash: str
    state: FunctionState
    model: str = ""
    optimization: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "signature_hash": self.signature_hash,
            "model": self.model,
            "state": self.state.to_json(),
            "optimization": self.optimization,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LockEntry:
        return cls(
            signature_hash=str(data["signature_hash"]),
            state=FunctionState.from_json(data["state"]),
            model=str(data.get("model", "")),
            optimization=dict(data.get("optimization", {})),
        )


@dataclass(frozen=True)
class Lock:
    """All entries, keyed by `module:function` qualified name."""

    entries: dict[str, LockEntry] = field(default_factory=dict)
    root: Path | None = field(default=None, compare=False)
    """The folder the lock was read from: where its demo images' files are
    (`promptcast.media/`, see `media.py`); None for a lock made in memory."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LOCK_FORMAT,
            "compiler": __version__,
            "functions": {name: self.entries[name].to_json() for name in sorted(self.entries)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def content_hash(self) -> str:
        """Hash of the entries only (not the compiler version)."""
        return self.entries_hash(self.entries)

    def entries_hash(self, qualnames: Any) -> str:
        """Hash of the entries of `qualnames` (absent ones count as absent): what a generated
        module's header records, so re-optimizing one function makes only its module stale."""
        functions = {
            name: self.entries[name].to_json() if name in self.entries else None
            for name in sorted(set(qualnames))
        }
        text = json.dumps(functions, sort_keys=True, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_entry(self, qualname: str, entry: LockEntry) -> Lock:
        return Lock({**self.entries, qualname: entry}, self.root)

    def state_for(
        self, signature: Signature, lm_params: dict[str, Any] | None = None
    ) -> FunctionState:
        """The locked state of a function, or its zero-shot state when it has no entry (with
        `lm_params`, the project's sampling parameters, over the kind's and decorator's).

        Raises LockError when the entry was made for a different version of the function.
        """
        entry = self.entries.get(signature.qualname)
        if entry is None:
            return FunctionState.zero_shot(signature, lm_params)
        if entry.signature_hash != signature.hash():
            raise LockError(
                f"{signature.location}: `{signature.qualname}` changed since it was optimized "
                f"(lock has signature {entry.signature_hash}, source has {signature.hash()}); "
                "run `promptcast optimize` again, or delete its entry from the lock to build it zero-shot"
            )
        return entry.state

    def model_for(self, qualname: str) -> str:
        entry = self.entries.get(qualname)
        return entry.model if entry else ""


def load_lock(path: Path, *, required: bool = False) -> Lock:
    """Read and validate a lock file; a missing file is an empty lock (everything zero-shot),
    unless `required` (the user named the file: a missing one is a mistake, not zero-shot)."""
    if not path.exists():
        if required:
            raise LockError(f"{path}: no such lock file")
        return Lock()
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
        if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
            found = data.get("format") if isinstance(data, dict) else None
            raise LockError(
                f"{path}: unsupported lock format {found!r} (this promptcast reads "
                f"{', '.join(map(str, READABLE_FORMATS))}); upgrade promptcast"
            )
        entries = {}
        for name, value in data["functions"].items():
            entry = LockEntry.from_json(value)
            if data["format"] == 1 and not entry.state.lm_params:
                entry = _with_lm_params(entry, FORMAT_1_LM_PARAMS)
            validate_entry(name, entry, path)
            entries[name] = entry
        return Lock(entries, path.resolve().parent)
    except (
        json.JSONDecodeError,
        KeyError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
        ValueError,
    ) as exc:
        if isinstance(exc, LockError):
            raise
        raise LockError(f"{path}: not a valid promptcast lock file: {exc}") from None


def _no_constant(name: str) -> Any:
    raise LockError(f"{name} is not a valid JSON number; a lock holds finite numbers only")


def _with_lm_params(entry: LockEntry, params: dict[str, Any]) -> LockEntry:
    from dataclasses import replace

    return replace(entry, state=replace(entry.state, lm_params=dict(params)))


def validate_entry(name: str, entry: LockEntry, path: Path | str = LOCK_NAME) -> None:
    """Refuse values a build would paste into code or that would fail every call: a build
    reads the lock as untrusted input (it may come from a branch, a PR, or a tool)."""
    from promptcast_runtime.kinds import text_problem

    where = f"{path}: function {name!r}"
    problem = text_problem(name)
    if problem:
        raise LockError(f"{where}: {problem}")
    if len(entry.state.members) == 1:
        raise LockError(f"{where}: an ensemble needs two or more members")
    if entry.state.members and entry.state.nearest_k:
        raise LockError(f"{where}: an ensemble's members cannot also draw nearest demos")
    for index, state in enumerate((entry.state, *entry.state.members)):
        at = where if index == 0 else f"{where}, ensemble member {index}"
        if index and (state.members or state.nearest_k):
            raise LockError(f"{at}: an ensemble member is a plain state (no ensemble, no knn)")
        _validate_state(state, at)
    if entry.model and not _MODEL_NAME.fullmatch(entry.model):
        raise LockError(
            f"{where}: model {entry.model!r} is not a model name (letters, digits and"
            " . _ : / @ + = -, at most 200)"
        )
    for key in ("dev_score_before", "dev_score_after"):
        score = entry.optimization.get(key)
        if score is not None and not (
            isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        ):
            raise LockError(f"{where}: {key} must be a finite number or null, not {score!r}")


def _validate_state(state: FunctionState, where: str) -> None:
    """One state's values (the entry's own, or an ensemble member's)."""
    from promptcast_runtime.adapters import ADAPTERS
    from promptcast_runtime.kinds import check_lm_params, json_problem, text_problem
    from promptcast_runtime.tool_calls import PROTOCOLS

    from .json_schema import RESPONSE_FORMATS

    problem = text_problem(state.instructions)
    if problem:
        raise LockError(f"{where}: {problem}")
    if state.adapter not in ADAPTERS:
        raise LockError(
            f"{where}: unknown adapter {state.adapter!r}; known: {', '.join(ADAPTERS)}"
        )
    params = check_lm_params(state.lm_params)
    if params:
        raise LockError(f"{where}: lm_params must be {params}")
    if state.protocol not in ("", *PROTOCOLS):
        raise LockError(
            f"{where}: unknown protocol {state.protocol!r}; known: {', '.join(PROTOCOLS)}"
        )
    if state.response_format not in ("", *RESPONSE_FORMATS):
        raise LockError(
            f"{where}: unknown response_format {state.response_format!r}; known: "
            + ", ".join(RESPONSE_FORMATS)
        )
    if state.model and not _MODEL_NAME.fullmatch(state.model):
        raise LockError(
            f"{where}: trained model {state.model!r} is not a model name (letters, digits and"
            " . _ : / @ + = -, at most 200)"
        )
    k = state.nearest_k
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_NEAREST_K:
        raise LockError(f"{where}: nearest k must be a whole number from 1 to {MAX_NEAREST_K}")
    pools = (("demo", state.demos), ("pool demo", state.demo_pool))
    for what, demos in pools:
        for index, demo in enumerate(demos):
            for field_name, value in demo.items():
                problem = text_problem(field_name) or json_problem(value)
                if not problem:
                    from .media import images_in, reference_problem

                    problem = next(filter(None, map(reference_problem, images_in(value))), None)
                if problem:
                    raise LockError(f"{where}: {what} {index + 1}, field {field_name!r}: {problem}")
    if state.nearest_k and not state.demo_pool:
        raise LockError(f"{where}: nearest k is set but its demo pool is empty")


MAX_NEAREST_K = 64
"""The most demos a knn step may show per call (a lock asking for more is refused)."""


_cache: dict[Path, tuple[int, Lock]] = {}
_cache_lock = threading.Lock()


def load_lock_cached(path: Path) -> Lock:
    """`load_lock`, re-read only when the file's mtime changes (development calls are hot)."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return Lock()
    key = path.resolve()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    lock = load_lock(path)
    with _cache_lock:
        _cache[key] = (mtime, lock)
    return lock


def save_lock(lock: Lock, path: Path) -> None:
    """Write the lock; inline demo images go to `promptcast.media/` beside it first (`media.py`)."""
    from dataclasses import replace

    from .media import copy_references, externalize

    root = path.resolve().parent
    entries = {
        name: replace(e, state=externalize(e.state, root)) for name, e in lock.entries.items()
    }
    if lock.root is not None and lock.root != root:  # saved elsewhere: its images go along
        for entry in entries.values():
            copy_references(entry.state, lock.root, root)
    atomic_write_text(path, Lock(entries, root).dumps())
