"""The SQLite LM cache: keys, hit/miss counting, persistence, concurrency, crash safety, no secrets."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:  # until the editable install exposes the runtime
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.engine.cache import (  # noqa: E402
    LMCache,
    cache_key,
    canonical_request,
    default_cache_path,
)
from promptcast_runtime.lm import Completion  # noqa: E402

MSGS = [{"role": "user", "content": "What is 2+2?"}]


def test_key_is_canonical_and_depends_on_every_part() -> None:
    k = cache_key("m", MSGS, {"temperature": 0.0, "rollout": 0})
    assert k == cache_key("m", [dict(MSGS[0])], {"rollout": 0, "temperature": 0.0})
    assert len(k) == 64
    assert k != cache_key("m2", MSGS, {"temperature": 0.0, "rollout": 0})
    assert k != cache_key("m", MSGS, {"temperature": 0.0, "rollout": 1})
    assert k != cache_key("m", MSGS, {"temperature": 0.5, "rollout": 0})
    other = [{"role": "user", "content": "What is 2+3?"}]
    assert k != cache_key("m", other, {"temperature": 0.0, "rollout": 0})


def test_key_refuses_secrets_and_unserialisable_params() -> None:
    with pytest.raises(ValueError, match="credentials"):
        cache_key("m", MSGS, {"api_key": "sk-secret"})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        cache_key("m", MSGS, {"thing": object()})


def test_hit_miss_counting_and_roundtrip(tmp_path: Path) -> None:
    cache = LMCache(tmp_path / "c.sqlite")
    key = cache_key("m", MSGS, {"rollout": 0})
    assert cache.get(key) is None
    cache.put(key, Completion("4", {"prompt_tokens": 7, "completion_tokens": 1}, "m-v1"))
    got = cache.get(key)
    assert got == Completion("4", {"prompt_tokens": 7, "completion_tokens": 1}, "m-v1")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.writes, stats.entries) == (1, 1, 1, 1)
    assert key in cache and len(cache) == 1
    assert cache.peek(key) is not None and cache.stats().hits == 1  # peek does not count
    cache.close()
    cache.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        cache.get(key)


def test_persists_across_reopen_and_default_path(tmp_path: Path) -> None:
    path = default_cache_path(tmp_path)
    assert path == tmp_path / ".promptcast" / "cache.sqlite"
    key = cache_key("m", MSGS, {"rollout": 0})
    with LMCache.for_project(tmp_path) as cache:
        cache.put(key, Completion("four"))
    with LMCache(path) as cache:
        assert cache.get(key) == Completion("four", {}, "")
        assert cache.stats().hits == 1


def test_wal_mode_and_plain_json_storage(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    key = cache_key("m", MSGS, {"rollout": 0})
    with LMCache(path) as cache:
        cache.put(
            key, Completion("x", {"prompt_tokens": 3}), canonical_request("m", MSGS, {"rollout": 0})
        )
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = conn.execute("SELECT text, usage, model, request FROM completions").fetchone()
    conn.close()
    assert row[0] == "x"
    assert json.loads(row[1]) == {"prompt_tokens": 3}
    assert json.loads(row[3])["messages"] == MSGS
    for column in row:  # text only: no pickles, no blobs
        assert isinstance(column, str)
        assert not column.startswith("\x80")


def test_concurrent_writers_16_threads(tmp_path: Path) -> None:
    cache = LMCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def writer(t: int) -> None:
        try:
            barrier.wait()
            for i in range(50):
                key = cache_key("m", [{"role": "user", "content": f"{t}-{i}"}], {"rollout": 0})
                cache.put(key, Completion(f"answer {t}-{i}"))
                assert cache.get(key) == Completion(f"answer {t}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(cache) == 16 * 50
    assert cache.stats().hits == 16 * 50
    cache.close()
    with LMCache(tmp_path / "c.sqlite") as again:
        key = cache_key("m", [{"role": "user", "content": "15-49"}], {"rollout": 0})
        assert again.get(key) == Completion("answer 15-49")


def test_two_objects_on_one_file(tmp_path: Path) -> None:
    a, b = LMCache(tmp_path / "c.sqlite"), LMCache(tmp_path / "c.sqlite")
    key = cache_key("m", MSGS, {"rollout": 0})
    a.put(key, Completion("shared"))
    assert b.get(key) == Completion("shared")
    a.close()
    b.close()


def test_corrupt_file_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="delete the file"):
        LMCache(path)


# --- kill -9 mid-run -------------------------------------------------------------------------

FAKE_LITELLM = '''
"""A stand-in litellm for the crash test: logs each call, then answers slowly."""
import os, time

def completion(model, messages, **kwargs):
    prompt = messages[-1]["content"]
    with open(os.environ["CALL_LOG"], "a") as log:
        log.write(prompt + "\\n")
        log.flush()
        os.fsync(log.fileno())
    time.sleep(float(os.environ.get("CALL_DELAY", "0.05")))
    return {"choices": [{"message": {"content": "re: " + prompt}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}, "model": model}

def completion_cost(**kwargs):
    raise ValueError("no price")
'''

DRIVER = textwrap.dedent(
    """
    import sys
    from promptcast.engine.cache import LMCache
    from promptcast.engine.lm import LiteLLMLM

    lm = LiteLLMLM("fake/model", cache=LMCache(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        out = lm.complete([{"role": "user", "content": f"q{i}"}], temperature=0.0)
        assert out.text == f"re: q{i}", out
    snap = lm.snapshot()
    print(f"calls={snap.calls} hits={snap.cache_hits}")
    """
)


def _env(tmp_path: Path, log: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(tmp_path / "fakes"), str(ROOT / "compiler"), str(ROOT / "runtime")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    env["CALL_LOG"] = str(log)
    return env


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_kill_9_mid_run_then_rerun_repeats_no_completed_call(tmp_path: Path) -> None:
    (tmp_path / "fakes").mkdir()
    (tmp_path / "fakes" / "litellm.py").write_text(FAKE_LITELLM)
    (tmp_path / "driver.py").write_text(DRIVER)
    cache_path = tmp_path / ".promptcast" / "cache.sqlite"
    total = 40
    log1 = tmp_path / "run1.log"
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(cache_path), str(total)],
        env=_env(tmp_path, log1),
    )
    deadline = time.monotonic() + 60
    while len(_lines(log1)) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    started = _lines(log1)
    assert 10 <= len(started) < total, "the run must be killed mid-way"

    with LMCache(cache_path) as cache:  # readable after the crash
        completed = len(cache)
        cached = {
            f"q{i}"
            for i in range(total)
            if cache_key(
                "fake/model",
                [{"role": "user", "content": f"q{i}"}],
                {"temperature": 0.0, "rollout": 0},
            )
            in cache
        }
    # every call that returned before the kill is on disk (at most the one in flight is lost)
    assert completed >= len(started) - 1
    assert cached == set(started[:completed])

    log2 = tmp_path / "run2.log"
    out = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(cache_path), str(total)],
        env=_env(tmp_path, log2),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    repeated = set(_lines(log2)) & cached
    assert repeated == set()
    assert len(_lines(log2)) == total - completed
    assert f"calls={total - completed} hits={completed}" in out.stdout
