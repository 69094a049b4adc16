"""Labels become demos of a step only where their names *and types* fit its fields.

A program's labels are keyed by the program's field names; an inner step may reuse a name for
a value of another type (a `bool` step whose output is also called `answer`). Such a label is no
demo for that step: it would teach the model to answer a recipe name where a bool is asked.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from promptcast import ir
from promptcast.evaluate import Example
from promptcast.optimizers.demos import fits, labeled_demo

LOC = ir.SourceLocation("m.py", 1, 1)
STR = ir.TypeSchema("str", "str")
BOOL = ir.TypeSchema("bool", "bool")
INT = ir.TypeSchema("int", "int")


def _signature(inputs: dict[str, ir.TypeSchema], output: ir.TypeSchema) -> ir.Signature:
    return ir.Signature(
        "m:step", "step", "m", "predict", "Do.", "Do.",
        tuple(ir.FieldSpec(n, t) for n, t in inputs.items()),
        (ir.FieldSpec("answer", output),), output, "single", LOC,
    )  # fmt: skip


def _example(**data: Any) -> Example:
    return Example(data, "train.jsonl", 1, ("question",), ("answer",))


def test_a_label_of_another_type_is_no_demo_for_an_inner_step() -> None:
    is_vegan = _signature({"question": STR}, BOOL)
    recipe_label = _example(question="What can I cook?", answer="lentil soup")
    assert labeled_demo(is_vegan, recipe_label) is None
    assert labeled_demo(is_vegan, _example(question="Tofu?", answer=True)) == {
        "question": "Tofu?",
        "answer": True,
    }


def test_an_input_of_another_type_is_no_demo_either() -> None:
    count = _signature({"question": INT}, INT)
    assert labeled_demo(count, _example(question="seven", answer=7)) is None


def test_structured_labels_are_checked_field_by_field() -> None:
    person = ir.TypeSchema(
        "object", "Person",
        fields=(ir.FieldSpec("name", STR), ir.FieldSpec("age", ir.TypeSchema("optional", "int | None", (INT,)))),
    )  # fmt: skip
    people = ir.TypeSchema("list", "list[Person]", (person,))
    assert fits([{"name": "Ann", "age": None}, {"name": "Bo", "age": 3}], people)
    assert not fits([{"name": "Ann", "age": "three"}], people)
    assert not fits([{"name": "Ann", "height": 1}], people)
    label = ir.TypeSchema("literal", 'Literal["A", 1]', values=("A", 1))
    assert fits("A", label) and fits(1, label)
    assert not fits(True, label) and not fits("1", label)  # True == 1, but not the label 1


@given(st.booleans() | st.integers() | st.text() | st.none() | st.floats(allow_nan=False))
def test_bool_and_int_never_pass_for_each_other(value: Any) -> None:
    assert fits(value, BOOL) == isinstance(value, bool)
    assert fits(value, INT) == (isinstance(value, int) and not isinstance(value, bool))
