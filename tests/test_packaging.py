"""The wheel: one distribution, two import packages, templates found when installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_carries_both_packages_and_the_templates_and_builds_from_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("promptcast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "promptcast/templates/step.py.j2" in names
    assert "promptcast_runtime/predictor.py" in names and "promptcast_runtime/py.typed" in names
    assert not any(name.startswith(("tests/", "examples/", "bench/")) for name in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Import the unpacked wheel ahead of the editable checkout: templates must come from inside it.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from promptcast.codegen.templates import templates_dir;"
        "from promptcast.cli import main; print(templates_dir());"
        "main(['build', sys.argv[2], '-o', sys.argv[3]])"
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", script, str(site), str(ROOT / "examples/trec/triage"), str(out)],
        capture_output=True,
        text=True,
    )
    assert result.stdout.startswith(str(site / "promptcast" / "templates")), result.stderr
    assert (out / "triage" / "classify.py").read_text().count("build_step(") == 1
