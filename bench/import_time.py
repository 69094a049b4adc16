"""Import cost of a generated module (with its runtime) against `import dspy`, in one run.

Each figure is measured above a bare interpreter started the same way, as the median of
several runs, so the noise of a shared 2-core machine does not decide the ratio:

    python bench/import_time.py [--runs 15] [--dspy-python bench/.venv-dspy/bin/python]

(`bench/run.py --section import` runs the same measurement as part of the suite.)

The generated module is the TREC example built with `--vendor-runtime` into a temp dir and
byte-compiled. A third row isolates the runtime's own cost: the generated module's import above
a baseline that already imported what the user's own source imports (`typing.Literal`).
`-X importtime` gives the interpreter's own cumulative microseconds for the imported modules;
wall time of the whole process is reported beside it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trec" / "triage"
DSPY_PYTHON = ROOT / "bench" / ".venv-dspy" / "bin" / "python"
PC_CLI = ROOT / ".venv" / "bin" / "promptcast"


def importtime_us(python: str, statement: str, cwd: Path) -> float:
    """Sum of the top-level cumulative times `-X importtime` reports for `statement`."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", statement],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) == 1:  # top-level imports only (one space of nesting)
            total += int(match.group(1))
    return float(total)


def wall_ms(python: str, statement: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", statement], cwd=cwd, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def median_of(runs: int, fn: Callable[[str, str, Path], float], *args: object) -> float:
    return statistics.median(fn(*args) for _ in range(runs))  # type: ignore[arg-type]


def build_example(out: Path, python: str = sys.executable) -> Path:
    """The TREC example built with its runtime vendored, byte-compiled like a deployment.

    Byte-compiled because any deployment (and DSPy's pip-installed venv) has .pyc files: with
    PYTHONDONTWRITEBYTECODE set, every import would otherwise recompile the source.
    """
    cli = str(PC_CLI) if PC_CLI.exists() else None
    cmd = [cli] if cli else [python, "-m", "promptcast"]
    subprocess.run(
        [*cmd, "build", str(EXAMPLE), "-o", str(out), "--vendor-runtime"],
        check=True,
        capture_output=True,
    )
    subprocess.run([python, "-m", "compileall", "-q", str(out)], check=True)
    return out


def measure(runs: int, python: str, dspy_python: str) -> dict[str, float]:
    """Every import figure, in ms; the generated module is imported from a fresh build.

    DSPy's import is ~100x slower than ours, so it gets a third of the runs (at least 3).
    """
    dspy_runs = max(3, runs // 3)
    with tempfile.TemporaryDirectory() as tmp:
        out = build_example(Path(tmp) / "out", python)
        bare_us = median_of(runs, importtime_us, python, "pass", out)
        gen_us = median_of(runs, importtime_us, python, "import triage.classify", out)
        bare_ms = median_of(runs, wall_ms, python, "pass", out)
        gen_ms = median_of(runs, wall_ms, python, "import triage.classify", out)
        user_us = median_of(runs, importtime_us, python, "from typing import Literal", out)
        dspy_bare_us = median_of(runs, importtime_us, dspy_python, "pass", out)
        dspy_us = median_of(dspy_runs, importtime_us, dspy_python, "import dspy", out)
        dspy_bare_ms = median_of(runs, wall_ms, dspy_python, "pass", out)
        dspy_ms = median_of(dspy_runs, wall_ms, dspy_python, "import dspy", out)
    return {
        "runs": runs,
        "dspy_runs": dspy_runs,
        "bare_ms": bare_ms,
        "importtime_promptcast_ms": (gen_us - bare_us) / 1000,
        "importtime_dspy_ms": (dspy_us - dspy_bare_us) / 1000,
        "wall_promptcast_ms": gen_ms - bare_ms,
        "wall_dspy_ms": dspy_ms - dspy_bare_ms,
        "own_promptcast_ms": (gen_us - user_us) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dspy-python", default=str(DSPY_PYTHON))
    args = parser.parse_args()
    m = measure(args.runs, sys.executable, args.dspy_python)
    rows = [
        ("import time above bare interpreter (-X importtime, ms)", "importtime_promptcast_ms"),
        ("process wall time above bare interpreter (ms)", "wall_promptcast_ms"),
        (
            "of which promptcast's own (above the user's `from typing import Literal`, ms)",
            "own_promptcast_ms",
        ),
    ]
    dspy_of = {
        "importtime_promptcast_ms": m["importtime_dspy_ms"],
        "wall_promptcast_ms": m["wall_dspy_ms"],
        "own_promptcast_ms": m["importtime_dspy_ms"],
    }
    print("| figure | promptcast (generated + runtime) | dspy 3.4.1 | ratio | target |")
    print("|---|---|---|---|---|")
    for label, key in rows:
        ours, theirs = m[key], dspy_of[key]
        print(f"| {label} | {ours:.2f} | {theirs:.0f} | {ours / theirs:.4f} | <= 0.01 |")
    print(
        f"\nbare interpreter: {m['bare_ms']:.1f} ms wall; medians of {args.runs} runs "
        f"(dspy: {m['dspy_runs']})"
    )


if __name__ == "__main__":
    main()
