"""Section 1, import cost: the generated module + vendored runtime vs `import dspy`.

Why it matters: a process that answers one request (a CLI, a serverless function) pays the
import on every cold start. The measurement itself lives in `import_time.py` (also runnable
alone); this module turns it into table rows.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import PC_PYTHON, Row, SectionResult, quiet_env, run
from import_time import build_example, measure
from section_optimize import fake_server

TARGET = 0.01
QUESTION = "How far is it from Denver to Aspen ?"
OURS_FIRST_CALL = f"import triage.classify as m; m.question_type(question={QUESTION!r})"
DSPY_FIRST_CALL = f"""
import dspy
from typing import Literal
class QuestionType(dspy.Signature):
    \"\"\"Classify the kind of answer a question asks for.\"\"\"
    question: str = dspy.InputField(desc="A question in English.")
    answer: Literal["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"] = dspy.OutputField(
        desc="The coarse TREC answer type.")
import os
dspy.configure(lm=dspy.LM("openai/fake-model", api_base=os.environ["PROMPTCAST_BASE_URL"],
                          api_key="local", cache=False))
assert dspy.Predict(QuestionType)(question={QUESTION!r}).answer == "NUM"
"""


def first_answer_ms(runs: int, dspy_python: str) -> dict[str, float]:
    """Cold start to the first answer: a new process imports, calls a server once, exits.

    Why beside import time: DSPy defers its LM client (litellm) to the first call, so import
    time alone leaves part of its start-up out. The server answers instantly (fake server,
    no latency); each figure is above a bare interpreter, median of `runs`.
    """
    with tempfile.TemporaryDirectory() as tmp, fake_server(0.0) as server:
        out = build_example(Path(tmp) / "out", str(PC_PYTHON))
        env = quiet_env(PROMPTCAST_BASE_URL=server.url, PROMPTCAST_MODEL="fake-model")
        env["PROMPTCAST_API_KEY"] = "local"
        run([PC_PYTHON, "-c", OURS_FIRST_CALL], cwd=out, env=env)  # fails loudly, untimed
        run([dspy_python, "-c", DSPY_FIRST_CALL], cwd=out, env=env)

        def timed(python: str, statement: str) -> float:
            return statistics.median(_wall_env(python, statement, out, env) for _ in range(runs))

        bare = timed(str(PC_PYTHON), "pass")
        dspy_bare = timed(dspy_python, "pass")
        return {
            "promptcast_ms": timed(str(PC_PYTHON), OURS_FIRST_CALL) - bare,
            "dspy_ms": timed(dspy_python, DSPY_FIRST_CALL) - dspy_bare,
            "runs": runs,
        }


def _wall_env(python: str, statement: str, cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", statement], cwd=cwd, env=env, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    m = measure(5 if quick else 15, str(PC_PYTHON), dspy_python)
    first = first_answer_ms(3 if quick else 7, dspy_python)
    m["first_answer"] = first
    runs = f"median of {m['runs']} runs (DSPy {m['dspy_runs']})"
    rows = [
        Row(
            "import",
            "import time above a bare interpreter (-X importtime)",
            m["importtime_promptcast_ms"],
            m["importtime_dspy_ms"],
            "ms",
            "<= 1/100",
            note=runs,
        ),
        Row(
            "import",
            "process wall time above a bare interpreter",
            m["wall_promptcast_ms"],
            m["wall_dspy_ms"],
            "ms",
            "<= 1/100",
            note=f"{runs}; bare interpreter {m['bare_ms']:.0f} ms",
        ),
        Row(
            "import",
            "promptcast's own share (above the user's `from typing import Literal`)",
            m["own_promptcast_ms"],
            m["importtime_dspy_ms"],
            "ms",
            "<= 1/100",
            note="the runtime's cost, with what the user's code imports anyway excluded",
        ),
        Row(
            "import",
            "cold start to the first answer (import + one call to an instant server)",
            first["promptcast_ms"],
            first["dspy_ms"],
            "ms",
            note=(
                f"median of {first['runs']} processes; DSPy defers litellm to its first call, "
                "so import time alone leaves part of its start-up out"
            ),
        ),
    ]
    for row in rows[:3]:
        row.ok = row.ratio is not None and row.ratio <= TARGET
    return SectionResult("import", rows, m)
