"""A built module over a Spark DataFrame in local mode (`local[2]`) with `mapInPandas`, the
generated tree shipped as one zip (`ship_tree` -> `addPyFile`).

The Python workers run `python -S` over site-packages without promptcast (as the Ray test
does), so they cannot import the compiler and use the runtime vendored in the zip. 2,000 rows
against the fake OpenAI server at 100 ms come back complete and in place.
"""

from __future__ import annotations

import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark import cloudpickle  # a [dev] dependency: missing, these tests fail, never skip
from pyspark.sql import SparkSession

from promptcast_runtime import OpenAIClient
from promptcast_runtime.spark import map_dataframe, ship_tree
from tests.support.built import (
    build_sentiment,
    expected,
    row_text,
    sentiment_answer,
    site_without_promptcast,
)
from tests.support.openai_server import FakeOpenAIServer

ROWS = 2000
CONCURRENCY = 32

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # `probe` runs on the workers


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("spark")
    tree = build_sentiment(folder / "build")
    worker_site = site_without_promptcast(folder / "worker-site")
    python = folder / "worker-python"
    python.write_text(
        f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{worker_site}" exec {sys.executable} -S "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", str(python))  # what SparkContext reads for its workers
    session = (
        SparkSession.builder.master("local[2]")
        .appName("promptcast-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    ship_tree(session, tree)
    try:
        yield session
    finally:
        session.stop()
        patch.undo()
        for name in [n for n in sys.modules if n == "reviews" or n.startswith("reviews.")]:
            del sys.modules[name]


def probe(_: Any) -> dict[str, str]:
    import sys

    try:
        import promptcast  # noqa: F401
    except ModuleNotFoundError as exc:
        compiler = f"ModuleNotFoundError: {exc}"
    else:
        compiler = "importable"
    import promptcast_runtime

    return {
        "compiler": compiler,
        "runtime": str(promptcast_runtime.__file__),
        "executable": sys.executable,
        "no_site": str(sys.flags.no_site),
    }


def test_workers_cannot_import_the_compiler_and_use_the_shipped_zip(spark: Any) -> None:
    found = spark.sparkContext.parallelize([0], 1).map(probe).collect()[0]
    assert found["compiler"].startswith("ModuleNotFoundError"), found
    assert found["executable"] == sys.executable and found["no_site"] == "1", found
    assert ".zip" in found["runtime"] or "userFiles" in found["runtime"], found


def test_2000_rows_in_local_mode_against_a_100ms_server(spark: Any) -> None:
    from reviews.sentiment import sentiment

    with FakeOpenAIServer(sentiment_answer, latency=0.1) as server:
        frame = spark.createDataFrame(
            [(i, row_text(i)) for i in range(ROWS)], "id long, text string"
        )
        start = time.monotonic()
        labelled = map_dataframe(
            frame.repartition(2),
            sentiment,
            inputs=["text"],
            concurrency=CONCURRENCY,
            lm=OpenAIClient("m", server.url),
        ).collect()
        wall = time.monotonic() - start
        assert server.counts["chat"] == ROWS
    assert sorted(r["id"] for r in labelled) == list(range(ROWS))
    for r in labelled:
        assert r["error"] is None and r["output"] == expected(r["id"]), r
    print(
        f"\nSpark local[2]: {ROWS} rows, 100 ms latency, {CONCURRENCY} in flight per worker: {wall:.1f}s"
    )


def test_a_row_that_fails_is_its_error_column(spark: Any, tmp_path: Path) -> None:
    from reviews.sentiment import sentiment

    with FakeOpenAIServer(sentiment_answer) as server:
        frame = spark.createDataFrame(
            [(0, row_text(1)), (1, "unparsable review"), (2, row_text(0))], "id long, text string"
        )
        rows = {
            r["id"]: r
            for r in map_dataframe(
                frame, sentiment, inputs=["text"], lm=OpenAIClient("m", server.url)
            ).collect()
        }
    assert rows[0]["output"] == "positive" and rows[2]["output"] == "negative"
    assert rows[1]["output"] is None and rows[1]["error"].startswith("ParseError")
