"""The on-disk LM call cache: every completed call is stored the moment it returns.

Why SQLite: one file, atomic commits, concurrent readers, and it survives a `kill -9` with every
committed row intact. We run it in WAL mode and commit each entry on its own, so an interrupted
`optimize` resumes without paying twice for any call that had finished (DESIGN principle 3).
`synchronous=NORMAL` in WAL mode is durable against a crash of the *process* (what `kill -9`
does); only an OS crash or power loss could roll back the last few commits.

What is stored is plain JSON text (completion text, usage, model, finish reason, native tool
calls as `[id, name, arguments]` lists, and the request that produced it for inspection) -- never pickles, and never credentials: `api_key` and similar secrets are not
part of the key and are refused if they reach it.

The key is the request *and where it goes*: the model as given (`openai/qwen0.5b`, which fixes
the name sent) and the endpoint (`api_base`, trailing `/` ignored), so the same prompt sent to
another server is another entry. Entries written before the endpoint joined the key (caches
from earlier versions) are simply never hit again; delete the file to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptcast_runtime.lm import Completion, ToolCall

CACHE_DIRNAME = ".promptcast"
CACHE_FILENAME = "cache.sqlite"
SCHEMA_VERSION = 1

SECRET_PARAMS = frozenset({"api_key", "api_token", "azure_ad_token", "aws_secret_access_key"})
"""Call parameters that carry credentials: never hashed, never written to disk."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    usage TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def default_cache_path(project_dir: str | Path = ".") -> Path:
    """Where a project's cache lives: `<project_dir>/.promptcast/cache.sqlite`."""
    return Path(project_dir) / CACHE_DIRNAME / CACHE_FILENAME


def strip_secrets(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `params` without credential entries (see `SECRET_PARAMS`)."""
    return {k: v for k, v in params.items() if k not in SECRET_PARAMS}


def canonical_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    api_base: str | None = None,
) -> str:
    """The request as canonical JSON (sorted keys, no spaces): the exact text that is hashed.

    `api_base` is the endpoint (None: the provider's default); a trailing `/` does not count.

    Raises ValueError if `params` still contain a secret (callers must strip them first; a key
    must never reach the disk) and TypeError if a parameter is not JSON-serialisable, because a
    key built from `repr()` would silently differ between runs.
    """
    leaked = SECRET_PARAMS.intersection(params)
    if leaked:
        raise ValueError(
            f"refusing to build a cache key containing credentials: {sorted(leaked)}; "
            "pass keys to the LM, not as call parameters"
        )
    payload = {
        "api_base": api_base.rstrip("/") if api_base else None,
        "model": model,
        "messages": [dict(m) for m in messages],
        "params": dict(params),
    }
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except TypeError as exc:
        raise TypeError(f"LM call parameters must be JSON-serialisable for caching: {exc}") from exc


def cache_key(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    *,
    api_base: str | None = None,
) -> str:
    """sha256 (hex) of the canonical request: endpoint, model, messages and params (incl.
    `rollout`)."""
    request = canonical_request(model, messages, params, api_base=api_base)
    return hashlib.sha256(request.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Counters of one `LMCache` object (this process only) plus the entries on disk."""

    hits: int
    misses: int
    writes: int
    entries: int


class LMCache:
    """A thread-safe SQLite cache of LM completions keyed by `cache_key`.

    One connection guarded by a lock: LM calls take far longer than a SQLite read, so a lock
    costs nothing measurable and avoids per-thread connections outliving their threads. Several
    processes may share one file (WAL + a busy timeout).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._writes = 0
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(completions)")}
            if "finish_reason" not in columns:  # a cache written before it was kept
                conn.execute(
                    "ALTER TABLE completions ADD COLUMN finish_reason TEXT NOT NULL DEFAULT ''"
                )
            if "tool_calls" not in columns:  # likewise: the native tool calls of a completion
                conn.execute(
                    "ALTER TABLE completions ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]'"
                )
            conn.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError as exc:
            raise sqlite3.DatabaseError(
                f"cannot open LM cache {self.path}: {exc} (delete the file to start afresh)"
            ) from exc
        self._conn: sqlite3.Connection | None = conn

    @classmethod
    def for_project(cls, project_dir: str | Path = ".") -> LMCache:
        """The cache at `default_cache_path(project_dir)`."""
        return cls(default_cache_path(project_dir))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"LM cache {self.path} is closed")
        return self._conn

    def get(self, key: str) -> Completion | None:
        """The stored completion for `key`, counting a hit or a miss."""
        with self._lock:
            completion = self._read(key)
            if completion is None:
                self._misses += 1
            else:
                self._hits += 1
        return completion

    def peek(self, key: str) -> Completion | None:
        """Like `get` but without touching the counters (for re-checks and inspection)."""
        with self._lock:
            return self._read(key)

    def _read(self, key: str) -> Completion | None:
        """One row as a Completion (caller holds the lock)."""
        row = (
            self._connection()
            .execute(
                "SELECT text, usage, model, finish_reason, tool_calls FROM completions"
                " WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        if row is None:
            return None
        text, usage, model, finish_reason, tool_calls = row
        return Completion(
            text=text,
            usage=json.loads(usage),
            model=model,
            finish_reason=finish_reason,
            tool_calls=tuple(ToolCall(*call) for call in json.loads(tool_calls)),
        )

    def put(self, key: str, completion: Completion, request: str = "") -> None:
        """Store `completion` under `key` and commit at once (autocommit: one transaction each).

        `request` is the canonical request JSON (from `canonical_request`), kept so a cache entry
        can be inspected; it never holds secrets because `canonical_request` refuses them.
        """
        usage = json.dumps(
            {str(k): int(v) for k, v in dict(completion.usage).items()}, sort_keys=True
        )
        calls = json.dumps([list(call) for call in completion.tool_calls], ensure_ascii=False)
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO completions(key, text, usage, model, request,"
                " finish_reason, tool_calls) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    completion.text,
                    usage,
                    completion.model,
                    request,
                    completion.finish_reason,
                    calls,
                ),
            )
            self._writes += 1

    def __len__(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT COUNT(*) FROM completions").fetchone()
        return int(row[0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.peek(key) is not None

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def stats(self) -> CacheStats:
        """Hit/miss/write counters of this object and the number of entries on disk."""
        entries = len(self)
        with self._lock:
            return CacheStats(
                hits=self._hits, misses=self._misses, writes=self._writes, entries=entries
            )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> LMCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
