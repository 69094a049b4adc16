"""Reliability (issue 8, part 3): 1000 threaded calls plus an asyncio batch through a *built* module.

Why through the generated code: that is what production runs -- the compiled function, the
frozen `Predictor`, `promptcast_runtime.OpenAIClient` chosen per context with `using()`. The
fake server answers every request with a value derived from that request's own input (a
request id and a nonce), so an answer delivered to the wrong caller (shared state in the
runtime, a mixed-up connection) shows up as a mismatch rather than passing silently.

Memory: RSS is read before and after the measured calls, after a warm-up that has already grown
every pool and cache to its steady size; a leak of even one small object per call (a response
body, a thread) would show as growth proportional to the 1000 calls. The server runs in a child
process, because it records every request body (about 2 MB per 1000 calls) and would otherwise
be measured too.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import multiprocessing
import re
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.lockfile import load_lock
from promptcast_runtime import OpenAIClient, using
from tests.support.openai_server import FakeOpenAIServer
from tests.support.payloads import last_user_message

THREADS = 32
THREADED_CALLS = 1000
ASYNC_CALLS = 200
WARMUP_CALLS = 600
MAX_RSS_GROWTH_KB = 1536
"""About 1.3 kB per measured call: less than one leaked response (body + objects) or thread each."""

SOURCE = '''"""Echo a request id: the reliability tests' way of matching answers to requests."""

import promptcast as pc


@pc.predict
def tag(request_id: str, nonce: int) -> str:
    """Return the tag of this request.

    Args:
        request_id: Which request this is.
        nonce: A number only this request carries.

    Returns:
        The tag.
    """
'''

_FIELD = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n|\Z)", re.DOTALL)


def respond(request: dict[str, Any]) -> str:
    """The tag for a request: derived only from that request's own input fields."""
    fields = dict(_FIELD.findall(last_user_message(request)))
    tag = f"{fields['request_id']}/{int(fields['nonce']) * 7}"
    return f"[[ ## answer ## ]]\n{tag}\n\n[[ ## completed ## ]]"


def expected(request_id: str, nonce: int) -> str:
    return f"{request_id}/{nonce * 7}"


@pytest.fixture
def built_tag(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """The compiled `tag` function, imported from a freshly built tree (zero-shot lock)."""
    src = tmp_path / "src" / "concpkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "steps.py").write_text(SOURCE)
    out = tmp_path / "out"
    write_tree(plan_build(src, load_lock(tmp_path / "absent.lock.json")), out)
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module("concpkg.steps")
        assert "promptcast_runtime" in Path(module.__file__ or "").read_text()
        assert "import promptcast\n" not in Path(module.__file__ or "").read_text()
        yield module.tag
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "concpkg" or n.startswith("concpkg.")]:
            del sys.modules[name]


def serve(url_queue: Any, stop: Any) -> None:
    """Child process: a FakeOpenAIServer answering with `respond` until `stop` is set."""
    with FakeOpenAIServer(respond) as server:
        url_queue.put(server.url)
        stop.wait(300)


@pytest.fixture
def server_url() -> Iterator[str]:
    """Base URL of a fake server in a spawned child process (stopped and joined afterwards)."""
    context = multiprocessing.get_context("spawn")
    url_queue, stop = context.Queue(), context.Event()
    child = context.Process(target=serve, args=(url_queue, stop), daemon=True)
    child.start()
    try:
        yield str(url_queue.get(timeout=60))
    finally:
        stop.set()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def server_stats(url: str) -> dict[str, Any]:
    root = url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(f"{root}/_stats", timeout=10) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def rss_kb() -> int:
    """Resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def run_threaded(fn: Callable[..., str], client: OpenAIClient, prefix: str, n: int) -> list[str]:
    """n calls from THREADS threads; each thread chooses the LM with `using` (context-local)."""
    errors: list[BaseException] = []
    mismatched: list[str] = []
    local = threading.local()

    def call(i: int) -> str:
        if not getattr(local, "entered", False):  # `using` is per thread: enter it once in each
            using(client).__enter__()
            local.entered = True
        request_id = f"{prefix}-{i}"
        try:
            answer = fn(request_id=request_id, nonce=i + 1)
        except BaseException as exc:  # recorded, so one failure does not hide the others
            errors.append(exc)
            raise
        if answer != expected(request_id, i + 1):
            mismatched.append(f"{request_id} got {answer!r}")
        return answer

    with ThreadPoolExecutor(THREADS, thread_name_prefix="reliability") as pool:
        answers = list(pool.map(call, range(n)))
    assert not errors and not mismatched, (errors[:3], mismatched[:3])
    return answers


async def run_async(
    fn: Callable[..., str], client: OpenAIClient, n: int, prefix: str = "async"
) -> list[str]:
    """n calls as asyncio tasks, each in `asyncio.to_thread` (the runtime is sync-only)."""

    async def one(i: int) -> str:
        with using(client):  # to_thread copies this task's context, so the choice travels
            return await asyncio.to_thread(fn, request_id=f"{prefix}-{i}", nonce=i + 1)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_1000_threaded_calls_and_an_asyncio_batch_each_get_their_own_answer(
    built_tag: Callable[..., str], server_url: str
) -> None:
    client = OpenAIClient("fake-model", server_url, "sk-test", timeout=30.0, max_retries=0)
    run_threaded(built_tag, client, "warmup", WARMUP_CALLS)
    asyncio.run(run_async(built_tag, client, ASYNC_CALLS, "warmup-async"))
    gc.collect()
    before = rss_kb()
    answers = run_threaded(built_tag, client, "thread", THREADED_CALLS)
    async_answers = asyncio.run(run_async(built_tag, client, ASYNC_CALLS))
    gc.collect()
    growth = rss_kb() - before
    counts = server_stats(server_url)["counts"]
    assert answers == [expected(f"thread-{i}", i + 1) for i in range(THREADED_CALLS)]
    assert async_answers == [expected(f"async-{i}", i + 1) for i in range(ASYNC_CALLS)]
    # Exactly one request per call: no retries were needed, none was lost or sent twice.
    assert counts["chat"] == WARMUP_CALLS + THREADED_CALLS + 2 * ASYNC_CALLS
    assert counts.get("faults", 0) == 0 and counts.get("responder_errors", 0) == 0
    print(
        f"[figures] concurrency: {THREADED_CALLS} threaded + {ASYNC_CALLS} async calls checked, "
        f"0 errors, 0 mismatches, RSS growth {growth} kB"
    )
    assert growth < MAX_RSS_GROWTH_KB, f"RSS grew {growth} kB over {THREADED_CALLS} calls"
