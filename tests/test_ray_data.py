"""A built module on a local Ray cluster (2 CPUs) with `map_batches`, shipping only the
generated tree (vendored runtime) as the job's working_dir.

The workers run a Python that cannot import the `promptcast` compiler: the project venv's
site-packages reach them through PYTHONPATH with `python -S`, so the editable install's .pth
(compiler and runtime sources) is never read -- what they import comes from the shipped tree
or from Ray's own dependencies. Against the fake OpenAI server at 100 ms a request: 2,000 rows
come back complete and in place, a worker killed mid-run loses and duplicates no row (Ray
retries its block), and the same rows in one process at the same concurrency give the
throughput to compare (printed; the speed figures live in bench/section_scale.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray  # a test dependency ([dev]): missing, these tests fail rather than skip

from promptcast_runtime import batch
from promptcast_runtime.ray_data import runtime_env, udf
from tests.support.built import (
    build_sentiment,
    expected,
    row_text,
    sentiment_answer,
    site_without_promptcast,
)
from tests.support.openai_server import FakeOpenAIServer

ROWS = 2000
CONCURRENCY = 32
BATCH_SIZE = 250
"""Rows per block: 8 blocks, 2 running at a time, each long enough (~1 s) that Ray's per-task
overhead on a 2-core machine does not dominate."""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sentiment(tmp_path_factory.mktemp("ray") / "build")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(sentiment_answer, latency=0.1) as fake:
        yield fake


def worker_runtime_env(tree: Path, base_url: str, model: str = "m") -> dict[str, Any]:
    """Ship the tree; workers get Ray's dependencies but nothing of promptcast's install."""
    return runtime_env(
        str(tree),
        env_vars={
            "PYTHONPATH": str(site_without_promptcast(tree.parent / "worker-site")),
            "PROMPTCAST_BASE_URL": base_url,
            "PROMPTCAST_MODEL": model,
        },
        py_executable=f"{sys.executable} -S",
        excludes=["**/__pycache__"],
    )


@pytest.fixture(scope="module")
def cluster(tree: Path, server: FakeOpenAIServer) -> Iterator[Any]:
    ray.init(
        num_cpus=2,
        runtime_env=worker_runtime_env(tree, server.url),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    sys.path.insert(0, str(tree))  # the driver imports the module to hand it to map_batches
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        yield ray
    finally:
        sys.path.remove(str(tree))
        for name in [n for n in sys.modules if n == "reviews" or n.startswith("reviews.")]:
            del sys.modules[name]
        ray.shutdown()


def dataset(n: int = ROWS) -> Any:
    return ray.data.from_items([{"id": i, "text": row_text(i)} for i in range(n)])


def run(n: int = ROWS) -> list[dict[str, Any]]:
    from reviews.sentiment import sentiment

    mapped = dataset(n).map_batches(
        udf(sentiment, inputs=["text"], concurrency=CONCURRENCY),
        batch_size=BATCH_SIZE,
        batch_format="pandas",
    )
    return list(mapped.take_all())


def check_complete(rows: list[dict[str, Any]], n: int = ROWS) -> None:
    ids = [int(r["id"]) for r in rows]
    assert sorted(ids) == list(range(n)), "rows lost or duplicated"
    for r in rows:
        i = int(r["id"])
        assert r["error"] is None, r["error"]
        assert r["output"] == expected(i) and r["text"] == row_text(i)


@ray.remote
def probe() -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        import promptcast
    except ModuleNotFoundError as exc:
        found["compiler"] = f"ModuleNotFoundError: {exc}"
    else:
        found["compiler"] = f"importable from {promptcast.__file__}"
    import promptcast_runtime

    found["runtime"] = promptcast_runtime.__file__
    found["cwd"] = os.getcwd()
    found["executable"] = sys.executable
    return found


def test_workers_cannot_import_the_compiler_and_run_the_shipped_runtime(cluster: Any) -> None:
    found = ray.get(probe.remote())
    assert found["compiler"].startswith("ModuleNotFoundError"), found
    runtime = Path(found["runtime"]).resolve()
    assert runtime.is_relative_to(Path(found["cwd"]).resolve())  # from the shipped tree
    assert not runtime.is_relative_to(Path(__file__).resolve().parents[1] / "runtime")


def test_2000_rows_on_ray_against_a_100ms_server_and_one_process_to_compare(
    cluster: Any, server: FakeOpenAIServer
) -> None:
    from reviews.sentiment import sentiment

    check_complete(run(200), 200)  # warm: the workers start and unpack the tree once
    server.reset()
    start = time.monotonic()
    rows = run()
    ray_wall = time.monotonic() - start
    check_complete(rows)
    assert server.counts["chat"] == ROWS

    server.reset()
    start = time.monotonic()
    from promptcast_runtime import OpenAIClient

    single = batch(
        sentiment,
        [{"text": row_text(i)} for i in range(ROWS)],
        concurrency=CONCURRENCY,
        lm=OpenAIClient("m", server.url),
    )
    single_wall = time.monotonic() - start
    assert single == [expected(i) for i in range(ROWS)]
    print(
        f"\n{ROWS} rows, 100 ms latency, {CONCURRENCY} in flight per process: Ray (2 CPUs) "
        f"{ray_wall:.1f}s ({ROWS / ray_wall:.0f} rows/s), one process {single_wall:.1f}s "
        f"({ROWS / single_wall:.0f} rows/s), ratio {single_wall / ray_wall:.2f}x"
    )


def _map_workers() -> list[int]:
    """Pids of Ray worker processes running a map task right now (their process title)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("ray::") and "Map" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(
    cluster: Any, server: FakeOpenAIServer
) -> None:
    server.reset()
    killed: list[int] = []

    def kill_one_mid_run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.counts.get("chat", 0) < ROWS // 3:
            time.sleep(0.02)
        while time.monotonic() < deadline and not killed:
            for pid in _map_workers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
                break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_mid_run, daemon=True)
    killer.start()
    rows = run()
    killer.join(5)
    assert killed, "no map worker was found to kill"
    check_complete(rows)
    # The killed worker's block ran again: the server saw its rows again (unless the kill came
    # before the block had sent any), the output has each row once.
    assert server.counts["chat"] >= ROWS
