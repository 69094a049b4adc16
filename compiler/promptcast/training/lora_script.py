"""LoRA training on a GGUF model, on CPU: run as a script in the `[train]` environment.

    python lora_script.py --gguf MODEL.gguf --data train.jsonl --out DIR [--epochs 2 ...]

Why this shape: the local model is a llama.cpp GGUF (Qwen2.5-0.5B-Instruct, Q4_K_M).
transformers loads a GGUF directly (`gguf_file=`, dequantized to float32), peft adds LoRA
adapters to the attention projections of the last `--layers` layers (backpropagation then stops
there, which is what makes 2 CPU cores enough), and the trained adapter is written back as a
GGUF LoRA adapter (`gguf.GGUFWriter`, the tensor names llama.cpp's `convert_lora_to_gguf.py`
writes) that llama.cpp applies over the *same* quantized base at serving time (`--lora_path`).
So the weights trained against are the weights served, and nothing is merged or re-quantized.

The loss is on the assistant turn only (the prompt tokens are context, not targets); each
conversation is rendered with the model's own chat template, as llama.cpp's server renders the
request's messages. The logits are computed only at the answer positions (the 151,936-token
output layer over every prompt position would dominate the step time).

It imports nothing from promptcast (the environment may be another one) and prints one JSON
line at the end: {"adapter": PATH, "examples": N, "tokens": N, "seconds": S, "loss": [...]}.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-seq-len", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    directory, name = str(args.gguf.parent), args.gguf.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    loaded = time.perf_counter() - start
    n_layers = int(model.config.num_hidden_layers)
    first = max(0, n_layers - args.layers)
    alpha = args.alpha if args.alpha is not None else 2.0 * args.rank
    config = LoraConfig(
        r=args.rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(PROJECTIONS),
        layers_to_transform=list(range(first, n_layers)),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    encoded = [
        encode(tokenizer, json.loads(line)["messages"], args.max_seq_len)
        for line in args.data.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    examples = [e for e in encoded if e is not None]
    if not examples:
        print("lora_script: no usable conversation (each needs an assistant turn)", file=sys.stderr)
        return 2
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    total_steps = args.epochs * len(examples)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    inner = model.base_model.model  # Qwen2ForCausalLM with LoRA layers inside
    losses: list[float] = []
    tokens = 0
    model.train()
    order = list(range(len(examples)))
    for epoch in range(args.epochs):
        random.Random(args.seed + epoch).shuffle(order)
        epoch_loss = 0.0
        for index in order:
            ids, first_answer = examples[index]
            input_ids = torch.tensor([ids])
            hidden = inner.model(input_ids=input_ids).last_hidden_state[0]
            # Position t predicts token t+1: the answer tokens are predicted from first_answer-1.
            positions = hidden[first_answer - 1 : len(ids) - 1]
            logits = inner.lm_head(positions)
            target = input_ids[0, first_answer:]
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += float(loss.detach())
            tokens += len(ids)
        losses.append(round(epoch_loss / len(examples), 4))
        print(f"lora_script: epoch {epoch + 1}/{args.epochs} loss {losses[-1]}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    adapter = args.out / "adapter.gguf"
    write_gguf_adapter(model, adapter, alpha)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "adapter": str(adapter),
                "examples": len(examples),
                "tokens": tokens,
                "seconds": round(seconds, 1),
                "load_seconds": round(loaded, 1),
                "loss": losses,
                "layers": [first, n_layers - 1],
            }
        )
    )
    return 0


def encode(
    tokenizer: Any, messages: list[dict[str, str]], max_len: int
) -> tuple[list[int], int] | None:
    """Token ids of the conversation and where the assistant's answer starts; None without an
    answer. A conversation longer than `max_len` keeps its end (the answer and what precedes
    it), so the loss always sees the whole answer."""
    if not messages or messages[-1].get("role") != "assistant":
        return None
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    answer = messages[-1]["content"] + "<|im_end|>"
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + answer_ids
    first = len(prompt_ids)
    if len(ids) > max_len:
        cut = len(ids) - max_len
        ids, first = ids[cut:], max(1, first - cut)
    return ids, first


def write_gguf_adapter(model: Any, path: Path, alpha: float) -> None:
    """The peft LoRA weights as a llama.cpp LoRA adapter GGUF (what convert_lora_to_gguf.py
    writes: general.type=adapter, adapter.type=lora, adapter.lora.alpha, and per target tensor
    `<name>.weight.lora_a` [rank x in] and `.lora_b` [out x rank])."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    count = 0
    for name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        parts = name.split(".")
        layer = int(parts[parts.index("layers") + 1])
        projection = parts[-1]
        base = f"blk.{layer}.{GGUF_NAMES[projection]}.weight"
        a = module.lora_A["default"].weight.detach().float().numpy()
        b = module.lora_B["default"].weight.detach().float().numpy()
        writer.add_tensor(base + ".lora_a", a)
        writer.add_tensor(base + ".lora_b", b)
        count += 1
    if not count:
        raise SystemExit("lora_script: the model has no LoRA layers to write")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    sys.exit(main())
