"""Generated imports pass ruff's import sorting wherever the user's promptcast import was.

`build` replaces the promptcast import with `from promptcast_runtime import ...`. Both are
third-party, but the new line is a `from` import of another name: isort (ruff's `I` rules)
wants it after every plain `import x` of its section and at its alphabetical place among the
`from` imports. Each case writes a module whose imports ruff itself sorted (`--fix`), builds it
and runs `ruff check --isolated --select I` on the output, from the project root (so the
user's own package is first-party, as it is for the user).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcast.codegen.build import plan_build
from promptcast.lockfile import Lock

RUFF = str(Path(sys.executable).parent / "ruff")
PACKAGE = "impapp"

PROMPTCAST_IMPORTS = {
    "import promptcast as pc": "pc.predict",
    "import promptcast": "promptcast.predict",
    "from promptcast import predict": "predict",
    "from promptcast import predict as lm_step": "lm_step",
    "from promptcast import chain_of_thought, predict": "predict",
}
OTHER_IMPORTS = [
    "import os",
    "import json",
    "from typing import Any",
    "from dataclasses import dataclass",
    "import collections.abc",
    "import requests",
    "import numpy as np",
    "from pydantic import BaseModel",
    "from pydantic import Field as PydanticField",
    "import attrs",
    "import promptcastle",
    "from promptcast_extras import tools",
    "import Pillow",
    "import zlib_ng",
    "from aiohttp import web",
    f"from {PACKAGE} import helpers",
    f"import {PACKAGE}.helpers",
    "from . import helpers as local_helpers",
]


def module_source(imports: list[str], decorator: str, future: bool) -> str:
    block = "\n".join((["from __future__ import annotations", ""] if future else []) + imports)
    return (
        f'"""Steps."""\n\n{block}\n\n\n@{decorator}\n'
        'def kind(question: str) -> str:\n    """Classify the question."""\n'
    )


def ruff(root: Path, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUFF, "check", "--isolated", "--select", "I", *args, str(path.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
    )


def check_build(root: Path, imports: list[str], promptcast_import: str, future: bool) -> None:
    """Sort the user's imports with ruff, build, and hold the output to ruff's sorting."""
    package = root / PACKAGE
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("")
    steps = package / "steps.py"
    decorator = PROMPTCAST_IMPORTS[promptcast_import]
    steps.write_text(module_source([*imports, promptcast_import], decorator, future))
    ruff(root, steps, "--fix")
    source = steps.read_text()
    assert ruff(root, steps).returncode == 0, source  # the user's module is sorted
    built = plan_build(package, Lock()).files[f"{PACKAGE}/steps.py"].decode()
    out = root / "out" / PACKAGE / "steps.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(built)
    result = ruff(root, out)
    assert result.returncode == 0, f"{source}\n--- built ---\n{built}\n{result.stdout}"
    assert "promptcast_runtime import" in built and "import promptcast\n" not in built


CASES = {
    "requests after promptcast": ["import requests"],
    "pydantic from-import after promptcast": ["from pydantic import BaseModel"],
    "stdlib, plain and from third-party": [
        "import os",
        "from typing import Any",
        "import requests",
        "from pydantic import BaseModel",
    ],
    "alias imports": ["import numpy as np", "from pydantic import Field as PydanticField"],
    "promptcast alone after stdlib": ["import json", "from typing import Any"],
    "first-party and local sections after": [
        "import requests",
        f"from {PACKAGE} import helpers",
        "from . import helpers as local_helpers",
    ],
    "names that sort around promptcast_runtime": [
        "import promptcastle",
        "from promptcast_extras import tools",
        "import zlib_ng",
        "from aiohttp import web",
    ],
}


@pytest.mark.parametrize("promptcast_import", sorted(PROMPTCAST_IMPORTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_import_is_sorted_as_isort_would(
    tmp_path: Path, case: str, promptcast_import: str
) -> None:
    check_build(tmp_path, CASES[case], promptcast_import, future=case.startswith("stdlib"))


def test_a_comment_above_the_promptcast_import_stays_at_the_top_of_its_section(
    tmp_path: Path,
) -> None:
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = module_source(
        ["import os", "", "# the LM steps", "import promptcast as pc", "import requests"],
        "pc.predict",
        future=False,
    )
    (package / "steps.py").write_text(source)
    built = plan_build(package, Lock()).files[f"{PACKAGE}/steps.py"].decode()
    assert "import os\n\n# the LM steps\nimport requests\nfrom promptcast_runtime import" in built


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    imports=st.lists(st.sampled_from(OTHER_IMPORTS), unique=True, max_size=7),
    promptcast_import=st.sampled_from(sorted(PROMPTCAST_IMPORTS)),
    future=st.booleans(),
)
def test_any_sorted_import_block_builds_sorted(
    tmp_path_factory: pytest.TempPathFactory,
    imports: list[str],
    promptcast_import: str,
    future: bool,
) -> None:
    check_build(tmp_path_factory.mktemp("imports"), imports, promptcast_import, future)
