"""What every benchmark section shares: paths, interpreters, result rows, medians, builds.

Why one small module: each section runs the two systems in their own interpreters
(promptcast in the project's `.venv`, DSPy in `bench/.venv-dspy`) and reports the same kind of
row, so the plumbing lives here once and the section modules hold only what they measure.
Stdlib only: `bench/run.py` may be started by any Python >= 3.10.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
TREC = ROOT / "examples" / "trec"
TREC_DATA = TREC / "data"
FIXTURES = BENCH / "fixtures"
PC_PYTHON = ROOT / ".venv" / "bin" / "python"
PC_CLI = ROOT / ".venv" / "bin" / "promptcast"


@dataclass
class Row:
    """One line of the results table: a paired figure, both systems measured in the same run.

    `ratio` is promptcast / DSPy (lower is better for every figure here); `ok` says whether the
    target was met (None when the figure has no target).
    """

    section: str
    figure: str
    promptcast: float | None
    dspy: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""
    ratio: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.ratio is None and self.promptcast is not None and self.dspy:
            self.ratio = self.promptcast / self.dspy

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SectionResult:
    """A section's table rows plus its raw measurements (for the plots and the JSON record)."""

    name: str
    rows: list[Row]
    raw: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def repeat(times: int, fn: Callable[[], float]) -> list[float]:
    """`fn()` `times` times, in sequence (the machine has 2 cores; never run in parallel)."""
    return [fn() for _ in range(times)]


def python_of(script: Path) -> Path:
    """Run a venv setup script (idempotent) and return the interpreter it prints last."""
    out = subprocess.run(["bash", str(script)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def dspy_python() -> Path:
    return python_of(BENCH / "setup_dspy.sh")


def plot_python() -> Path:
    return python_of(BENCH / "setup_plot.sh")


def run(
    cmd: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """A subprocess that must succeed; its stderr is shown when it does not."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    return proc


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: no bytecode writes mid-measurement, no network."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm would fetch a price list at import
            "OPENAI_API_KEY": "local",
            "TOKENIZERS_PARALLELISM": "false",
            **extra,
        }
    )
    return env


def build(source: Path, out: Path, *, lock: Path | None = None) -> Path:
    """`promptcast build SOURCE -o OUT --vendor-runtime`, byte-compiled like a deployment."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd: list[str | Path] = [PC_CLI, "build", source, "-o", out, "--vendor-runtime"]
    if lock is not None:
        cmd += ["--lock", lock]
    # Run beside OUT, not in the source's project: no pyproject or lock there can add demos.
    run(cmd, cwd=out.parent, env=quiet_env())
    run([PC_PYTHON, "-m", "compileall", "-q", out])
    return out


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"pcbench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def trec_project(into: Path) -> Path:
    """A fresh copy of the TREC example (package + data), so `.promptcast/` starts empty."""
    shutil.copytree(TREC / "triage", into / "triage", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(TREC_DATA, into / "data")
    return into


def fmt(value: float | None, unit: str = "") -> str:
    """A figure for the table: 3 significant digits, thousands separated."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1000:
        text = f"{value:.0f}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()
