"""Import cost of a generated module (with its runtime) against `import dspy`, in one run.

Each figure is measured above a bare interpreter started the same way, as the median of
several runs, so the noise of a shared 2-core machine does not decide the ratio:

    python bench/import_time.py [--runs 15] [--dspy-python bench/.venv-dspy/bin/python]

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trec" / "triage"
DSPY_PYTHON = ROOT / "bench" / ".venv-dspy" / "bin" / "python"


def importtime_us(python: str, statement: str, cwd: Path) -> int:
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
    return total


def wall_ms(python: str, statement: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", statement], cwd=cwd, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def median_of(runs: int, fn: object, *args: object) -> float:
    return statistics.median(fn(*args) for _ in range(runs))  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dspy-python", default=str(DSPY_PYTHON))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "promptcast",
                "build",
                str(EXAMPLE),
                "-o",
                str(out),
                "--vendor-runtime",
            ],
            check=True,
            capture_output=True,
        )
        # Byte-compile, as any deployment (and DSPy's pip-installed venv) has .pyc files:
        # with PYTHONDONTWRITEBYTECODE set, every import would otherwise recompile the source.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(out)], check=True)
        py = sys.executable
        bare_us = median_of(args.runs, importtime_us, py, "pass", out)
        gen_us = median_of(args.runs, importtime_us, py, "import triage.classify", out)
        bare_ms = median_of(args.runs, wall_ms, py, "pass", out)
        gen_ms = median_of(args.runs, wall_ms, py, "import triage.classify", out)
        user_us = median_of(args.runs, importtime_us, py, "from typing import Literal", out)
        dspy_bare_us = median_of(args.runs, importtime_us, args.dspy_python, "pass", out)
        dspy_us = median_of(
            max(3, args.runs // 3), importtime_us, args.dspy_python, "import dspy", out
        )
        dspy_bare_ms = median_of(args.runs, wall_ms, args.dspy_python, "pass", out)
        dspy_ms = median_of(max(3, args.runs // 3), wall_ms, args.dspy_python, "import dspy", out)
    gen_cost_us = gen_us - bare_us
    dspy_cost_us = dspy_us - dspy_bare_us
    gen_cost_ms = gen_ms - bare_ms
    dspy_cost_ms = dspy_ms - dspy_bare_ms
    print("| figure | promptcast (generated + runtime) | dspy 3.4.1 | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| import time above bare interpreter (-X importtime, ms) | {gen_cost_us / 1000:.2f} | "
        f"{dspy_cost_us / 1000:.0f} | {gen_cost_us / dspy_cost_us:.4f} | <= 0.01 |"
    )
    print(
        f"| process wall time above bare interpreter (ms) | {gen_cost_ms:.1f} | {dspy_cost_ms:.0f} | "
        f"{gen_cost_ms / dspy_cost_ms:.4f} | <= 0.01 |"
    )
    print(
        f"| of which promptcast's own (above the user's `from typing import Literal`, ms) | "
        f"{(gen_us - user_us) / 1000:.2f} | {dspy_cost_us / 1000:.0f} | "
        f"{(gen_us - user_us) / dspy_cost_us:.4f} | <= 0.01 |"
    )
    print(
        f"\nbare interpreter: {bare_ms:.1f} ms wall; medians of {args.runs} runs (dspy: {max(3, args.runs // 3)})"
    )


if __name__ == "__main__":
    main()
