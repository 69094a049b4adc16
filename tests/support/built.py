"""A built example module for the scale tests: examples/sentiment through `promptcast build
--vendor-runtime`, exactly the tree a user ships to a cluster.

Why the sentiment example: one `@pc.predict` step with a Literal output, so a fake server can
answer every row correctly from the row's own text (`sentiment_answer`) and a test can tell a
lost, duplicated or misplaced row from the answers alone.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

from .payloads import last_user_message

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sentiment"
MODULE = "reviews.sentiment"


def build_sentiment(out: Path) -> Path:
    """`promptcast build --vendor-runtime` of the sentiment example into `out` (returned)."""
    if out.exists():
        shutil.rmtree(out)
    done = subprocess.run(
        [sys.executable, "-m", "promptcast", "build", "-o", str(out), "--vendor-runtime"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promptcast build failed ({done.returncode}):\n{done.stderr}")
    return out


def row_text(i: int) -> str:
    """Row i's review: the label is in the text, so the answer says which row it was."""
    return f"review {i}: the food was {'great' if i % 3 else 'awful'}"


def expected(i: int) -> str:
    return "positive" if i % 3 else "negative"


def sentiment_answer(body: dict[str, Any]) -> str:
    """The fake model: read the row's review from the last user message, answer in the chat
    adapter's field format."""
    text = last_user_message(body)
    label = "negative" if "awful" in text else "positive"
    if "unparsable" in text:
        return "I would rather not say."
    return f"[[ ## answer ## ]]\n{label}\n\n[[ ## completed ## ]]"


def site_without_promptcast(folder: Path) -> Path:
    """This venv's site-packages as links, less promptcast's own entries: what a worker image
    with Ray (and no promptcast) has. Its .pth files are never read (a PYTHONPATH folder's are
    not, and the workers run `python -S`), so the editable install's paths stay out too."""
    folder.mkdir(parents=True, exist_ok=True)
    for packages in map(Path, site.getsitepackages()):
        for entry in packages.iterdir():
            if entry.name.startswith(("promptcast", "_promptcast")) or entry.suffix == ".pth":
                continue
            link = folder / entry.name
            if not link.exists():
                link.symlink_to(entry)
    return folder
