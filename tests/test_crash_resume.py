"""kill -9 during `optimize`, then rerun: no completed call is paid twice, the lock is the same.

The optimize process talks to a fake OpenAI server with a little latency, is killed with SIGKILL
at several points, and is rerun until it finishes. Every LM call is cached in SQLite the moment
it returns, so across all the killed runs and the final one the server sees each distinct
request at most once more than it was cached (calls in flight at the kill may be lost), and the
final lock is byte-identical to that of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import write_project

THREADS = 2


def _command(url: str) -> list[str]:
    return [
        sys.executable, "-m", "promptcast", "optimize", "cliapp.steps:kind",
        "--train", "train.jsonl", "--dev", "dev.jsonl", "--metric", "exact_match",
        "--label", "coarse", "--optimizer", "random_search", "--optimizer-arg",
        "num_candidates=3", "--threads", str(THREADS), "--seed", "3",
        "--model", "openai/fake-model", "--api-base", url,
    ]  # fmt: skip


def _server() -> FakeOpenAIServer:
    lm = ScriptedLM(QUESTIONS)
    return FakeOpenAIServer(lambda req: lm.complete(req["messages"]).text, latency=0.03)


def _key(request: dict[str, Any]) -> str:
    return json.dumps(request["messages"], sort_keys=True)


def _cached_entries(root: Path) -> int:
    path = root / ".promptcast" / "cache.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)


def test_kill_9_then_rerun_repeats_no_completed_call_and_gives_the_same_lock(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    clean = write_project(tmp_path / "clean")
    with _server() as server:
        subprocess.run(_command(server.url), cwd=clean, env=env, check=True, capture_output=True)
        total = len(server.requests)
    clean_lock = (clean / "promptcast.lock.json").read_bytes()
    assert total > 20

    crashed = write_project(tmp_path / "crashed")
    kills = 0
    with _server() as server:
        for kill_at in (total // 5, total // 2, (4 * total) // 5):
            process = subprocess.Popen(
                _command(server.url), cwd=crashed, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while len(server.requests) < kill_at and process.poll() is None:
                assert time.monotonic() < deadline, "optimize made no progress"
                time.sleep(0.005)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            assert not (crashed / "promptcast.lock.json").exists()  # never a torn lock
            assert _cached_entries(crashed) > 0
        subprocess.run(_command(server.url), cwd=crashed, env=env, check=True, capture_output=True)
        seen = Counter(_key(r) for r in server.requests)
    assert kills == 3
    repeated = sum(n - 1 for n in seen.values() if n > 1)
    # Only calls in flight at a kill (at most THREADS each time) may be sent again.
    assert repeated <= kills * THREADS, seen.most_common(3)
    assert len(seen) == total
    assert (crashed / "promptcast.lock.json").read_bytes() == clean_lock
