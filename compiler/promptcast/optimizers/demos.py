"""Few-shot demos from labeled examples and from traces, in the JSON form the lock stores.

A demo is one dict of field name -> JSON-form value (`promptcast_runtime.to_jsonable`), inputs and
outputs together: exactly what the adapter renders as a user/assistant turn pair, and exactly
what the lock and the generated code hold.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from promptcast_runtime import to_jsonable

from ..api import LMFunction
from ..context import TraceRecord
from ..evaluate.data import Example
from ..ir import Demo, canonical_json


def labeled_demo(function: LMFunction[..., Any], example: Example) -> Demo | None:
    """The example's values for `function`'s fields (inputs, then expected outputs), or None.

    None when the example has none of the function's inputs or none of its outputs: such a
    demo would show the model only "Not supplied" placeholders. (An inner step of a program
    usually has no labels of its own; it gets bootstrapped demos instead.)
    """
    signature = function.signature
    inputs = {
        f.name: to_jsonable(example.data[f.name])
        for f in signature.inputs
        if f.name in example.data
    }
    outputs = {
        f.name: to_jsonable(example.data[f.name])
        for f in signature.outputs
        if f.name in example.data
    }
    if not inputs or not outputs:
        return None
    return {**inputs, **outputs}


def labeled_demos(
    functions: Mapping[str, LMFunction[..., Any]],
    examples: Sequence[Example],
    k: int,
    rng: random.Random,
) -> dict[str, tuple[Demo, ...]]:
    """DSPy's LabeledFewShot: each function (in qualname order) gets `rng.sample` of k examples.

    One rng serves all functions in turn, as in DSPy, so each function gets its own sample.
    """
    result: dict[str, tuple[Demo, ...]] = {}
    for qualname in sorted(functions):
        if k <= 0 or not examples:
            result[qualname] = ()
            continue
        sample = rng.sample(list(examples), min(k, len(examples)))
        demos = (labeled_demo(functions[qualname], ex) for ex in sample)
        result[qualname] = tuple(d for d in demos if d is not None)
    return result


def trace_demo(record: TraceRecord) -> Demo:
    """A traced call as a demo: its inputs and every output field (reasoning included)."""
    return {
        **{str(k): to_jsonable(v) for k, v in record.inputs.items()},
        **{str(k): to_jsonable(v) for k, v in record.fields.items()},
    }


def pick_one(demos: Sequence[Demo]) -> Demo:
    """One demo of a function called several times in one example (DSPy's rule).

    Half the time the last call, else one of the earlier ones, chosen by an rng seeded with the
    demos' content -- so the choice is deterministic without any global seed.
    """
    if len(demos) == 1:
        return demos[0]
    digest = hashlib.sha256(canonical_json(list(demos)).encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    return rng.choice(list(demos[:-1])) if rng.random() < 0.5 else demos[-1]
