"""Fine-tuning through an OpenAI-compatible API: upload, create, poll, resume.

The calls are the provider's documented ones: `POST /files` (multipart, purpose `fine-tune`,
the training set as JSONL), `POST /fine_tuning/jobs` (base model, file id, hyperparameters,
`metadata.promptcast_key`), `GET /fine_tuning/jobs/{id}` until the status is terminal; the
result is the job's `fine_tuned_model`. A failed or cancelled job is a `TrainingError` carrying
the provider's own message.

Resumable, because training is paid and slow: the file id and then the job id are written to
`<workdir>/finetune-<key>.json` (atomically) the moment the provider returns them, before
anything else happens. A rerun with the same training set, base model and parameters (the same
key) polls that job instead of uploading and paying again; a run killed between "create" and
writing its id finds the job by its `metadata.promptcast_key` in `GET /fine_tuning/jobs`.

HTTP faults are retried as the LM client retries them (the runtime's `RETRY_STATUS`,
`Retry-After`, `backoff_delay`); the API key is sent as a bearer token and redacted from every
error. Standard library only: this runs inside `optimize`, no provider SDK needed.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from promptcast_runtime.lm import RETRY_STATUS, backoff_delay, redact, retry_after

from ..fsutil import atomic_write_text
from .data import TrainingSet
from .trainer import TrainedModel, Trainer, TrainingError

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
"""Job statuses after which nothing changes."""


@dataclass
class OpenAIFineTuning(Trainer):
    """An OpenAI-compatible fine-tuning endpoint (`api_base`, key from `api_key_env`)."""

    name: ClassVar[str] = "openai"
    api_base: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    epochs: int = 3
    learning_rate_multiplier: float | None = None
    batch_size: int | None = None
    suffix: str = "promptcast"
    price: float | None = None
    """Dollars per 1M training tokens (the provider's price sheet); None: not known."""
    poll_seconds: float = 20.0
    max_wait_seconds: float = 24 * 3600.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def params(self) -> dict[str, Any]:
        hyper: dict[str, Any] = {"n_epochs": self.epochs}
        if self.learning_rate_multiplier is not None:
            hyper["learning_rate_multiplier"] = self.learning_rate_multiplier
        if self.batch_size is not None:
            hyper["batch_size"] = self.batch_size
        return {"epochs": self.epochs, "hyperparameters": hyper, "suffix": self.suffix}

    def price_per_million(self) -> float | None:
        return self.price

    # --- the job ----------------------------------------------------------------------------

    def train(self, data: TrainingSet, base_model: str, workdir: Path) -> TrainedModel:
        if not self.api_base:
            raise TrainingError(
                "finetune trainer=openai needs the fine-tuning endpoint: --api-base, or "
                "--optimizer-arg api_base=URL"
            )
        if not len(data):
            raise TrainingError("the training set is empty: no teacher run passed the metric")
        key = self.job_key(data, base_model)
        path = workdir / f"finetune-{key}.json"
        state = _read_state(path)
        start = time.monotonic()
        if not state.get("job_id"):
            found = self._find_job(key) if state.get("file_id") else None
            if found is not None:
                state["job_id"] = found
            else:
                if not state.get("file_id"):
                    state["file_id"] = self._upload(data)
                    _write_state(path, {**state, "key": key, "base_model": base_model})
                state["job_id"] = self._create(base_model, str(state["file_id"]), key)
            _write_state(path, {**state, "key": key, "base_model": base_model})
        job_id = str(state["job_id"])
        job = self._wait(job_id, start)
        model = job.get("fine_tuned_model")
        if not isinstance(model, str) or not model:
            raise TrainingError(f"fine-tuning job {job_id} succeeded without a fine_tuned_model")
        _write_state(path, {**state, "key": key, "base_model": base_model, "model": model})
        details: dict[str, Any] = {"job_id": job_id, "file_id": state.get("file_id")}
        if isinstance(job.get("trained_tokens"), int):
            details["trained_tokens"] = job["trained_tokens"]
        return TrainedModel(model, None, details)

    def _upload(self, data: TrainingSet) -> str:
        boundary = "promptcast-" + uuid.uuid4().hex
        body = _multipart(boundary, {"purpose": "fine-tune"}, "training.jsonl", data.jsonl())
        reply = self._request("POST", "/files", body, f"multipart/form-data; boundary={boundary}")
        return _id(reply, "file upload")

    def _create(self, base_model: str, file_id: str, key: str) -> str:
        payload = {
            "model": base_model,
            "training_file": file_id,
            "hyperparameters": self.params()["hyperparameters"],
            "suffix": self.suffix,
            "metadata": {"promptcast_key": key},
        }
        reply = self._request("POST", "/fine_tuning/jobs", json.dumps(payload).encode())
        return _id(reply, "job create")

    def _find_job(self, key: str) -> str | None:
        """A job this key created whose id was never written (a kill between the two)."""
        reply = self._request("GET", "/fine_tuning/jobs?limit=100")
        for job in reply.get("data") or []:
            metadata = job.get("metadata") if isinstance(job, Mapping) else None
            mine = isinstance(metadata, Mapping) and metadata.get("promptcast_key") == key
            if mine and job.get("status") not in ("failed", "cancelled"):
                return str(job["id"])
        return None

    def _wait(self, job_id: str, start: float) -> dict[str, Any]:
        while True:
            job = self._request("GET", f"/fine_tuning/jobs/{job_id}")
            status = str(job.get("status", ""))
            if status == "succeeded":
                return job
            if status in TERMINAL:
                error = job.get("error") if isinstance(job.get("error"), Mapping) else {}
                message = (error or {}).get("message") or "no message"
                code = (error or {}).get("code")
                raise TrainingError(
                    f"fine-tuning job {job_id} {status}: {message}"
                    + (f" ({code})" if code else "")
                    + "; fix the cause, then delete the job record under .promptcast/ to "
                    "start a new job"
                )
            if time.monotonic() - start > self.max_wait_seconds:
                raise TrainingError(
                    f"fine-tuning job {job_id} still {status or 'pending'} after "
                    f"{self.max_wait_seconds:.0f}s; rerun optimize to keep waiting for it"
                )
            self.sleep(self.poll_seconds)

    # --- HTTP -------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call, retried like an LM call; the JSON reply."""
        key = os.environ.get(self.api_key_env, "")
        headers = {"Content-Type": content_type} if body is not None else {}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.api_base.rstrip("/") + path
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=body, method=method, headers=headers)
            wait: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    reply = json.loads(response.read().decode("utf-8"))
                if not isinstance(reply, dict):
                    raise TrainingError(f"{method} {url}: not a JSON object")
                return reply
            except urllib.error.HTTPError as exc:
                detail = _error_message(exc.read())
                if exc.code not in RETRY_STATUS:
                    raise TrainingError(
                        redact(f"{method} {url}: HTTP {exc.code}: {detail}", [key])
                    ) from None
                reason = f"HTTP {exc.code}: {detail}"
                wait = retry_after(exc.headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except json.JSONDecodeError as exc:
                reason = f"a reply that is not JSON ({exc})"
            attempt += 1
            if attempt > self.max_retries:
                raise TrainingError(
                    redact(f"{method} {url}: giving up after {attempt} attempts: {reason}", [key])
                )
            self.sleep(
                backoff_delay(attempt, wait, backoff=self.backoff, max_backoff=self.max_backoff)
            )


def _multipart(boundary: str, fields: Mapping[str, str], filename: str, content: str) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    )
    return "".join(parts).encode() + content.encode("utf-8") + f"\r\n--{boundary}--\r\n".encode()


def _id(reply: Mapping[str, Any], what: str) -> str:
    value = reply.get("id")
    if not isinstance(value, str) or not value:
        raise TrainingError(f"{what}: the reply has no id: {json.dumps(reply)[:200]}")
    return value


def _error_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])[:300]
    return text[:300]


def _read_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(
            f"{path}: unreadable job record ({exc}); delete it to start over"
        ) from None
    return data if isinstance(data, dict) else {}


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dict(state), indent=2, sort_keys=True) + "\n")
