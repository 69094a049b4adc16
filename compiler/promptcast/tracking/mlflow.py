"""Run tracking with MLflow: each `optimize` / `compile` / `eval` run as an MLflow run.

    promptcast optimize ... --mlflow                 # local store: .promptcast/mlflow.db
    promptcast optimize ... --mlflow-uri URI         # any MLflow tracking URI (a server too)
    [tool.promptcast] mlflow = true                  # or a URI; mlflow_experiment = "name"

What is logged: parameters (target, model, optimizer and its parameters, seed, metric, objective,
train/dev rows and dataset hashes); metrics (dev score before and after, LM requests, prompt and
completion tokens, paid calls, cache hits, cost in USD, wall time, and every candidate's dev score
as a series stepped by the LM requests spent); tags (the command, whether the lock was updated or
kept, the winner); artifacts (the lock file and the HTML / markdown / PNG report). An `eval` run
logs its score, examples, errors, calls, tokens and cost, its per-example results as JSON, and
the HTML report when `--html` wrote one.

Why optional and lazy: mlflow is heavy (about 2 s to import here and dozens of distributions),
and most builds do not track runs. This module imports it only when tracking is asked for; the
rest of the compiler never does. Without it installed, asking for tracking is an error before
any LM call is made: `pip install 'promptcast[mlflow]'`.

The default store is a SQLite file beside the cache (MLflow's file store is in maintenance
mode), with artifacts under `.promptcast/mlartifacts`; `MLFLOW_TRACKING_URI` in the
environment is honoured when no URI is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PromptcastError

DEFAULT_EXPERIMENT = "promptcast"
STORE_DIR = Path(".promptcast")


class TrackingError(PromptcastError):
    """Tracking was asked for and cannot be done (mlflow missing, a bad setting)."""


@dataclass(frozen=True)
class Settings:
    uri: str
    experiment: str
    artifacts: str | None  # where a new experiment keeps artifacts (None: the server decides)


def settings(
    flag: bool, uri: str | None, config: Mapping[str, Any], project: Path = Path(".")
) -> Settings | None:
    """The tracking settings for this run, or None when tracking is off.

    `flag` is `--mlflow`, `uri` `--mlflow-uri` (which implies it); `config` the
    `[tool.promptcast]` values (`mlflow`: true, false or a URI; `mlflow_experiment`).
    """
    configured = config.get("mlflow")
    if isinstance(configured, str) and not uri:
        uri = configured
    if not (flag or uri or configured is True or isinstance(configured, str)):
        return None
    require_mlflow()
    experiment = str(config.get("mlflow_experiment") or DEFAULT_EXPERIMENT)
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri:
        store = (project / STORE_DIR).resolve()
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store / 'mlflow.db'}"
        artifacts = (store / "mlartifacts").as_uri()
    return Settings(uri, experiment, artifacts)


def require_mlflow() -> None:
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise TrackingError(
            "--mlflow needs MLflow, which is not installed: pip install 'promptcast[mlflow]'"
            " (or mlflow), or drop --mlflow / `mlflow` from [tool.promptcast]"
        )


def _client(s: Settings) -> tuple[Any, str]:
    """An MlflowClient on the store and the experiment's id (created on first use)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=s.uri)
    found = client.get_experiment_by_name(s.experiment)
    if found is not None:
        return client, str(found.experiment_id)
    return client, str(client.create_experiment(s.experiment, artifact_location=s.artifacts))


def _param(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]  # MLflow's limit on a parameter value


def log_optimize(
    s: Settings,
    *,
    command: str,
    target: str,
    model: str,
    result: Any,
    datasets: Mapping[str, Any],
    objective: str,
    lock: Path,
    report: Any,
    wall_s: float,
    kept: bool,
) -> str:
    """Log one optimize run; its MLflow run id."""
    client, experiment = _client(s)
    run = client.create_run(
        experiment,
        run_name=f"{target} {result.optimizer} seed{result.seed}",
        tags={
            "promptcast.command": command,
            "promptcast.target": target,
            "promptcast.lock": "kept" if kept else "updated",
            "promptcast.winner": result.best_label or "zero-shot",
        },
    )
    run_id = str(run.info.run_id)
    try:
        params: dict[str, Any] = {
            "target": target,
            "model": model,
            "optimizer": result.optimizer,
            "seed": result.seed,
            "metric": result.metric,
            "objective": objective,
            "functions": sorted(result.states),
        }
        for key, value in sorted(result.params.items()):
            params[f"optimizer.{key}"] = value
        for name in ("train", "dev"):
            data = datasets.get(name)
            if isinstance(data, Mapping):
                for key in ("path", "sha256", "rows", "rows_used", "split_of"):
                    if key in data:
                        params[f"{name}.{key}"] = data[key]
        from mlflow.entities import Metric, Param, RunTag

        usage = result.usage
        metrics: dict[str, float] = {
            "lm_requests": usage.requests,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "paid_calls": usage.paid.calls,
            "cache_hits": usage.paid.cache_hits,
            "cost_usd": usage.paid.cost,
            "wall_s": wall_s,
            "candidates": len(result.history),
        }
        if result.dev_score_before is not None:
            metrics["dev_score_before"] = result.dev_score_before
        if result.dev_score_after is not None:
            metrics["dev_score_after"] = result.dev_score_after
        import time

        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        # One timestamp per candidate (1 ms apart, in run order): racing records several
        # candidates at the same request count, and MLflow keeps only one of identical entries.
        entries += [
            Metric("candidate_dev_score", float(c.dev_score), now + i, int(c.lm_requests))
            for i, c in enumerate(result.history)
        ]
        client.log_batch(
            run_id,
            metrics=entries,
            params=[Param(k, _param(v)) for k, v in params.items()],
            tags=[RunTag("promptcast.stopped", result.stopped)] if result.stopped else [],
        )
        if lock.exists():
            client.log_artifact(run_id, str(lock))
        for path in (report.html, report.markdown, report.png):
            if Path(path).exists():
                client.log_artifact(run_id, str(path), artifact_path="report")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def log_eval(
    s: Settings,
    *,
    target: str,
    model: str,
    report: Any,
    data: str,
    built: str | None,
    html: Path | None,
) -> str:
    """Log one eval run; its MLflow run id."""
    import json
    import tempfile

    client, experiment = _client(s)
    run = client.create_run(
        experiment,
        run_name=f"{target} eval {Path(data).name}",
        tags={"promptcast.command": "eval", "promptcast.target": target},
    )
    run_id = str(run.info.run_id)
    try:
        params = {"target": target, "model": model, "data": data, "metric": report.metric}
        if built:
            params["built"] = built
        for key, value in params.items():
            client.log_param(run_id, key, _param(value))
        usage = report.usage
        for key, value in {
            "score": report.score,
            "examples": report.n,
            "errors": report.errors,
            "failures": len(report.failures),
            "lm_calls": usage.calls,
            "cache_hits": usage.cache_hits,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": usage.cost,
            "wall_s": report.seconds,
        }.items():
            client.log_metric(run_id, key, float(value))
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "eval_results.json"
            results.write_text(
                json.dumps(report.to_json(include_examples=True), ensure_ascii=False, indent=1)
            )
            client.log_artifact(run_id, str(results))
        if html is not None and html.exists():
            client.log_artifact(run_id, str(html), artifact_path="report")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
