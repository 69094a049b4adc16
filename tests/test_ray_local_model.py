"""The slow Ray check: 100 rows of the sentiment test set through a built module on a local
Ray cluster against the real local model (qwen0.5b), workers without the compiler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import ray

from promptcast_runtime.ray_data import udf
from tests.support.built import build_sentiment
from tests.test_ray_data import worker_runtime_env


@pytest.mark.slow
def test_100_rows_on_ray_against_the_local_model(tmp_path: Path, local_lm_url: str) -> None:
    from tests.conftest import LOCAL_LM_MODEL

    tree = build_sentiment(tmp_path / "build")
    texts = [
        json.loads(line)["text"]
        for line in (Path(__file__).resolve().parents[1] / "examples/sentiment/data/test.jsonl")
        .read_text()
        .splitlines()
        if line.strip()
    ]
    texts = (texts * (100 // len(texts) + 1))[:100]
    ray.init(
        num_cpus=2,
        runtime_env=worker_runtime_env(tree, local_lm_url, f"openai/{LOCAL_LM_MODEL}"),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    sys.path.insert(0, str(tree))
    try:
        from reviews.sentiment import sentiment

        ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
        rows = ds.map_batches(
            udf(sentiment, inputs=["text"], concurrency=4), batch_size=25, batch_format="pandas"
        ).take_all()
    finally:
        sys.path.remove(str(tree))
        for name in [n for n in sys.modules if n == "reviews" or n.startswith("reviews.")]:
            del sys.modules[name]
        ray.shutdown()
    assert sorted(int(r["id"]) for r in rows) == list(range(100))
    labels = [r["output"] for r in rows if r["error"] is None]
    assert set(labels) <= {"positive", "negative"}
    assert len(labels) >= 80, [r["error"] for r in rows if r["error"]][:3]
    print(
        f"\nlocal model on Ray: {len(labels)}/100 rows answered, {labels.count('positive')} positive"
    )
