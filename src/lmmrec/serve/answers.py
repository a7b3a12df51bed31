"""Rendered answers of the service: the JSON of a user's recommendations, and the bounded
cache that keeps them.

A computed answer is rendered straight to bytes: the same bytes as ``json.dumps`` of
:meth:`Recommendation.as_dict` (keys in that order, ``ensure_ascii=False``, floats as
``repr``), without building the dictionaries first; at 20 items with 3 pairs each that was
~40 % of a computed request.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from lmmrec.explain.match import Match
from lmmrec.explain.recommender import Recommendation

# json's own string encoder (C), as json.dumps(..., ensure_ascii=False) uses it
_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _num(x: float) -> str:
    """A float as json.dumps writes it (repr; NaN and Infinity spelled its way)."""
    return repr(x) if math.isfinite(x) else json.dumps(x)


def render_match(m: Match) -> str:
    """The JSON of ``m.as_dict()``."""
    return (f'{{"user_phrase": {_str(m.user_phrase)}, "item_phrase": {_str(m.item_phrase)}, '
            f'"similarity": {_num(round(m.similarity, 4))}}}')


def render_item(r: Recommendation) -> str:
    """The JSON of ``r.as_dict()``."""
    matches = ", ".join([render_match(m) for m in r.matches])
    return (f'{{"item": {_str(r.item)}, "title": {_str(r.title)}, '
            f'"score": {_num(round(r.score, 6))}, "reason": {_str(r.reason)}, '
            f'"matches": [{matches}]}}')


def render_recommendations(user: str, k: int, recs: Sequence[Recommendation]) -> bytes:
    """The body of GET /users/{id}/recommendations: ``json.dumps({"user": user, "k": k,
    "items": [r.as_dict() for r in recs]}, ensure_ascii=False).encode()``, byte for byte."""
    items = ", ".join([render_item(r) for r in recs])
    return f'{{"user": {_str(user)}, "k": {int(k)}, "items": [{items}]}}'.encode()


class ByteCache:
    """An LRU map of rendered answers whose values sum to at most ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self.hits = self.misses = 0  # for /health: how much of the load the cache answers
        self._d: OrderedDict[Any, bytes] = OrderedDict()

    def get(self, key: Any) -> bytes | None:
        body = self._d.get(key)
        if body is not None:
            self._d.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return body

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._d), "bytes": self.bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses}

    def put(self, key: Any, body: bytes) -> None:
        if len(body) > self.max_bytes or key in self._d:
            return
        self._d[key] = body
        self.bytes += len(body)
        while self.bytes > self.max_bytes:
            _, old = self._d.popitem(last=False)
            self.bytes -= len(old)

    def __len__(self) -> int:
        return len(self._d)
