"""Timing and memory probes shared by the per-call overhead workers (stdlib only, so the same
file serves the project's venv and DSPy's)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rss_kib() -> int:
    """Resident set size now (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def time_calls(fn: Callable[..., Any], qs: list[str], calls: int, reps: int) -> list[float]:
    """Microseconds per call, one figure per repetition of `calls` calls."""
    per_call = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        for i in range(calls):
            fn(question=qs[i % len(qs)])
        per_call.append((time.perf_counter() - start) / calls * 1e6)
    return per_call
