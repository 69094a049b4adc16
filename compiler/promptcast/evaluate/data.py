"""Training and dev sets: JSONL, JSON or CSV files -> `Example` objects that know where they came from.

Why every example carries its file and line: a dataset of a few thousand rows always has a bad
one, and "KeyError: 'question'" from deep inside an optimizer is useless. Every problem found
while loading or binding -- a bad JSON line, a missing column, an empty file, bytes that are not
UTF-8, a row that is not an object, a value of the wrong type -- is one `DataError` naming
`file:line` and what was expected (issue 8, "hostile and broken input").

Loading is two steps so the loader need not know the program:
1. `load_dataset(path)` reads rows (column -> value) and the file's sha256 (for the lock);
2. `bind(examples, inputs=..., outputs=...)` maps columns to the program's parameters and
   expected outputs by name, with an explicit `mapping` (`{"param": "column"}`) and a `label`
   column for single-output targets.
Without a dev file, `split_train_dev` makes a seeded, deterministic split.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import PromptcastError

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
MAX_ROW_CHARS = 1_000_000
"""A row longer than this is refused: a prompt that large is a data mistake, not an example
(and would be sent, and paid for, on every call). CSV has its own, smaller field limit."""
DEFAULT_LABEL_COLUMN = "label"


class DataError(PromptcastError, ValueError):
    """A dataset problem, located: `path:line: message` (line omitted when it is the file)."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class BindError(PromptcastError, ValueError):
    """The fields of a dataset cannot be bound to the program (a label or mapping that does
    not fit its inputs and outputs)."""


@dataclass(frozen=True, eq=False)  # Mapping equality: same values
class Example(Mapping[str, Any]):
    """One row: a read-only mapping of column (or, once bound, field) name -> value.

    `source`/`line` locate the row for error messages. After `bind`, `input_names` are the
    program's parameters and `output_names` its expected outputs; unbound examples have both
    empty. Extra columns stay readable (a user metric may want them).
    """

    data: Mapping[str, Any]
    source: str = ""
    line: int = 0
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str) -> Any:
        # Lets user metrics write `example.answer` as in DSPy; only called for unknown attributes.
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def where(self) -> str:
        """`file:line` of the row (for messages)."""
        return f"{self.source}:{self.line}" if self.source else f"<line {self.line}>"

    def inputs(self) -> dict[str, Any]:
        """The program's keyword arguments for this example."""
        return {name: self.data[name] for name in self.input_names}

    def expected(self) -> dict[str, Any]:
        """Expected output values by output field name."""
        return {name: self.data[name] for name in self.output_names if name in self.data}

    @property
    def label(self) -> Any:
        """The expected value of a single-output target."""
        if len(self.output_names) != 1:
            raise AttributeError(
                f"{self.where}: example has {len(self.output_names)} outputs "
                f"{list(self.output_names)}, so it has no single label"
            )
        return self.data.get(self.output_names[0])


@dataclass(frozen=True)
class Dataset:
    """The examples of one file and the sha256 of its bytes (recorded in the lock)."""

    path: str
    examples: tuple[Example, ...]
    sha256: str
    columns: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.examples)


def dataset_hash(path: str | Path) -> str:
    """sha256 (hex) of the file's bytes: any edit to the data changes it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_dataset(path: str | Path) -> Dataset:
    """Read a `.jsonl`/`.ndjson`, `.json` (a list of objects) or `.csv`/`.tsv` file."""
    p = Path(path)
    if p.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DataError(
            p, None, f"unsupported dataset format {p.suffix!r}; use one of {SUPPORTED_SUFFIXES}"
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(p, None, f"cannot read dataset: {exc.strerror or exc}") from exc
    text = _decode(p, raw)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = list(_jsonl_rows(p, text))
    elif suffix == ".json":
        rows = list(_json_rows(p, text))
    else:
        rows = list(_csv_rows(p, text, delimiter="\t" if suffix == ".tsv" else ","))
    if not rows:
        raise DataError(p, None, "dataset is empty: no rows found")
    examples = tuple(Example(data=v, source=str(p), line=line) for line, v in rows)
    columns: dict[str, None] = {}
    for ex in examples:
        columns.update(dict.fromkeys(ex.data))
    return Dataset(
        path=str(p),
        examples=examples,
        sha256=hashlib.sha256(raw).hexdigest(),
        columns=tuple(columns),
    )


def load_examples(path: str | Path) -> list[Example]:
    """Just the (unbound) examples of `load_dataset(path)`."""
    return list(load_dataset(path).examples)


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            path,
            line,
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); "
            "datasets must be UTF-8 text",
        ) from None


def _describe(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        _check_row_size(path, number, len(line))
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                path, number, f"invalid JSON at column {exc.colno}: {exc.msg}"
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                path, number, f"expected a JSON object per line, got {_describe(value)}"
            )
        yield number, value


def _check_row_size(path: Path, line: int, size: int) -> None:
    if size > MAX_ROW_CHARS:
        raise DataError(
            path,
            line,
            f"row is {size:,} characters long; rows over {MAX_ROW_CHARS:,} characters are "
            "refused (a prompt that large is almost certainly a data mistake)",
        )


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Parse a top-level JSON array element by element so each object keeps its line number."""
    decoder = json.JSONDecoder()

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def fail(exc: json.JSONDecodeError) -> DataError:
        return DataError(path, exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}")

    pos = _skip_ws(text, 0)
    if pos == len(text):
        return
    if text[pos] != "[":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(exc) from None
        raise DataError(
            path, line_of(pos), f"expected a JSON array of objects, got {_describe(value)}"
        )
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        pos = _skip_ws(text, pos + 1)
        if pos != len(text):
            raise DataError(path, line_of(pos), "unexpected text after the JSON array")
        return
    while True:
        start = pos
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise fail(exc) from None
        if not isinstance(value, dict):
            raise DataError(
                path,
                line_of(start),
                f"expected each array item to be an object, got {_describe(value)}",
            )
        _check_row_size(path, line_of(start), pos - start)
        yield line_of(start), value
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            pos = _skip_ws(text, pos + 1)
            if pos != len(text):
                raise DataError(path, line_of(pos), "unexpected text after the JSON array")
            return
        raise DataError(
            path, line_of(min(pos, len(text))), "invalid JSON: expected ',' or ']' after an item"
        )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    previous_end = 0
    try:
        for row in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                _check_header(path, start, header)
                continue
            if len(row) != len(header):
                raise DataError(
                    path,
                    start,
                    f"row has {len(row)} fields but the header has {len(header)} "
                    f"({', '.join(header)})",
                )
            yield start, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise DataError(path, reader.line_num or 1, f"malformed CSV: {exc}") from None


