"""The rendered answer is json.dumps of the recommendations' dictionaries, byte for byte."""

from __future__ import annotations

import json

import pytest

from lmmrec.explain.match import Match
from lmmrec.explain.recommender import Recommendation
from lmmrec.serve.answers import render_recommendations


def reference(user: str, k: int, recs: list[Recommendation]) -> bytes:
    """What the service rendered before: the dictionaries through json.dumps."""
    return json.dumps({"user": user, "k": k, "items": [r.as_dict() for r in recs]},
                      ensure_ascii=False).encode()


AWKWARD = ['plain', 'Soufflè ünïcode 日本', 'quote " and \\ backslash', 'tab\tnew\nline',
           'control \x01\x1f', 'separators \u2028\u2029', 'emoji 🙂', '']


@pytest.mark.parametrize("text", AWKWARD)
def test_strings_are_escaped_as_json_does(text: str) -> None:
    m = Match(text, text[::-1], 0.123456789)
    recs = [Recommendation(text or "id", 1.0 / 3, f"You look for {text}.", [m, m], text)]
    assert render_recommendations(text, 3, recs) == reference(text, 3, recs)


@pytest.mark.parametrize("score", [0.0, -0.0, 1e-9, -3.25e12, 0.1234565, 7.0, float("nan"),
                                   float("inf"), -float("inf")])
def test_numbers_are_written_as_json_does(score: float) -> None:
    recs = [Recommendation("a", score, "r", [Match("u", "i", score)], "t")]
    assert render_recommendations("u", 1, recs) == reference("u", 1, recs)


def test_empty_and_unmatched() -> None:
    assert render_recommendations("u", 5, []) == reference("u", 5, [])
    recs = [Recommendation("a", 0.5, "r", [], ""), Recommendation("b", 0.25, "s")]
    assert render_recommendations("u", 2, recs) == reference("u", 2, recs)


def test_real_answers_render_identically(recommender) -> None:
    rec = recommender
    for uid in rec.user_ids[:60]:
        for k in (1, 20, 100):
            recs = rec.recommend(uid, k)
            assert render_recommendations(uid, k, recs) == reference(uid, k, recs)
