"""DSPy's side of `bench/dspy_identical.py`: render each case with DSPy 3.4.1's own ChatAdapter.

Runs in bench/.venv-dspy only. Reads a JSON list of cases on stdin (signature name,
instructions, demos, inputs), writes one JSON object on stdout: DSPy's version and, per case,
the messages `dspy.ChatAdapter().format(signature, demos, inputs)` returns, plus what
`ChatAdapter().parse` makes of each given completion (or the error's type).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from dspy.adapters.chat_adapter import ChatAdapter  # noqa: E402
from dspy_identical_cases import SIGNATURES, TYPES  # noqa: E402


def signature(name: str, instructions: str) -> type[dspy.Signature]:
    spec = SIGNATURES[name]
    fields: dict[str, Any] = {}
    for field, key, desc in spec["inputs"]:
        kwargs = {"desc": desc} if desc else {}
        fields[field] = (TYPES[key], dspy.InputField(**kwargs))
    for field, key, desc in spec["outputs"]:
        kwargs = {"desc": desc} if desc else {}
        fields[field] = (TYPES[key], dspy.OutputField(**kwargs))
    sig = dspy.Signature(fields, instructions)
    if spec["cot"]:
        # Exactly what dspy.ChainOfThought does to its signature.
        sig = dspy.ChainOfThought(sig).predict.signature
    return sig


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "value") and type(value).__module__ == "dspy_identical_cases":
        return {"enum": value.value}
    return value


def program_messages(request: dict[str, Any]) -> dict[str, Any]:
    """Messages of each predictor of a saved DSPy program (imported here, in DSPy's venv: the
    reference side may run it; `from-dspy` never does) for the given inputs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dspy_program", request["program"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    program = getattr(module, request["module"])()
    program.load(request["state"])
    adapter = ChatAdapter()
    out = {}
    for name, predictor in program.named_predictors():
        inputs = request["inputs"][name]
        out[name] = adapter.format(predictor.signature, predictor.demos, inputs)
    return out


def main() -> int:
    if sys.argv[1:] == ["--program"]:
        json.dump(program_messages(json.load(sys.stdin)), sys.stdout, ensure_ascii=False)
        return 0
    cases = json.load(sys.stdin)
    adapter = ChatAdapter()
    out = []
    for case in cases:
        sig = signature(case["signature"], case["instructions"])
        demos = [dspy.Example(**d) for d in case["demos"]]
        messages = adapter.format(sig, demos, case["inputs"])
        parses = []
        for text in case.get("completions", []):
            try:
                parses.append({"ok": jsonable(adapter.parse(sig, text))})
            except Exception as exc:  # noqa: BLE001 -- the error's type is the result
                parses.append({"error": type(exc).__name__})
        out.append({"messages": messages, "instructions": sig.instructions, "parses": parses})
    json.dump({"dspy_version": dspy.__version__, "results": out}, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
