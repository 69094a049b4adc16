"""A compiled function over a block of columns (a pandas DataFrame or a dict of arrays): the
one piece the Ray Data and Spark adapters share.

Why a module of its own: both engines hand a worker a block of rows as columns, and both want
the same thing back -- the input columns plus `output` (the result, None for a failed row) and
`error` (None, or "ParseError: ..."). The block runs through `batch`, one event loop per
worker, so a worker keeps `concurrency` calls in flight. No pandas, numpy, Ray or Spark is
imported here: a DataFrame is recognised by its methods, numpy (when present) only builds the
output arrays Ray's numpy format wants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .batch import DEFAULT_CONCURRENCY, RowError, batch
from .lm import LM

OUTPUT_COLUMN = "output"
ERROR_COLUMN = "error"


class BatchUDF:
    """A picklable block function (Ray's `map_batches`, Spark's `mapInPandas`): one block of
    rows through `batch`.

    Accepts Ray's "pandas" (a DataFrame) and "numpy"/"default" (a dict of column arrays)
    formats and returns the same kind. `inputs` names the columns passed to `f` as keyword
    arguments (None: the columns named like its parameters); the rest ride along untouched. `lm` (picklable, like the
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
            out[self.output_column] = _series(block, outputs)
            out[self.error_column] = _series(block, errors)
            return out
        columns = {str(k): list(v) for k, v in dict(block).items()}
        outputs, errors = self.run(columns)
        result: dict[str, Any] = dict(block)
        result[self.output_column] = _array(outputs)
        result[self.error_column] = _array(errors)
        return result

    def run(self, columns: Mapping[str, list[Any]]) -> tuple[list[Any], list[str | None]]:
        """The block's results and errors, one each per row, in order."""
        names = self.inputs if self.inputs is not None else _parameters(self.f, columns)
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


def _parameters(f: Callable[..., Any], columns: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns named like `f`'s parameters (every column when it takes `**kwargs`, or when
    its signature cannot be read): an `id` column rides along instead of reaching `f`."""
    import inspect

    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return tuple(columns)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return tuple(columns)
    wanted = {p.name for p in parameters}
    return tuple(name for name in columns if name in wanted)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a compiled function's types expect."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _series(block: Any, values: list[Any]) -> Any:
    """An object column aligned with `block`: a failed row's None stays None (a list would be
    inferred as pandas' string dtype, turning it into NaN). pandas is the block's own module."""
    import sys

    pandas: Any = sys.modules.get(type(block).__module__.split(".")[0])
    series = getattr(pandas, "Series", None)
    if series is None:
        return values
    return series(values, index=block.index, dtype=object)


def _array(values: list[Any]) -> Any:
    """A column for Ray's numpy format (an object array), or the list where numpy is absent.

    numpy is taken from `sys.modules`, never imported: a block in numpy format means Ray has
    imported it already, and nothing here may load a module by name."""
    import sys

    numpy: Any = sys.modules.get("numpy")
    if numpy is None:
        return values
    column = numpy.empty(len(values), dtype=object)
    column[:] = values
    return column
