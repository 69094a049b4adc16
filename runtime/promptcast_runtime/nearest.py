"""Nearest-neighbour demos (`knn` optimizer): each call shows the k pool demos most like it.

DSPy's KNNFewShot embeds the training set with a vectorizer and needs that embedding model at
run time. Here the pool is plain data baked into the generated module (the step spec's optional
`nearest` key: `{"k": 3, "pool": (demo, ...)}`) and the retriever is Okapi BM25 over the
demos' input fields, in the standard library: no embedding service, no network, no new
dependency, and the same ranking in development, optimization and the shipped module.

The index is built on first use (not at import, so a module that never calls the step pays
nothing) and is small: one term-frequency dict per demo plus one document-frequency dict. A
1,000-demo pool of TREC questions is ~0.1 MB of literals and indexes in a few milliseconds.
Ties rank by pool order, so the choice is deterministic.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Demo = Mapping[str, Any]

K1 = 1.5
B = 0.75
"""Okapi BM25's usual constants (term-frequency saturation, length normalisation)."""

_WORD = r"\w+"
"""A word: what the index and the query are split into (re caches the compiled pattern)."""


def terms(value: Any) -> list[str]:
    """Lower-cased word tokens of a field value (structured values as their JSON text)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return re.findall(_WORD, text.lower())


class NearestDemos:
    """The `k` demos of `pool` whose `fields` best match a call's inputs (BM25)."""

    __slots__ = ("_index", "_lock", "fields", "k", "pool")

    def __init__(self, pool: Sequence[Demo], k: int, fields: Sequence[str]) -> None:
        self.pool = tuple(pool)
        self.k = k
        self.fields = tuple(fields)
        self._index: tuple[list[Counter[str]], dict[str, float], float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NearestDemos(k={self.k}, pool={len(self.pool)}, fields={self.fields})"

    def _text_terms(self, values: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        for name in self.fields:
            if name in values:
                found.extend(terms(values[name]))
        return found

    def _built(self) -> tuple[list[Counter[str]], dict[str, float], float]:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    docs = [Counter(self._text_terms(demo)) for demo in self.pool]
                    df: Counter[str] = Counter()
                    for doc in docs:
                        df.update(doc.keys())
                    n = len(docs)
                    idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
                    average = sum(sum(d.values()) for d in docs) / n if n else 0.0
                    self._index = (docs, idf, average)
                index = self._index
        return index

    def scores(self, inputs: Mapping[str, Any]) -> list[float]:
        """Each pool demo's BM25 score against these inputs."""
        docs, idf, average = self._built()
        query = Counter(self._text_terms(inputs))
        out: list[float] = []
        for doc in docs:
            length = sum(doc.values())
            norm = K1 * (1 - B + B * length / average) if average else K1
            total = 0.0
            for term, count in query.items():
                tf = doc.get(term)
                if tf:
                    total += count * idf[term] * tf * (K1 + 1) / (tf + norm)
            out.append(total)
        return out

    def select(self, inputs: Mapping[str, Any]) -> tuple[Demo, ...]:
        """The k best-matching demos, best first (ties: the earlier in the pool)."""
        if not self.pool:
            return ()
        ranked = sorted(enumerate(self.scores(inputs)), key=lambda item: (-item[1], item[0]))
        return tuple(self.pool[i] for i, _ in ranked[: self.k])


def check_nearest(value: Any) -> str | None:
    """What is wrong with a spec's `nearest` entry, in words; None when it is valid."""
    if not isinstance(value, Mapping) or set(value) != {"k", "pool"}:
        return 'a mapping {"k": int, "pool": (demo, ...)}'
    k = value["k"]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        return "a k of 1 or more"
    pool = value["pool"]
    if not isinstance(pool, (tuple, list)) or not all(isinstance(d, Mapping) for d in pool):
        return "a pool that is a sequence of demo mappings"
    return None
