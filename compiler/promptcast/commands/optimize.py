"""`promptcast optimize`: search demos for everything a target calls; record them in the lock.

The command is a thin shell over `promptcast.optimizers.optimize`: resolve flags against
`[tool.promptcast]`, load and bind the data, build the engine LM (cache + budget), run, write
the lock atomically, print a summary. `compile` reuses `run_optimize`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..config import Config, load_config
from ..engine.runner import DEFAULT_THREADS
from ..optimizers.registry import OPTIMIZERS
from ..optimizers.selection import Objective
from .common import (
    Pacing,
    column_mapping,
    fail_on,
    flag_lm_params,
    lm_options,
    load_bound,
    make_lm,
    optional_float,
    pacing_options,
    pick,
    require,
    target_io,
    user_errors,
)

DEFAULT_SEED = 0


@dataclass(frozen=True)
class OptimizeOptions:
    """The optimize flags after config fallbacks."""

    target: str
    train: Path
    dev: Path | None
    metric: str
    optimizer: str
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    model: str = ""
    api_base: str | None = None
    threads: int = DEFAULT_THREADS
    seed: int = DEFAULT_SEED
    max_calls: int | None = None
    max_usd: float | None = None
    requests_per_minute: float | None = None
    """The provider's request rate limit, honoured by every LM call of the run."""
    tokens_per_minute: float | None = None
    """The provider's token rate limit (prompt + max_tokens counted up front)."""
    reflection_model: str | None = None
    reflection_api_base: str | None = None
    lock: Path = Path("promptcast.lock.json")
    replace_lock: bool = False
    """Lock the result even when it is unscored or worse than the locked state."""
    lm_params: dict[str, Any] = field(default_factory=dict)
    """The project's sampling parameters (`[tool.promptcast] lm_params`)."""
    run_lm_params: dict[str, Any] = field(default_factory=dict)
    """`--lm-param` flags: over every step's sampling, scored and locked."""
    objective: Objective = field(default_factory=Objective)
    """How the winner is chosen among fully scored candidates (`--objective`)."""
    prune_demos: bool = False
    """`--prune-demos`: drop the winner's demos that do not help on dev."""

    @classmethod
    def resolve(cls, config: Config, flags: dict[str, Any]) -> OptimizeOptions:
        from ..config import project_lm_params
        from ..optimizers import parse_optimizer_args

        optimizer = pick(flags.get("optimizer"), config, "optimizer")
        args: dict[str, Any] = {}
        if optimizer == config.get("optimizer"):  # the config's args belong to its optimizer
            args.update(config.get("optimizer_args", {}) or {})
        args.update(parse_optimizer_args(flags.get("optimizer_arg") or ()))
        train = flags.get("train") or config.path("train")
        dev = flags.get("dev") or config.path("dev")
        pacing = Pacing.resolve(flags, config)
        return cls(
            target=require(
                pick(flags.get("target"), config, "target"), "MODULE:FUNCTION", "target"
            ),
            train=Path(require(train, "--train", "train")),
            dev=Path(dev) if dev else None,
            metric=require(pick(flags.get("metric"), config, "metric"), "--metric", "metric"),
            optimizer=require(optimizer, "--optimizer", "optimizer"),
            optimizer_args=args,
            label=pick(flags.get("label"), config, "label"),
            columns=column_mapping(flags.get("columns"), config),
            model=require(pick(flags.get("model"), config, "model"), "--model", "model"),
            api_base=pick(flags.get("api_base"), config, "api_base"),
            threads=pacing.concurrency,
            seed=int(pick(flags.get("seed"), config, "seed", DEFAULT_SEED)),
            max_calls=_optional_int(pick(flags.get("max_calls"), config, "max_calls")),
            max_usd=optional_float(pick(flags.get("max_usd"), config, "max_usd")),
            requests_per_minute=pacing.requests_per_minute,
            tokens_per_minute=pacing.tokens_per_minute,
            reflection_model=pick(flags.get("reflection_model"), config, "reflection_model"),
            reflection_api_base=pick(
                flags.get("reflection_api_base"), config, "reflection_api_base"
            ),
            lock=flags.get("lock") or config.lock_path(),
            replace_lock=bool(flags.get("replace_lock")),
            lm_params=project_lm_params(config),
            run_lm_params=flag_lm_params(flags.get("lm_param")),
            objective=Objective.parse(
                str(pick(flags.get("objective"), config, "objective", "accuracy"))
            ),
            prune_demos=bool(flags.get("prune_demos") or config.get("prune_demos")),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def optimize_flags(fn: Any) -> Any:
    """The optimize surface (shared with compile)."""
    options = [
        click.argument("target", required=False),
        click.option(
            "--train", type=click.Path(path_type=Path), help="Training data (JSONL, JSON, CSV)."
        ),
        click.option(
            "--dev",
            type=click.Path(path_type=Path),
            help="Dev data (default: a seeded split of train).",
        ),
        click.option("--optimizer", help=f"One of: {', '.join(OPTIMIZERS)}."),
        lm_options,
        click.option("--seed", type=int, help="Seed of every random choice (default 0)."),
        click.option(
            "--max-calls", type=int, help="Budget: at most N paid LM calls (cache hits are free)."
        ),
        click.option(
            "--max-usd",
            type=float,
            help="Budget: stop starting paid calls once they cost this many dollars"
            " (where the provider's price is known).",
        ),
        pacing_options,
        click.option(
            "--reflection-model",
            help="gepa: the model that reflects and rewrites instructions (default: --model).",
        ),
        click.option("--reflection-api-base", help="gepa: its endpoint (default: --api-base)."),
        click.option("--lock", type=click.Path(path_type=Path), help="Lock file to update."),
        click.option(
            "--optimizer-arg",
            multiple=True,
            metavar="K=V",
            help="An optimizer parameter, e.g. max_labeled_demos=4.",
        ),
        click.option(
            "--objective",
            metavar="OBJECTIVE",
            help="How the winner is chosen: accuracy (default; a tie goes to the state with"
            " fewer tokens per run), weighted:W (score minus W points per 1,000 tokens per"
            " run), or within:X (the cheapest candidate within X of the best score).",
        ),
        click.option(
            "--prune-demos",
            is_flag=True,
            help="After the search, drop each of the winner's demos whose removal does not"
            " lower its dev score (one raced dev pass per demo).",
        ),
        click.option(
            "--dry-run", is_flag=True, help="Estimate LM calls; call nothing, write nothing."
        ),
        click.option(
            "--replace-lock",
            is_flag=True,
            help="Lock the new result even when it is unscored or scores below the state"
            " already locked (which optimize otherwise keeps, exiting 1).",
        ),
        click.option(
            "--mlflow",
            is_flag=True,
            default=False,
            help="Log the run to MLflow (params, scores, calls, tokens, cost; the lock and the"
            " report as artifacts): .promptcast/mlflow.db unless --mlflow-uri or"
            " MLFLOW_TRACKING_URI; also `mlflow = true` in [tool.promptcast].",
        ),
        click.option("--mlflow-uri", help="MLflow tracking URI (implies --mlflow)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@optimize_flags
def optimize(**flags: Any) -> None:
    """Optimize MODULE:FUNCTION on data with a metric; update the lock for everything it calls."""
    try:
        options = OptimizeOptions.resolve(load_config(), flags)
        outcome = run_optimize(options, dry_run=bool(flags.get("dry_run")))
    except user_errors() as exc:
        fail_on(exc)
    if outcome == KEPT:
        sys.exit(KEPT_EXIT_CODE)


DRY_RUN = "dry-run"
"""`run_optimize` outcome: only the estimate was printed."""
LOCKED = "locked"
"""`run_optimize` outcome: the result was written to the lock."""
KEPT = "kept"
"""`run_optimize` outcome: the lock already held a state the result does not beat (or the
result is unscored), so the lock was left as it was; the reason is on stderr."""

KEPT_EXIT_CODE = 1
"""Exit code of `optimize` (and `compile`, after building) when the lock was kept.

Not 0: the run did not produce what was asked (a new locked state), and a script or CI step
must be able to tell "updated" from "unchanged" without parsing stderr -- a budget-stopped run
that changed nothing is not a success. Not 2: nothing the user gave was wrong; 2 stays "bad
input". 1 is what the other commands use for "ran fine, the result is not what you wanted"
(`build --check`: stale). `--replace-lock` locks the result anyway (exit 0).
"""


def run_optimize(options: OptimizeOptions, *, dry_run: bool = False) -> str:
    """Optimize and write the lock (`LOCKED`), keep the lock because the result does not beat
    its state (`KEPT`, reason on stderr), or only print the estimate (`DRY_RUN`)."""
    from ..api import LMFunction
    from ..context import project_lm_params_of
    from ..evaluate import split_train_dev
    from ..lockfile import load_lock, save_lock
    from ..optimizers import OptimizationTask, make_optimizer, optimize
    from ..optimizers.base import estimate_runs
    from ..optimizers.record import lock_entries
    from ..targets import load_target

    target = load_target(options.target)
    optimizer = make_optimizer(options.optimizer, options.optimizer_args)
    io = target_io(target)
    train_data, train = load_bound(options.train, io, options.label, options.columns)
    datasets: dict[str, Any] = {"train": _describe(options.train, train_data.sha256, len(train))}
    if options.dev is not None:
        dev_data, dev = load_bound(options.dev, io, options.label, options.columns)
        datasets["dev"] = _describe(options.dev, dev_data.sha256, len(dev))
    else:
        train, dev = split_train_dev(train, seed=options.seed)
        datasets["train"]["rows_used"] = len(train)
        datasets["dev"] = {"split_of": "train", "seed": options.seed, "rows": len(dev)}
    if dry_run:
        runs = estimate_runs(target, optimizer, len(train), len(dev))
        per_run = (
            "1 LM call each" if isinstance(target, LMFunction) else "one LM call per step each"
        )
        click.echo(
            f"{options.optimizer} on {len(train)} train / {len(dev)} dev examples: at most "
            f"{runs} program runs ({per_run}) before cache hits; params {optimizer.params()}"
        )
        for line in optimizer.dry_run_lines(target, train):
            click.echo(line)
        return DRY_RUN
    lock = load_lock(options.lock)  # fail on a broken lock before spending anything
    tracking = _tracking()  # --mlflow without MLflow installed fails here, before any call
    lm = make_lm(options.model, options.api_base, Path("."))
    Pacing(options.threads, options.requests_per_minute, options.tokens_per_minute).limit(lm)
    start = time.perf_counter()
    task = OptimizationTask(
        target=target,
        trainset=train,
        devset=dev,
        metric=options.metric,
        lm=lm,
        threads=options.threads,
        seed=options.seed,
        max_calls=options.max_calls,
        max_usd=options.max_usd,
        reflection_lm=make_lm(
            options.reflection_model, options.reflection_api_base or options.api_base, Path(".")
        )
        if options.reflection_model
        else None,
        progress=None,
        lm_params=options.lm_params,
        run_lm_params=options.run_lm_params,
        objective=options.objective,
        prune_demos=options.prune_demos,
        lock=lock,
    )
    with project_lm_params_of(options.lm_params):
        result = optimize(task, optimizer)
    wall = time.perf_counter() - start
    entries = lock_entries(result, model=options.model, datasets=datasets)
    kept = _why_keep(lock, result, options, datasets, lm, target, dev)
    if kept is None:
        for qualname, entry in entries.items():
            lock = lock.with_entry(qualname, entry)
        save_lock(lock, options.lock)
    _summary(options, result, wall, len(dev), len(entries), kept=kept is not None)
    paths = _write_report(options, result, lm, target, dev)
    click.echo(f"  report: {paths.markdown} ({paths.png.name}); open {paths.html}")
    if tracking is not None:
        from ..tracking.mlflow import log_optimize

        run_id = log_optimize(
            tracking,
            command=_command_name(),
            target=options.target,
            model=options.model,
            result=result,
            datasets=datasets,
            objective=result.objective,
            lock=options.lock,
            report=paths,
            wall_s=wall,
            kept=kept is not None,
        )
        click.echo(f"  mlflow: run {run_id} in {tracking.uri}")
    if kept is not None:
        click.echo(f"promptcast optimize: {kept}", err=True)
        return KEPT
    return LOCKED


def _tracking() -> Any:
    """The MLflow settings of this run (`tracking.mlflow.settings`), or None: not tracked."""
    from ..tracking.mlflow import settings

    context = click.get_current_context(silent=True)
    params = context.params if context is not None else {}
    return settings(bool(params.get("mlflow")), params.get("mlflow_uri"), load_config().values)


def _command_name() -> str:
    context = click.get_current_context(silent=True)
    return str(context.info_name) if context is not None and context.info_name else "optimize"


def _write_report(
    options: OptimizeOptions, result: Any, lm: Any, target: Any, dev: list[Any]
) -> Any:
    """The run's report (HTML, markdown, PNG); the dev outcomes and prompt diff are replayed
    through the cache (`reporting.outcomes`), or left out, saying why, where they would cost."""
    from ..optimizers.capabilities import with_endpoint_choices
    from ..optimizers.report import write_report
    from ..reporting import outcomes as replay

    context = click.get_current_context(silent=True)
    no_cache = bool(context is not None and context.params.get("no_cache"))
    outcomes = None
    prompts: list[Any] = []
    missing: str | None = None
    if result.dev_score_after is None:
        missing = "The run did not score dev (dev_score=false or a budget stop): no outcomes."
    elif no_cache:
        missing = "--no-cache: replaying dev for the report would pay every request again."
    elif dev:
        zero = replay.zero_shot_states(result.functions, options.lm_params, options.run_lm_params)
        zero = with_endpoint_choices(zero, result.states)  # the probed response_format
        try:
            outcomes = replay.dev_outcomes(
                target,
                lm,
                dev,
                options.metric,
                options.threads,
                result.states,
                zero,
                options.run_lm_params,
            )
            prompts = replay.prompt_pairs(
                target, lm, dev[0], result.states, zero, options.run_lm_params
            )
        except Exception as exc:  # noqa: BLE001 -- the lock is written; the report says why
            missing = f"Replaying dev for the report failed: {type(exc).__name__}: {exc}"
    return write_report(
        result,
        options.lock.parent / REPORTS_DIR,
        options.target,
        options.model,
        prompts=prompts,
        outcomes=outcomes,
        outcomes_missing=missing,
    )


def _why_keep(
    lock: Any,
    result: Any,
    options: OptimizeOptions,
    datasets: dict[str, Any],
    lm: Any,
    target: Any,
    dev: list[Any],
) -> str | None:
    """Why the lock keeps its state instead of `result` (one stderr line), or None: write it.

    The lock's usable entries for the result's functions are replaced only by a result that is
    scored on dev and scores at least as well as they do, on this run's dev data and metric.
    When their recorded score was measured the same way (same dev data by content, metric and
    model), the numbers are compared as they are; when it was not (other data, another metric
    or model, an unscored or partial entry), the locked state is scored now on this run's dev
    set -- within what is left of the budget -- since a score from other data says nothing
    about this one. `--replace-lock` skips all of this.
    """
    from ..optimizers.record import (
        SCORE_DIGITS,
        comparable_locked_score,
        describe_locked,
        protected_entries,
        same_states,
    )

    protected = protected_entries(lock, result)
    if not protected or same_states(protected, result):
        return None
    names = ", ".join(sorted(protected))
    locked = f"the locked state of {names} ({describe_locked(protected)})"
    if options.replace_lock:
        click.echo(f"  replacing {locked} as asked (--replace-lock)", err=True)
        return None
    keep = f"kept {locked} in {options.lock}"
    anyway = "; pass --replace-lock to lock the new result anyway"
    new = result.dev_score_after
    if new is None:
        why = (
            f"the run stopped before any candidate was scored on dev ({result.stopped})"
            if result.stopped
            else "it is not scored on dev (dev_score=false)"
        )
        return f"{keep}: the new result is unscored, {why}{anyway}"
    new = round(new, SCORE_DIGITS)
    old = comparable_locked_score(protected, result, model=options.model, datasets=datasets)
    how = "on the same dev data"
    if old is None:
        old = _score_locked(protected, result, options, lm, target, dev)
        if old is None:
            return (
                f"{keep}: it was scored on other dev data, metric or model, and what is left of"
                f" the budget could not score it on this run's dev set to compare{anyway}"
            )
        how = "on this run's dev data, where the locked state was scored just now"
        click.echo(f"  locked state, scored on this run's dev set: {old:.3f}")
    if new < old:
        return (
            f"{keep}: the new result scores {new:.3f} < {old:.3f} {how}"
            + (f" (the run stopped early: {result.stopped})" if result.stopped else "")
            + anyway
        )
    return None


def _score_locked(
    protected: dict[str, Any],
    result: Any,
    options: OptimizeOptions,
    lm: Any,
    target: Any,
    dev: list[Any],
) -> float | None:
    """The dev score of the locked states (zero-shot where a function has no entry) on this
    run's dev set, sent as they ship (their own lm_params, no --lm-param), through the run's LM
    and cache under what is left of the budget; None when the budget or the LM gave out."""
    from promptcast_runtime import LMError

    from ..engine.budget import LMBudget
    from ..engine.program import ProgramEngine
    from ..evaluate import evaluate
    from ..ir import FunctionState

    states = {
        qualname: protected[qualname].state
        if qualname in protected
        else FunctionState.zero_shot(signature, options.lm_params)
        for qualname, signature in result.functions.items()
    }
    paid = result.usage.paid
    calls = None if options.max_calls is None else options.max_calls - paid.calls
    usd = None if options.max_usd is None else options.max_usd - paid.cost
    if (calls is not None and calls <= 0) or (usd is not None and usd <= 0):
        return None
    if (calls, usd) != (None, None):
        lm.budget = LMBudget(calls, usd)  # the engine LM's own budget: paid calls, exact

    engine = ProgramEngine(target, lm)  # no --lm-param: the locked states as they ship

    def run(**inputs: Any) -> Any:
        return engine.output(inputs, states)

    report = evaluate(run, dev, options.metric, options.threads, description="locked state")
    if report.stopped or report.n < len(dev):
        return None
    if report.results and all((r.error or "").startswith(LMError.__name__) for r in report.results):
        return None
    return round(report.score, 6)


REPORTS_DIR = Path(".promptcast") / "reports"
"""Where each optimize run's report goes, beside the lock (gitignored with the cache)."""


def _candidate_line(record: Any, n_dev: int) -> str:
    """`bootstrap  0.475 [0.33, 0.63]  412 tok/run  (95 requests so far)`; a raced one says
    on how many rows it was stopped."""
    score = f"{record.dev_score:.3f}"
    if record.interval is not None:
        score += f" [{record.interval[0]:.2f}, {record.interval[1]:.2f}]"
    cost = f"{record.cost:.0f} tok/run" if record.prompt_tokens_per_call else ""
    raced = "" if record.complete else f"  stopped after {record.dev_examples}/{n_dev} rows"
    return f"{record.label:<28} {score}  {cost}  ({record.lm_requests} requests so far){raced}"


def _describe(path: Path, sha256: str, rows: int) -> dict[str, Any]:
    return {"path": path.as_posix(), "sha256": sha256, "rows": rows}


def _summary(
    options: OptimizeOptions,
    result: Any,
    wall: float,
    n_dev: int,
    n_functions: int,
    *,
    kept: bool = False,
) -> None:
    def fmt(score: float | None) -> str:
        return "n/a" if score is None else f"{score:.3f}"

    paid = result.usage.paid
    click.echo(f"optimized {options.target} with {result.optimizer} (seed {result.seed})")
    if result.dev_score_before is None and result.dev_score_after is None and not result.stopped:
        click.echo(f"  dev: not scored (dev_score=false); kept: {result.best_label}")
    else:
        click.echo(
            f"  dev {result.metric}: {fmt(result.dev_score_before)} -> "
            f"{fmt(result.dev_score_after)} on {n_dev} examples "
            f"(best: {result.best_label or 'zero-shot'})"
        )
    before, after = result.dev_score_before, result.dev_score_after
    if before is not None and after is not None and after < before:
        click.echo(
            f"  warning: the optimized state scores below zero-shot on dev ({fmt(after)} < "
            f"{fmt(before)}); it is locked as asked. To ship zero-shot instead, delete its "
            f"entry from {options.lock}; random_search keeps zero-shot among its candidates.",
            err=True,
        )
    for record in result.history:
        click.echo(f"    {_candidate_line(record, n_dev)}")
    for note in result.notes:
        click.echo(f"  {note}")
    click.echo(
        f"  LM requests {result.usage.requests}: paid calls {paid.calls}, cache hits "
        f"{paid.cache_hits}; tokens {result.usage.prompt_tokens}+{result.usage.completion_tokens}"
        + (f"; cost ${paid.cost:.4f}" if paid.cost else "")
        + f"; wall {wall:.1f}s"
    )
    if result.stopped:
        click.echo(f"  stopped early, kept the best state found so far: {result.stopped}")
    if kept:
        click.echo(f"  kept {options.lock} unchanged (see stderr)")
    else:
        click.echo(f"  wrote {options.lock} ({n_functions} function(s))")
