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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .batch import DEFAULT_CONCURRENCY, RowError, batch
from .lm import LM

OUTPUT_COLUMN = "output"
ERROR_COLUMN = "error"


class BatchUDF:
    """A picklable `map_batches` function: one block of rows through `batch`.

    Accepts Ray's "pandas" (a DataFrame) and "numpy"/"default" (a dict of column arrays)
    formats and returns the same kind. `inputs` names the columns passed to `f` as keyword
    arguments (None: every column); the rest ride along untouched. `lm` (picklable, like the
    runtime's `OpenAIClient`) is used on the workers; None: the workers' environment
    (`PROMPTCAST_MODEL`, `PROMPTCAST_BASE_URL`, `PROMPTCAST_API_KEY`).
    """

    def __init__(
        self,
        f: Callable[..., Any],
        *,
        inputs: Sequence[str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        lm: LM | None = None,
        output_column: str = OUTPUT_COLUMN,
        error_column: str = ERROR_COLUMN,
    ) -> None:
        self.f = f
        self.inputs = tuple(inputs) if inputs is not None else None
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.lm = lm
        self.output_column = output_column
        self.error_column = error_column

    def __call__(self, block: Any) -> Any:
        if hasattr(block, "to_dict") and hasattr(block, "columns"):  # a pandas DataFrame
            columns = {str(c): list(block[c]) for c in block.columns}
            outputs, errors = self.run(columns)
            out = block.copy()
            out[self.output_column] = outputs
            out[self.error_column] = errors
            return out
        columns = {str(k): list(v) for k, v in dict(block).items()}
        outputs, errors = self.run(columns)
        result: dict[str, Any] = dict(block)
        result[self.output_column] = _array(outputs)
        result[self.error_column] = _array(errors)
        return result

    def run(self, columns: Mapping[str, list[Any]]) -> tuple[list[Any], list[str | None]]:
        """The block's results and errors, one each per row, in order."""
        names = self.inputs if self.inputs is not None else tuple(columns)
        missing = [n for n in names if n not in columns]
        if missing:
            raise KeyError(f"the block has no column(s) {missing}; it has {sorted(columns)}")
        count = len(next(iter(columns.values()))) if columns else 0
        rows = [{n: _plain(columns[n][i]) for n in names} for i in range(count)]
        results = batch(
            self.f,
            rows,
            concurrency=self.concurrency,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            lm=self.lm,
        )
        outputs = [None if isinstance(r, RowError) else r for r in results]
        errors = [str(r) if isinstance(r, RowError) else None for r in results]
        return outputs, errors


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


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a compiled function's types expect."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _array(values: list[Any]) -> Any:
    """A column for Ray's numpy format (an object array), or the list where numpy is absent."""
    import importlib

    try:
        numpy = importlib.import_module("numpy")  # Ray's own dependency; not the runtime's
    except ImportError:
        return values
    column = numpy.empty(len(values), dtype=object)
    column[:] = values
    return column
