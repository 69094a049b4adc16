"""The real local training path, tiny: the zero-shot teacher on a few TREC rows with the real
local model, LoRA on 2 layers for 1 epoch on CPU (`trainer=local`, lora_script.py in the
`[train]` environment), the adapter served by llama.cpp on its own port, the trained model
scored through the request the built module sends -- and scored again, without the cache,
the same. Slow: ~1-3 minutes on 2 cores (the model load is most of it)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from promptcast.engine import LiteLLMLM
from promptcast.evaluate import evaluate
from promptcast.evaluate.data import bind, load_dataset
from promptcast.optimizers import OptimizationTask, make_optimizer, optimize

ROOT = Path(__file__).resolve().parent.parent
PORT = 8779


@pytest.mark.slow
def test_local_lora_trains_serves_and_scores_what_ships(
    local_lm_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "trec"))
    from triage.classify import question_type

    from promptcast.engine import LMCache

    data = ROOT / "examples" / "trec" / "data"
    rows = load_dataset(data / "train.jsonl").examples
    bound = bind(rows, inputs=["question"], outputs=["answer"], label="coarse")
    train, dev = bound[:12], bound[12:16]
    lm = LiteLLMLM("openai/qwen0.5b", api_base=local_lm_url, cache=LMCache(tmp_path / "c.db"))
    optimizer = make_optimizer(
        "finetune",
        {
            "trainer": "local",
            "epochs": "1",
            "lora_layers": "2",
            "max_train_examples": "4",
            "max_seq_len": "256",
            "port": str(PORT),
            "workdir": str(tmp_path / "ft"),
        },
    )
    task = OptimizationTask(question_type, train, dev, "exact_match", lm, threads=2)
    job_dirs: list[Path] = []
    try:
        result = optimize(task, optimizer)
        job_dirs = list((tmp_path / "ft").glob("local-*"))
        state = result.states[question_type.qualname]
        assert state.model.startswith("qwen0.5b-ft-")
        training = result.training
        assert training["trainer"] == "local" and training["base_model"] == "qwen0.5b"
        assert training["served_at"] == f"http://127.0.0.1:{PORT}/v1"
        assert 1 <= training["training_set"]["conversations"] <= 4
        (job,) = job_dirs
        assert (job / "adapter.gguf").stat().st_size > 10_000
        trained = json.loads((job / "result.json").read_text())
        assert trained["layers"] == [22, 23] and len(trained["loss"]) == 1
        assert result.dev_score_after is not None
        # The shipped request, sent fresh (no cache) to the trained model's server.
        fresh = LiteLLMLM("openai/qwen0.5b", api_base=f"http://127.0.0.1:{PORT}/v1")
        from promptcast.context import candidate

        def run(**inputs: str) -> object:
            with candidate(states=result.states, lm=fresh):
                return question_type(**inputs)

        report = evaluate(run, dev, "exact_match", 1)
        assert report.score == pytest.approx(result.dev_score_after)
    finally:
        for job in job_dirs:
            pid = job / "server.pid"
            if pid.exists():
                os.kill(int(pid.read_text()), signal.SIGTERM)
