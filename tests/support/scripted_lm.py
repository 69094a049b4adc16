"""A deterministic, scripted LM for optimizer tests: right only when its prompt has demos.

It reads the `[[ ## field ## ]]` prompt like a model would: the step is recognised by its
input field (`question` -> classify, `text` -> shout). Classification is answered correctly
only when the prompt holds at least `needs_demos` demo turns (or the question is in `always`),
so an optimizer that adds demos measurably helps; questions in `never` are always wrong.
Thread-safe; every request is recorded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from promptcast_runtime import Completion

_SECTION = re.compile(
    r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", re.DOTALL
)


def sections(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in _SECTION.finditer(text)}


class ScriptedLM:
    def __init__(
        self,
        labels: Mapping[str, str],
        *,
        needs_demos: int = 1,
        wrong: str = "HUM",
        never: Sequence[str] = (),
        always: Sequence[str] = (),
        liked: str | None = None,
    ) -> None:
        self.labels = dict(labels)
        self.needs_demos = needs_demos
        self.wrong = wrong
        self.never = set(never)
        self.always = set(always)
        self.liked = liked  # if set: right only when the instruction contains it
        self.requests: list[list[dict[str, str]]] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def scripted(self, system: str, user: str, params: Mapping[str, Any]) -> str | None:
        """Subclasses answer the optimizer's own prompts (proposals, reflections) here."""
        return None

    def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> Completion:
        with self._lock:
            self.requests.append([dict(m) for m in messages])
        system = messages[0]["content"]
        reply = self.scripted(system, messages[-1]["content"], params)
        if reply is not None:
            return Completion(reply)
        fields = sections(messages[-1]["content"])
        demos = (len(messages) - 2) // 2
        if "`text`" in system.split("Your output fields")[0]:
            text = f"[[ ## answer ## ]]\n{fields.get('text', '').upper()}\n\n[[ ## completed ## ]]"
        else:
            question = fields.get("question", "").removesuffix(" Please.")
            right = self.labels.get(question, self.wrong)
            ok = (
                question not in self.never
                and (demos >= self.needs_demos or question in self.always)
                and (self.liked is None or self.liked in system)
            )
            answer = right if ok else self.wrong
            reasoning = (
                "[[ ## reasoning ## ]]\nIt asks for a " + answer + ".\n\n"
                if "`reasoning`" in system
                else ""
            )
            text = f"{reasoning}[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"
        return Completion(
            text,
            {
                "prompt_tokens": sum(len(m["content"].split()) for m in messages),
                "completion_tokens": len(text.split()),
            },
            "scripted",
        )


QUESTIONS = {
    "How many legs has a spider?": "NUM",
    "Where is Paris?": "LOC",
    "Who wrote Hamlet?": "HUM",
    "How tall is Everest?": "NUM",
    "Where is the Nile?": "LOC",
    "Who painted the Mona Lisa?": "HUM",
    "How old is the sun?": "NUM",
    "Where is Lima?": "LOC",
    "Who founded Rome?": "HUM",
    "How far is the moon?": "NUM",
    "Where is Oslo?": "LOC",
    "Who discovered penicillin?": "HUM",
}


def examples(names: Sequence[str] = tuple(QUESTIONS), output: str = "answer") -> list[Any]:
    """Bound Examples (question -> `output`) for the given questions, in order."""
    from promptcast.evaluate import Example

    return [
        Example({"question": q, output: QUESTIONS[q]}, "mem.jsonl", i + 1, ("question",), (output,))
        for i, q in enumerate(names)
    ]
