"""Cold start by text: a new user's reviews -> motivation phrases (through the LLM) -> items.

An *extractor* is any callable ``text -> list of user-side motivation phrases``. The real one
wraps a :class:`~lmmrec.llm.backends.Backend` (local xllamacpp or OpenAI-compatible) and
builds it lazily on the first call, so loading a run or starting the service never loads a
model; tests inject a fake callable instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from lmmrec.errors import LmmrecError

Extract = Callable[[str], list[str]]

MAX_REVIEWS = 20


class ExtractionError(LmmrecError):
    """The LLM gave no usable motivation for any of the texts."""


def split_reviews(text: str) -> list[str]:
    """A text file's reviews: paragraphs (blank-line separated) if there are any, else lines."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    parts = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    return [" ".join(p.split()) for p in parts if p.strip()]


class BackendExtractor:
    """Motivations of one review through an LLM backend (built on first use, then reused).

    ``backend`` is a Backend instance, or a zero-argument factory returning one. Calls are
    serialised for backends that take one request at a time (the local model)."""

    def __init__(self, backend: Any, attempts: int = 2) -> None:
        self._backend = None if callable(backend) and not hasattr(backend, "complete") else backend
        self._factory = backend if self._backend is None else None
        self._attempts = attempts
        self._lock = threading.Lock()

    @property
    def backend(self) -> Any:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    def motivations(self, text: str) -> dict[str, list[str]]:
        from lmmrec.llm.job import extract_one
        from lmmrec.llm.prompts import ReviewInput

        inp = ReviewInput("new-user", "", text)
        backend = self.backend
        if getattr(backend, "concurrency", 1) <= 1:
            with self._lock:
                rec = extract_one(backend, inp, inp.input_hash(), self._attempts)
        else:
            rec = extract_one(backend, inp, inp.input_hash(), self._attempts)
        if rec.status != "ok" or not rec.parsed:
            raise ExtractionError(f"motivation extraction failed: {rec.error or 'no output'}")
        return {k: list(rec.parsed.get(k) or []) for k in ("pos", "neg", "attr")}

    def __call__(self, text: str) -> list[str]:
        return self.motivations(text)["pos"]

    def close(self) -> None:
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()


def configured_extractor(cfg: Any = None) -> BackendExtractor:
    """The extractor of a BackendConfig (default: the local model), built lazily."""
    from lmmrec.llm.backends import BackendConfig, make_backend

    cfg = cfg or BackendConfig()
    return BackendExtractor(lambda: make_backend(cfg))


def extract_phrases(texts: list[str], extract: Extract) -> list[str]:
    """The distinct user-side motivation phrases of ``texts`` (most frequent first).

    A review the extractor fails on is skipped; if none gives a phrase: ExtractionError."""
    from lmmrec.llm.schemas import normalise_phrase

    texts = [t for t in (" ".join(str(t).split()) for t in texts) if t]
    if not texts:
        raise ExtractionError("no review text given")
    if len(texts) > MAX_REVIEWS:
        raise ExtractionError(f"at most {MAX_REVIEWS} reviews per request, got {len(texts)}")
    counts: dict[str, int] = {}
    errors: list[str] = []
    for t in texts:
        try:
            found = extract(t)
        except ExtractionError as e:
            errors.append(str(e))
            continue
        for p in found:
            norm = normalise_phrase(p)  # even a fake or remote extractor cannot pass junk
            if norm:
                counts[norm] = counts.get(norm, 0) + 1
    if not counts:
        why = f": {errors[0]}" if errors else ""
        raise ExtractionError(f"no motivation could be extracted from the text{why}")
    return sorted(counts, key=lambda p: -counts[p])


# -- a new user's own words, no LLM ---------------------------------------------------------

# Clause boundaries inside a sentence; the words themselves are dropped ("a shampoo without
# sulfates that smells great" -> "shampoo without sulfates", "smells great").
_CLAUSE = re.compile(r"[.!?;,:()\n]+|\s+(?:and|but|that|which|because|so|or|also|plus)\s+",
                     re.I)
_LEAD = re.compile(r"^(?:(?:a|an|the|some|i|we|want|wanted|need|needed|looking|look|for|"
                   r"would|like|love|something|one|it|is|was)\s+)+", re.I)