def _check_header(path: Path, line: int, header: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if not name:
            raise DataError(path, line, f"header column {index} has no name")
        if name in seen:
            raise DataError(path, line, f"header names column {name!r} twice")
        seen.add(name)


Converter = Callable[[Any], Any]


def bind(
    examples: Sequence[Example],
    *,
    inputs: Sequence[str],
    outputs: Sequence[str] = (),
    mapping: Mapping[str, str] | None = None,
    label: str | None = None,
    optional_inputs: Collection[str] = (),
    require_outputs: bool = True,
    converters: Mapping[str, Converter] | None = None,
) -> list[Example]:
    """Map each example's columns to the program's parameters (`inputs`) and `outputs`.

    A field `f` is read from column `mapping.get(f, f)`. For a single output, `label` names its
    column; if neither `label` nor the output's own name is a column, a `label` column is used
    when present. `converters[f]` (e.g. the runtime's text -> typed value coercion) turns a raw
    value into the field's type; its failure becomes a `DataError` at the row. Missing optional
    inputs are left out (the parameter's default applies); missing outputs are an error unless
    `require_outputs` is false.
    """
    mapping = dict(mapping or {})
    converters = dict(converters or {})
    if label is not None and len(outputs) != 1:
        raise BindError(
            f"label={label!r} needs a target with exactly one output; this one has "
            f"{len(outputs)} ({', '.join(outputs) or 'none'}), so name columns after the outputs "
            "or use an explicit mapping"
        )
    unknown = set(mapping) - set(inputs) - set(outputs)
    if unknown:
        raise BindError(
            f"mapping names unknown fields {sorted(unknown)}; "
            f"fields are: {', '.join([*inputs, *outputs])}"
        )
    bound: list[Example] = []
    for ex in examples:
        values: dict[str, Any] = {}
        for name in inputs:
            column = mapping.get(name, name)
            if column not in ex.data:
                if name in optional_inputs:
                    continue
                raise DataError(
                    ex.source,
                    ex.line,
                    f"missing column {column!r} for parameter {name!r}; "
                    f"row has columns: {', '.join(ex.data) or '(none)'}",
                )
            values[name] = _convert(ex, name, ex.data[column], converters)
        for name in outputs:
            out_column = _output_column(ex, name, mapping, label, single=len(outputs) == 1)
            if out_column is None:
                if not require_outputs:
                    continue
                wanted = label if label is not None else mapping.get(name, name)
                hint = " (or a 'label' column, or pass --label COLUMN)" if len(outputs) == 1 else ""
                raise DataError(
                    ex.source,
                    ex.line,
                    f"missing column {wanted!r} for expected output {name!r}{hint}; "
                    f"row has columns: {', '.join(ex.data) or '(none)'}",
                )
            values[name] = _convert(ex, name, ex.data[out_column], converters)
        extras = {k: v for k, v in ex.data.items() if k not in values}
        bound.append(
            replace(
                ex,
                data={**extras, **values},
                input_names=tuple(n for n in inputs if n in values),
                output_names=tuple(outputs),
            )
        )
    return bound


def _output_column(
    ex: Example, name: str, mapping: Mapping[str, str], label: str | None, *, single: bool
) -> str | None:
    if label is not None:
        return label if label in ex.data else None
    column = mapping.get(name, name)
    if column in ex.data:
        return column
    if single and name not in mapping and DEFAULT_LABEL_COLUMN in ex.data:
        return DEFAULT_LABEL_COLUMN
    return None


def _convert(ex: Example, name: str, value: Any, converters: Mapping[str, Converter]) -> Any:
    convert = converters.get(name)
    if convert is None:
        return value
    try:
        return convert(value)
    except Exception as exc:
        raise DataError(
            ex.source, ex.line, f"bad value for {name!r}: {value!r:.200}: {exc}"
        ) from None


def split_train_dev(
    examples: Sequence[Example], *, dev_fraction: float = 0.25, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """A seeded, deterministic split of `examples` into (train, dev), both in file order.

    Each side gets at least one example when there are two or more; same seed and same data
    always give the same split.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    n = len(examples)
    if n < 2:
        raise ValueError(f"need at least 2 examples to split into train and dev, got {n}")
    n_dev = min(n - 1, max(1, round(n * dev_fraction)))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    dev_idx = set(order[:n_dev])
    train = [ex for i, ex in enumerate(examples) if i not in dev_idx]
    dev = [ex for i, ex in enumerate(examples) if i in dev_idx]
    return train, dev
