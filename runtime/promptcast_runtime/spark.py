"""Run a compiled function over a Spark DataFrame with `mapInPandas` (optional; PySpark is
imported only by the functions that take a SparkSession or DataFrame, and the runtime's core
never imports this module).

The generated tree (built with `--vendor-runtime`) ships to the executors as one zip on their
Python path (`ship_tree`, i.e. `SparkContext.addPyFile`); the executors need PySpark and nothing
of promptcast. Each partition's pandas batches run through `batch` -- one event loop per Python
worker, `concurrency` calls in flight -- and come back with `output` and `error` columns::

    from pyspark.sql import SparkSession
    from promptcast_runtime.spark import map_dataframe, ship_tree

    spark = SparkSession.builder.getOrCreate()
    ship_tree(spark, "build")                        # the generated tree, vendored runtime
    from reviews.sentiment import sentiment

    notes = spark.read.json("notes.jsonl")
    labelled = map_dataframe(notes, sentiment, inputs=["text"], concurrency=64)

The LM comes from the executors' environment (`PROMPTCAST_MODEL`, `PROMPTCAST_BASE_URL`,
`PROMPTCAST_API_KEY`: `spark.executorEnv.*`), or pass a picklable `lm=`. Rate limits are per
Python worker: give each its share. Spark re-runs a failed task's whole partition, and a
partition's rows are emitted only as its batches finish, so a lost executor duplicates none.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .frames import ERROR_COLUMN, OUTPUT_COLUMN, BatchUDF

__all__ = [
    "ERROR_COLUMN",
    "OUTPUT_COLUMN",
    "PandasMapper",
    "map_dataframe",
    "ship_tree",
    "zip_tree",
]


class PandasMapper:
    """A picklable `mapInPandas` function: every pandas batch of a partition through `batch`."""

    def __init__(self, f: Callable[..., Any], **options: Any) -> None:
        self.block = BatchUDF(f, **options)

    def __call__(self, frames: Iterable[Any]) -> Iterator[Any]:
        for frame in frames:
            yield self.block(frame)


def map_dataframe(
    frame: Any, f: Callable[..., Any], *, output_type: str = "string", **options: Any
) -> Any:
    """`frame` with `output` (of Spark SQL type `output_type`) and `error` columns added,
    through `mapInPandas(PandasMapper(f, **options))`."""
    output = options.get("output_column", OUTPUT_COLUMN)
    error = options.get("error_column", ERROR_COLUMN)
    ddl = ", ".join(
        part for part in (_ddl(frame), f"`{output}` {output_type}", f"`{error}` string") if part
    )
    return frame.mapInPandas(PandasMapper(f, **options), ddl)


def _ddl(frame: Any) -> str:
    """The frame's columns as a DDL list (`a` bigint, `b` string)."""
    return ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in frame.schema)


def zip_tree(tree: str | os.PathLike[str], into: str | os.PathLike[str] | None = None) -> Path:
    """The generated tree as a zip whose root is the tree's root (what `addPyFile` puts on the
    workers' path); caches and build metadata left out."""
    root = Path(tree)
    folder = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="promptcast-"))
    target = folder / f"{root.resolve().name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.name.startswith("."):
                continue
            archive.write(path, path.relative_to(root).as_posix())
    return target


def ship_tree(spark: Any, tree: str | os.PathLike[str]) -> Path:
    """Zip the tree and add it to every executor's Python path (and this driver's)."""
    archive = zip_tree(tree)
    spark.sparkContext.addPyFile(str(archive))
    return archive
