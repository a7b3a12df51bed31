"""Reasons only from pairs of phrases that mean the same motivation (real MiniLM vectors)."""

from __future__ import annotations

import numpy as np

from lmmrec.explain.match import MIN_SIMILARITY, best_matches, reason
from lmmrec.text.embed import embed_texts


def test_unrelated_phrases_give_no_reason_related_ones_do() -> None:
    user = ["smooth texture", "gentle on sensitive skin"]
    item = ["waterproof", "soothing for sensitive skin"]
    uv, iv = embed_texts(user), embed_texts(item)
    sims = uv @ iv.T
    matches = best_matches(user, uv, np.ones(2), item, iv, np.ones(2))
    assert [(m.user_phrase, m.item_phrase) for m in matches] == [
        ("gentle on sensitive skin", "soothing for sensitive skin")]
    assert sims[0, 0] < MIN_SIMILARITY <= matches[0].similarity
    assert "sensitive skin" in reason(matches, "Aloe gel")
    assert reason([], "Aloe gel").startswith("Recommended because people")
