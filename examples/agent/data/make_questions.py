"""Writes train/dev/test questions with exact answers computed from the agent's own table."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from planets.tools import PLANETS  # noqa: E402

FACTS = {"moons": "moons", "diameter_km": "diameter in km", "day_hours": "length of a day in hours"}


def questions(rng: random.Random) -> list[dict[str, object]]:
    names = sorted(PLANETS)
    rows: list[dict[str, object]] = []
    for _ in range(60):
        a, b = rng.sample(names, 2)
        fact = rng.choice(sorted(FACTS))
        kind = rng.randrange(3)
        if PLANETS[a][fact] < PLANETS[b][fact]:
            a, b = b, a  # "how much larger": the first is the larger one
        va, vb = PLANETS[a][fact], PLANETS[b][fact]
        if kind == 0:
            q, ans = f"How many {FACTS[fact]} does {a.title()} have?", va
            if fact != "moons":
                q = f"What is the {FACTS[fact]} of {a.title()}?"
        elif kind == 1:
            q, ans = (
                f"What is the {FACTS[fact]} of {a.title()} and {b.title()} added together?",
                va + vb,
            )
        else:
            q, ans = (
                f"How much larger is the {FACTS[fact]} of {a.title()} than that of {b.title()}?",
                va - vb,
            )
        rows.append({"question": q, "answer": round(ans, 2)})
    return rows


def main() -> None:
    rows = questions(random.Random(20261125))
    here = Path(__file__).parent
    for name, part in (("train", rows[:20]), ("dev", rows[20:30]), ("test", rows[30:])):
        (here / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))


if __name__ == "__main__":
    main()
