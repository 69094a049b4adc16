"""Docstring parsing: Google-style sections, plain prose, and robustness to arbitrary text."""

from __future__ import annotations

import inspect
import textwrap

import libcst as cst
from hypothesis import given, settings
from hypothesis import strategies as st

from promptcast.frontend.discover import docstring_literal
from promptcast.frontend.docstrings import ParsedDocstring, parse_docstring

GOOGLE = """Classify the kind of answer a question asks for.

    Use the TREC coarse classes.

    Args:
        question: A question in English.
        context (str): Background text that
            may help.
        *extras: Ignored.

    Returns:
        The coarse TREC answer type.

    Raises:
        ValueError: never.

    Example:
        question_type("Who?") -> "HUM"
    """


def test_google_sections_are_split_out() -> None:
    doc = parse_docstring(GOOGLE)
    assert doc.instructions == (
        "Classify the kind of answer a question asks for.\n\n"
        "Use the TREC coarse classes.\n\n"
        'Example:\n    question_type("Who?") -> "HUM"'
    )
    assert doc.params == {
        "question": "A question in English.",
        "context": "Background text that may help.",
        "extras": "Ignored.",
    }
    assert doc.returns == "The coarse TREC answer type."
    assert doc.return_items == {}
    assert doc.text == inspect.cleandoc(GOOGLE)


def test_returns_items_for_several_outputs() -> None:
    doc = parse_docstring(
        """Triage.

        Returns:
            label: How the customer feels.
            note: Anything worth telling
                a human.

                Second paragraph.
        """
    )
    assert doc.return_items == {
        "label": "How the customer feels.",
        "note": "Anything worth telling a human.\n\nSecond paragraph.",
    }
    assert doc.instructions == "Triage."


def test_plain_prose_and_empty() -> None:
    assert parse_docstring("  Just do it.  ").instructions == "Just do it."
    assert parse_docstring(None) == ParsedDocstring(text="", instructions="")
    assert parse_docstring("").instructions == ""
    multi = parse_docstring("First line,\n    second line.\n\n\n\n    Third.")
    assert multi.instructions == "First line,\nsecond line.\n\nThird."


def test_inline_returns_and_section_aliases() -> None:
    doc = parse_docstring("Do it.\n\nReturns: the label.\n\nParameters:\n    x: an x.")
    assert doc.returns == "the label."
    assert doc.params == {"x": "an x."}
    assert doc.instructions == "Do it."


def test_class_attributes_section() -> None:
    doc = parse_docstring("A point.\n\nAttributes:\n    x: Horizontal.\n    y (int): Vertical.")
    assert doc.attributes == {"x": "Horizontal.", "y": "Vertical."}
    assert doc.instructions == "A point."


def test_header_words_inside_prose_stay_prose() -> None:
    doc = parse_docstring("Note: be brief.\n  Args: not a header here.\nArgs are good.")
    assert doc.params == {}
    assert "Note: be brief." in doc.instructions
    assert "Args are good." in doc.instructions


def test_same_result_for_dunder_doc_and_cst_literal() -> None:
    def fn(question: str) -> str:
        """Classify it.

        Args:
            question: A question.
        Returns:
            A class.
        """
        return question

    tree = cst.parse_module(textwrap.dedent(inspect.getsource(fn)))
    function = tree.body[0]
    assert isinstance(function, cst.FunctionDef)
    assert isinstance(function.body, cst.IndentedBlock)
    literal = docstring_literal(function.body.body)
    assert literal is not None
    assert parse_docstring(fn.__doc__) == parse_docstring(literal)
    assert parse_docstring(fn.__doc__).params == {"question": "A question."}


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    doc = parse_docstring(text)
    assert isinstance(doc, ParsedDocstring)
    assert isinstance(doc.instructions, str)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("Args: Returns\n\t  xy_1-*()")), max_size=80))
def test_section_like_text_never_raises(text: str) -> None:
    parse_docstring(text)


_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
_WORDS = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "P", "S"), blacklist_characters="\r\x1c\x1d\x1e\x85"
    ),
    min_size=1,
    max_size=12,
)
_LINE = st.lists(_WORDS, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=200)
@given(
    instructions=_LINE,
    params=st.dictionaries(_NAMES, st.lists(_LINE, min_size=1, max_size=3), max_size=5),
    indent=st.sampled_from(["", "    ", "        "]),
)
def test_args_descriptions_round_trip(
    instructions: str, params: dict[str, list[str]], indent: str
) -> None:
    lines = [instructions, "", "Args:"]
    for name, desc_lines in params.items():
        lines.append(f"    {name}: {desc_lines[0]}")
        lines.extend(f"        {more}" for more in desc_lines[1:])
    docstring = lines[0] + "\n" + "\n".join(indent + line for line in lines[1:])
    doc = parse_docstring(docstring)
    assert doc.params == {name: " ".join(d) for name, d in params.items()}
    assert doc.instructions == instructions
