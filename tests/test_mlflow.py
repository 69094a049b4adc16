"""MLflow run tracking: an optimize and an eval run logged to a temporary local store and read
back with MLflow's own client; mlflow imported only when asked for; a clear error without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import FakeOpenAIServer
from tests.test_cli_optimize import cli, optimize, project, server  # noqa: F401


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(uri: str, experiment: str = "promptcast") -> Any:
    c = client(uri)
    found = c.get_experiment_by_name(experiment)
    assert found is not None
    runs = c.search_runs([found.experiment_id])
    assert len(runs) == 1
    return runs[0]


def artifacts(uri: str, run_id: str, path: str | None = None) -> list[str]:
    return sorted(a.path for a in client(uri).list_artifacts(run_id, path))


def test_an_optimize_run_is_logged_and_read_back(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    result = optimize(
        server, "--optimizer", "random_search", "--optimizer-arg", "num_candidates=2",
        "--mlflow-uri", uri,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(uri)
    assert f"mlflow: run {run.info.run_id} in {uri}" in result.output
    assert run.info.status == "FINISHED"
    lock = json.loads((project / "promptcast.lock.json").read_text())
    record = lock["functions"]["cliapp.steps:kind"]["optimization"]
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["target"] == "cliapp.steps:kind" and params["optimizer"] == "random_search"
    assert params["model"] == "openai/fake-model" and params["metric"] == "exact_match"
    assert params["optimizer.num_candidates"] == "2" and params["seed"] == "0"
    assert params["dev.sha256"] == lock_hash(record, "dev")
    assert metrics["dev_score_before"] == record["dev_score_before"]
    assert metrics["dev_score_after"] == record["dev_score_after"]
    assert metrics["lm_requests"] == record["lm_requests"]
    assert metrics["prompt_tokens"] == record["prompt_tokens"]
    assert metrics["completion_tokens"] == record["completion_tokens"]
    assert metrics["cost_usd"] == 0.0 and metrics["candidates"] == len(record["candidates"])
    assert tags["promptcast.command"] == "optimize" and tags["promptcast.lock"] == "updated"
    history = client(uri).get_metric_history(run.info.run_id, "candidate_dev_score")
    assert [(m.step, m.value) for m in history] == [
        (c["lm_requests"], c["dev_score"]) for c in record["candidates"]
    ]
    assert artifacts(uri, run.info.run_id) == ["promptcast.lock.json", "report"]
    report = artifacts(uri, run.info.run_id, "report")
    assert [Path(p).suffix for p in report] == [".html", ".md", ".png"]
    local = client(uri).download_artifacts(run.info.run_id, "promptcast.lock.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == lock


def lock_hash(record: dict[str, Any], name: str) -> str:
    return str(record["datasets"][name]["sha256"])


def test_an_eval_run_is_logged_with_its_results(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli(
        "eval", "cliapp.steps:kind", "--data", "dev.jsonl", "--label", "coarse",
        "--metric", "exact_match", "--model", "openai/fake-model", "--api-base", server.url,
        "--html", "eval.html", "--mlflow-uri", uri,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = only_run(uri)
    assert run.data.params["data"] == "dev.jsonl" and run.data.tags["promptcast.command"] == "eval"
    assert run.data.metrics["examples"] == 4.0
    assert 0.0 <= run.data.metrics["score"] <= 1.0
    assert artifacts(uri, run.info.run_id) == ["eval_results.json", "report"]
    local = client(uri).download_artifacts(run.info.run_id, "eval_results.json", str(tmp_path))
    data = json.loads(Path(local).read_text())
    assert data["n"] == 4 and len(data["examples"]) == 4


def test_the_default_store_is_local_and_config_turns_it_on(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (project / "pyproject.toml").write_text(
        '[tool.promptcast]\nmlflow = true\nmlflow_experiment = "trec"\n'
    )
    result = optimize(server, "--optimizer", "labeled")
    assert result.exit_code == 0, result.output
    store = project / ".promptcast" / "mlflow.db"
    assert store.exists()
    run = only_run(f"sqlite:///{store}", "trec")
    assert run.data.params["optimizer"] == "labeled"
    assert (project / ".promptcast" / "mlartifacts").is_dir()


def test_without_mlflow_installed_the_flag_fails_before_any_call(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    before = server.counts.get("chat", 0)
    result = optimize(server, "--optimizer", "labeled", "--mlflow")
    assert result.exit_code == 2
    assert "pip install 'promptcast[mlflow]'" in result.output
    assert server.counts.get("chat", 0) == before
    assert not (project / "promptcast.lock.json").exists()


def test_mlflow_is_imported_only_when_tracking_is_asked_for() -> None:
    code = (
        "import sys\n"
        "import promptcast.cli, promptcast.commands.optimize, promptcast.commands.eval\n"
        "import promptcast.tracking.mlflow\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