MAX_QUERY_PHRASES = 48


def query_phrases(texts: list[str]) -> list[str]:
    """A new user's texts as motivation-sized phrases, without an LLM: sentences cut at
    clause words, leading filler dropped, each phrase held to the same rules as the LLM's
    (1-6 words, plain characters; a longer clause keeps its first six words)."""
    from lmmrec.llm.schemas import MAX_WORDS, normalise_phrase

    out: dict[str, None] = {}
    for text in texts:
        for part in _CLAUSE.split(" ".join(str(text).split())):
            words = _LEAD.sub("", part.strip()).split()[:MAX_WORDS]
            norm = normalise_phrase(" ".join(words)) if words else None
            if norm:
                out.setdefault(norm, None)
    if not out:
        raise ExtractionError("no motivation phrase in the text")
    return list(out)[:MAX_QUERY_PHRASES]


# -- ranking by motivation matching -----------------------------------------------------------


def top_phrase_table(m: Any, top: int) -> tuple[Any, Any]:
    """Each row's ``top`` heaviest columns of a CSR matrix, padded: (ids [n, top] int64 with
    -1 for none, weights [n, top] float32). Heaviest first, ties in column order, exactly as
    :func:`lmmrec.explain.match.entity_phrases` orders one row."""
    import numpy as np

    n = m.shape[0]
    rows = np.repeat(np.arange(n), np.diff(m.indptr))
    order = np.lexsort((-m.data, rows))  # stable: equal weights keep their column order
    rank = np.arange(len(order)) - m.indptr[rows[order]]
    keep = order[rank < top]
    ids = np.full((n, top), -1, dtype=np.int64)
    w = np.zeros((n, top), dtype=np.float32)
    r, k = rows[keep], rank[rank < top]
    ids[r, k] = m.indices[keep]
    w[r, k] = m.data[keep]
    return ids, w


def match_scores(q_vecs: Any, q_w: Any, ids: Any, w: Any, phrase_vecs: Any, k: int,
                 min_similarity: float, chunk: int = 4096) -> Any:
    """Every item's score for a query: the summed similarity of the pairs
    :func:`lmmrec.explain.match.best_matches` would show for it (greedy, best pair first,
    each phrase used once, pairs under ``min_similarity`` never), vectorised over items
    ``chunk`` at a time so memory stays bounded (chunk x queries x top floats)."""
    import numpy as np

    n, top = ids.shape
    used = np.unique(ids[ids >= 0])
    if len(used) == 0 or len(q_vecs) == 0:
        return np.zeros(n, dtype=np.float32)
    col = np.full(phrase_vecs.shape[0], -1, dtype=np.int64)
    col[used] = np.arange(len(used))
    sim_used = (q_vecs @ phrase_vecs[used].T).astype(np.float32)  # [m, U]
    out = np.zeros(n, dtype=np.float32)
    m = len(q_vecs)
    for start in range(0, n, chunk):
        cid = ids[start:start + chunk]
        valid = cid >= 0
        sim = sim_used[:, np.where(valid, col[np.maximum(cid, 0)], 0)]  # [m, c, top]
        sim = np.transpose(sim, (1, 0, 2))
        ok = valid[:, None, :] & (sim >= min_similarity)
        score = np.where(ok, sim + 1e-3 * (q_w[None, :, None] + w[start:start + chunk][:, None, :]),
                         -np.inf)
        flat = score.reshape(len(cid), -1)
        simf = sim.reshape(len(cid), -1)
        total = np.zeros(len(cid), dtype=np.float32)
        rows = np.arange(len(cid))
        for _ in range(k):
            best = np.argmax(flat, axis=1)
            hit = np.isfinite(flat[rows, best])
            if not hit.any():
                break
            total[hit] += simf[rows[hit], best[hit]]
            a, b = np.divmod(best, top)
            rr = rows[hit]
            blocked = flat.reshape(len(cid), m, top)
            blocked[rr, a[hit], :] = -np.inf
            blocked[rr, :, b[hit]] = -np.inf
        out[start:start + chunk] = total
    return out
