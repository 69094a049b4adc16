"""`eval`'s failure table (rich): whole values, the differing fields of structured outputs by
path, errors with their text; and the CLI prints it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

from promptcast.evaluate import Example, evaluate
from promptcast.reporting.table import print_failures
from tests.support.openai_server import FakeOpenAIServer
from tests.test_cli_optimize import cli, project, server  # noqa: F401


class Order(NamedTuple):
    customer: str
    items: list[dict[str, Any]]
    rush: bool


LONG = "an order note that is much longer than forty characters and must not be cut off " * 2


def orders() -> list[Example]:
    rows = [
        {"text": "Ada wants 2 apples", "customer": "Ada", "items": [{"sku": "apple", "qty": 2}],
         "rush": False},
        {"text": LONG, "customer": "Bob", "items": [{"sku": "pear", "qty": 1}], "rush": True},
        {"text": "Cy wants 1 fig", "customer": "Cy", "items": [{"sku": "fig", "qty": 1}],
         "rush": False},
    ]  # fmt: skip
    return [
        Example(row, "orders.jsonl", i + 1, ("text",), ("customer", "items", "rush"))
        for i, row in enumerate(rows)
    ]


def program(text: str) -> Order:
    if text.startswith("Ada"):
        return Order("Ada", [{"sku": "apple", "qty": 2}], False)  # right
    if text.startswith("Cy"):
        raise ValueError("the model's answer could not be parsed: raw text 'Cy: fig?'")
    return Order("Bob", [{"sku": "pear", "qty": 3}, {"sku": "plum", "qty": 1}], True)


def rendered(width: int = 160) -> str:
    report = evaluate(program, orders(), "exact_match", threads=1)
    out = io.StringIO()
    import os

    os.environ["COLUMNS"] = str(width)
    try:
        print_failures(report, out)
    finally:
        del os.environ["COLUMNS"]
    return out.getvalue()


def test_structured_failures_show_the_fields_that_differ_by_path() -> None:
    text = rendered()
    assert "2 of 3 examples failed" in text
    assert "items[0].qty" in text and "items[1]" in text and "plum" in text
    assert "customer" not in text.split("items[0].qty")[1].split("\n")[0]  # only differing fields
    assert "orders.jsonl:1" not in text  # the passing example is not listed


def test_values_are_not_cut_and_errors_are_whole() -> None:
    narrow = rendered(100)  # cells fold onto more lines; nothing is cut
    assert narrow.count("characters") == 2 and "…" not in narrow and "..." not in narrow
    wide = rendered(400)
    assert "ERROR ValueError: the model's answer could not be parsed: raw text 'Cy: fig?'" in wide


def test_no_ansi_colour_without_a_terminal() -> None:
    assert "\x1b[" not in rendered()


def test_the_cli_prints_the_rich_table(project: Path, server: FakeOpenAIServer) -> None:  # noqa: F811
    result = cli(
        "eval", "cliapp.steps:kind", "--data", "dev.jsonl", "--label", "coarse",
        "--metric", "exact_match", "--model", "openai/fake-model", "--api-base", server.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "of 4 examples failed" in result.output
    assert "dev.jsonl:2" in result.output and "fully correct" in result.output
