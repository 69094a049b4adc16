"""Datasets, metrics and parallel evaluation with reports.

`from promptcast.evaluate import evaluate` gives the function; the module that defines it is
`promptcast.evaluate.evaluate` (import names from it with `from ... import ...`).
"""

from promptcast.evaluate.data import (
    DataError,
    Dataset,
    Example,
    bind,
    dataset_hash,
    load_dataset,
    load_examples,
    split_train_dev,
)
from promptcast.evaluate.evaluate import EvalReport, ExampleResult, evaluate
from promptcast.evaluate.metrics import (
    Metric,
    MetricError,
    Score,
    get_metric,
    metric_names,
    register_metric,
    to_score,
)

__all__ = [
    "DataError",
    "Dataset",
    "EvalReport",
    "Example",
    "ExampleResult",
    "Metric",
    "MetricError",
    "Score",
    "bind",
    "dataset_hash",
    "evaluate",
    "get_metric",
    "load_dataset",
    "load_examples",
    "metric_names",
    "register_metric",
    "split_train_dev",
    "to_score",
]
