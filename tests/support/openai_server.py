"""A fake OpenAI-compatible chat server for tests and benchmarks (stdlib only).

Why: the runtime's HTTP client, the engine and the benchmarks need a server whose answers,
latency and failures are under the test's control — deterministic answers, a fixed simulated
latency served concurrently, and every fault a real provider produces (429, 5xx, hangs,
resets, broken bodies, slow drips) on a chosen request. It records every request body.

In-process::

    with FakeOpenAIServer(answers={"2+2?": "4"}, latency=0.2) as server:
        server.url              # "http://127.0.0.1:PORT/v1"
        server.requests         # bodies received, in arrival order
        server.counts           # {"chat": 3, "models": 1, "faults": 0, ...}

Standalone (for a benchmark in another venv); prints the base URL on the first line::

    python -m tests.support.openai_server --port 0 --latency 0.2 --answers FILE.json

Everything is bounded: sleeps wake up when the server closes, idle keep-alive connections
time out, ``close()`` cuts open connections, and the CLI stops after ``--max-seconds``.
Extra endpoints for out-of-process users: ``GET /_stats`` (counts) and ``POST /_reset``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .faults import NO_FAULTS, FaultKind, FaultPlan, parse_fault_spec
from .payloads import (
    ErrorReply,
    Responder,
    TableResponder,
    completion,
    dumps,
    error_body,
    models_list,
)
from .sse_stream import StreamPlan, serve_stream

DEFAULT_MODEL = "fake-model"
IDLE_CONNECTION_TIMEOUT_S = 30.0
"""A keep-alive connection with no new request for this long is closed (bounds handler threads)."""


class _State:
    """What the handlers share: configuration, recorded requests, counters, the stop signal."""

    def __init__(self, responder: Responder, latency: float, faults: FaultPlan, model: str) -> None:
        self.responder = responder
        self.latency = latency
        self.faults = faults
        self.model = model
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.faults_served: list[tuple[int, FaultKind]] = []
        self.chat_number = 0
        self.stream_plan = StreamPlan()
        self.stream_plans: dict[int, StreamPlan] = {}
        self.stream_log: list[tuple[int, int, bool]] = []

    def note_stream(self, number: int, sent: int, gone: bool) -> None:
        with self.lock:
            self.counts["stream"] += 1
            if gone:
                self.counts["stream_aborted"] += 1
            self.stream_log.append((number, sent, gone))

    def next_chat(self, body: dict[str, Any]) -> tuple[int, FaultKind | None]:
        with self.lock:
            self.chat_number += 1
            number = self.chat_number
            self.requests.append(body)
            self.counts["chat"] += 1
            fault = self.faults.fault_for(number)
            if fault is not None:
                self.counts["faults"] += 1
                self.counts[f"fault:{fault.value}"] += 1
                self.faults_served.append((number, fault))
            return number, fault

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.counts.clear()
            self.faults_served.clear()
            self.stream_log.clear()
            self.chat_number = 0

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "counts": dict(self.counts),
                "faults_served": [[n, f.value] for n, f in self.faults_served],
            }


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers open connections so close() can cut them."""

    daemon_threads = True
    request_queue_size = 256  # socketserver's default of 5 drops bursts of concurrent connects

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: tests read ``requests`` and ``counts`` instead of a log."""

    # --- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        state = self.server.state
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/models"):
            state.count("models")
            self._send_json(200, models_list(state.model))
        elif path == "/_stats":
            self._send_json(200, state.stats())
        else:
            state.count("not_found")
            self._send_json(404, error_body(404, f"no route GET {self.path}"))

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        if path == "/_reset":
            state.reset()
            self._send_json(200, {"ok": True})
            return
        if not path.endswith("/chat/completions"):
            state.count("not_found")
            self._send_json(404, error_body(404, f"no route POST {self.path}"))
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("body must be a JSON object with a 'messages' list")
        except ValueError as err:
            state.count("bad_request")
            self._send_json(400, error_body(400, f"invalid request: {err}"))
            return
        number, fault = state.next_chat(body)
        if fault is not None and fault.http_status is not None:
            self._send_error_fault(fault)
            return
        if fault is FaultKind.RESET:
            self._reset_connection()
            return
        if fault is FaultKind.TIMEOUT and not self._sleep(state.faults.hang_s):
            return
        if not self._sleep(state.latency):
            return
        try:
            answer = state.responder(body)
        except ErrorReply as err:  # the responder's own answer: an HTTP error status
            state.count("rejected")
            self._send_json(err.status, error_body(err.status, err.message))
            return
        except Exception as err:  # a broken responder is a test bug: say so loudly, as a 500
            state.count("responder_errors")
            self._send_json(500, error_body(500, f"responder raised {err!r}"))
            return
        if body.get("stream") is True:  # server-sent events (sse_stream.py)
            plan = state.stream_plans.get(number, state.stream_plan)
            sent, gone = serve_stream(self, body, answer, number, state.model, plan, self._sleep)
            state.note_stream(number, sent, gone)
            return
        payload = completion(body, answer, number, state.model)
        if fault is FaultKind.EMPTY_CHOICES:
            payload["choices"] = []
        data = dumps(payload)
        if fault is FaultKind.TRUNCATED:
            self._send_bytes(200, data[: len(data) // 2], "application/json")
        elif fault is FaultKind.NOT_JSON:
            self._send_bytes(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif fault is FaultKind.DRIP:
            self._drip(data, state.faults.drip_interval_s)
        else:
            self._send_bytes(200, data, "application/json")

    # --- helpers -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _sleep(self, seconds: float) -> bool:
        """Waits, unless the server is closing; False means: stop, send nothing."""
        if seconds <= 0:
            return True
        stopped = self.server.state.stopping.wait(seconds)
        if stopped:
            self.close_connection = True
        return not stopped

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (e.g. after its timeout): nothing to do
            self.close_connection = True

    def _send_json(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_bytes(status, dumps(body), "application/json", headers)

    def _send_error_fault(self, fault: FaultKind) -> None:
        status = fault.http_status or 500
        headers = {}
        if fault is FaultKind.RATE_LIMIT:
            headers["Retry-After"] = f"{self.server.state.faults.retry_after_s:g}"
        self._send_json(status, error_body(status, f"injected fault: {fault.value}"), headers)

    def _reset_connection(self) -> None:
        """SO_LINGER with a zero timeout makes close() send RST instead of FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _drip(self, data: bytes, interval: float) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                if not self._sleep(interval):
                    return
        except OSError:
            self.close_connection = True


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1, in a background thread.

    ``responder`` maps a request body to the answer text; by default a
    :class:`~tests.support.payloads.TableResponder` over ``answers`` (last user message ->
    answer, else echo). ``latency`` seconds are slept per successful request, concurrently
    across requests. ``faults`` is a :class:`~tests.support.faults.FaultPlan`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        answers: Mapping[str, str] | None = None,
        latency: float = 0.0,
        faults: FaultPlan = NO_FAULTS,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if responder is not None and answers is not None:
            raise ValueError("pass either responder or answers, not both")
        responder = responder or TableResponder(answers or {})
        self._state = _State(responder, latency, faults, model)
        self._host = host
        self._httpd = _Server((host, port), self._state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai-server",
            daemon=True,
        )
        self._started = self._closed = False

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self) -> None:
        """Stops serving, wakes sleeping handlers, cuts open connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._state.stopping.set()
        if self._started:
            self._httpd.shutdown()
        self._httpd.cut_connections()
        self._httpd.server_close()
        if self._started:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what tests read and change ------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL clients take as ``api_base``: ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of every chat request body received, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def counts(self) -> dict[str, int]:
        """``chat``, ``models``, ``faults``, ``fault:KIND``, ``bad_request``, ``not_found``."""
        with self._state.lock:
            return dict(self._state.counts)

    @property
    def faults_served(self) -> list[tuple[int, FaultKind]]:
        with self._state.lock:
            return list(self._state.faults_served)

    def set_faults(self, faults: FaultPlan) -> None:
        """Swap the fault plan; request numbering continues."""
        self._state.faults = faults

    def set_stream(self, plan: StreamPlan, at: Mapping[int, StreamPlan] | None = None) -> None:
        """How `"stream": true` requests are answered: `plan`, or `at[n]` for request n."""
        self._state.stream_plan = plan
        self._state.stream_plans = dict(at or {})

    @property
    def stream_log(self) -> list[tuple[int, int, bool]]:
        """(request number, content events sent, client went away) per streamed answer."""
        with self._state.lock:
            return list(self._state.stream_log)

    def set_latency(self, seconds: float) -> None:
        self._state.latency = seconds

    def set_responder(self, responder: Responder) -> None:
        self._state.responder = responder

    def reset(self) -> None:
        """Forget recorded requests and counts; numbering starts again at 1."""
        self._state.reset()


# --- command line ----------------------------------------------------------------------------


def _load_answers(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    answers = json.loads(Path(path).read_text())
    if not isinstance(answers, dict) or not all(isinstance(v, str) for v in answers.values()):
        raise SystemExit(f"{path}: expected a JSON object mapping user message -> answer text")
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server",
        description="Fake OpenAI-compatible server; prints its base URL, serves until stopped.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--answers", help="JSON file: last user message -> answer ('*' = default)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--fault", default="", help="per request, e.g. '1=rate_limit,3=reset'")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default=",".join(k.value for k in FaultKind))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=5.0, help="seconds a 'timeout' fault hangs")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop after this long (bounded by design)"
    )
    args = parser.parse_args(argv)
    plan = FaultPlan(
        at=parse_fault_spec(args.fault),
        rate=args.fault_rate,
        kinds=tuple(FaultKind(k) for k in args.fault_kinds.split(",") if k),
        seed=args.seed,
        hang_s=args.hang,
    )
    server = FakeOpenAIServer(
        answers=_load_answers(args.answers),
        latency=args.latency,
        faults=plan,
        model=args.model,
        host=args.host,
        port=args.port,
    )
    with server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(args.max_seconds)
    json.dump(server.counts, sys.stderr)
    print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
