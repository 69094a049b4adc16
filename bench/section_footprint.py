"""Section 5, footprint: what a deployment has to ship and install.

Why: every distribution a service installs is something to audit, patch and keep compatible.
promptcast's side is the generated TREC tree built with `--vendor-runtime` (the runtime copied
in; zero new distributions); DSPy's side is what `pip install dspy==3.4.1` put into
`bench/.venv-dspy`: dspy and the distributions it requires, transitively, without extras (the
venv also holds optuna, which the bench installs for MIPROv2; bytes of the files each one's
RECORD lists). Bytes are counted twice: as installed (byte-code included, which pip
writes at install time) and source only (without `__pycache__`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchlib import TREC, Row, SectionResult, build, run, temp_dir

_DSPY_PROBE = r"""
import importlib.metadata as md, json, os, re
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
installed = {norm(d.metadata["Name"] or ""): d for d in md.distributions()}
seen, todo, total, source = set(), ["dspy"], 0, 0
while todo:  # dspy and what it requires, extras left out (the bench adds optuna for MIPROv2)
    name = todo.pop()
    if name in seen or name not in installed:
        continue
    seen.add(name)
    for req in installed[name].requires or ():
        if "extra ==" not in req:
            todo.append(norm(re.match(r"[A-Za-z0-9_.-]+", req).group(0)))
for name in seen:
    dist = installed[name]
    for f in dist.files or ():
        path = dist.locate_file(f)
        if os.path.isfile(path):
            size = os.path.getsize(path)
            total += size
            if "__pycache__" not in str(f):
                source += size
print(json.dumps({"distributions": len(seen), "bytes": total, "source_bytes": source,
                  "names": sorted(seen)}))
"""


def tree_bytes(root: Path) -> tuple[int, int, int]:
    """(files, bytes, bytes outside __pycache__) under root."""
    files = total = source = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            size = (Path(dirpath) / name).stat().st_size
            files += 1
            total += size
            if "__pycache__" not in dirpath:
                source += size
    return files, total, source


def run_section(quick: bool, dspy_python: str) -> SectionResult:
    theirs = json.loads(run([dspy_python, "-c", _DSPY_PROBE]).stdout)
    with temp_dir("footprint") as tmp:
        out = build(TREC / "triage", tmp / "out")  # byte-compiled, as pip would have
        files, total, source = tree_bytes(out)
        _, runtime_total, runtime_source = tree_bytes(out / "promptcast_runtime")
    ours = {
        "distributions": 0,
        "files": files,
        "bytes": total,
        "source_bytes": source,
        "runtime_bytes": runtime_total,
        "runtime_source_bytes": runtime_source,
    }
    rows = [
        Row(
            "footprint",
            "distributions to install",
            0,
            theirs["distributions"],
            "",
            ratio=0.0,
            note="promptcast: the runtime is vendored into the generated tree (stdlib only)",
        ),
        Row(
            "footprint",
            "bytes shipped, as installed (byte-code included)",
            total / 1e6,
            theirs["bytes"] / 1e6,
            "MB",
            note=f"promptcast: {files} files, of which runtime {runtime_total / 1e3:.0f} kB",
        ),
        Row(
            "footprint",
            "bytes shipped, source only (no __pycache__)",
            source / 1e6,
            theirs["source_bytes"] / 1e6,
            "MB",
            note=f"promptcast runtime: {runtime_source / 1e3:.0f} kB",
        ),
    ]
    return SectionResult("footprint", rows, {"promptcast": ours, "dspy": theirs})
