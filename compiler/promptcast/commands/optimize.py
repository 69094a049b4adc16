"""`promptcast optimize`: search demos for everything a target calls; record them in the lock.

The command is a thin shell over `promptcast.optimizers.optimize`: resolve flags against
`[tool.promptcast]`, load and bind the data, build the engine LM (cache + budget), run, write
the lock atomically, print a summary. `compile` reuses `run_optimize`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..config import Config, load_config
from ..optimizers.registry import OPTIMIZERS
from .common import (
    column_mapping,
    fail_on,
    flag_lm_params,
    lm_options,
    load_bound,
    make_lm,
    pick,
    require,
    target_io,
    user_errors,
)

DEFAULT_THREADS = 8
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
    reflection_model: str | None = None
    reflection_api_base: str | None = None
    lock: Path = Path("promptcast.lock.json")
    lm_params: dict[str, Any] = field(default_factory=dict)
    """The project's sampling parameters (`[tool.promptcast] lm_params`)."""
    run_lm_params: dict[str, Any] = field(default_factory=dict)
    """`--lm-param` flags: over every step's sampling, scored and locked."""

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
            threads=int(pick(flags.get("threads"), config, "threads", DEFAULT_THREADS)),
            seed=int(pick(flags.get("seed"), config, "seed", DEFAULT_SEED)),
            max_calls=_optional_int(pick(flags.get("max_calls"), config, "max_calls")),
            max_usd=_optional_float(pick(flags.get("max_usd"), config, "max_usd")),
            reflection_model=pick(flags.get("reflection_model"), config, "reflection_model"),
            reflection_api_base=pick(
                flags.get("reflection_api_base"), config, "reflection_api_base"
            ),
            lock=flags.get("lock") or config.lock_path(),
            lm_params=project_lm_params(config),
            run_lm_params=flag_lm_params(flags.get("lm_param")),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


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
            "--dry-run", is_flag=True, help="Estimate LM calls; call nothing, write nothing."
        ),
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
        run_optimize(options, dry_run=bool(flags.get("dry_run")))
    except user_errors() as exc:
        fail_on(exc)


def run_optimize(options: OptimizeOptions, *, dry_run: bool = False) -> bool:
    """Optimize and write the lock (True), or only print the estimate (dry run: False)."""
    from ..api import LMFunction
    from ..context import SETTINGS
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
        return False
    lock = load_lock(options.lock)  # fail on a broken lock before spending anything
    lm = make_lm(options.model, options.api_base, Path("."))
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
    )
    SETTINGS.lm_params = dict(options.lm_params)
    result = optimize(task, optimizer)
    wall = time.perf_counter() - start
    entries = lock_entries(result, model=options.model, datasets=datasets)
    for qualname, entry in entries.items():
        lock = lock.with_entry(qualname, entry)
    save_lock(lock, options.lock)
    _summary(options, result, wall, len(dev), len(entries))
    from ..optimizers.report import write_report

    md, png = write_report(result, options.lock.parent / REPORTS_DIR, options.target, options.model)
    click.echo(f"  report: {md} ({png.name})")
    return True


REPORTS_DIR = Path(".promptcast") / "reports"
"""Where each optimize run's report goes, beside the lock (gitignored with the cache)."""


def _describe(path: Path, sha256: str, rows: int) -> dict[str, Any]:
    return {"path": path.as_posix(), "sha256": sha256, "rows": rows}


def _summary(
    options: OptimizeOptions, result: Any, wall: float, n_dev: int, n_functions: int
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
        click.echo(
            f"    {record.label:<28} {record.dev_score:.3f}  ({record.lm_requests} requests so far)"
        )
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
    click.echo(f"  wrote {options.lock} ({n_functions} function(s))")
