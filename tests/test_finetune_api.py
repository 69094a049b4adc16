"""The OpenAI-compatible fine-tuning backend against a fake jobs server: upload, create, poll,
retries, a failed job, and resuming a killed run without creating a second job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptcast.training import TrainingError, TrainingSet
from promptcast.training.openai_api import OpenAIFineTuning
from tests.support.finetune_server import FakeFineTuningServer

CONVERSATIONS = [
    [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "[[ ## question ## ]]\nWho wrote Hamlet?"},
        {"role": "assistant", "content": "[[ ## answer ## ]]\nHUM\n\n[[ ## completed ## ]]"},
    ],
    [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "[[ ## question ## ]]\nWhere is Lima?"},
        {"role": "assistant", "content": "[[ ## answer ## ]]\nLOC\n\n[[ ## completed ## ]]"},
    ],
]


def _trainer(url: str, **kw: object) -> OpenAIFineTuning:
    return OpenAIFineTuning(api_base=url, poll_seconds=0.0, backoff=0.0, max_backoff=0.0, **kw)  # type: ignore[arg-type]


def test_upload_create_poll_returns_the_fine_tuned_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-123456")
    data = TrainingSet.of(CONVERSATIONS)
    with FakeFineTuningServer(polls=3) as server:
        trained = _trainer(server.url, epochs=2, learning_rate_multiplier=0.5).train(
            data, "gpt-base", tmp_path
        )
    assert trained.model == "ft:base:promptcast:ftjob-1"
    assert trained.api_base is None  # the run's own endpoint serves it
    assert trained.details["job_id"] == "ftjob-1" and trained.details["file_id"] == "file-1"
    # The uploaded file is the training set's JSONL, byte for byte.
    assert (
        server.files["file-1"] == data.jsonl().rstrip("\n")
        or server.files["file-1"] == data.jsonl()
    )
    rows = [json.loads(line) for line in server.files["file-1"].splitlines()]
    assert [r["messages"] for r in rows] == CONVERSATIONS
    (create,) = server.creates
    assert create["model"] == "gpt-base"
    assert create["training_file"] == "file-1"
    assert create["hyperparameters"] == {"n_epochs": 2, "learning_rate_multiplier": 0.5}
    assert create["metadata"]["promptcast_key"]
    assert server.log == [
        "POST /files",
        "POST /fine_tuning/jobs",
        *["GET /fine_tuning/jobs/ftjob-1"] * 4,  # 3 running, then succeeded
    ]
    assert set(server.authorization) == {"Bearer sk-test-key-123456"}
    record = json.loads(next(tmp_path.glob("finetune-*.json")).read_text())
    assert record["job_id"] == "ftjob-1" and record["model"] == trained.model


def test_faults_are_retried_with_backoff(tmp_path: Path) -> None:
    faults = {"POST /files": [503, 429], "GET /fine_tuning/jobs/{id}": [502]}
    with FakeFineTuningServer(polls=0, faults=faults) as server:
        trained = _trainer(server.url).train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
    assert trained.model.endswith("ftjob-1")
    assert server.log.count("POST /files") == 3
    assert len(server.files) == 1  # the faulted attempts stored nothing


def test_a_client_error_is_not_retried_and_names_the_provider_message(tmp_path: Path) -> None:
    with (
        FakeFineTuningServer(faults={"POST /fine_tuning/jobs": [400]}) as server,
        pytest.raises(TrainingError, match=r"HTTP 400: injected 400"),
    ):
        _trainer(server.url).train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
    assert server.log.count("POST /fine_tuning/jobs") == 1


def test_a_failed_job_is_a_clear_error_with_the_providers_message(tmp_path: Path) -> None:
    message = "line 2: the assistant message is missing"
    with (
        FakeFineTuningServer(polls=1, fail_message=message) as server,
        pytest.raises(TrainingError) as caught,
    ):
        _trainer(server.url).train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
    text = str(caught.value)
    assert "fine-tuning job ftjob-1 failed" in text
    assert message in text and "invalid_training_file" in text


def test_a_killed_run_resumes_its_job_instead_of_paying_twice(tmp_path: Path) -> None:
    """The job id is on disk the moment the job exists: a rerun polls it, creates nothing."""
    data = TrainingSet.of(CONVERSATIONS)
    with FakeFineTuningServer(polls=50) as server:

        class Killed(Exception):
            pass

        polls = {"n": 0}

        def kill_after_two_polls(_: float) -> None:
            polls["n"] += 1
            if polls["n"] == 2:
                raise Killed  # the process dies mid-wait (Ctrl-C, a CI timeout)

        with pytest.raises(Killed):
            _trainer(server.url, sleep=kill_after_two_polls).train(data, "m", tmp_path)
        assert len(server.jobs) == 1 and len(server.files) == 1
        record = json.loads(next(tmp_path.glob("finetune-*.json")).read_text())
        assert record["job_id"] == "ftjob-1"
        server.polls = 0  # the job finishes while nobody watches
        trained = _trainer(server.url).train(data, "m", tmp_path)
    assert trained.model.endswith("ftjob-1")
    assert len(server.creates) == 1 and len(server.files) == 1  # no second upload or job
    assert server.log.count("POST /files") == 1


def test_a_kill_between_create_and_record_finds_the_job_by_its_key(tmp_path: Path) -> None:
    """Only the file id was recorded: the job is found by metadata.promptcast_key."""
    data = TrainingSet.of(CONVERSATIONS)
    with FakeFineTuningServer(polls=0) as server:
        trainer = _trainer(server.url)
        trainer.train(data, "m", tmp_path)
        path = next(tmp_path.glob("finetune-*.json"))
        record = json.loads(path.read_text())
        path.write_text(json.dumps({"file_id": record["file_id"], "key": record["key"]}))
        again = trainer.train(data, "m", tmp_path)
    assert again.model.endswith("ftjob-1")
    assert len(server.creates) == 1
    assert "GET /fine_tuning/jobs" in server.log


def test_other_data_or_params_is_another_job(tmp_path: Path) -> None:
    with FakeFineTuningServer(polls=0) as server:
        _trainer(server.url).train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
        _trainer(server.url, epochs=1).train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
        _trainer(server.url).train(TrainingSet.of(CONVERSATIONS[:1]), "m", tmp_path)
    assert len(server.creates) == 3
    assert len(list(tmp_path.glob("finetune-*.json"))) == 3


def test_no_endpoint_and_empty_data_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="needs the fine-tuning endpoint"):
        OpenAIFineTuning().train(TrainingSet.of(CONVERSATIONS), "m", tmp_path)
    with pytest.raises(TrainingError, match="training set is empty"):
        OpenAIFineTuning(api_base="http://127.0.0.1:9/v1").train(TrainingSet.of([]), "m", tmp_path)


def test_the_api_key_never_shows_in_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-abcdef123456")
    with pytest.raises(TrainingError) as caught:
        _trainer("http://127.0.0.1:9/v1", max_retries=0).train(
            TrainingSet.of(CONVERSATIONS), "m", tmp_path
        )
    assert "sk-secret" not in str(caught.value)
