"""LM-proposed instructions, asked through the runtime like every other call (so cached,
budgeted and counted): the building block of the instruction optimizers.

The prompts follow DSPy's COPRO signatures (`BasicGenerateInstruction`,
`GenerateInstructionGivenAttempts`), minus the output-field prefix, which promptcast's
adapters do not render. Distinct proposals are distinct samples (`sample(i)`: rollout, seed,
temperature), so a rerun on a warm cache proposes exactly the same instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptcast_runtime import LM, Field, ParseError, Predictor, Signature, sample

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
)


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
    """`count` proposals (samples first_sample.. of the proposer); unusable ones are dropped.

    A reply whose fields do not parse still often holds a usable instruction: its raw text is
    taken when it is a sentence or more. Empty proposals are dropped, duplicates kept once.
    """
    found: list[str] = []
    for index in range(first_sample, first_sample + count):
        with sample(index, temperature=temperature, seed=seed):
            try:
                text = predictor.forward(values, lm).value
            except ParseError as exc:
                text = exc.raw or ""
        text = clean(text)
        if text and text not in found:
            found.append(text)
    return found


def clean(text: str) -> str:
    """Strip quotes and field markers a model wraps its instruction in."""
    text = text.replace("[[ ## proposed_instruction ## ]]", "").replace("[[ ## completed ## ]]", "")
    return text.strip().strip('"').strip()


def attempts_text(scored: Sequence[tuple[str, float]]) -> str:
    """`Instruction #1: ... / Resulting Score #1: ...`, worst first, as COPRO writes them."""
    lines = []
    for i, (instruction, score) in enumerate(scored, 1):
        lines += [f"Instruction #{i}: {instruction}", f"Resulting Score #{i}: {score:.3f}"]
    return "\n".join(lines)
