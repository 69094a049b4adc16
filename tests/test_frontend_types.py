"""Annotations -> TypeSchema: every supported type and spelling, and every located rejection."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from promptcast import ir
from promptcast.frontend import CompileError, Package, load_package

HEADER = """\
import enum
import typing
import typing as t
from dataclasses import dataclass
from enum import Enum, auto
from typing import Literal as L, List, NamedTuple, Optional, Union

import promptcast as pc
"""


def make_package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return pkg


def one_function(root: Path, params: str, returns: str, extra: str = "") -> ir.Signature:
    source = f'{HEADER}{textwrap.dedent(extra)}\n@pc.predict\ndef f({params}) -> {returns}:\n    """Do it."""\n'
    pkg = load_package(make_package(root, {"mod.py": source}))
    return pkg.signature("pkg.mod:f")


def S(kind: ir.TypeKind, source: str, *args: ir.TypeSchema, **kw: object) -> ir.TypeSchema:
    return ir.TypeSchema(kind, source, tuple(args), **kw)  # type: ignore[arg-type]


STR, INT, FLOAT, BOOL = S("str", "str"), S("int", "int"), S("float", "float"), S("bool", "bool")


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("str", STR),
        ("int", INT),
        ("float", FLOAT),
        ("bool", BOOL),
        ('typing.Literal["a", "b"]', S("literal", 'typing.Literal["a", "b"]', values=("a", "b"))),
        ("L[1, -2, True]", S("literal", "L[1, -2, True]", values=(1, -2, True))),
        ("t.Literal['x' 'y']", S("literal", "t.Literal['x' 'y']", values=("xy",))),
        ("list[str]", S("list", "list[str]", STR)),
        ("List[int]", S("list", "List[int]", INT)),
        ("t.List[float]", S("list", "t.List[float]", FLOAT)),
        ("Optional[int]", S("optional", "Optional[int]", INT)),
        ("typing.Optional[int]", S("optional", "typing.Optional[int]", INT)),
        ("int | None", S("optional", "int | None", INT)),
        ("None | int", S("optional", "None | int", INT)),
        ("Union[str, None]", S("optional", "Union[str, None]", STR)),
        ("dict[str, int]", S("dict", "dict[str, int]", STR, INT)),
        (
            "typing.Dict[str, list[bool]]",
            S("dict", "typing.Dict[str, list[bool]]", STR, S("list", "list[bool]", BOOL)),
        ),
        ("tuple[int, str]", S("tuple", "tuple[int, str]", INT, STR)),
        ("typing.Tuple[bool]", S("tuple", "typing.Tuple[bool]", BOOL)),
        ('"int"', S("int", '"int"')),
        (
            "list[Optional[L['a']]]",
            S(
                "list",
                "list[Optional[L['a']]]",
                S("optional", "Optional[L['a']]", S("literal", "L['a']", values=("a",))),
            ),
        ),
    ],
)
def test_supported_annotations(tmp_path: Path, annotation: str, expected: ir.TypeSchema) -> None:
    sig = one_function(tmp_path, f"x: {annotation}", annotation)
    assert sig.inputs[0].type == expected
    assert sig.return_type == expected
    assert sig.outputs == (ir.FieldSpec("answer", expected, ""),)
    assert sig.return_shape == "single"


ENUMS = """
class Color(Enum):
    '''A colour.'''
    RED = "red"
    GREEN = "green"
    _ignore_ = "x"

    def describe(self) -> str:
        return self.value

