"""Cold-start ranking: a new user's phrases matched to every item's profile phrases, the
same one-to-one matching the reasons show, vectorised over items in bounded memory; and the
user's own words cut into phrases when no LLM is asked for."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lmmrec.explain.coldstart import ExtractionError
from lmmrec.explain.match import greedy_pairs
from lmmrec.llm.schemas import MAX_WORDS, normalise_phrase

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
    n = ids.shape[0]
    if len(q_vecs) == 0 or not (ids >= 0).any():
        return np.zeros(n, dtype=np.float32)
    sim_all = (q_vecs @ phrase_vecs.T).astype(np.float32)  # [m, P]: small, m is a query
    out = np.zeros(n, dtype=np.float32)
    for start in range(0, n, chunk):
        cid = ids[start:start + chunk]
        sim = np.transpose(sim_all[:, np.maximum(cid, 0)], (1, 0, 2))  # [c, m, top]
        a, b = greedy_pairs(sim, q_w, w[start:start + chunk], cid >= 0, k, min_similarity)
        total = np.zeros(len(cid), dtype=np.float32)
        rows = np.arange(len(cid))
        for r in range(k):  # summed best pair first, as the reasons list them
            hit = a[:, r] >= 0
            total[hit] += sim[rows[hit], a[hit, r], b[hit, r]]
        out[start:start + chunk] = total
    return out
