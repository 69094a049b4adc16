"""Multi-stage and ReAct programs, both systems, the real local model: issue #5's comparison.

promptcast through its CLI in a fresh copy of the example (`eval` zero-shot; `optimize` with
bootstrap from the final label only, `build`, `eval --built`), DSPy through `dspy_programs.py`;
the same data, metric, model and server, LM calls counted by `counting_proxy.py` on both sides.
Writes `results/programs_<model>[_<tag>].jsonl`.

    python3 bench/programs.py --task route [--limit 40] [--model qwen0.5b --api-base URL]
        [--optimizer predict --optimizer bootstrap]   (both by default; both systems)
        [--no-dspy] [--tag before] [--lock PATH]

`--lock PATH` skips `optimize`: the example is built from that lock and the built module scored
(compile_lm_calls 0), so two checkouts can be compared on exactly the same demos.

For the agent, every request our side sends is recorded (a recording proxy upstream of the
counting one), and each test row's answer call -- it carries the whole trajectory -- says which
tools the agent used and whether it used them correctly (`agent_tool_use`): every planet the
question names looked up without an error, a `calculate` that worked when the question combines
two planets, and a `finish` before `max_iters`; the requests and answers themselves land in
`results/raw/programs_agent_<optimizer>_<model>[_<tag>].jsonl`. To measure another checkout's
compiler and runtime with this harness, put its `compiler/` and `runtime/` first on `PYTHONPATH`
(the CLI is run from this checkout's `.venv`, whose editable install comes after `PYTHONPATH`);
the row records it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchlib import BENCH, PC_CLI, RESULTS, ROOT, dspy_python, quiet_env, run, temp_dir
from counting_proxy import CountingProxy
from promptcast_cli import compile_and_eval

TASKS = {
    # task: (example folder, package, target, label column, metric)
    "route": ("orders", "orders", "orders.pipeline:route", "tier", "exact_match"),
    "agent": ("agent", "planets", "planets.solve:answer", "answer", "planets.metrics:close_enough"),
}
# dev_score=False: DSPy's BootstrapFewShot never scores the dev set, so ours is asked not to
# either (the demos are the same; with dev scoring, 80 of route's 92 compile calls were dev runs)
ARGS = {"max_bootstrapped_demos": 2, "max_labeled_demos": 0, "dev_score": False}
OPTIMIZERS = ("predict", "bootstrap")


class RecordingProxy:
    """Forwards chat requests to `upstream` and keeps (request, response) bodies, in order."""

    def __init__(self, upstream: str) -> None:
        self.exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []
        lock = threading.Lock()
        exchanges = self.exchanges
        base = upstream.rstrip("/")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 900

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Silent."""

            def do_GET(self) -> None:  # noqa: N802
                self.do_POST("GET")

            def do_POST(self, method: str = "POST") -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                path = self.path.removeprefix("/v1")
                req = urllib.request.Request(
                    base + path, data=data, method=method,
                    headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
                )  # fmt: skip
                try:
                    with urllib.request.urlopen(req, timeout=900) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    status, body = err.code, err.read()
                if status == 200 and data and path.endswith("/chat/completions"):
                    with lock:
                        exchanges.append((json.loads(data), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _section(text: str, name: str) -> str | None:
    match = re.search(rf"\[\[ ## {name} ## \]\]\n(.*?)(?=\n\[\[ ## |\Z)", text, re.S)
    return match.group(1).strip() if match else None


PLANET_NAMES = ("mercury", "venus", "earth", "mars", "jupiter", "saturn", "uranus", "neptune")


def tool_use(question: str, trajectory: str) -> dict[str, Any]:
    """Which tools one planets trajectory called, and whether it used them correctly."""
    calls = re.findall(r"^tool_name_(\d+): (.*)$", trajectory, re.M)
    args = dict(re.findall(r"^tool_args_(\d+): (.*)$", trajectory, re.M))
    observed = dict(re.findall(r"^observation_(\d+): (.*)$", trajectory, re.M))
    looked_up: set[str] = set()
    calculated = False
    errors = 0
    for turn, name in calls:
        result = observed.get(turn)
        if result is None:
            continue
        ok = bool(re.fullmatch(r"\{.*\}|-?[\d.]+(?:e[-+]?\d+)?", result.strip()))
        errors += not ok
        if ok and name == "lookup":
            looked_up |= {p for p in PLANET_NAMES if p in args.get(turn, "").lower()}
        calculated |= ok and name == "calculate"
    needed = {p for p in PLANET_NAMES if p in question.lower()}
    finished = any(name == "finish" for _, name in calls)
    correct = needed <= looked_up and (len(needed) < 2 or calculated) and finished
    return {
        "tools": [name for _, name in calls],
        "tool_errors": errors,
        "finished": finished,
        "tool_use_ok": correct,
    }


def agent_tool_use(
    exchanges: list[tuple[dict[str, Any], dict[str, Any]]], questions: list[str]
) -> list[dict[str, Any]]:
    """Per test question (in order), its last answer call's trajectory, judged by `tool_use`."""
    last: dict[str, tuple[str, str]] = {}
    for request, response in exchanges:
        messages = request["messages"]
        if "You work in turns" in messages[0]["content"]:
            continue  # a turn call; the answer call is the one that sees the whole trajectory
        user = messages[-1]["content"]
        question = _section(user, "question")
        trajectory = _section(user, "trajectory")
        if question is None or trajectory is None:
            continue
        text = response["choices"][0]["message"].get("content") or ""
        last[question] = (trajectory, _section(text, "answer") or text.strip()[:200])
    rows = []
    for question in questions:
        trajectory, answer = last.get(question, ("", ""))
        rows.append({"question": question, "answer": answer, **tool_use(question, trajectory)})
    return rows


def eval_with_lock(
    folder: str, package: str, target: str, *, label: str, metric: str, lock: Path,
    api_base: str, model: str, test_rows: int, skip: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """`compile_and_eval` without the optimize: build examples/<folder> from `lock`, score it
    on `test_rows` test rows after the first `skip`."""
    source = ROOT / "examples" / folder
    with CountingProxy(api_base) as proxy, temp_dir(f"pc-{folder}") as project:
        shutil.copytree(
            source / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy2(lock, project / "promptcast.lock.json")
        test = project / "test.jsonl"
        rows = (source / "data" / "test.jsonl").read_text().splitlines(keepends=True)
        test.write_text("".join(rows[skip : skip + test_rows]))
        build: list[str | Path] = [PC_CLI, "build", package, "-o", "out", "--vendor-runtime"]
        run([*build, "--lock", "promptcast.lock.json"], cwd=project)
        start = time.perf_counter()
        proc = run(
            [PC_CLI, "eval", target, "--data", test, "--metric", metric, "--label", label,
             "--built", "out", "--json", "--model", f"openai/{model}", "--api-base", proxy.url,
             "--threads", "8"],
            cwd=project, env=quiet_env(), timeout=6 * 3600,
        )  # fmt: skip
        wall = round(time.perf_counter() - start, 2)
        report = json.loads(proc.stdout)
        counts = proxy.snapshot()
    return {
        "n_test": report["n"], "score": report["score"], "parse_failures": report["errors"],
        "lm_calls": counts["chat"], "compile_lm_calls": 0, "eval_lm_calls": counts["chat"],
        "compile_wall_s": 0.0, "eval_wall_s": wall, "wall_s": wall,
        "prompt_tokens": counts["prompt_tokens"], "completion_tokens": counts["completion_tokens"],
        "lock": str(lock.resolve().relative_to(ROOT)) if lock.resolve().is_relative_to(ROOT)
        else str(lock),
    }  # fmt: skip


def ours(
    task: str, optimizer: str, api_base: str, model: str, limit: int, server: str, tag: str,
    lock: Path | None = None, skip: int = 0,
) -> dict[str, Any]:  # fmt: skip
    folder, package, target, label, metric = TASKS[task]
    suffix = f"_{tag}" if tag else ""
    with RecordingProxy(api_base) as recorder:
        if lock is not None:
            measured = eval_with_lock(
                folder, package, target, label=label, metric=metric, lock=lock,
                api_base=recorder.url, model=model, test_rows=limit, skip=skip,
            )  # fmt: skip
        else:
            measured = compile_and_eval(
                folder, package, target, label=label, metric=metric,
                optimizer=None if optimizer == "predict" else optimizer, optimizer_args=ARGS,
                api_base=recorder.url, model=model, test_rows=limit,
                keep=RESULTS / "runs" / f"{task}_{optimizer}_{model}_{server}{suffix}",
            )  # fmt: skip
    row: dict[str, Any] = {
        "system": "promptcast",
        "task": task,
        "optimizer": optimizer,
        **{k: v for k, v in measured.items() if k != "score"},
        "test_score": measured["score"],
    }
    if task == "agent":
        test = ROOT / "examples" / folder / "data" / "test.jsonl"
        questions = [json.loads(line)["question"] for line in test.read_text().splitlines()]
        answers = agent_tool_use(recorder.exchanges, questions[skip : skip + measured["n_test"]])
        rows = f"_rows{skip + 1}-{skip + measured['n_test']}" if skip else ""
        raw = RESULTS / "raw" / f"programs_{task}_{optimizer}_{model}{suffix}{rows}.jsonl"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(
            "".join(
                json.dumps({"request": q, "response": a}, ensure_ascii=False) + "\n"
                for q, a in recorder.exchanges
            )
        )  # every request and answer of the run, to read what the agent did turn by turn
        row["answers"] = answers
        row["tool_use_ok"] = sum(a["tool_use_ok"] for a in answers)
        row["tool_errors"] = sum(a["tool_errors"] for a in answers)
    if tag:
        row["tag"] = tag
    if skip:
        row["skip"] = skip
    if os.environ.get("PYTHONPATH"):
        row["pythonpath"] = os.environ["PYTHONPATH"]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), required=True)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--api-base", default="http://127.0.0.1:8765/v1")
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument(
        "--lm-server", default="prefix-cache", help="the server's setting, stamped on each row"
    )
    p.add_argument(
        "--optimizer", action="append", choices=OPTIMIZERS,
        help="run only these (repeatable; default: all), on both systems",
    )  # fmt: skip
    p.add_argument("--no-dspy", action="store_true", help="run our side only")
    p.add_argument("--lock", type=Path, help="no optimize: build from this lock and score it")
    p.add_argument("--skip", type=int, default=0, help="with --lock: skip the first N test rows")
    p.add_argument(
        "--tag", default="", help="results go to programs_<model>_<tag>.jsonl (e.g. before/after)"
    )
    args = p.parse_args(argv)
    missing = [
        d for d in os.environ.get("PYTHONPATH", "").split(os.pathsep) if d and not Path(d).is_dir()
    ]
    if missing:  # the CLI would silently fall back to this checkout's own code
        p.error(f"PYTHONPATH names folders that do not exist: {missing}")
    optimizers = args.optimizer or list(OPTIMIZERS)
    out = RESULTS / f"programs_{args.model}{'_' + args.tag if args.tag else ''}.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    for optimizer in optimizers:
        row = ours(
            args.task, optimizer, args.api_base, args.model, args.limit, args.lm_server, args.tag,
            args.lock, args.skip,
        )  # fmt: skip
        lines.append(json.dumps({**row, "lm_server": args.lm_server}, sort_keys=True))
        out.write_text("\n".join(lines) + "\n")
        print(lines[-1], flush=True)
    if args.no_dspy:
        return 0
    proc = run(
        [dspy_python(), BENCH / "dspy_programs.py", "--task", args.task, "--limit", str(args.limit),
         "--api-base", args.api_base, "--model", args.model, "--only", ",".join(optimizers)],
        cwd=BENCH, env=quiet_env(), timeout=8 * 3600,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            lines.append(json.dumps({**json.loads(line), "lm_server": args.lm_server}))
            print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
