"""`promptcast eval`: score the source program (with the lock) or the built tree on a dataset.

`--built OUT` imports MODULE from the generated tree instead of the source: OUT goes first on
sys.path, any already-imported copy of the package is dropped so the import is fresh, and the
compiled function runs inside `promptcast_runtime.using(lm)` -- exactly how shipped code is
called, with the engine LM (cache, usage) behind it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from ..config import load_config
from ..errors import PromptcastError
from .common import (
    Pacing,
    column_mapping,
    fail_on,
    flag_lm_params,
    lm_options,
    load_bound,
    make_lm,
    pacing_options,
    pick,
    require,
    target_io,
    user_errors,
)


@click.command(name="eval")
@click.argument("target", required=False)
@click.option(
    "--data", type=click.Path(path_type=Path), help="Dataset to score on (JSONL, JSON, CSV)."
)
@click.option("--built", type=click.Path(path_type=Path), help="Score the generated tree in OUT.")
@click.option("--lock", type=click.Path(path_type=Path), help="Lock file the source program reads.")
@lm_options
@pacing_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (score, n, lm_calls, ...)."
)
@click.option("--all-failures", is_flag=True, help="List every failure, not the first 20.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    help="Also write the HTML report (every example, failures with field differences) here.",
)
@click.option(
    "--mlflow",
    is_flag=True,
    default=False,
    help="Log the eval to MLflow (score, calls, tokens, cost, per-example results, the HTML"
    " report): .promptcast/mlflow.db unless --mlflow-uri or MLFLOW_TRACKING_URI.",
)
@click.option("--mlflow-uri", help="MLflow tracking URI (implies --mlflow).")
def eval_command(**flags: Any) -> None:
    """Score MODULE:FUNCTION on a dataset: a table of failures and a summary."""
    from ..tracking.mlflow import settings

    try:
        tracking = settings(bool(flags.get("mlflow")), flags.get("mlflow_uri"), load_config().values)
        report = run_eval(flags)
        lm_failures = check_lm_failures(report)
    except user_errors() as exc:
        fail_on(exc)
    if flags.get("as_json"):
        data = report.to_json()
        data["lm_failures"] = len(lm_failures)
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        from ..reporting.table import print_failures

        print_failures(report, sys.stdout, limit=None if flags.get("all_failures") else 20)
        click.echo(report.summary())
    html: Path | None = None
    if flags.get("html_path"):
        html = write_eval_html(report, flags, flags["html_path"])
        click.echo(f"report: {html}", err=bool(flags.get("as_json")))
    if tracking is not None:
        from ..tracking.mlflow import log_eval

        config = load_config()
        built = flags.get("built")
        run_id = log_eval(
            tracking,
            target=str(pick(flags.get("target"), config, "target")),
            model=str(pick(flags.get("model"), config, "model")),
            report=report,
            data=str(flags.get("data") or config.path("test")),
            built=str(built) if built else None,
            html=html,
        )
        click.echo(f"mlflow: run {run_id} in {tracking.uri}", err=bool(flags.get("as_json")))
    if lm_failures:
        click.echo(
            f"warning: {len(lm_failures)} of {report.n} examples failed on the LM side and"
            f" scored 0; first ({lm_failures[0].example.where}): {lm_failures[0].error}",
            err=True,
        )


def write_eval_html(report: Any, flags: dict[str, Any], path: Path) -> Path:
    """The eval's HTML page (`reporting.html.eval_page`), written atomically."""
    from ..fsutil import atomic_write_bytes
    from ..reporting.html import eval_page

    config = load_config()
    spec = str(pick(flags.get("target"), config, "target"))
    built = flags.get("built")
    page = eval_page(
        report,
        target=spec,
        model=str(pick(flags.get("model"), config, "model")),
        what=f"the built tree {built}" if built else "the source with its lock",
        data=str(flags.get("data") or config.path("test")),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


class NoLMAnswered(PromptcastError):
    """Every example of an eval failed on the LM side: there is no score to report."""


def check_lm_failures(report: Any) -> list[Any]:
    """The results that failed on the LM side (an `LMError`: unreachable, refused, gave up).

    When that is every example, a score of 0.000 would be a silently wrong number -- it
    measures the connection, not the program -- so it raises `NoLMAnswered` (exit 2) naming
    the first error, as `optimize` does. A few such failures are part of the score (they
    count 0) and the command reports how many.
    """
    from promptcast_runtime import LMError

    failed = [r for r in report.results if (r.error or "").startswith(LMError.__name__)]
    if failed and len(failed) == report.n:
        first = failed[0]
        raise NoLMAnswered(
            f"every LM call failed: all {report.n} examples raised LMError, so there is no score;"
            f" first error ({first.example.where}): {first.error}"
        )
    return failed


def run_eval(flags: dict[str, Any]) -> Any:
    """Resolve flags against the config, load target and data, evaluate; the EvalReport."""
    from promptcast_runtime import using

    from ..config import project_lm_params
    from ..context import SETTINGS, candidate, project_lm_params_of, run_lm_params
    from ..evaluate import evaluate
    from ..targets import load_target

    config = load_config()
    spec = require(pick(flags.get("target"), config, "target"), "MODULE:FUNCTION", "target")
    data = flags.get("data") or config.path("test")
    data = Path(require(data, "--data", "test"))
    metric = require(pick(flags.get("metric"), config, "metric"), "--metric", "metric")
    model = require(pick(flags.get("model"), config, "model"), "--model", "model")
    api_base = pick(flags.get("api_base"), config, "api_base")
    pacing = Pacing.resolve(flags, config)
    label = pick(flags.get("label"), config, "label")
    built: Path | None = flags.get("built")
    overrides = flag_lm_params(flags.get("lm_param"))
    if built is not None and overrides:
        raise click.UsageError(
            "--lm-param with --built: a built module sends the lm_params it was built with"
            " (the lock's); optimize with --lm-param and build again to change them"
        )
    target = load_built(spec, built) if built is not None else load_target(spec)
    columns = column_mapping(flags.get("columns"), config)
    _, examples = load_bound(data, target_io(target), label, columns)
    lm = make_lm(model, api_base, Path("."))
    pacing.limit(lm)
    threads = pacing.concurrency
    description = f"eval {spec}" + (f" (built {built})" if built else "")
    if built is not None:
        with using(lm):
            return evaluate(target, examples, metric, threads, usage=lm, description=description)
    SETTINGS.lock_path = flags.get("lock") or config.lock_path()
    with (
        candidate(lm=lm),
        project_lm_params_of(project_lm_params(config)),
        run_lm_params(overrides),
    ):
        return evaluate(target, examples, metric, threads, usage=lm, description=description)


def load_built(spec: str, out: Path) -> Any:
    """The compiled function MODULE:FUNCTION from the generated tree `out`, imported fresh."""
    from ..targets import TargetError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"{spec!r}: expected MODULE:FUNCTION, e.g. app.triage:question_type")
    root = out.resolve()
    if not root.is_dir():
        raise TargetError(f"--built {out}: no such directory (run `promptcast build` first)")
    top = module_name.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"{spec}: cannot import {module_name!r} from {out}: {exc}") from None
    where = Path(getattr(module, "__file__", "") or "").resolve()
    if root not in where.parents:
        raise TargetError(f"{spec}: {module_name!r} was imported from {where}, not from {out}")
    function = getattr(module, attr, None)
    if not callable(function):
        raise TargetError(f"{spec}: the built module {module_name!r} has no function {attr!r}")
    return function
