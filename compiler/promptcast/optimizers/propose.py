"""LM-proposed instructions, asked through the runtime like every other call (so cached,
budgeted and counted): the building block of the instruction optimizers.

The prompts follow DSPy's COPRO signatures (`BasicGenerateInstruction`,
`GenerateInstructionGivenAttempts`), minus the output-field prefix, which promptcast's
adapters do not render. Distinct proposals are distinct samples (`sample(i)`: rollout, seed,
temperature), so a rerun on a warm cache proposes exactly the same instructions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from promptcast_runtime import LM, Field, ParseError, Predictor, Signature, sample
from promptcast_runtime.adapters import remove_markers

PROPOSER_LM_PARAMS = {"max_tokens": 256, "temperature": 0.0}
"""What the optimizer's own calls (instruction proposals, summaries, reflections) send: greedy
and short. These calls never ship, so they are not a step's state; they are fixed here so a
run's requests do not depend on the engine or the server's defaults."""

OPTIMIZER_ROLE = "You are an instruction optimizer for large language models. "
_PROPOSED = Field("proposed_instruction", str, "The improved instructions for the language model")

BASIC: Predictor[str] = Predictor(
    Signature(
        OPTIMIZER_ROLE
        + "I will give you the instructions of a task. Your task is to propose an instruction"
        " that will lead a good language model to perform the task well. Don't be afraid to be"
        " creative.",
        (Field("basic_instruction", str, "The initial instructions before optimization"),),
        (_PROPOSED,),
    ),
    returns="proposed_instruction",
    lm_params=PROPOSER_LM_PARAMS,
)

GIVEN_ATTEMPTS: Predictor[str] = Predictor(
    Signature(
        OPTIMIZER_ROLE
        + "I will give some task instructions I've tried, along with their corresponding"
        " validation scores. The instructions are arranged in increasing order based on their"
        " scores, where higher scores indicate better quality. Your task is to propose a new"
        " instruction that will lead a good language model to perform the task even better."
        " Don't be afraid to be creative.",
        (Field("attempted_instructions", str),),
        (_PROPOSED,),
    ),
    returns="proposed_instruction",
    lm_params=PROPOSER_LM_PARAMS,
)


def ask_text(
    predictor: Predictor[str],
    values: Mapping[str, Any],
    lm: LM,
    *,
    index: int | None = None,
    temperature: float = 1.0,
    seed: int = 0,
) -> str:
    """One text answer of an optimizer's own predictor (a proposal, a reflection, a summary).

    Sample `index` when given (reproducible, distinct per index). The runtime parses a single
    `str` output from any reply that has no other field markers; when a reply names some other
    field instead, its raw text is still the model's answer and is used as it is. Surrounding
    quotes and any echoed field markers are removed (an instruction that itself says
    `[[ ## proposed_instruction ## ]]` would be shipped to every later call), so a reply that
    was only a marker comes back empty.
    """
    try:
        if index is None:
            text = predictor.forward(values, lm).value
        else:
            with sample(index, temperature=temperature, seed=seed):
                text = predictor.forward(values, lm).value
    except ParseError as exc:
        text = exc.raw or ""
    return clean_text_answer(text, predictor.signature.outputs[0].name)


def clean_text_answer(text: str, field: str) -> str:
    """The answer of output `field` without surrounding quotes or code fence, field markers
    (the runtime's `remove_markers`), or a leading label naming the field (`Proposed
    instruction: ...`)."""
    # The adapter already removed markers from a parsed answer; a ParseError's raw text
    # (a reply that named some other field) still has them.
    text = remove_markers(text.strip().strip('"'), [field])
    label = r"[ _]".join(map(re.escape, field.split("_")))
    text = re.sub(rf"\A\s*\**{label}\**\s*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"(?m)[ \t]+$", "", text).strip()
    text = re.sub(r"\A```[\w-]*\n|\n```\Z", "", text)  # a fence around the whole answer
    return text.strip().strip('"').strip()


def propose(
    predictor: Predictor[str],
    values: dict[str, str],
    lm: LM,
    count: int,
    *,
    temperature: float,
    seed: int,
    first_sample: int = 0,
) -> list[str]:
    """`count` proposals (samples first_sample.. of the proposer); empty ones are dropped,
    duplicates kept once."""
    found: list[str] = []
    for index in range(first_sample, first_sample + count):
        text = ask_text(predictor, values, lm, index=index, temperature=temperature, seed=seed)
        if text and text not in found:
            found.append(text)
    return found


def attempts_text(scored: Sequence[tuple[str, float]]) -> str:
    """`Instruction #1: ... / Resulting Score #1: ...`, worst first, as COPRO writes them."""
    lines = []
    for i, (instruction, score) in enumerate(scored, 1):
        lines += [f"Instruction #{i}: {instruction}", f"Resulting Score #{i}: {score:.3f}"]
    return "\n".join(lines)
