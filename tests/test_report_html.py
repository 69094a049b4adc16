"""The HTML report of `optimize` (and `eval --html`): one self-contained file that a real
headless Chromium renders with no console error, showing the plot, the candidates with their
state, the winner's prompt diff and the failing dev examples.

The browser is Chromium from the OS packages (`apt-get install -y chromium`; scripts/test.sh
installs it). Where it is missing the browser tests FAIL, never skip: the report is only known
to render if a browser rendered it. `PROMPTCAST_CHROMIUM` names another binary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from promptcast.evaluate.diff import MISSING, differences
from promptcast.optimizers.base import CandidateRecord, OptimizationResult, RunUsage
from promptcast.optimizers.report import write_report
from tests.support.openai_server import FakeOpenAIServer
from tests.test_cli_optimize import cli, optimize, project, server  # noqa: F401

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
ARTIFACTS = os.environ.get("PROMPTCAST_REPORT_ARTIFACTS")
"""If set, a directory where the rendered screenshot and the page are copied (for the note)."""


def chromium() -> str:
    found = os.environ.get("PROMPTCAST_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser"
    )
    if not found:
        pytest.fail(
            "Chromium is not installed: `apt-get install -y chromium` (scripts/test.sh does it); "
            "the report's rendering is tested in a real browser, so this test fails rather than skips"
        )
    return found


def render(page: Path, tmp: Path) -> tuple[Path, str, str]:
    """Screenshot `page` and dump its DOM after rendering; return (png, dom, browser log)."""
    shot = tmp / "shot.png"
    base = [chromium(), *CHROMIUM_FLAGS]
    url = page.resolve().as_uri()
    out = subprocess.run(
        [
            *base,
            f"--user-data-dir={tmp / 'profile-shot'}",
            "--hide-scrollbars",
            "--window-size=1280,2200",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    dom = subprocess.run(
        [*base, f"--user-data-dir={tmp / 'profile-dom'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return shot, dom.stdout, out.stderr + dom.stderr


def console_errors(log: str) -> list[str]:
    """What the page said on the console (Chromium logs it as `CONSOLE(n)`), and any refused
    load (the page's CSP forbids every fetch, so a reference to the network would show here)."""
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line or "Refused to" in line or "Uncaught" in line
    ]


def test_the_logging_catches_a_console_error(tmp_path: Path) -> None:
    """The check itself: a page that logs an error and fetches is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
        "<script>console.error('broken page')</script><img src=\"http://127.0.0.1:9/x.png\">"
        "</body></html>"
    )
    _, _, log = render(bad, tmp_path)
    errors = console_errors(log)
    assert any("broken page" in line for line in errors), log[-2000:]
    assert any("Content Security Policy" in line for line in errors), log[-2000:]


def test_an_optimize_report_renders_in_chromium(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    result = optimize(server, "--optimizer", "random_search", "--optimizer-arg", "num_candidates=3")
    assert result.exit_code == 0, result.output
    page = project / ".promptcast" / "reports" / "cliapp.steps.kind-random_search-seed0.html"
    assert f"open {page.relative_to(project)}" in result.output
    text = page.read_text()
    # Self-contained: no reference that a browser would fetch.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text
    shot, dom, log = render(page, tmp_path)
    assert console_errors(log) == []
    assert shot.stat().st_size > 20_000
    assert shot.read_bytes().startswith(b"\x89PNG")
    # The plot: an inline SVG with labelled axes and a title, the winner in its legend.
    svg = dom[dom.index("<svg") : dom.index("</svg>")]
    assert "LM requests spent" in svg and "dev score (exact_match)" in svg
    assert "random_search (seed 0), dev score vs LM requests" in svg and "winner" in svg
    # The tables.
    lock = json.loads((project / "promptcast.lock.json").read_text())
    optimization = lock["functions"]["cliapp.steps:kind"]["optimization"]
    candidates = dom[dom.index('<table class="candidates"') :]
    candidates = candidates[: candidates.index("</table>")]
    assert candidates.count("<tr") == len(optimization["candidates"]) + 1
    assert candidates.count("badge win") == 1
    for candidate in optimization["candidates"]:
        assert f"{candidate['dev_score']:.3f}" in candidates
    assert "Each candidate's instruction and demos" in dom
    assert "did not record the candidate's state" not in dom  # every candidate's state shown
    assert dom.count("<summary>candidate ") == len(optimization["candidates"])
    assert "Classify the kind of answer a question asks for." in dom
    assert "prompt diff, zero-shot" in dom and 'class="add"' in dom
    assert '<table class="examples"' in dom
    assert "Failing examples" in dom
    if ARTIFACTS:
        target = Path(ARTIFACTS)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "optimize-report.png")
        shutil.copy(page, target / "optimize-report.html")


def test_eval_writes_the_same_kind_of_page(
    project: Path,  # noqa: F811
    server: FakeOpenAIServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = project / "eval.html"
    result = cli(
        "eval",
        "cliapp.steps:kind",
        "--data",
        "dev.jsonl",
        "--label",
        "coarse",
        "--metric",
        "exact_match",
        "--model",
        "openai/fake-model",
        "--api-base",
        server.url,
        "--html",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output
    shot, dom, log = render(out, tmp_path)
    assert console_errors(log) == []
    assert "Outcomes per example" in dom and '<table class="examples"' in dom
    assert "Failing examples" in dom


def one_candidate_result() -> OptimizationResult:
    from promptcast.ir import FunctionState

    state = FunctionState("Answer <b>bold</b> & true.", ({"q": "<script>x</script>", "a": "1"},))
    return OptimizationResult(
        optimizer="labeled",
        params={"k": 1},
        seed=0,
        metric="exact_match",
        states={"app:f": state},
        dev_score_before=None,
        dev_score_after=0.5,
        best_label="labeled k=1",
        history=(CandidateRecord("labeled k=1", 0.5, 4),),
        usage=RunUsage(requests=4, prompt_tokens=100, completion_tokens=8),
    )


def test_a_single_candidate_still_gets_a_real_plot_and_data_is_escaped(tmp_path: Path) -> None:
    paths = write_report(one_candidate_result(), tmp_path, "app:f", "openai/m")
    text = paths.html.read_text()
    assert "<script>x</script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert "Answer &lt;b&gt;bold&lt;/b&gt; &amp; true." in text
    assert "The run did not" not in text and "Not computed." in text
    shot, dom, log = render(paths.html, tmp_path)
    assert console_errors(log) == []
    svg = dom[dom.index("<svg") : dom.index("</svg>")]
    # Axis ticks beyond the single point (x from 0 past 4; y over 0..1) and the winner.
    assert "winner" in svg and ">0.0<" in svg and ">1.0<" in svg


def test_field_differences_name_the_paths_that_differ() -> None:
    expected: dict[str, Any] = {"name": "Ada", "items": [{"sku": "a", "qty": 2}], "note": "x"}
    got: dict[str, Any] = {"name": "Ada", "items": [{"sku": "a", "qty": 3}, {"sku": "b"}]}
    assert differences(expected, got) == [
        ("items[0].qty", 2, 3),
        ("items[1]", MISSING, {"sku": "b"}),
        ("note", "x", MISSING),
    ]
    assert differences("NUM", "NUM") == [] and differences(1, True) == [("(value)", 1, True)]
