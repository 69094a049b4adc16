"""A fake OpenAI-compatible fine-tuning API for tests (stdlib only).

It implements what `promptcast.training.openai_api` calls: `POST /v1/files` (multipart upload,
purpose fine-tune), `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs` (list, with each
job's metadata) and `GET /v1/fine_tuning/jobs/{id}`. A job reports `running` for `polls` GETs,
then `succeeded` with `fine_tuned_model` -- or `failed` with `fail_message`, as a provider's
job that rejected its data does. `faults` makes the first requests of a route answer an HTTP
error status (a 503 before the upload goes through). Every request is recorded, and the
uploaded files are kept, so a test can read exactly what was sent.

    with FakeFineTuningServer(polls=2) as server:
        server.url          # "http://127.0.0.1:PORT/v1"
        server.files        # file id -> uploaded text
        server.jobs         # job id -> job object
        server.log          # ["POST /files", "POST /fine_tuning/jobs", "GET ...", ...]
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeFineTuningServer:
    """See module doc. `faults`: route ("POST /files") -> HTTP statuses answered first."""

    def __init__(
        self,
        *,
        polls: int = 1,
        fail_message: str | None = None,
        model_prefix: str = "ft:base:promptcast",
        faults: Mapping[str, list[int]] | None = None,
    ) -> None:
        self.polls = polls
        self.fail_message = fail_message
        self.model_prefix = model_prefix
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.files: dict[str, str] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.log: list[str] = []
        self.authorization: list[str | None] = []
        self._polled: dict[str, int] = {}
        self._guard = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeFineTuningServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- behaviour ----------------------------------------------------------------------------

    def _fault(self, route: str) -> int | None:
        pending = self.faults.get(route)
        return pending.pop(0) if pending else None

    def _upload(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        match = re.search(r"boundary=(\S+)", content_type)
        if not match:
            return 400, {"error": {"message": "not multipart"}}
        boundary = match.group(1).encode()
        fields: dict[str, str] = {}
        content = None
        for part in body.split(b"--" + boundary):
            head, sep, data = part.partition(b"\r\n\r\n")
            if not sep:
                continue
            name = re.search(rb'name="([^"]+)"', head)
            if not name:
                continue
            value = data.removesuffix(b"\r\n").decode("utf-8")
            if b"filename=" in head:
                content = value
            else:
                fields[name.group(1).decode()] = value
        if fields.get("purpose") != "fine-tune" or content is None:
            return 400, {"error": {"message": "expected purpose=fine-tune and a file"}}
        for number, line in enumerate(content.splitlines(), 1):
            row = json.loads(line)
            if not isinstance(row.get("messages"), list):
                return 400, {"error": {"message": f"line {number}: no messages"}}
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return 200, {"id": file_id, "object": "file", "purpose": "fine-tune"}

    def _create(self, body: bytes) -> tuple[int, dict[str, Any]]:
        payload = json.loads(body)
        if payload.get("training_file") not in self.files:
            return 400, {"error": {"message": "no such training_file"}}
        job_id = f"ftjob-{len(self.jobs) + 1}"
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "model": payload["model"],
            "training_file": payload["training_file"],
            "hyperparameters": payload.get("hyperparameters", {}),
            "metadata": payload.get("metadata"),
            "status": "queued",
            "fine_tuned_model": None,
            "error": None,
        }
        self.creates.append(payload)
        self.jobs[job_id] = job
        return 200, job

    def _poll(self, job_id: str) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"error": {"message": f"no job {job_id}"}}
        seen = self._polled.get(job_id, 0) + 1
        self._polled[job_id] = seen
        if seen <= self.polls:
            job["status"] = "running"
        elif self.fail_message is not None:
            job["status"] = "failed"
            job["error"] = {"code": "invalid_training_file", "message": self.fail_message}
        else:
            job["status"] = "succeeded"
            job["fine_tuned_model"] = f"{self.model_prefix}:{job_id}"
            rows = len(self.files[job["training_file"]].splitlines())
            job["trained_tokens"] = 100 * rows
        return 200, dict(job)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, data: Mapping[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                path = self.path.removeprefix("/v1")
                bare = path.split("?")[0]
                route = f"{method} {re.sub(r'/ftjob-[^/]+$', '/{id}', bare)}"
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._guard:
                    server.log.append(f"{method} {bare}")
                    server.authorization.append(self.headers.get("Authorization"))
                    fault = server._fault(route)
                    if fault is not None:
                        status, data = fault, {"error": {"message": f"injected {fault}"}}
                    elif route == "POST /files":
                        status, data = server._upload(self.headers.get("Content-Type", ""), body)
                    elif route == "POST /fine_tuning/jobs":
                        status, data = server._create(body)
                    elif route == "GET /fine_tuning/jobs":
                        status, data = 200, {"data": [dict(j) for j in server.jobs.values()]}
                    elif route == "GET /fine_tuning/jobs/{id}":
                        status, data = server._poll(bare.rsplit("/", 1)[1])
                    else:
                        status, data = 404, {"error": {"message": f"no route {route}"}}
                self._reply(status, data)

            def do_GET(self) -> None:  # noqa: N802
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

        return Handler
