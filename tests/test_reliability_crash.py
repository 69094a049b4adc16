"""Reliability (issue 8, part 2): kill -9 `build` and `optimize` at many points; nothing is torn.

Why SIGKILL and real subprocesses: a crash gives the program no chance to clean up, so only the
on-disk protocol (write a temp tree / temp file, fsync, then one rename or directory exchange)
can keep the output whole. The tests compare against the two trees (or locks) that may legally
be there -- the complete old one and the complete new one -- byte for byte.

`build` gets a package of 300 data files and 3 compiled modules, so writing its temp tree (one
fsync per file) takes a measurable while, and is killed at seeded random moments of start-up,
planning, writing the temp tree, the swap and the removal of the old tree. `optimize` starts from an existing lock and is killed after a random
number of LM requests and, later, at random moments around the lock write; the lock is always
the old or the new bytes, the cache passes SQLite's integrity check, and the finished run's
lock equals an uninterrupted run's. tests/test_crash_resume.py holds the "no completed call
is paid twice" count for three kill points; this file adds the torn-output checks.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptcast.cli import main
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM
from tests.test_cli_optimize import fresh_process, write_project

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
BUILD_KILLS = 20


# --- build ------------------------------------------------------------------------------------


def _write_package(root: Path, version: str) -> Path:
    """`bigpkg`: 3 LM functions and 300 data files; `version` changes every file."""
    pkg = root / "bigpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"VERSION = {version!r}\n")
    for i in range(3):
        (pkg / f"step{i:02d}.py").write_text(
            "from typing import Literal\n\nimport promptcast as pc\n\n\n@pc.predict\n"
            f'def kind{i}(question: str) -> Literal["NUM", "LOC", "HUM"]:\n'
            f'    """Classify the kind of answer a question asks for (version {version})."""\n'
        )
    (pkg / "assets").mkdir()
    for i in range(300):  # data files: copied as they are, not parsed, so planning stays quick
        (pkg / "assets" / f"blob{i:03d}.txt").write_text(f"version {version}\n" + "x" * 1000)
    return pkg


def _tree(out: Path) -> dict[str, bytes]:
    """Every file under `out` (hidden ones included), relative path -> bytes."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def _build(src: Path, out: Path, lock: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "promptcast", "build", str(src), "-o", str(out)]
    return subprocess.Popen(
        [*command, "--lock", str(lock)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _temp_dirs(parent: Path) -> set[str]:
    return {p.name for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith(".new")}


def _wait_for_new_temp_dir(parent: Path, known: set[str], process: subprocess.Popen[bytes]) -> None:
    """Returns once the build has started writing its temp tree (or has exited)."""
    deadline = time.monotonic() + 60
    while not (_temp_dirs(parent) - known) and process.poll() is None:
        assert time.monotonic() < deadline, "build never started writing"
        time.sleep(0.001)


def test_kill_9_during_build_leaves_the_old_tree_or_the_new_one(tmp_path: Path) -> None:
    """20 kills at seeded random points: `out` is always exactly tree A or tree B.

    A quarter of the kills land at a random moment of start-up and planning; the rest at a
    random moment after the temp tree appears (writing it, fsyncing, swapping it in, removing
    the old one), which is where a non-atomic writer would leave a half-old, half-new tree.
    The machine may be loaded, so points are found by watching the build, not by a clock.
    """
    src_a = _write_package(tmp_path / "a", "A")
    src_b = _write_package(tmp_path / "b", "B")
    lock = tmp_path / "empty.lock.json"  # no entries: a zero-shot build
    lock.write_text('{"compiler": "0.1.0", "format": 2, "functions": {}}\n')
    site = tmp_path / "site"
    out = site / "out"
    assert _build(src_a, out, lock).wait(timeout=60) == 0  # A stays in place
    tree_a = _tree(out)
    snapshot_a = tmp_path / "snapshot_a"
    shutil.copytree(out, snapshot_a)
    # Tree B, and how long the write phase lasts here: a build of B over a copy of A.
    timing = tmp_path / "timing"
    shutil.copytree(snapshot_a, timing / "out")
    process = _build(src_b, timing / "out", lock)
    _wait_for_new_temp_dir(timing, set(), process)
    start = time.monotonic()
    assert process.wait(timeout=60) == 0
    write_s = time.monotonic() - start
    tree_b = _tree(timing / "out")
    assert tree_a != tree_b and len(tree_a) == len(tree_b) == 305  # 304 files + the build marker

    rng = random.Random(8)
    outcomes = {"old": 0, "new": 0, "finished": 0}
    point = 0
    # BUILD_KILLS kill points, at least half of them landing mid-build; a loaded machine (the
    # local model busy beside it) lets more builds finish first, so keep going (bounded).
    while point < BUILD_KILLS or (
        outcomes["old"] + outcomes["new"] < BUILD_KILLS // 2 and point < 3 * BUILD_KILLS
    ):
        point += 1
        known = _temp_dirs(site)
        process = _build(src_b, out, lock)
        if point % 4 == 0:
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            _wait_for_new_temp_dir(site, known, process)
            time.sleep(rng.uniform(0.0, 1.2 * write_s))
        killed = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        tree = _tree(out)
        assert tree in (tree_a, tree_b), "torn output tree after kill -9"
        if not killed:
            outcomes["finished"] += 1
        else:
            outcomes["old" if tree == tree_a else "new"] += 1
        if tree == tree_b:  # put the old tree back so the next kill can catch the swap again
            shutil.rmtree(out)
            shutil.copytree(snapshot_a, out)
    assert outcomes["old"] + outcomes["new"] >= BUILD_KILLS // 2, outcomes
    # A build after all the kills still produces the whole new tree.
    assert _build(src_b, out, lock).wait(timeout=60) == 0
    assert _tree(out) == tree_b
    leftovers = sorted(p.name for p in site.iterdir() if p.name != "out")
    print(f"[figures] build: {point} kill points ({outcomes}); temp dirs left: {len(leftovers)}")
    # The next build removes the temp trees the killed builds left (their pids are gone).
    assert leftovers == []


# --- optimize ---------------------------------------------------------------------------------


def _optimize_args(url: str, optimizer: str, *args: str) -> list[str]:
    return [
        "optimize", "cliapp.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
        "--metric", "exact_match", "--label", "coarse", "--optimizer", optimizer, *args,
        "--threads", "2", "--seed", "3", "--model", "openai/fake-model", "--api-base", url,
    ]  # fmt: skip


def _optimize_in_process(root: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs the CLI in this process (litellm is imported once per test session, not per run)."""
    monkeypatch.chdir(root)
    saved_path = list(sys.path)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        fresh_process(saved_path)
    assert result.exit_code == 0, result.output


def _server() -> FakeOpenAIServer:
    lm = ScriptedLM(QUESTIONS)
    return FakeOpenAIServer(lambda req: lm.complete(req["messages"]).text)


def _cache_rows(root: Path) -> int:
    """Runs SQLite's integrity check and counts cached completions."""
    with sqlite3.connect(root / ".promptcast" / "cache.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])


OPTIMIZE_KILLS = 12


def test_kill_9_during_optimize_leaves_the_old_lock_or_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing lock is replaced whole or not at all, whenever optimize dies.

    Kills mid-search (after N paid calls) are tests/test_crash_resume.py's; here every LM call
    is already cached, so a run is all start-up, scoring and the lock write -- the window where
    a torn lock could happen -- and lasts well under a second without litellm's import. Before
    each run the old lock is put back, so every kill point tests the old -> new replacement.
    """
    project = write_project(tmp_path / "project")
    search = ["--optimizer-arg", "num_candidates=3"]
    with _server() as server:
        _optimize_in_process(
            project, _optimize_args(server.url, "labeled", "--optimizer-arg", "k=1"), monkeypatch
        )
        old_lock = (project / "promptcast.lock.json").read_bytes()
        _optimize_in_process(
            project, _optimize_args(server.url, "random_search", *search), monkeypatch
        )
        new_lock = (project / "promptcast.lock.json").read_bytes()
        cached = _cache_rows(project)
        calls = server.counts["chat"]
        command = [
            sys.executable,
            "-m",
            "promptcast",
            *_optimize_args(server.url, "random_search", *search),
        ]
        lock_path = project / "promptcast.lock.json"
        lock_path.write_bytes(old_lock)
        start = time.monotonic()
        subprocess.run(command, cwd=project, env=ENV, check=True, capture_output=True)
        duration = time.monotonic() - start
        assert lock_path.read_bytes() == new_lock and server.counts["chat"] == calls

        rng = random.Random(17)
        outcomes = {"old": 0, "new": 0, "finished": 0}
        for _ in range(OPTIMIZE_KILLS):
            lock_path.write_bytes(old_lock)
            process = subprocess.Popen(
                command, cwd=project, env=ENV,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(rng.uniform(0.3, 1.0) * duration)
            killed = process.poll() is None
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            lock = lock_path.read_bytes()
            assert lock in (old_lock, new_lock), "torn lock after kill -9"
            if not killed:
                outcomes["finished"] += 1
            else:
                outcomes["old" if lock == old_lock else "new"] += 1
            assert _cache_rows(project) == cached  # readable, nothing lost
        assert server.counts["chat"] == calls  # no run paid for anything: all cached
    assert outcomes["old"] + outcomes["new"] >= OPTIMIZE_KILLS // 2, outcomes
    leftovers = [p.name for p in project.iterdir() if p.name.endswith(".tmp")]
    print(f"[figures] optimize: {OPTIMIZE_KILLS} kill points ({outcomes}); temp files: {leftovers}")


def test_stale_temps_of_dead_writers_go_and_live_ones_stay(tmp_path: Path) -> None:
    from promptcast.fsutil import atomic_write_text, remove_stale_temps

    target = tmp_path / "promptcast.lock.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".promptcast.lock.json.{dead.pid}.abc.tmp"
    live = tmp_path / f".promptcast.lock.json.{os.getpid()}.xyz.tmp"
    other = tmp_path / f".other.json.{dead.pid}.abc.tmp"
    for path in (stale, live, other):
        path.write_text("half")
    atomic_write_text(target, "{}")
    assert target.read_text() == "{}"
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temps(target, ".tmp") == []
