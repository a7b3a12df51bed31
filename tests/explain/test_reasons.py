"""The vectorised reasons give the answers of the item-by-item reference: the same motivation
pairs as `best_matches`, precomputed or not, and the same recommendations and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from lmmrec.explain.match import MIN_SIMILARITY, best_matches, greedy_pairs, reason
from lmmrec.explain.reasons import MATCHES, PhraseTables
from lmmrec.explain.recommender import Recommender


def _case(rng: np.random.Generator, m: int, sizes: list[int], t: int, dim: int = 6):
    """Query and candidates whose vectors take few distinct values, so that equal
    similarities (ties) and pairs under the threshold are common."""
    def vecs(n: int) -> np.ndarray:
        v = rng.integers(0, 2, size=(n, dim)).astype(np.float32) + 1e-3 * (np.arange(dim) == 0)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def weights(n: int) -> np.ndarray:  # few distinct weights: ties after the weight term too
        return rng.choice(np.array([0.1, 0.2, 0.5], dtype=np.float32), n)

    q, qw = vecs(m), weights(m)
    items = [(vecs(n), weights(n)) for n in sizes]
    sim = np.zeros((len(sizes), m, t), dtype=np.float32)
    w = np.zeros((len(sizes), t), dtype=np.float32)
    valid = np.zeros((len(sizes), t), dtype=bool)
    for c, (iv, iw) in enumerate(items):
        sim[c, :, :len(iw)] = q @ iv.T  # the product best_matches computes
        w[c, :len(iw)], valid[c, :len(iw)] = iw, True
    return q, qw, items, sim, w, valid


@pytest.mark.parametrize("seed", range(40))
def test_greedy_pairs_are_best_matches_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, t = int(rng.integers(1, 7)), 6
    sizes = [int(n) for n in rng.integers(0, t + 1, size=9)]  # empty and full profiles
    q, qw, items, sim, w, valid = _case(rng, m, sizes, t)
    a, b = greedy_pairs(sim, qw, w, valid, MATCHES, MIN_SIMILARITY)
    qt = [f"q{j}" for j in range(m)]
    for c, (iv, iw) in enumerate(items):
        it = [f"i{j}" for j in range(len(iw))]
        ref = best_matches(qt, q, qw, it, iv, iw, k=MATCHES)
        got = [(qt[x], it[y]) for x, y in zip(a[c], b[c], strict=True) if x >= 0]
        assert got == [(r.user_phrase, r.item_phrase) for r in ref]
        assert all(x < 0 for x in a[c, len(ref):])  # -1 past the last pair


def test_greedy_pairs_edge_shapes() -> None:
    a, b = greedy_pairs(np.zeros((3, 0, 4), np.float32), np.zeros(0, np.float32),
                        np.zeros((3, 4), np.float32), np.ones((3, 4), bool), MATCHES)
    assert a.shape == (3, MATCHES) and (a == -1).all() and (b == -1).all()
    sim = np.full((1, 2, 2), 0.9, np.float32)  # all pairs equal: first slots, each once
    a, b = greedy_pairs(sim, np.ones(2, np.float32), np.ones((1, 2), np.float32),
                        np.ones((1, 2), bool), MATCHES)
    assert a[0].tolist() == [0, 1, -1] and b[0].tolist() == [0, 1, -1]


@pytest.fixture(scope="module")
def fresh(lmmrec_run) -> Recommender:
    """The shared run, loaded again: precompute here leaves the session's instance as is."""
    return Recommender.load(lmmrec_run)


def _profiled(rec: Recommender) -> list[int]:
    return [int(u) for u in np.flatnonzero(rec.profiles.user_pos.getnnz(axis=1))]


def test_vectorised_reasons_are_the_item_by_item_reasons(fresh: Recommender) -> None:
    """Real MiniLM phrases: for every profiled user's top 100, the same pairs and the same
    reason as best_matches item by item; similarities equal up to float32 rounding (one
    batched product against many small ones)."""
    rec, shown = fresh, 0
    for u in _profiled(rec):
        side = rec.side("user", u)
        for r in rec.recommend(rec.user_ids[u], 100):
            ref = best_matches(*side, *rec.side("item", rec.item_index(r.item)), k=MATCHES)
            assert [(m.user_phrase, m.item_phrase) for m in r.matches] == [
                (m.user_phrase, m.item_phrase) for m in ref]
            assert [m.similarity for m in r.matches] == pytest.approx(
                [m.similarity for m in ref], abs=1e-6)
            assert r.reason == reason(ref, r.title)
            shown += bool(ref)
    assert shown >= 40  # the comparison covered real pairs, not only empty reasons


def test_precomputed_pairs_are_the_computed_ones(fresh: Recommender) -> None:
    rec = fresh
    rec.precompute(40)
    assert rec.reasons is not None and rec.reasons._pairs is not None
    for u in range(rec.ds.n_users):
        items = rec._top[0][u]
        items = items[np.isfinite(rec._top[1][u])]
        side = rec.side("user", u)
        looked_up = rec.reasons.matches(side, items, u, slice(0, len(items)))
        assert looked_up == rec.reasons.matches(side, items)  # exact, floats included
    # a request for k <= 40 is answered from them, and k past it is computed
    uid = rec.user_ids[_profiled(rec)[0]]
    assert [r.matches for r in rec.recommend(uid, 40)][:10] == [
        r.matches for r in rec.recommend(uid, 10)]
    assert len(rec.recommend(uid, 60)) == 60


def test_tables_follow_swapped_profiles(fresh: Recommender) -> None:
    """Other profiles (bench_reasons compares two): reasons come from the new ones."""
    rec = fresh
    old = rec.profiles
    try:
        rec.profiles = None
        assert rec.reasons is None and rec.side("user", 0)[0] == []
        assert all(not r.matches for r in rec.recommend(rec.user_ids[0], 5))
    finally:
        rec.profiles = old
    assert isinstance(rec.reasons, PhraseTables) and rec.reasons._pairs is None


def test_tables_hold_the_profile_rows(fresh: Recommender) -> None:
    from lmmrec.explain.match import profile_side

    rec = fresh
    for entity, n in (("user", rec.ds.n_users), ("item", rec.ds.n_items)):
        for i in range(0, n, 7):
            texts, vecs, w = rec.side(entity, i)
            ref = profile_side(rec.profiles, entity, i, rec.reasons.top)
            assert texts == ref[0]
            assert np.array_equal(vecs, ref[1]) and np.array_equal(w, ref[2])
