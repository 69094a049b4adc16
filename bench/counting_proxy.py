"""A tiny HTTP proxy that counts the requests a client really sends to an LM server.

Why: a framework's own bookkeeping (DSPy's ``lm.history``, cache hits, adapter fallbacks,
litellm's retries) does not say how many requests reached the server. Counting at the HTTP
level does, and it also separates our requests from anyone else's on a shared server.

Stdlib only, so it runs in any venv (the DSPy benchmark venv included). Start it in a thread:

    with CountingProxy("http://127.0.0.1:8765/v1") as proxy:
        client_base = proxy.url          # http://127.0.0.1:PORT/v1
        ...
        proxy.snapshot()                 # {"requests": 12, "chat": 12, "status": {"200": 12}, ...}
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UPSTREAM_TIMEOUT_S = 600.0
"""Longest wait for one upstream answer: bounded, and longer than any sane LM call."""


class _Counts:
    """Thread-safe tallies of forwarded requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.chat = 0
            self.status: Counter[str] = Counter()
            self.prompt_tokens = 0
            self.completion_tokens = 0

    def add(self, path: str, status: int, body: bytes) -> None:
        usage: dict[str, Any] = {}
        if status == 200 and path.endswith("/chat/completions"):
            try:
                usage = json.loads(body).get("usage") or {}
            except (ValueError, AttributeError):
                usage = {}
        with self.lock:
            self.requests += 1
            self.chat += path.endswith("/chat/completions")
            self.status[str(status)] += 1
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "chat": self.chat,
                "status": dict(self.status),
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }


def _handler(upstream_origin: str, counts: _Counts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 900  # an idle keep-alive connection is dropped after this (bounded)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Silent: the counts are the log."""

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in {"content-type", "authorization", "accept"}
            }
            req = urllib.request.Request(
                upstream_origin + self.path, data=data, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(req, timeout=UPSTREAM_TIMEOUT_S) as resp:
                    status, body = resp.status, resp.read()
                    ctype = resp.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as err:
                status, body = err.code, err.read()
                ctype = err.headers.get("Content-Type", "application/json")
            except OSError as err:
                status, ctype = 502, "application/json"
                body = json.dumps({"error": {"message": f"proxy: {err}"}}).encode()
            counts.add(self.path, status, body)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._forward("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._forward("POST")

    return Handler


class CountingProxy:
    """Forwards everything to ``upstream`` (a base URL like ``http://host:port/v1``)."""

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self.counts = _Counts()
        self._host = host
        self._httpd = ThreadingHTTPServer((host, port), _handler(self._origin, self.counts))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._httpd.server_address[1]}{self._base_path}"

    def snapshot(self) -> dict[str, Any]:
        return self.counts.snapshot()

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
