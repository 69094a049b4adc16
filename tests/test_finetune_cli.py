"""`promptcast optimize --optimizer finetune` from the command line: a fake chat server whose
"fine-tuned" model (requests naming `ft:...`) is always right, the fake fine-tuning server, the
lock, `build`, and `eval --built`: the built module calls the trained model and scores what the
optimizer measured."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.finetune_server import FakeFineTuningServer
from tests.support.openai_server import FakeOpenAIServer
from tests.support.scripted_lm import QUESTIONS, ScriptedLM, sections
from tests.test_cli_optimize import cli, fresh_process, write_project

ALWAYS = ["How many legs has a spider?", "Where is Paris?", "Where is Lima?"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    yield tmp_path
    fresh_process(saved_path)


@pytest.fixture
def chat() -> Iterator[FakeOpenAIServer]:
    base = ScriptedLM(QUESTIONS, always=ALWAYS)

    def respond(request: dict[str, Any]) -> str:
        if str(request.get("model", "")).startswith("ft:"):
            question = sections(request["messages"][-1]["content"])["question"]
            return f"[[ ## answer ## ]]\n{QUESTIONS[question]}\n\n[[ ## completed ## ]]"
        return base.complete(request["messages"]).text

    with FakeOpenAIServer(respond) as fake:
        yield fake


def _optimize(chat: FakeOpenAIServer, jobs: FakeFineTuningServer, *extra: str) -> Any:
    return cli(
        "optimize", "cliapp.steps:kind", "--train", "train.jsonl", "--dev", "dev.jsonl",
        "--metric", "exact_match", "--label", "coarse", "--model", "openai/fake-model",
        "--api-base", chat.url, "--optimizer", "finetune",
        "--optimizer-arg", f"api_base={jobs.url}", "--optimizer-arg", "poll_seconds=0",
        *extra,
    )  # fmt: skip


def test_dry_run_prints_examples_tokens_epochs_and_cost(
    project: Path, chat: FakeOpenAIServer
) -> None:
    with FakeFineTuningServer() as jobs:
        out = _optimize(chat, jobs, "--dry-run", "--optimizer-arg", "epochs=3")
        assert out.exit_code == 0, out.output
        assert "training (openai): at most 8 conversations" in out.output
        assert "3 epoch(s)" in out.output
        assert "cost: unknown" in out.output
        priced = _optimize(chat, jobs, "--dry-run", "--optimizer-arg", "price=25")
        assert "cost: at most ~$" in priced.output and "$25.0/1M training tokens" in priced.output
        assert not jobs.log  # nothing uploaded, nothing created
    assert chat.counts.get("chat", 0) == 0
    assert not (project / "promptcast.lock.json").exists()


def test_optimize_build_eval_the_built_module_calls_the_trained_model(
    project: Path, chat: FakeOpenAIServer
) -> None:
    with FakeFineTuningServer(polls=1) as jobs:
        out = _optimize(chat, jobs)
        assert out.exit_code == 0, out.output
        assert "dev exact_match: 0.500 -> 1.000" in out.output
        assert "finetune: trained ft:base:promptcast:ftjob-1 from fake-model" in out.output
    entry = json.loads((project / "promptcast.lock.json").read_text())["functions"][
        "cliapp.steps:kind"
    ]
    assert entry["state"]["model"] == "ft:base:promptcast:ftjob-1"
    training = entry["optimization"]["training"]
    assert training["base_model"] == "fake-model" and training["trainer"] == "openai"
    assert training["training_set"]["conversations"] == 5  # ALWAYS + the 2 HUM questions
    build = cli("build", "cliapp", "-o", "build")
    assert build.exit_code == 0, build.output
    source = (project / "build" / "cliapp" / "steps.py").read_text()
    assert '"model": "ft:base:promptcast:ftjob-1"' in source
    scored = [r for r in chat.requests if r.get("model") == "ft:base:promptcast:ftjob-1"]
    before = len(chat.requests)
    for flags in ([], ["--no-cache"]):
        saved = list(sys.path)
        report = cli(
            "eval", "cliapp.steps:kind", "--built", "build", "--data", "dev.jsonl",
            "--metric", "exact_match", "--label", "coarse", "--json", "--model",
            "openai/fake-model", "--api-base", chat.url, *flags,
        )  # fmt: skip
        fresh_process(saved)
        assert report.exit_code == 0, report.output
        assert json.loads(report.output)["score"] == 1.0  # what the optimizer measured
    # The first eval was answered from the optimize run's cache: the built module's requests
    # are byte-identical to the ones the optimizer scored. --no-cache sends them again.
    sent = chat.requests[before:]
    assert len(sent) == 4 and {r["model"] for r in sent} == {"ft:base:promptcast:ftjob-1"}
    assert sorted(json.dumps(r, sort_keys=True) for r in sent) == sorted(
        json.dumps(r, sort_keys=True) for r in scored
    )
