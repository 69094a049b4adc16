"""Run a compiled function over a Ray Dataset with `map_batches` (optional; Ray is not needed to
import this module, and the runtime's core never imports it).

Why it is this small: a promptcast module is plain Python with a stdlib runtime, so shipping
it to a cluster is shipping a folder. The generated tree (built with `--vendor-runtime`) goes to
the workers as the job's `working_dir` (or `py_modules`); the workers need neither promptcast's
compiler nor any package beyond Ray itself. On each worker, a block of rows runs through
`batch` -- one event loop, `concurrency` requests in flight -- so a 2-CPU cluster keeps
hundreds of calls going without a thread per call. The recipe (README, "Running on Ray")::

    import ray
    from promptcast_runtime.ray_data import runtime_env, udf

    ray.init(runtime_env=runtime_env("build", env_vars={"PROMPTCAST_MODEL": "openai/gpt-4o-mini"}))
    from reviews.sentiment import sentiment          # the generated module, from build/

    ds = ray.data.read_json("notes.jsonl")
    out = ds.map_batches(udf(sentiment, concurrency=64), batch_size=256, batch_format="pandas")

Each output row keeps its input columns and gains `output` (the result, None for a failed row)
and `error` (None, or "ParseError: ..." -- a failed row never fails the block). Ray retries a
block whose worker died, and a block's rows are written only when the whole block is done, so a
killed worker loses and duplicates nothing. Rate limits are per worker process: give each its
share (`requests_per_minute / workers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .frames import ERROR_COLUMN, OUTPUT_COLUMN, BatchUDF

__all__ = ["ERROR_COLUMN", "OUTPUT_COLUMN", "BatchUDF", "map_dataset", "runtime_env", "udf"]


def udf(f: Callable[..., Any], **options: Any) -> BatchUDF:
    """`BatchUDF(f, **options)`: what `Dataset.map_batches` takes."""
    return BatchUDF(f, **options)


def runtime_env(
    tree: str,
    *,
    env_vars: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The `runtime_env` that ships a generated tree to every worker: the tree as the job's
    `working_dir` (on the workers' `sys.path`, vendored runtime included) plus the LM's
    environment variables. Pass to `ray.init(runtime_env=...)` or a task's options."""
    env: dict[str, Any] = {"working_dir": str(tree), **extra}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env


def map_dataset(
    dataset: Any, f: Callable[..., Any], *, batch_size: int = 256, **options: Any
) -> Any:
    """`dataset.map_batches(udf(f, **options), batch_size=..., batch_format="pandas")`."""
    return dataset.map_batches(udf(f, **options), batch_size=batch_size, batch_format="pandas")
