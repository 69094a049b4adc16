"""`[tool.promptcast]` keys of a run's selection and pacing: objective, prune_demos,
concurrency, requests_per_minute, tokens_per_minute -- read, checked, and flags win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promptcast.commands.optimize import OptimizeOptions
from promptcast.config import ConfigError, load_config
from promptcast.optimizers.selection import Objective, ObjectiveError

BASE = 'target = "app:f"\ntrain = "t.jsonl"\nmetric = "exact_match"\noptimizer = "bootstrap"\nmodel = "m"\n'


def _options(tmp_path: Path, extra: str, **flags: Any) -> OptimizeOptions:
    (tmp_path / "pyproject.toml").write_text("[tool.promptcast]\n" + BASE + extra)
    return OptimizeOptions.resolve(load_config(tmp_path), flags)


def test_the_keys_are_read(tmp_path: Path) -> None:
    options = _options(
        tmp_path,
        'objective = "within:0.02"\nprune_demos = true\nconcurrency = 64\n'
        "requests_per_minute = 600\ntokens_per_minute = 90000\n",
    )
    assert options.objective == Objective("within", margin=0.02)
    assert options.prune_demos is True
    assert options.threads == 64
    assert options.requests_per_minute == 600 and options.tokens_per_minute == 90000


def test_flags_win_over_the_keys(tmp_path: Path) -> None:
    options = _options(
        tmp_path, 'objective = "within:0.02"\nconcurrency = 64\n', objective="accuracy", concurrency=8
    )
    assert options.objective == Objective() and options.threads == 8


@pytest.mark.parametrize(
    ("extra", "error", "match"),
    [
        ("concurrency = 0\n", ConfigError, "concurrency must be a whole number >= 1"),
        ('requests_per_minute = "600"\n', ConfigError, "requests_per_minute must be a number > 0"),
        ("prune_demos = 1\n", ConfigError, "prune_demos must be true or false"),
        ('objective = "cheapest"\n', ObjectiveError, "--objective 'cheapest'"),
        ("concurrency = 64\nthreads = 8\n", ConfigError, "concurrency and threads disagree"),
    ],
)
def test_bad_values_are_one_clear_error(tmp_path: Path, extra: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _options(tmp_path, extra)
