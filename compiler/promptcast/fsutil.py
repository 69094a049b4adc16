"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_prefix(path: Path) -> str:
    """`.<name>.<pid>.`: temp files and dirs beside `path` say which process made them."""
    return f".{path.name}.{os.getpid()}."


def remove_stale_temps(path: Path, suffix: str) -> list[Path]:
    """Delete temp siblings of `path` left by processes that no longer exist (killed mid-write).

    A temp of a live process (a concurrent writer) is never touched: the pid in its name is
    checked first. Returns what was removed.
    """
    import re
    import shutil

    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\..*{re.escape(suffix)}$")
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with _suppress_missing():
                entry.unlink()
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory, fsync, then rename.

    Temp files that a killed writer left beside `path` are removed first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_missing():
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, FileNotFoundError)
