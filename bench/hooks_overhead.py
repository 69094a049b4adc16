"""What runtime hooks cost per call: none registered, a no-op hook, the OpenTelemetry hook.

Why: hooks must cost nothing when none is registered (the call path reads one module attribute,
`hooks.ACTIVE`) and a known amount when one is. Python calls per `forward` (cProfile) do not
depend on machine load; the microseconds (min of repeats) do, so read them as a ratio within one
run. Usage: `.venv/bin/python bench/hooks_overhead.py` (needs opentelemetry-sdk, a dev dependency).
"""

from __future__ import annotations

import cProfile
import pstats
import timeit
from typing import Any

from call_count import LABELS, FixedLM

from promptcast_runtime import RUNTIME_API, Hook, Step, build_step, hooked, otel

SPEC = {
    "api": RUNTIME_API,
    "step": "bench.hooks:classify",
    "kind": "predict",
    "instructions": "Classify.",
    "inputs": {"question": "A question."},
    "outputs": {"answer": "Its type."},
    "shape": "single",
    "demos": (),
    "adapter": "chat",
    "lm_params": {"max_tokens": 64, "temperature": 0.0},
    "options": {"parse_retries": 0},
}


def measure(step: Step[Any], lm: FixedLM) -> tuple[float, float]:
    inputs = {"question": "How far is it?"}
    step.forward(inputs, lm)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(200):
        step.forward(inputs, lm)
    profile.disable()
    calls = pstats.Stats(profile).total_calls / 200  # type: ignore[attr-defined]
    seconds = min(timeit.repeat(lambda: step.forward(inputs, lm), number=2000, repeat=7)) / 2000
    return calls, seconds * 1e6


def main() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    step = build_step(SPEC, inputs={"question": str}, returns=LABELS)
    lm = FixedLM("[[ ## answer ## ]]\nNUM\n\n[[ ## completed ## ]]")
    base_calls, base_us = measure(step, lm)
    print(f"no hook:            {base_calls:4.0f} calls/forward, {base_us:6.1f} us")
    with hooked(Hook()):
        calls, us = measure(step, lm)
    print(f"a no-op hook:       {calls:4.0f} calls/forward, {us:6.1f} us ({us / base_us:.2f}x)")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    with hooked(otel.OpenTelemetryHook(provider)):
        calls, us = measure(step, lm)
    print(f"OpenTelemetry hook: {calls:4.0f} calls/forward, {us:6.1f} us ({us / base_us:.2f}x)")


if __name__ == "__main__":
    main()
