"""Phrase-to-phrase matching between a user's and an item's motivation profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmrec.text.profiles import Profiles


@dataclass
class Match:
    user_phrase: str
    item_phrase: str
    similarity: float

    def as_dict(self) -> dict[str, object]:
        return {"user_phrase": self.user_phrase, "item_phrase": self.item_phrase,
                "similarity": round(self.similarity, 4)}


def entity_phrases(p: Profiles, entity: str, index: int, top: int = 12
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(phrase ids, weights) of an entity's profile, heaviest first."""
    m = p.user_pos if entity == "user" else p.item
    row = m.getrow(index)
    order = np.argsort(-row.data, kind="stable")[:top]
    return row.indices[order], row.data[order]


# Below this cosine, two MiniLM phrases rarely mean the same motivation (e.g. "texture" vs
# "waterproof" ~0.25): such a pair would be a made-up reason.
MIN_SIMILARITY = 0.4


def best_matches(user_texts: list[str], user_vecs: np.ndarray, user_w: np.ndarray,
                 item_texts: list[str], item_vecs: np.ndarray, item_w: np.ndarray,
                 k: int = 3, min_similarity: float = MIN_SIMILARITY) -> list[Match]:
    """The k best (user phrase, item phrase) pairs by cosine similarity, each phrase used once;
    ties favour heavier phrases. Phrases come only from the two lists given; pairs below
    ``min_similarity`` are not offered as a reason."""
    if len(user_texts) == 0 or len(item_texts) == 0:
        return []
    sim = user_vecs @ item_vecs.T
    score = sim + 1e-3 * (np.asarray(user_w)[:, None] + np.asarray(item_w)[None, :])
    out: list[Match] = []
    used_u: set[int] = set()
    used_i: set[int] = set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        a, b = divmod(int(flat), score.shape[1])
        if sim[a, b] < min_similarity:
            continue
        if a in used_u or b in used_i:
            continue
        used_u.add(a)
        used_i.add(b)
        out.append(Match(user_texts[a], item_texts[b], float(sim[a, b])))
        if len(out) == k:
            break
    return out


def greedy_pairs(sim: np.ndarray, q_w: np.ndarray, w: np.ndarray, valid: np.ndarray, k: int,
                 min_similarity: float = MIN_SIMILARITY) -> tuple[np.ndarray, np.ndarray]:
    """:func:`best_matches` for many candidates at once: ``sim`` [c, m, t] holds the
    similarity of the query's m phrases to each candidate's t phrases (``w`` [c, t] their
    weights, ``valid`` [c, t] which exist). Returns (a, b), each [c, k]: the query and
    candidate phrase of each chosen pair, best first, -1 past the last.

    The same choice as best_matches: the highest score (similarity + 1e-3 x the two
    weights) first, ties to the lower flat index (argmax's first maximum = a stable sort's
    first), each phrase used once, no pair under ``min_similarity``."""
    c, m, t = sim.shape
    a = np.full((c, k), -1, dtype=np.int64)
    b = np.full((c, k), -1, dtype=np.int64)
    if c == 0 or m == 0 or t == 0:
        return a, b
    ok = valid[:, None, :] & (sim >= min_similarity)
    tie = 1e-3 * (q_w[None, :, None] + w[:, None, :])
    score = np.where(ok, sim + tie, -np.inf)  # a new array: blocked in place below
    flat = score.reshape(c, m * t)
    rows = np.arange(c)
    for r in range(k):
        best = np.argmax(flat, axis=1)
        hit = np.isfinite(flat[rows, best])
        if not hit.any():
            break
        rr, (aa, bb) = rows[hit], np.divmod(best[hit], t)
        a[rr, r], b[rr, r] = aa, bb
        score[rr, aa, :] = -np.inf  # each phrase once
        score[rr, :, bb] = -np.inf
    return a, b


def profile_side(p: Profiles, entity: str, index: int, top: int = 12
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(texts, unit vectors, weights) of an entity's profile phrases, heaviest first."""
    ids, w = entity_phrases(p, entity, index, top)
    return [p.phrases[j] for j in ids], p.embeddings[ids], w


def reason(matches: list[Match], item_title: str = "") -> str:
    """One line composed from the best matches."""
    name = item_title if item_title and len(item_title) <= 60 else (
        item_title[:57].rsplit(" ", 1)[0] + "..." if item_title else "this item")
    if not matches:
        line = f"Recommended because people with tastes like yours chose {name}"
        return line if line.endswith((".", "!", "?")) else line + "."
    m = matches[0]
    if m.user_phrase == m.item_phrase:
        line = f"You look for {m.user_phrase}, and reviewers credit {name} with it"
    else:
        line = (f"You look for {m.user_phrase}; reviewers credit {name} with "
                f"{m.item_phrase}")
    if len(matches) > 1:
        line += f" (also: {matches[1].item_phrase})"
    return line if line.endswith((".", "!", "?")) else line + "."
