"""Scale section worker: a built module over 2,000 rows on a local Ray cluster (2 CPUs) against
one process at the same per-process concurrency, the fake server (100 ms) in its own process.

Ray side as in tests/test_ray_data.py: the generated tree (vendored runtime) is the job's
working_dir and the workers run `python -S` over site-packages without promptcast. Prints one
JSON object. Run with the project's interpreter from the repository root:

    .venv/bin/python bench/scale_ray.py --rows 2000 --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.built import (  # noqa: E402
    build_sentiment,
    row_text,
    site_without_promptcast,
)

ANSWER = "[[ ## answer ## ]]\npositive\n\n[[ ## completed ## ]]"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pcbench-ray-"))
    tree = build_sentiment(folder / "build")
    answers = folder / "answers.json"
    answers.write_text(json.dumps({"*": ANSWER}))
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--latency", str(args.latency),
         "--answers", str(answers), "--max-seconds", "1200"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        out = measure(tree, url, folder, args)
    finally:
        server.kill()
        server.wait()
    json.dump(out, sys.stdout)
    print()


def measure(tree: Path, url: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    import ray

    from promptcast_runtime import OpenAIClient, batch
    from promptcast_runtime.ray_data import runtime_env, udf

    sys.path.insert(0, str(tree))
    from reviews.sentiment import sentiment

    rows = [{"text": row_text(i)} for i in range(args.rows)]
    start = time.perf_counter()
    single = batch(sentiment, rows, concurrency=args.concurrency, lm=OpenAIClient("m", url))
    single_s = time.perf_counter() - start
    assert single == ["positive"] * args.rows

    env = runtime_env(
        str(tree),
        env_vars={
            "PYTHONPATH": str(site_without_promptcast(folder / "worker-site")),
            "PROMPTCAST_BASE_URL": url,
            "PROMPTCAST_MODEL": "m",
        },
        py_executable=f"{sys.executable} -S",
        excludes=["**/__pycache__"],
    )
    ray.init(num_cpus=2, runtime_env=env, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    fn = udf(sentiment, inputs=["text"], concurrency=args.concurrency)

    def run(n: int) -> float:
        ds = ray.data.from_items([{"id": i, **rows[i % len(rows)]} for i in range(n)])
        start = time.perf_counter()
        got = ds.map_batches(fn, batch_size=args.batch_size, batch_format="pandas").take_all()
        wall = time.perf_counter() - start
        assert sorted(int(r["id"]) for r in got) == list(range(n))
        assert all(r["output"] == "positive" for r in got)
        return wall

    run(200)  # workers start and unpack the tree once
    ray_s = run(args.rows)
    ray.shutdown()
    return {
        "rows": args.rows,
        "concurrency_per_process": args.concurrency,
        "latency_s": args.latency,
        "single_process_s": single_s,
        "ray_s": ray_s,
        "limit_single_s": args.rows * args.latency / args.concurrency,
        "limit_ray_s": args.rows * args.latency / (2 * args.concurrency),
    }


if __name__ == "__main__":
    main()
