"""The phrase data behind the reasons, kept for a whole catalogue, and the reasons' matching
vectorised over many items.

Every user's and item's top profile phrases sit in two dense tables (phrase ids and weights,
``PROFILE_TOP`` a row, -1 padded): 12 bytes a phrase slot, ~14 MB at 10^5 items, where
slicing each profile into its own arrays of vectors took ~8 KB an entity (840 MB for the
10^5 items and 3x10^4 users of benchmarks/bench_serve_large.py). The motivation
pairs of a user's k items come from one batched similarity and one greedy pass
(:func:`~lmmrec.explain.match.greedy_pairs`): the pairs
:func:`~lmmrec.explain.match.best_matches` picks item by item. With
:meth:`PhraseTables.precompute`, the pairs of every user's precomputed top items are
found once, up front, and a request only looks them up.
"""

from __future__ import annotations

import threading

import numpy as np

from lmmrec.explain.coldrank import top_phrase_table
from lmmrec.explain.match import MIN_SIMILARITY, Match, greedy_pairs
from lmmrec.text.profiles import Profiles

Side = tuple[list[str], np.ndarray, np.ndarray]  # texts, unit vectors, weights
PROFILE_TOP = 12  # phrases of a profile considered for matching
MATCHES = 3  # motivation pairs a reason shows (and a cold-start score sums)
NO_PHRASES: Side = ([], np.zeros((0, 1), np.float32), np.zeros(0, np.float32))


class PhraseTables:
    """One run's profiles as phrase tables, and the reasons' matching over them."""

    def __init__(self, profiles: Profiles, top: int = PROFILE_TOP) -> None:
        self.profiles, self.top = profiles, top
        self._tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        # precomputed pairs of every user's top items: (user slot, item slot, similarity)
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def table(self, entity: str) -> tuple[np.ndarray, np.ndarray]:
        """Every user's (or item's) top profile phrases: ids [n, top] (-1: none) and
        weights, heaviest first, as :func:`~lmmrec.explain.match.entity_phrases` orders a
        row. Built once, vectorised."""
        got = self._tables.get(entity)
        if got is None:
            m = self.profiles.user_pos if entity == "user" else self.profiles.item
            with self._lock:  # built once even when requests race for it
                got = self._tables.get(entity) or top_phrase_table(m.tocsr(), self.top)
                self._tables[entity] = got
        return got

    def side(self, entity: str, index: int) -> Side:
        """(texts, unit vectors, weights) of an entity's top profile phrases."""
        ids, w = self.table(entity)
        keep = ids[index] >= 0
        row = ids[index][keep]
        return ([self.profiles.phrases[j] for j in row.tolist()],
                self.profiles.embeddings[row], w[index][keep])

    def pairs(self, user_ph: Side, items: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, sim) of each item's pairs [c, MATCHES]: the user's phrase slot, the item's
        phrase slot (-1 past the last pair) and their similarity."""
        _, vecs, w = user_ph
        ids, iw = self.table("item")
        cid = ids[items]
        ivecs = self.profiles.embeddings[np.maximum(cid, 0)]  # [c, top, dim]; padding masked
        sim = np.matmul(vecs[None], ivecs.transpose(0, 2, 1))  # [c, m, top]
        a, b = greedy_pairs(sim, w, iw[items], cid >= 0, MATCHES, MIN_SIMILARITY)
        rows = np.arange(len(items))[:, None]
        return a, b, np.where(a >= 0, sim[rows, np.maximum(a, 0), np.maximum(b, 0)], 0)

    def matches(self, user_ph: Side, items: np.ndarray, user: int | None = None,
                ranks: slice | None = None) -> list[list[Match]]:
        """The motivation pairs each item's reason shows, up to MATCHES, best first. With
        ``user`` and ``ranks`` (that user's precomputed top items, e.g. slice(0, k)) they
        are looked up instead, when :meth:`precompute` has run."""
        texts = user_ph[0]
        if not texts or not len(items):
            return [[] for _ in range(len(items))]
        if self._pairs is not None and user is not None and ranks is not None:
            a, b, sim = (x[user, ranks] for x in self._pairs)
        else:
            a, b, sim = self.pairs(user_ph, items)
        phrases, cid = self.profiles.phrases, self.table("item")[0][items]
        out: list[list[Match]] = []
        for n, (ar, br, sr) in enumerate(zip(a.tolist(), b.tolist(), sim.tolist(),
                                             strict=True)):
            out.append([Match(texts[x], phrases[cid[n, y]], s)
                        for x, y, s in zip(ar, br, sr, strict=True) if x >= 0])
        return out

    def precompute(self, top_items: np.ndarray) -> None:
        """The pairs of every user's ranked items ``top_items`` [n_users, K], found once,
        user by user exactly as a request would: 6 bytes a pair (int8 slots, float32
        similarity), 18 MB per 10^4 users at K = 100."""
        n_users, k = top_items.shape
        assert self.top <= 127  # slots fit int8
        a = np.full((n_users, k, MATCHES), -1, dtype=np.int8)
        b = np.full((n_users, k, MATCHES), -1, dtype=np.int8)
        sim = np.zeros((n_users, k, MATCHES), dtype=np.float32)
        for u in range(n_users):
            side = self.side("user", u)
            if side[0]:
                a[u], b[u], sim[u] = self.pairs(side, top_items[u])
        self._pairs = (a, b, sim)
