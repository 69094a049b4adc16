"""bench/counting_proxy.py counts what reaches the server, errors and tokens included.

The DSPy baseline's LM-call figures come from this proxy, so it is tested against the fake
server, whose own counts are the ground truth.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.faults import FaultPlan
from tests.support.openai_server import FakeOpenAIServer

PROXY_FILE = Path(__file__).resolve().parent.parent / "bench" / "counting_proxy.py"


def load_proxy_module() -> ModuleType:
    """bench/ is a folder of scripts, not a package: load the file by path."""
    spec = importlib.util.spec_from_file_location("bench_counting_proxy", PROXY_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ask(url: str, text: str) -> int:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(
        url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            json.loads(resp.read())
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_proxy_counts_match_the_server(fake_openai_server_factory: Any) -> None:
    server: FakeOpenAIServer = fake_openai_server_factory(
        answers={"*": "three word answer"}, faults=FaultPlan(at={2: "server_error"}), latency=0.05
    )
    with load_proxy_module().CountingProxy(server.url) as proxy:
        assert proxy.url.endswith("/v1") and proxy.url != server.url
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda i: ask(proxy.url, f"q{i} x"), range(6)))
        with urllib.request.urlopen(proxy.url + "/models", timeout=5) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "fake-model"
        snap = proxy.snapshot()
    assert sorted(statuses) == [200] * 5 + [500]
    assert snap["chat"] == server.counts["chat"] == 6
    assert snap["requests"] == 7
    assert snap["status"] == {"200": 6, "500": 1}
    assert snap["prompt_tokens"] == 5 * 2 and snap["completion_tokens"] == 5 * 3
    assert {r["messages"][0]["content"] for r in server.requests} == {f"q{i} x" for i in range(6)}


def test_proxy_reset_and_unreachable_upstream() -> None:
    module = load_proxy_module()
    with FakeOpenAIServer() as server:
        dead_url = server.url  # closed below: nothing listens there any more
    with module.CountingProxy(dead_url) as proxy:
        assert ask(proxy.url, "hello") == 502
        assert proxy.snapshot()["status"] == {"502": 1}
        proxy.counts.reset()
        assert proxy.snapshot()["requests"] == 0
