"""Weight optimization: training sets rendered through the runtime, and the trainers that turn
them into a model a step can call (`optimizers/finetune.py` uses them).

One interface (`trainer.Trainer`), two backends: an OpenAI-compatible fine-tuning API
(`openai_api.py`: upload, create, poll, resumable) and a local LoRA trainer for the local
llama.cpp model (`local.py`, with `lora_script.py` run in the `[train]` environment).
"""

from __future__ import annotations

from .data import TrainingSet
from .trainer import TrainedModel, Trainer, TrainingError

__all__ = ["TrainedModel", "Trainer", "TrainingError", "TrainingSet"]
