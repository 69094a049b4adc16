"""Chain of thought under a token cap: how many answers the old 256-token cap cut off (issue 16).

    .venv/bin/python bench/cot_cutoff.py                 # both settings, first 50 test rows
    .venv/bin/python bench/cot_cutoff.py --rows 10       # fewer rows
    .venv/bin/python bench/cot_cutoff.py --cap-via flag  # the cap as `eval --lm-param`
    .venv/bin/python bench/cot_cutoff.py --caps 32 --cap-via flag --out cot_cutoff_cap32

Scores `examples/counting` (BIG-bench object_counting, `@pc.chain_of_thought -> int`) zero-shot
with `promptcast eval --json`, once with `max_tokens` 256 (what optimize/eval sent to every call
before sampling became step state) and once with the chain-of-thought default (1024), against
the local qwen0.5b (`scripts/lm/start.sh`). The 256 cap is set by `[tool.promptcast] lm_params`
in the run's pyproject (`--cap-via project`, the default) or by `--lm-param max_tokens=256`
(`--cap-via flag`; from 29a48cf on -- before it `eval` had no such option and exited 2);
`--caps` picks other caps (a small one checks that cut-offs are caught). Each setting runs in a
fresh copy of the example (empty cache), behind `counting_proxy.py`, so "LM calls" are requests
that reached the server. A completion that stops on the token limit raises ParseError ("cut off
by the token limit") and scores 0; the table splits the failures into cut off, other parse
failures, other errors and wrong answers. The server answers one request at a time and may be
shared: `--threads 1` (default) keeps every request well inside the client's timeout, and wall
time includes any queueing behind other users. Writes `results/cot_cutoff.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import PC_CLI, RESULTS, ROOT, quiet_env, temp_dir
from counting_proxy import CountingProxy

EXAMPLE = ROOT / "examples" / "counting"
TARGET = "counting.count:count_objects"
CUT_OFF = "cut off by the token limit"
NAMES = {"256": "max_tokens 256 (old cap)", "default": "max_tokens 1024 (CoT default)"}
"""`--caps` values with a name of their own; "default" sets no cap (the kind's 1024)."""


def make_project(into: Path, rows: int, cap: int | None, via: str) -> list[str]:
    """A fresh copy of the example with the first `rows` test rows; the eval flags for `cap`."""
    shutil.copytree(
        EXAMPLE / "counting", into / "counting", ignore=shutil.ignore_patterns("__pycache__")
    )
    (into / "data").mkdir()
    lines = (EXAMPLE / "data" / "test.jsonl").read_text().splitlines(keepends=True)
    (into / "data" / "test.jsonl").write_text("".join(lines[:rows]))
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    if cap is not None and via == "project":
        table_head = "[tool.promptcast]\n"
        assert table_head in pyproject
        pyproject = pyproject.replace(
            table_head, f"{table_head}lm_params = {{max_tokens = {cap}}}\n"
        )
    (into / "pyproject.toml").write_text(pyproject)
    return ["--lm-param", f"max_tokens={cap}"] if cap is not None and via == "flag" else []


def classify(error: str | None) -> str:
    """Which column a failure goes in."""
    if error is None:
        return "wrong"
    if error.startswith("ParseError") and CUT_OFF in error:
        return "cut_off"
    if error.startswith("ParseError"):
        return "parse_other"
    return "other_error"


def run_setting(name: str, cap: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """One `promptcast eval --json` in a fresh project behind a counting proxy: its row."""
    with CountingProxy(args.api_base) as proxy, temp_dir("cot") as project:
        flags = make_project(project, args.rows, cap, args.cap_via)
        cmd = [
            str(PC_CLI), "eval", TARGET, "--data", "data/test.jsonl", "--json",
            "--model", args.model, "--api-base", proxy.url, "--threads", str(args.threads),
            *flags,
        ]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=project, env=quiet_env(), capture_output=True, text=True, timeout=3 * 3600
        )
        wall = time.perf_counter() - start
        counts = proxy.snapshot()
    row: dict[str, Any] = {
        "setting": name,
        "command": "promptcast " + " ".join(cmd[1:]).replace(proxy.url, args.api_base),
        "lm_params_in_pyproject": {"max_tokens": cap}
        if cap is not None and args.cap_via == "project"
        else None,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "server_calls": counts["chat"],
        "http_status": counts["status"],
        "completion_tokens": counts["completion_tokens"],
    }
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        row["stderr_tail"] = proc.stderr[-2000:]
        return row
    kinds: dict[str, list[int]] = {"cut_off": [], "parse_other": [], "other_error": [], "wrong": []}
    for failure in report["failures"]:
        kinds[classify(failure["error"])].append(failure["index"])
    row.update(
        {
            "n": report["n"],
            "accuracy": report["score"],
            "correct": report["n"] - len(report["failures"]),
            "cut_off": len(kinds["cut_off"]),
            "parse_other": len(kinds["parse_other"]),
            "other_error": len(kinds["other_error"]),
            "wrong": len(kinds["wrong"]),
            "errors": report["errors"],
            "lm_calls": report["lm_calls"],
            "cache_hits": report["cache_hits"],
            "eval_seconds": report["seconds"],
            "failing": kinds,
            # the limit the cut-off errors name: proof of what was sent
            "cut_off_max_tokens": sorted(
                {int(m) for f in report["failures"] for m in
                 re.findall(r"max_tokens=(\d+)", f["error"] or "")}
            ),
            "other_messages": sorted(
                {f["error"][:160] for f in report["failures"] if classify(f["error"]) in
                 ("parse_other", "other_error")}
            ),
        }
    )  # fmt: skip
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| setting | accuracy | correct | cut off | other parse failures | other errors | wrong"
        " | LM calls (server) | cache hits | completion tokens | wall s | exit |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if "n" not in r:
            lines.append(f"| {r['setting']} | eval failed, exit {r['exit_code']} |" + " |" * 10)
            continue
        lines.append(
            f"| {r['setting']} | {r['accuracy']:.2f} | {r['correct']}/{r['n']} | {r['cut_off']}"
            f" | {r['parse_other']} | {r['other_error']} | {r['wrong']}"
            f" | {r['lm_calls']} ({r['server_calls']}) | {r['cache_hits']}"
            f" | {r['completion_tokens']} | {r['wall_s']} | {r['exit_code']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50, help="first N rows of data/test.jsonl")
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="openai/qwen0.5b")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cap-via", choices=("project", "flag"), default="project")
    parser.add_argument(
        "--caps", default="256,default", help="comma-separated max_tokens caps; default: none"
    )
    parser.add_argument("--out", default="cot_cutoff", help="results/OUT.json and OUT.md")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for value in args.caps.split(","):
        name = NAMES.get(value, f"max_tokens {value}")
        print(f"== {name}", file=sys.stderr, flush=True)
        rows.append(run_setting(name, None if value == "default" else int(value), args))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)

    old, new = rows[0], rows[-1]
    rescued = None
    if args.caps == "256,default" and "failing" in old and "failing" in new:
        cut = set(old["failing"]["cut_off"])
        still_failing = {i for kind in new["failing"].values() for i in kind}
        rescued = {
            "cut_off_at_256": len(cut),
            "correct_at_1024": len(cut - still_failing),
            "cut_off_again_at_1024": len(cut & set(new["failing"]["cut_off"])),
        }
    record = {
        "task": "examples/counting (BIG-bench object_counting), zero-shot chain of thought",
        "rows": args.rows,
        "model": args.model,
        "threads": args.threads,
        "cap_via": args.cap_via,
        "settings": rows,
        "cut_off_at_256_then_1024": rescued,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
    md = [
        "# Chain of thought under a token cap (issue 16)",
        "",
        f"`.venv/bin/python bench/cot_cutoff.py --rows {args.rows} --threads {args.threads}"
        f" --cap-via {args.cap_via}"
        + (f" --caps {args.caps}" if args.caps != "256,default" else "")
        + (f" --out {args.out}" if args.out != "cot_cutoff" else "")
        + "` -- examples/counting, first"
        f" {args.rows} rows of the object_counting test split, zero-shot `@pc.chain_of_thought`,"
        f" {args.model}, metric `numeric`. LM calls: the eval report's paid calls (requests"
        " counted at the proxy in brackets). Wall: the whole `promptcast eval` process, on a"
        " server shared with other users (queueing included).",
        "",
        table(rows),
        "",
    ]
    if rescued is not None:
        md.append(
            f"Of the {rescued['cut_off_at_256']} answers cut off at 256 tokens,"
            f" {rescued['correct_at_1024']} are correct at 1024 and"
            f" {rescued['cut_off_again_at_1024']} are cut off again."
        )
        md.append("")
    for r in rows:
        where = r["lm_params_in_pyproject"]
        extra = f" with `lm_params = {{max_tokens = {where['max_tokens']}}}`" if where else ""
        md.append(f"- {r['setting']}: `{r['command']}` (pyproject: the example's{extra})")
        if r.get("cut_off_max_tokens"):
            md.append(f"  - the cut-off errors name max_tokens={r['cut_off_max_tokens']}")
        for message in r.get("other_messages", []):
            md.append(f"  - other failure: `{message}`")
    (RESULTS / f"{args.out}.md").write_text("\n".join(md) + "\n")
    print(table(rows))
    if rescued is not None:
        print(rescued)


if __name__ == "__main__":
    main()
