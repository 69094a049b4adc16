"""Multi-stage and ReAct programs, both systems, the real local model: issue #5's comparison.

promptcast through its CLI in a fresh copy of the example (`eval` zero-shot; `optimize` with
bootstrap from the final label only, `build`, `eval --built`), DSPy through `dspy_programs.py`;
the same data, metric, model and server, LM calls counted by `counting_proxy.py` on both sides.
Writes `results/programs_<model>.jsonl`.

    python3 bench/programs.py --task route [--limit 40] [--model qwen0.5b --api-base URL]
        [--optimizer predict --optimizer bootstrap]   (both by default; both systems)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchlib import BENCH, RESULTS, dspy_python, quiet_env, run
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


def ours(
    task: str, optimizer: str, api_base: str, model: str, limit: int, server: str
) -> dict[str, Any]:
    folder, package, target, label, metric = TASKS[task]
    measured = compile_and_eval(
        folder, package, target, label=label, metric=metric,
        optimizer=None if optimizer == "predict" else optimizer, optimizer_args=ARGS,
        api_base=api_base, model=model, test_rows=limit,
        keep=RESULTS / "runs" / f"{task}_{optimizer}_{model}_{server}",
    )  # fmt: skip
    return {
        "system": "promptcast",
        "task": task,
        "optimizer": optimizer,
        **{k: v for k, v in measured.items() if k != "score"},
        "test_score": measured["score"],
    }


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
    args = p.parse_args(argv)
    optimizers = args.optimizer or list(OPTIMIZERS)
    out = RESULTS / f"programs_{args.model}.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    for optimizer in optimizers:
        row = ours(args.task, optimizer, args.api_base, args.model, args.limit, args.lm_server)
        lines.append(json.dumps({**row, "lm_server": args.lm_server}, sort_keys=True))
        out.write_text("\n".join(lines) + "\n")
        print(lines[-1], flush=True)
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
