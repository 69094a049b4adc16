"""Dataset loading and binding: formats, file:line errors, mapping, labels, seeded split, hash."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "runtime") not in sys.path:
    sys.path.insert(0, str(ROOT / "runtime"))

from promptcast.evaluate.data import (  # noqa: E402
    DataError,
    Example,
    bind,
    dataset_hash,
    load_dataset,
    load_examples,
    split_train_dev,
)

DATA = ROOT / "tests" / "fixtures" / "data"
QUESTIONS = [
    "What is the capital of France?",
    "How many legs does\na spider have?",
    'Who wrote "Hamlet"?',
]


def test_jsonl_rows_keep_file_and_line() -> None:
    ds = load_dataset(DATA / "qa.jsonl")
    assert len(ds) == 3
    assert [ex.line for ex in ds.examples] == [1, 2, 4]  # blank line 3 skipped
    assert ds.examples[2]["source"] == "lit"
    assert ds.examples[0].where == f"{DATA / 'qa.jsonl'}:1"
    assert ds.columns == ("question", "answer", "source")


def test_json_array_items_keep_their_line() -> None:
    examples = load_examples(DATA / "qa.json")
    assert [ex.line for ex in examples] == [2, 3, 7]
    assert examples[1]["answer"] == "8"


def test_csv_with_quoted_multiline_fields() -> None:
    examples = load_examples(DATA / "qa.csv")
    assert [ex["question"] for ex in examples] == QUESTIONS
    assert [ex.line for ex in examples] == [2, 3, 5]
    assert examples[1]["label"] == "8"


def test_example_is_a_mapping_with_attribute_access() -> None:
    ex = load_examples(DATA / "qa.jsonl")[0]
    assert dict(ex) == {"question": "What is the capital of France?", "answer": "Paris"}
    assert ex.answer == "Paris"
    with pytest.raises(AttributeError):
        _ = ex.nope


def test_dataset_hash_is_sha256_of_bytes() -> None:
    path = DATA / "qa.csv"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert dataset_hash(path) == expected == load_dataset(path).sha256


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"),
    [
        ("bad.jsonl", None, 3, "invalid JSON"),
        ("list.jsonl", b'{"a": 1}\n[1, 2]\n', 2, "expected a JSON object per line, got an array"),
        ("scalar.jsonl", b'{"a": 1}\n\n"text"\n', 3, "got a string"),
        ("notlist.json", b'\n{"a": 1}\n', 2, "expected a JSON array of objects"),
        ("broken.json", b'[\n {"a": 1},\n {"a": \n]\n', 4, "invalid JSON"),
        ("missing_comma.json", b'[\n {"a": 1}\n {"a": 2}\n]', 3, "expected ',' or ']'"),
        ("trailing.json", b'[{"a": 1}]\nextra', 2, "unexpected text"),
        ("ragged.csv", b"q,a\nx,1\ny,2,3\n", 3, "row has 3 fields but the header has 2"),
        ("short.csv", b"q,a\nx\n", 2, "row has 1 fields"),
        ("dup.csv", b"q,q\nx,1\n", 1, "names column 'q' twice"),
        ("noname.csv", b"q,\nx,1\n", 1, "header column 2 has no name"),
        ("latin1.jsonl", b'{"a": "ok"}\n{"a": "caf\xe9"}\n', 2, "not valid UTF-8 (byte 0xe9"),
    ],
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, name: str, content: bytes | None, line: int, fragment: str
) -> None:
    if content is None:
        path = DATA / "bad_line.jsonl"
    else:
        path = tmp_path / name
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert fragment in str(info.value)


def test_non_object_json_item(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"not_object\.json:3: expected each array item to be an object"
    ):
        load_dataset(DATA / "not_object.json")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]", b"[ ]\n", b"q,a\n"])
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_empty_files(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    # empty or (for a wrong-format body) a located error; never a crash or zero examples
    assert str(path) in str(info.value)


def test_empty_fixture_and_unsupported_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        load_dataset(DATA / "empty.jsonl")
    with pytest.raises(DataError, match="unsupported dataset format"):
        load_dataset(tmp_path / "data.xlsx")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(tmp_path / "absent.jsonl")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffq,a\nx,1\n".encode())
    assert load_examples(path)[0]["q"] == "x"


def test_huge_csv_field_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("q,a\nx,1\n" + '"' + "y" * 200_000 + '",2\n')
    with pytest.raises(DataError, match=r"huge\.csv:3: malformed CSV"):
        load_dataset(path)


def test_bind_by_name_and_label_fallback() -> None:
    jsonl = bind(load_examples(DATA / "qa.jsonl"), inputs=["question"], outputs=["answer"])
    assert jsonl[0].inputs() == {"question": "What is the capital of France?"}
    assert jsonl[0].expected() == {"answer": "Paris"} and jsonl[0].label == "Paris"
    assert jsonl[2]["source"] == "lit"  # extra columns stay readable
    # the CSV has a `label` column: used for a single output not named in the data
    csv_rows = bind(load_examples(DATA / "qa.csv"), inputs=["question"], outputs=["output"])
    assert [ex.label for ex in csv_rows] == ["Paris", "8", "Shakespeare"]
    assert csv_rows[0].output_names == ("output",)


def test_bind_with_mapping_and_explicit_label() -> None:
    bound = bind(
        load_examples(DATA / "qa.jsonl"),
        inputs=["text"],
        outputs=["kind"],
        mapping={"text": "question"},
        label="answer",
    )
    assert bound[1].inputs() == {"text": "How many legs does a spider have?"}
    assert bound[1].label == "8" and bound[1].line == 2


def test_bind_missing_columns_name_file_and_line() -> None:
    with pytest.raises(DataError, match=r"qa\.csv:2: missing column 'text' for parameter 'text'"):
        bind(load_examples(DATA / "qa.csv"), inputs=["text"], outputs=["x"])
    with pytest.raises(DataError, match=r"qa\.jsonl:1: missing column 'gold'.*--label"):
        bind(load_examples(DATA / "qa.jsonl"), inputs=["question"], outputs=["x"], label="gold")
    with pytest.raises(DataError, match=r"qa\.jsonl:1: missing column 'b' for expected output"):
        bind(load_examples(DATA / "qa.jsonl"), inputs=["question"], outputs=["answer", "b"])
    unlabeled = bind(
        load_examples(DATA / "qa.jsonl"),
        inputs=["question"],
        outputs=["b"],
        require_outputs=False,
    )
    assert unlabeled[0].expected() == {}


def test_bind_rejects_bad_options() -> None:
    examples = load_examples(DATA / "qa.jsonl")
    with pytest.raises(ValueError, match="exactly one output"):
        bind(examples, inputs=["question"], outputs=["a", "b"], label="answer")
    with pytest.raises(ValueError, match="unknown fields"):
        bind(examples, inputs=["question"], outputs=["answer"], mapping={"nope": "x"})


def test_bind_optional_inputs_and_converters() -> None:
    examples = load_examples(DATA / "qa.jsonl")
    bound = bind(
        examples, inputs=["question", "hint"], outputs=["answer"], optional_inputs={"hint"}
    )
    assert bound[0].inputs() == {"question": "What is the capital of France?"}
    with pytest.raises(DataError, match=r"qa\.jsonl:1: bad value for 'answer': 'Paris'"):
        bind(examples, inputs=["question"], outputs=["answer"], converters={"answer": int})
    ok = bind(examples[1:2], inputs=["question"], outputs=["answer"], converters={"answer": int})
    assert ok[0].label == 8


def test_split_is_seeded_deterministic_and_disjoint() -> None:
    examples = [Example({"i": i}, source="s", line=i + 1) for i in range(40)]
    train, dev = split_train_dev(examples, dev_fraction=0.25, seed=7)
    again = split_train_dev(examples, dev_fraction=0.25, seed=7)
    assert (train, dev) == again
    assert len(dev) == 10 and len(train) == 30
    assert {e["i"] for e in train}.isdisjoint({e["i"] for e in dev})
    assert [e["i"] for e in train] == sorted(e["i"] for e in train)  # file order kept
    other = split_train_dev(examples, dev_fraction=0.25, seed=8)
    assert [e["i"] for e in other[1]] != [e["i"] for e in dev]
    tiny_train, tiny_dev = split_train_dev(examples[:2], dev_fraction=0.1)
    assert len(tiny_train) == 1 and len(tiny_dev) == 1
    with pytest.raises(ValueError):
        split_train_dev(examples[:1])
    with pytest.raises(ValueError):
        split_train_dev(examples, dev_fraction=1.0)
