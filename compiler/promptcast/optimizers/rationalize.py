"""Demos that keep a reasoning step reasoning.

A chain-of-thought step's output includes a `reasoning` field no training label holds. DSPy's
BootstrapFewShot fills the demos it could not bootstrap with labeled examples anyway, so the
prompt shows question -> answer with the reasoning "not supplied"; a small model copies that
pattern and stops reasoning (measured on math word problems with qwen0.5b: 25 completion tokens
per answer instead of ~160, test accuracy 0.06 -> 0.02). The same demos sit in DSPy's teacher,
so fewer training examples bootstrap in the first place.

The `reasoning="complete"` policy (bootstrap's default) changes both places, for steps whose
kind adds outputs (`Kind.extra_outputs`):

- the **teacher** runs those steps zero-shot (no reasoning-less demos in its prompt);
- the **labeled top-up** is *rationalized*, as DSPy's early "rationalization" did: the step runs
  on the labeled example with its known answer given as a hint in the instructions, and the run
  becomes a demo -- the example's own inputs, the model's reasoning, the answer -- only when the
  answer it gives equals the label and the reasoning does not mention the hint. Examples that
  fail are dropped: fewer, complete demos rather than incomplete ones;
- a demo's reasoning must **reason** (`reasons`): a "reasoning" that only restates the inputs
  skips the reasoning as surely as an empty one, so such bootstrapped traces and
  rationalizations are dropped too.

`reasoning="dspy"` keeps DSPy's behaviour (labeled demos as they are, in the teacher too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Final

from promptcast_runtime import to_jsonable
from promptcast_runtime.kinds import get_kind

from ..engine.program import StepCall
from ..evaluate.data import Example
from ..ir import Demo, FunctionState, Signature
from .base import Search, States
from .demos import labeled_demo, trace_demo

REASONING_POLICIES: Final = ("complete", "dspy")
"""`reasoning=` values: rationalized, complete demos (default) or DSPy's labeled fill."""

NEW_WORDS: Final = 0.2
"""The least share of a reasoning's words that must be new -- not words of the inputs -- for it
to count as reasoning: qwen0.5b's "reasoning" on object_counting is mostly the question restated
("I have a violin, a fridge, a piano, ..."), and 16 such demos took test accuracy from 0.20
(zero-shot) to 0.06 -- they teach the step to restate, not to reason."""

LEAK_PHRASES: Final = ("hint", "was given", "is known", "given answer", "correct answer is")
"""A rationalized demo whose reasoning says one of these leaked the hint: it is dropped (a demo
that reasons "the correct answer is 7" teaches the model to assert, not to count)."""


def reasoning_steps(functions: Mapping[str, Signature]) -> frozenset[str]:
    """The steps whose kind adds outputs a label cannot hold (chain of thought's reasoning)."""
    return frozenset(q for q, sig in functions.items() if get_kind(sig.kind).extra_outputs)


def hint_instructions(signature: Signature, state: FunctionState, demo: Demo) -> str:
    """The step's instructions with the labeled answer given as a hint (for this one run)."""
    answers = ", ".join(
        f"{f.name} = {_show(demo[f.name])}" for f in signature.outputs if f.name in demo
    )
    return (
        f"{state.instructions}\n\n"
        f"For this example the correct answer is known: {answers}. Work it out step by step "
        "from the inputs alone so that your reasoning arrives at exactly that answer, as if you "
        "had found it yourself; do not mention that it was given."
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def rationalize(
    search: Search,
    qualname: str,
    examples: Sequence[Example],
    states: States,
    want: int,
    label: str,
) -> list[Demo]:
    """Up to `want` complete demos of step `qualname` from labeled `examples`, in their order.

    Examples are tried in waves of the demos still missing, at most `2 * want` in all; each
    runs the program with `states`, the step's instructions carrying that example's label as a
    hint. A run yields a demo when the step's declared outputs equal the label and its added
    outputs (the reasoning) are non-empty and do not mention the hint.
    """
    signature = search.functions[qualname]
    extra = get_kind(signature.kind).reserved_names
    labeled = [(ex, d) for ex in examples if (d := labeled_demo(signature, ex)) is not None]
    limit = min(len(labeled), 2 * want)
    demos: list[Demo] = []
    tried = 0
    while len(demos) < want and tried < limit:
        wave = labeled[tried : min(limit, tried + want - len(demos))]
        tried += len(wave)
        items = []
        for example, demo in wave:
            state = states[qualname]
            hinted = dataclasses.replace(
                state, instructions=hint_instructions(signature, state, demo)
            )
            items.append((example, {**states, qualname: hinted}))
        runs = search.trace(items, f"{label}: rationalizing")
        for (_, demo), run in zip(wave, runs, strict=True):
            found = _matching_call(run.records, qualname, signature, demo, extra)
            if found is not None:
                demos.append(found)
    search.notes.append(
        f"{label}: {len(demos)} of {tried} labeled examples rationalized for {signature.name}"
    )
    return demos


def _matching_call(
    records: Sequence[StepCall],
    qualname: str,
    signature: Signature,
    label: Demo,
    extra: Sequence[str],
) -> Demo | None:
    """The first call of the step that reached the labeled answer with clean reasoning."""
    wanted = {f.name: label[f.name] for f in signature.outputs if f.name in label}
    for record in records:
        if record.qualname != qualname:
            continue
        if any(to_jsonable(record.fields.get(name)) != value for name, value in wanted.items()):
            continue
        reasoning = [str(record.fields.get(name) or "") for name in extra]
        if not all(reasons(text, record.inputs) for text in reasoning):
            continue
        if any(phrase in text.lower() for text in reasoning for phrase in LEAK_PHRASES):
            continue
        return trace_demo(record)
    return None


def reasons(text: str, inputs: Mapping[str, Any]) -> bool:
    """Whether a reasoning does more than restate its inputs: at least three words, and at
    least `NEW_WORDS` of them (two or more) not found among the inputs' words."""
    from promptcast_runtime.nearest import terms

    words = terms(text)
    if len(words) < 3:
        return False
    given = {w for value in inputs.values() for w in terms(value)}
    new = sum(1 for w in words if w not in given)
    return new >= max(2, NEW_WORDS * len(words))


def trace_reasons(demo: Demo, signature: Signature) -> bool:
    """A bootstrapped trace of a reasoning step whose every added output `reasons`."""
    inputs = {f.name: demo[f.name] for f in signature.inputs if f.name in demo}
    extra = get_kind(signature.kind).reserved_names
    return all(reasons(str(demo.get(name) or ""), inputs) for name in extra)
