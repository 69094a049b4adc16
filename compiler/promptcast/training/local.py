"""The local trainer: LoRA on the local GGUF model, on this machine's CPU, served by llama.cpp.

Chosen over the alternatives (measured in bench/results/finetune.md): llama.cpp's own
`llama-finetune` trains all weights of an F32/F16 model only (not our Q4_K_M file, and not in
minutes on two cores), and merging a LoRA into a converted full model means re-quantizing and
serving a second 0.5-1 GB file. LoRA with transformers + peft on the GGUF weights
(`lora_script.py`, dequantized by transformers) trains a few hundred thousand parameters on
the very weights llama.cpp serves, and the adapter (a ~2 MB GGUF) is applied over the same
quantized base by the llama-cpp-python server (`--lora_path`) on its own port.

Steps, each skipped when its output for this job key is already on disk (a rerun pays nothing;
a killed run redoes only the unfinished step): write the JSONL, train (`nice`d subprocess in the
`[train]` environment: `python`, else PROMPTCAST_TRAIN_PYTHON, else this interpreter), start
(or reuse) the server for `<alias>-ft-<key>` on `port`. The server is left running -- the built
module and `promptcast eval` call it -- and its pid file says how to stop it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..fsutil import atomic_write_text
from .data import TrainingSet
from .trainer import TrainedModel, Trainer, TrainingError

SCRIPT = Path(__file__).with_name("lora_script.py")
SERVER_START_S = 90.0


def lm_home() -> Path:
    """Where scripts/lm keeps the llama.cpp server's venv and the GGUF models."""
    return Path(os.environ.get("PROMPTCAST_LM_HOME", Path.home() / ".cache" / "promptcast-lm"))


@dataclass
class LocalLoRA(Trainer):
    """LoRA on the local model (see module doc)."""

    name: ClassVar[str] = "local"
    epochs: int = 2
    rank: int = 8
    layers: int = 8
    learning_rate: float = 2e-4
    max_seq_len: int = 384
    port: int = 8767
    python: str | None = None
    seed: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "method": "lora",
            "epochs": self.epochs,
            "rank": self.rank,
            "alpha": 2.0 * self.rank,
            "layers": self.layers,
            "modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            "learning_rate": self.learning_rate,
            "max_seq_len": self.max_seq_len,
            "seed": self.seed,
        }

    def price_per_million(self) -> float | None:
        return 0.0

    def train(self, data: TrainingSet, base_model: str, workdir: Path) -> TrainedModel:
        alias = base_model.rsplit("/", 1)[-1]
        gguf = lm_home() / "models" / f"{alias}.gguf"
        if not gguf.is_file():
            raise TrainingError(
                f"the local trainer needs the base model's GGUF at {gguf} (scripts/lm/setup.sh "
                f"{alias}); --model must name a local model"
            )
        key = self.job_key(data, base_model)
        job = workdir / f"local-{key}"
        job.mkdir(parents=True, exist_ok=True)
        adapter = job / "adapter.gguf"
        record = job / "result.json"
        if not (adapter.is_file() and record.is_file()):
            (job / "train.jsonl").write_text(data.jsonl(), encoding="utf-8")
            result = self._run_training(gguf, job)
            atomic_write_text(record, json.dumps(result, indent=2, sort_keys=True) + "\n")
        result = json.loads(record.read_text(encoding="utf-8"))
        model = f"{alias}-ft-{key[:10]}"
        url = self._serve(gguf, adapter, model, job)
        details = {
            "adapter": str(adapter),
            "examples": result.get("examples"),
            "loss": result.get("loss"),
            "seconds": result.get("seconds"),
        }
        return TrainedModel(model, url, details)

    def _python(self) -> str:
        return self.python or os.environ.get("PROMPTCAST_TRAIN_PYTHON") or sys.executable

    def _run_training(self, gguf: Path, job: Path) -> dict[str, Any]:
        command = [
            self._python(),
            str(SCRIPT),
            "--gguf",
            str(gguf),
            "--data",
            str(job / "train.jsonl"),
            "--out",
            str(job),
            "--epochs",
            str(self.epochs),
            "--rank",
            str(self.rank),
            "--layers",
            str(self.layers),
            "--lr",
            str(self.learning_rate),
            "--max-seq-len",
            str(self.max_seq_len),
            "--seed",
            str(self.seed),
        ]
        if shutil.which("nice"):
            command = ["nice", "-n", "10", *command]
        log = job / "train.log"
        with log.open("w", encoding="utf-8") as err:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True)  # noqa: S603
        if done.returncode != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
            hint = (
                " (install the trainer: pip install 'promptcast[train]', or point "
                "PROMPTCAST_TRAIN_PYTHON at a Python that has it)"
                if "ModuleNotFoundError" in tail
                else ""
            )
            raise TrainingError(f"local LoRA training failed{hint}; {log}:\n{tail}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise TrainingError(f"local LoRA training printed no result; see {log}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def _serve(self, gguf: Path, adapter: Path, model: str, job: Path) -> str:
        """The URL of a llama.cpp server with the adapter over the base, started if needed."""
        url = f"http://127.0.0.1:{self.port}/v1"
        served = _served_models(url)
        if served is not None:
            if model in served:
                return url
            raise TrainingError(
                f"port {self.port} already serves {', '.join(served) or 'another model'}, not "
                f"{model}; stop that server or pass --optimizer-arg port=N"
            )
        python = lm_home() / "venv" / "bin" / "python"
        serve = Path(__file__).resolve().parents[3] / "scripts" / "lm" / "serve.py"
        if not python.is_file() or not serve.is_file():
            raise TrainingError(
                f"no llama.cpp server to serve the adapter ({python}, {serve}): run "
                "scripts/lm/setup.sh"
            )
        threads = str(os.cpu_count() or 2)
        command = [
            str(python),
            str(serve),
            "--model",
            str(gguf),
            "--lora_path",
            str(adapter),
            "--model_alias",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "4096",
            "--n_threads",
            threads,
            "--n_threads_batch",
            threads,
            "--seed",
            "0",
        ]
        log = (job / "server.log").open("w", encoding="utf-8")
        process = subprocess.Popen(  # noqa: S603
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (job / "server.pid").write_text(f"{process.pid}\n", encoding="utf-8")
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (job / "server.log").read_text(errors="replace")[-1500:]
                raise TrainingError(f"the adapter's llama.cpp server exited:\n{tail}")
            if _served_models(url) is not None:
                return url
            time.sleep(0.5)
        raise TrainingError(f"the adapter's llama.cpp server did not answer at {url}")


def _served_models(url: str) -> list[str] | None:
    """The model ids a server at `url` serves, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(url + "/models", timeout=2) as response:  # noqa: S310
            data = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]
