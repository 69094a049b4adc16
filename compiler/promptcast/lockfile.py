"""`promptcast.lock.json`: the optimized state of every LM function, as reviewable JSON.

`optimize` writes it, `build` reads it (with the source and nothing else). Keys are sorted and
the JSON is indented, so a diff of two locks reads like a diff of prompts. An entry remembers
the signature hash it was optimized for; when the source changes that function's fields, types
or docstring, `build` refuses the stale entry by name instead of shipping a mismatched prompt.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .fsutil import atomic_write_text
from .ir import FunctionState, Signature

LOCK_NAME = "promptcast.lock.json"
LOCK_FORMAT = 1


class LockError(Exception):
    """The lock file is unreadable, or does not match the source."""


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

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LOCK_FORMAT,
            "compiler": __version__,
            "functions": {name: self.entries[name].to_json() for name in sorted(self.entries)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def content_hash(self) -> str:
        """Hash of the entries only (not the compiler version), recorded in generated headers."""
        functions = json.dumps(self.to_json()["functions"], sort_keys=True, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(functions.encode()).hexdigest()[:16]

    def with_entry(self, qualname: str, entry: LockEntry) -> Lock:
        return Lock({**self.entries, qualname: entry})

    def state_for(self, signature: Signature) -> FunctionState:
        """The locked state of a function, or its zero-shot state when it has no entry.

        Raises LockError when the entry was made for a different version of the function.
        """
        entry = self.entries.get(signature.qualname)
        if entry is None:
            return FunctionState.zero_shot(signature)
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


def load_lock(path: Path) -> Lock:
    """Read a lock file; a missing file is an empty lock (everything zero-shot)."""
    if not path.exists():
        return Lock()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != LOCK_FORMAT:
            raise LockError(f"{path}: unsupported lock format {data.get('format')!r}")
        return Lock({k: LockEntry.from_json(v) for k, v in data["functions"].items()})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: not a valid promptcast lock file: {exc}") from None


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
    atomic_write_text(path, lock.dumps())
