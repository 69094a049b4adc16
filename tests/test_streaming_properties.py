"""The streaming property: for any field values an adapter renders and any chunk boundaries,
the streamed final equals the plain `parse` of the whole text (or both raise ParseError), every
partial `str` is a prefix of its final value, and every other partial field already has its
final value (shown only once complete)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from promptcast_runtime import REASONING, Completion, Field, ParseError, Predictor, Signature
from promptcast_runtime.adapters import get_adapter

QUESTION = (Field("question", str, "A question."),)

SHAPES: dict[str, tuple[Field, ...]] = {
    "cot_label": (REASONING, Field("answer", Literal["ABBR", "NUM", "LOC"])),
    "note_total_tags": (
        Field("note", str, "A note."),
        Field("total", int),
        Field("tags", list[str]),
    ),
    "summary_ok": (Field("summary", str), Field("ok", bool), Field("final_answer", str)),
}

# Characters that wrappers, markers, JSON escapes and labels are made of, plus plain text.
ALPHABET = st.sampled_from(
    list("abcxyz ANSWER:*`\"'\\{}[]<>#\n\t,.é😀") + ["final ", "answer", "note:", "[[ ## "]
)
_TAG = re.compile(r"(?i)</?\s*(think|thinking|reasoning|thought|scratchpad|reflection)")


@st.composite
def texts(draw: st.DrawFn) -> str:
    text = "".join(draw(st.lists(ALPHABET, max_size=12)))
    # A reasoning tag inside a field's text makes the parse drop part of it (a draft): no
    # prefix property can hold for text the final parse deletes. Left out here on purpose.
    assume(not _TAG.search(text))
    return text


def values_for(field: Field) -> st.SearchStrategy[Any]:
    tp = field.annotation
    if tp is str:
        return texts()
    if tp is int:
        return st.integers(-(10**12), 10**12)
    if tp is bool:
        return st.booleans()
    if tp == list[str]:
        return st.lists(st.text("abc xyz,é", max_size=5), max_size=3)
    return st.sampled_from(list(tp.__args__))


class PiecesLM:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def complete(self, messages: Any, **params: Any) -> Completion:
        return Completion("".join(self.pieces), finish_reason="stop")

    def stream(self, messages: Any, **params: Any) -> Iterator[str | Completion]:
        yield from self.pieces
        yield Completion("", finish_reason="stop")


@st.composite
def cases(draw: st.DrawFn, adapter: str) -> tuple[Signature, str, list[str]]:
    shape = draw(st.sampled_from(sorted(SHAPES)))
    outputs = SHAPES[shape]
    signature = Signature("Do it.", QUESTION, outputs)
    demo = {"question": "q", **{f.name: draw(values_for(f)) for f in outputs}}
    text = get_adapter(adapter).prefix(signature, [demo])[-1]["content"]
    if adapter == "json" and draw(st.booleans()):
        text = "```json\n" + text + "\n```"
    if draw(st.booleans()):
        text = draw(st.sampled_from(["Sure!\n", "  ", "\n"])) + text
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=40))))
    bounds = [0, *cuts, len(text)]
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return signature, text, pieces


@pytest.mark.parametrize("adapter", ["chat", "json", "dspy"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_streamed_final_is_the_parse_and_partials_only_grow(adapter: str, data: Any) -> None:
    signature, text, pieces = data.draw(cases(adapter))
    predictor: Predictor[Any] = Predictor(signature, signature.outputs[-1].name, adapter=adapter)
    try:
        whole = predictor.parse(text)
    except ParseError:
        with pytest.raises(ParseError):
            list(predictor.stream_forward({"question": "q"}, PiecesLM(pieces)))
        return
    parts = list(predictor.stream_forward({"question": "q"}, PiecesLM(pieces)))
    final = parts[-1]
    assert final.done and final.prediction is not None
    assert final.prediction.fields == whole
    assert final.value == whole[signature.outputs[-1].name]
    for part in parts[:-1]:
        assert not part.done
        for name, value in part.fields.items():
            field = next(f for f in signature.outputs if f.name == name)
            if field.annotation is str:
                assert whole[name].startswith(value), (name, value, whole[name])
            else:
                assert value == whole[name] and type(value) is type(whole[name])


@pytest.mark.parametrize("adapter", ["chat", "json"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_plain_text_fields_grow_as_written(adapter: str, data: Any) -> None:
    """Ordinary prose in a str field is shown while it arrives, not only at the end."""
    words = data.draw(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat"]), min_size=4))
    signature = Signature("Do it.", QUESTION, (REASONING, Field("answer", int)))
    demo = {"question": "q", "reasoning": " ".join(words), "answer": 3}
    text = get_adapter(adapter).prefix(signature, [demo])[-1]["content"]
    pieces = [text[i : i + 2] for i in range(0, len(text), 2)]
    predictor: Predictor[int] = Predictor(signature, "answer", adapter=adapter)
    parts = list(predictor.stream_forward({"question": "q"}, PiecesLM(pieces)))
    shown = {p.fields["reasoning"] for p in parts[:-1] if "reasoning" in p.fields}
    assert len(shown) >= len(" ".join(words)) // 3
    assert parts[-1].value == 3