class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2
"""


def test_enums(tmp_path: Path) -> None:
    sig = one_function(tmp_path, "c: Color", "Level", ENUMS)
    assert sig.inputs[0].type == ir.TypeSchema(
        "enum", "Color", values=("red", "green"), name="Color", module="pkg.mod"
    )
    assert sig.return_type == ir.TypeSchema(
        "enum", "Level", values=(1, 2), name="Level", module="pkg.mod"
    )


def test_namedtuple_and_dataclass_outputs(tmp_path: Path) -> None:
    pkg = load_package(
        make_package(
            tmp_path,
            {
                "models.py": '''
                import dataclasses
                from typing import ClassVar, NamedTuple

                class Pair(NamedTuple):
                    """Two things.

                    Attributes:
                        left: The left one.
                        right: The right one.
                    """
                    left: str
                    right: int = 0

                @dataclasses.dataclass(frozen=True)
                class Box:
                    """A box.

                    Args:
                        items: What is inside.
                    """
                    items: list[Pair]
                    count: ClassVar[int] = 0
                ''',
                "mod.py": '''
                import promptcast as pc
                from pkg.models import Box
                from .models import Pair

                @pc.predict
                def pair(q: str) -> Pair:
                    """Split it.

                    Returns:
                        left: Overridden description.
                    """

                @pc.chain_of_thought
                def box(q: str) -> Box:
                    """Pack it."""
                ''',
            },
        )
    )
    pair = pkg.signature("pkg.mod:pair")
    assert pair.return_shape == "namedtuple"
    assert [(o.name, o.type.kind, o.description) for o in pair.outputs] == [
        ("left", "str", "Overridden description."),
        ("right", "int", "The right one."),
    ]
    assert (pair.return_type.kind, pair.return_type.name, pair.return_type.module) == (
        "object",
        "Pair",
        "pkg.models",
    )
    box = pkg.signature("pkg.mod:box")
    assert box.return_shape == "dataclass"
    assert [o.name for o in box.outputs] == ["items"]  # ClassVar is not a field
    assert box.outputs[0].description == "What is inside."
    nested = box.outputs[0].type.args[0]
    assert (nested.kind, nested.name, nested.module) == ("object", "Pair", "pkg.models")
    # chain_of_thought adds no reasoning field here: the runtime does
    assert "reasoning" not in [o.name for o in box.outputs]


def test_reexported_and_module_attribute_classes(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "base.py": "from enum import Enum\n\nclass Tag(Enum):\n    A = 'a'\n",
            "mod.py": '''
            import promptcast as pc
            import pkg.api
            from . import api

            @pc.predict
            def f(q: api.Tag) -> pkg.api.Tag:
                """Tag it."""
            ''',
        },
    )
    (root / "api.py").write_text("from .base import Tag\n")
    sig = load_package(root).signature("pkg.mod:f")
    assert sig.return_type.module == "pkg.base"
    assert sig.inputs[0].type.name == "Tag"
    assert sig.return_type.source == "pkg.api.Tag"


def test_single_output_is_named_output_when_answer_is_an_input(tmp_path: Path) -> None:
    sig = one_function(tmp_path, "answer: str", "bool")
    assert [o.name for o in sig.outputs] == ["output"]


TYPE_ERRORS: list[tuple[str, str, str, str, tuple[int, int, str]]] = [
    # id, params, returns, extra module code, (line, col, message part)
    ("set", "x: set[int]", "str", "", (11, 10, "unsupported type `set[int]`")),
    (
        "callable",
        "x: str",
        "typing.Callable[[int], str]",
        "",
        (11, 18, "unsupported type `typing.Callable[[int], str]`"),
    ),
    (
        "bare-list",
        "x: list",
        "str",
        "",
        (11, 10, "unsupported type `list`: it needs type arguments"),
    ),
    ("union", "x: int | str", "str", "", (11, 10, "the only union supported is Optional[T]")),
    (
        "union-3",
        "x: Union[int, str, None]",
        "str",
        "",
        (11, 10, "the only union supported is Optional[T]"),
    ),
    ("variadic-tuple", "x: str", "tuple[int, ...]", "", (11, 18, "only fixed-length tuples")),
    ("dict-key", "x: dict[int, str]", "str", "", (11, 10, "dictionary keys must be str")),
    (
        "literal-float",
        "x: L[1.5]",
        "str",
        "",
        (11, 10, "Literal values must be str, int or bool, not `1.5`"),
    ),
    ("undefined", "x: Foo", "str", "", (11, 10, "`Foo` is not defined or imported in this module")),
    (
        "alias-not-a-type",
        "x: Alias",
        "str",
        "Alias = 3\n",
        (12, 10, "type aliases are not supported"),
    ),
    ("alias-loop", "x: A", "str", "A = list[B]\nB = list[A]\n", (10, 10, "refers to itself")),
    (
        "outside-package",
        "x: date",
        "str",
        "from datetime import date\n",
        (12, 10, "`datetime.date` is not a class defined in this package"),
    ),
    (
        "plain-class",
        "x: Plain",
        "str",
        "class Plain:\n    x: int\n",
        (
            13,
            10,
            "class `pkg.mod.Plain` is not an Enum, NamedTuple, @dataclass, TypedDict or pydantic BaseModel",
        ),
    ),
    ("none-return", "x: str", "None", "", (11, 1, "`f` returns None")),
    ("bad-string", "x: 'not a type('", "str", "", (11, 10, "the string is not a type expression")),
    (
        "auto",
        "x: E",
        "str",
        "class E(Enum):\n    A = auto()\n",
        (10, 9, "enum member `E.A` uses auto()"),
    ),
    (
        "enum-non-literal",
        "x: E",
        "str",
        "X = 1\nclass E(Enum):\n    A = X\n",
        (11, 9, "enum member `E.A` must have a literal"),
    ),
    (
        "recursive",
        "x: str",
        "Node",
        "@dataclass\nclass Node:\n    child: Optional['Node']\n",
        (11, 21, "class `pkg.mod.Node` refers to itself"),
    ),
]


@pytest.mark.parametrize(
    ("params", "returns", "extra", "expected"),
    [c[1:] for c in TYPE_ERRORS],
    ids=[c[0] for c in TYPE_ERRORS],
)
def test_type_errors(
    tmp_path: Path, params: str, returns: str, extra: str, expected: tuple[int, int, str]
) -> None:
    with pytest.raises(CompileError) as info:
        one_function(tmp_path, params, returns, extra)
    found = [(d.location.line, d.location.column, d.message) for d in info.value.diagnostics]
    assert len(found) == 1, found
    assert found[0][:2] == expected[:2], found
    assert expected[2] in found[0][2]
    assert info.value.diagnostics[0].location.path.endswith("pkg/mod.py")


def test_unsupported_type_error_lists_what_is_supported(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        one_function(tmp_path, "x: set[int]", "str")
    text = str(info.value)
    assert "pkg/mod.py:11:10: unsupported type `set[int]`" in text
    assert "    set[int]\n" in text
    assert "supported: str, int, float, bool, Literal[...]" in text
    assert "NamedTuple, @dataclass, TypedDict or pydantic BaseModel classes defined in the" in text


def test_typeddict_and_pydantic_outputs(tmp_path: Path) -> None:
    """Fields, inherited fields first, descriptions from Field(...)/Annotated/docstrings."""
    pkg = load_package(
        make_package(
            tmp_path,
            {
                "models.py": '''
                import typing_extensions
                from typing import Annotated, Optional, TypedDict

                import pydantic
                from pydantic import BaseModel, Field

                class Place(TypedDict):
                    """A place.

                    Attributes:
                        city: The city.
                    """
                    city: str

                class Venue(Place):
                    seats: int

                class Loose(typing_extensions.TypedDict):
                    note: str

                class Person(BaseModel):
                    name: str = Field(description="Full name.")
                    age: Annotated[Optional[int], pydantic.Field(description="Years.")] = None

                class Speaker(Person):
                    """A speaker.

                    Attributes:
                        talk: Title of the talk.
                    """
                    talk: str
                    name: str = Field("?", description="Name on the badge.")
                ''',
                "mod.py": '''
                import promptcast as pc
                from .models import Loose, Speaker, Venue

                @pc.predict
                def venue(q: str, about: Loose) -> Venue:
                    """Find it."""

                @pc.predict
                def speaker(q: str) -> Speaker:
                    """Who speaks."""
                ''',
            },
        )
    )
    venue = pkg.signature("pkg.mod:venue")
    assert venue.return_shape == "typeddict"
    assert [(o.name, o.type.kind, o.description) for o in venue.outputs] == [
        ("city", "str", "The city."),
        ("seats", "int", ""),
    ]
    assert venue.inputs[1].type.kind == "object" and venue.inputs[1].type.name == "Loose"
    speaker = pkg.signature("pkg.mod:speaker")
    assert speaker.return_shape == "pydantic"
    assert [(o.name, o.type.kind, o.description) for o in speaker.outputs] == [
        ("name", "str", "Name on the badge."),  # redefined in the subclass: its description
        ("age", "optional", "Years."),
        ("talk", "str", "Title of the talk."),
    ]
    assert (
        speaker.outputs[1].type.source
        == 'Annotated[Optional[int], pydantic.Field(description="Years.")]'
    )
    assert speaker.outputs[1].type.args[0].kind == "int"


def test_pydantic_field_of_unsupported_type_is_located(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "mod.py": '''
            from pydantic import BaseModel
            import promptcast as pc

            class Out(BaseModel):
                ok: str
                bad: frozenset[int]

            @pc.predict
            def f(q: str) -> Out:
                """Do it."""
            ''',
        },
    )
    with pytest.raises(CompileError) as info:
        load_package(root)
    [diag] = info.value.diagnostics
    assert (diag.location.line, diag.location.column) == (6, 10)
    assert "unsupported type `frozenset[int]`" in diag.message


def test_type_aliases_here_and_imported(tmp_path: Path) -> None:
    pkg = load_package(
        make_package(
            tmp_path,
            {
                "kinds.py": """
                from typing import Literal, Optional, TypeAlias

                Tier = Literal["standard", "express"]
                MaybeTiers: TypeAlias = Optional[list[Tier]]
                """,
                "mod.py": '''
                import promptcast as pc
                from .kinds import MaybeTiers, Tier

                Local = dict[str, Tier]

                @pc.predict
                def f(q: Local, many: MaybeTiers) -> Tier:
                    """Do it."""
                ''',
            },
        )
    )
    sig = pkg.signature("pkg.mod:f")
    assert sig.return_type.kind == "literal" and sig.return_type.values == ("standard", "express")
    assert sig.return_type.source == "Tier"  # the generated code writes the alias, as the user did
    local, many = (i.type for i in sig.inputs)
    assert local.kind == "dict" and local.args[1].kind == "literal"
    assert many.kind == "optional" and many.args[0].kind == "list"


def test_error_in_a_class_is_located_in_its_module(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "models.py": "from typing import NamedTuple\n\nclass Out(NamedTuple):\n    a: set[int]\n",
            "mod.py": '''
            import promptcast as pc
            from .models import Out

            @pc.predict
            def f(q: str) -> Out:
                """Do it."""

            @pc.predict
            def g(q: str) -> Out:
                """Do it again."""
            ''',
        },
    )
    with pytest.raises(CompileError) as info:
        load_package(root)
    [diag] = info.value.diagnostics  # reported once, though used twice
    assert diag.location.path.endswith("pkg/models.py")
    assert (diag.location.line, diag.location.column) == (4, 8)


SIGNATURE_ERRORS: list[tuple[str, str, tuple[int, int, str]]] = [
    (
        "unknown-arg",
        '''
        @pc.predict
        def f(q: str) -> str:
            """Do it.

            Args:
                question: Not a parameter.
            """
        ''',
        (11, 1, "describes `question` under Args:, but `f` has no such parameter"),
    ),
    (
        "unknown-return-item",
        '''
        class Out(NamedTuple):
            a: str

        @pc.predict
        def f(q: str) -> Out:
            """Do it.

            Returns:
                b: Not a field.
            """
        ''',
        (14, 1, "describes `b` under Returns:, but `Out` has no such field"),
    ),
    (
        "input-output-clash",
        '''
        class Out(NamedTuple):
            q: str

        @pc.predict
        def f(q: str) -> Out:
            """Do it."""
        ''',
        (14, 1, "has an input and an output both named `q`"),
    ),
    (
        "answer-and-output",
        '''
        @pc.predict
        def f(answer: str, output: str) -> str:
            """Do it."""
        ''',
        (11, 1, "has parameters named answer and output"),
    ),
    (
        "reasoning",
        '''
        @pc.chain_of_thought
        def f(reasoning: str) -> str:
            """Do it."""
        ''',
        (11, 1, "adds an output named `reasoning`"),
    ),
]


@pytest.mark.parametrize(
    ("code", "expected"), [c[1:] for c in SIGNATURE_ERRORS], ids=[c[0] for c in SIGNATURE_ERRORS]
)
def test_signature_errors(tmp_path: Path, code: str, expected: tuple[int, int, str]) -> None:
    source = HEADER + textwrap.dedent(code)
    with pytest.raises(CompileError) as info:
        load_package(make_package(tmp_path, {"mod.py": source}))
    found = [(d.location.line, d.location.column, d.message) for d in info.value.diagnostics]
    assert len(found) == 1, found
    assert found[0][:2] == expected[:2], found
    assert expected[2] in found[0][2]


def test_typing_extensions_and_type_checking_imports(tmp_path: Path) -> None:
    pkg: Package = load_package(
        make_package(
            tmp_path,
            {
                "models.py": "from enum import Enum\n\nclass K(Enum):\n    A = 1\n",
                "mod.py": '''
                from __future__ import annotations
                from typing import TYPE_CHECKING
                import typing_extensions as te
                import promptcast as pc

                if TYPE_CHECKING:
                    from .models import K

                @pc.predict
                def f(q: te.Literal["a"]) -> K:
                    """Do it."""
                ''',
            },
        )
    )
    sig = pkg.signature("pkg.mod:f")
    assert sig.inputs[0].type.kind == "literal"
    assert sig.return_type.kind == "enum"
