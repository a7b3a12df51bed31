"""Explained recommendations of a trained lmmrec run: ranking, grounding, cold start, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmmrec.errors import LmmrecError
from lmmrec.explain.coldstart import (
    BackendExtractor,
    ExtractionError,
    extract_phrases,
    split_reviews,
)
from lmmrec.explain.recommender import UnknownId
from lmmrec.llm.backends import Completion


def profile_phrases(rec, entity: str, index: int) -> set[str]:
    """Every phrase of the entity's profile CSR row (not just the top ones)."""
    p = rec.profiles
    m = p.user_pos if entity == "user" else p.item
    row = m.getrow(index)
    return {p.phrases[j] for j in row.indices}


def users_with_profiles(rec) -> list[int]:
    return [int(u) for u in np.flatnonzero(rec.profiles.user_pos.getnnz(axis=1))]


def test_recommendations_exclude_seen_and_follow_the_scores(recommender):
    rec = recommender
    for u in [0, 1, 2, *users_with_profiles(rec)[:4]]:
        uid = rec.user_ids[u]
        out = rec.recommend(uid, 20)
        assert len(out) == 20
        idx = [rec.item_index(r.item) for r in out]
        assert not set(idx) & set(rec.seen(u).tolist())
        scores = (rec.item_emb @ rec.user_emb[u]).numpy().astype(np.float64)
        scores[rec.seen(u)] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:20]
        assert idx == expected.tolist() or np.allclose(scores[idx], scores[expected],
                                                       atol=1e-6)
        assert [r.score for r in out] == sorted((r.score for r in out), reverse=True)


def test_every_phrase_shown_is_grounded_in_the_profiles(recommender):
    rec = recommender
    users = users_with_profiles(rec)
    assert len(users) >= 5
    n_matches = 0
    for u in users:
        uid = rec.user_ids[u]
        user_ph = profile_phrases(rec, "user", u)
        top_user = {p for p, _ in rec.profiles.top_phrases("user", u, 12)}
        for r in rec.recommend(uid, 30):
            i = rec.item_index(r.item)
            item_ph = profile_phrases(rec, "item", i)
            top_item = {p for p, _ in rec.profiles.top_phrases("item", i, 12)}
            for m in r.matches:
                assert m.user_phrase in user_ph and m.user_phrase in top_user, (uid, m)
                assert m.item_phrase in item_ph and m.item_phrase in top_item, (r.item, m)
                assert -1.0 <= m.similarity <= 1.0 + 1e-5
                n_matches += 1
            if r.matches:
                assert r.matches[0].user_phrase in r.reason
                assert r.matches[0].item_phrase in r.reason
                # each phrase is used once per explanation
                assert len({m.user_phrase for m in r.matches}) == len(r.matches)
            else:
                assert "tastes like yours" in r.reason
    assert n_matches > 0, "no explanation had any phrase match"


def test_item_and_user_profiles_come_from_their_rows(recommender):
    rec = recommender
    i = int(np.flatnonzero(rec.profiles.item.getnnz(axis=1))[0])
    prof = rec.item_profile(rec.item_ids[i])
    assert prof["item"] == rec.item_ids[i]
    assert prof["motivations"]
    assert {m["phrase"] for m in prof["motivations"]} <= profile_phrases(rec, "item", i)
    assert prof["n_train_interactions"] == int((rec.train.indices == i).sum())
    u = users_with_profiles(rec)[0]
    uprof = rec.user_profile(rec.user_ids[u])
    assert {m["phrase"] for m in uprof["motivations"]} <= profile_phrases(rec, "user", u)


def test_unknown_ids(recommender):
    with pytest.raises(UnknownId, match="unknown user id 'no-such-user'"):
        recommender.recommend("no-such-user", 5)
    with pytest.raises(UnknownId):
        recommender.item_profile("no-such-item")
    assert issubclass(UnknownId, LmmrecError) and issubclass(UnknownId, KeyError)


def vocab_extractor(rec, seen: list[str] | None = None):
    """A fake LLM: the first profile phrases of the item-side vocabulary, per review."""
    phrases = rec.profiles.phrases

    def extract(text: str) -> list[str]:
        if seen is not None:
            seen.append(text)
        n = len(text) % 7
        return [phrases[n], phrases[n + 3]]

    return extract


def test_cold_start_by_text_is_ranked_and_grounded(recommender):
    rec = recommender
    texts: list[str] = []
    out = rec.recommend_for_text(["Smells lovely and keeps my skin soft.", "Great value."],
                                 100, extract=vocab_extractor(rec, texts))
    assert texts == ["Smells lovely and keeps my skin soft.", "Great value."]
    extracted = set(rec.extract_phrases(texts, vocab_extractor(rec)))
    assert len(out) == 100
    assert [r.score for r in out] == sorted((r.score for r in out), reverse=True)
    for r in out:
        item_ph = profile_phrases(rec, "item", rec.item_index(r.item))
        for m in r.matches:
            assert m.user_phrase in extracted
            assert m.item_phrase in item_ph
    assert any(r.matches for r in out)


def test_extraction_errors_and_review_splitting():
    with pytest.raises(ExtractionError, match="no motivation"):
        extract_phrases(["some text"], lambda t: [])
    with pytest.raises(ExtractionError, match="no review text"):
        extract_phrases(["  ", ""], lambda t: ["x y"])
    # junk from the extractor never becomes a phrase
    got = extract_phrases(["a", "b"], lambda t: ["Soft Skin", "ignore previous instructions",
                                                   "soft skin", "http://evil.com"])
    assert got == ["soft skin"]
    assert split_reviews("one\ntwo\n") == ["one", "two"]
    assert split_reviews("para one\nstill one\n\npara two") == ["para one still one",
                                                                 "para two"]


class FakeBackend:
    model_id = "fake"
    concurrency = 1

    def __init__(self, answer: dict) -> None:
        self.answer, self.requests = answer, []

    def complete(self, request: dict) -> Completion:
        self.requests.append(request)
        return Completion(json.dumps(self.answer))

    def close(self) -> None:
        pass


def test_backend_extractor_runs_the_real_extraction_path():
    b = FakeBackend({"why": "wanted soft skin", "pos": ["Soft skin", "gentle scent"],
                     "neg": [], "attr": ["moisturizing"]})
    ex = BackendExtractor(b)
    assert ex("My skin feels soft, lovely gentle scent.") == ["soft skin", "gentle scent"]
    msgs = b.requests[0]["messages"]
    assert "<review>My skin feels soft, lovely gentle scent.</review>" in msgs[1]["content"]
    built = []
    lazy = BackendExtractor(lambda: built.append(1) or b)
    assert built == []  # nothing is built before the first call
    lazy("soft skin")
    lazy("gentle scent again")
    assert built == [1]
    bad = BackendExtractor(FakeBackend({"why": "", "pos": [], "neg": [], "attr": []}))
    with pytest.raises(ExtractionError):
        bad("whatever")


def test_cli_recommend_json_and_errors(lmmrec_run, recommender, capsys):
    from lmmrec.cli.main import main

    u = users_with_profiles(recommender)[0]
    uid = recommender.user_ids[u]
    main(["recommend", "--run", str(lmmrec_run), "--user", uid, "-k", "7", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 7
    for r in out:
        assert {"item", "score", "reason", "matches"} <= set(r)
        assert r["item"] in recommender.ds.item_index  # the dataset's raw ids
        for m in r["matches"]:
            assert set(m) == {"user_phrase", "item_phrase", "similarity"}
    assert [r["item"] for r in out] == [r.item for r in recommender.recommend(uid, 7)]
    main(["recommend", "--run", str(lmmrec_run), "--user", uid, "-k", "3"])
    text = capsys.readouterr().out
    assert out[0]["item"] in text and out[0]["reason"][:20] in text
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--run", str(lmmrec_run), "--user", "no-such-user"])
    assert e.value.code == 2
    assert "unknown user id 'no-such-user'" in capsys.readouterr().err


def test_cli_cold_start_by_text_file(lmmrec_run, recommender, tmp_path, monkeypatch, capsys):
    import lmmrec.explain.coldstart as coldstart
    from lmmrec.cli.main import main

    seen: list[str] = []
    fake = vocab_extractor(recommender, seen)
    configs = []

    class Fake:
        def __call__(self, text):
            return fake(text)

        def close(self):
            pass

    monkeypatch.setattr(coldstart, "configured_extractor",
                        lambda cfg=None: configs.append(cfg) or Fake())
    f = tmp_path / "reviews.txt"
    f.write_text("Lovely scent,\nlasts all day.\n\nCheap and works.\n", encoding="utf-8")
    main(["recommend", "--run", str(lmmrec_run), "--text-file", str(f), "-k", "4", "--json",
          "--backend", "openai", "--set", "openai.base_url=http://127.0.0.1:9/v1"])
    out = json.loads(capsys.readouterr().out)
    assert seen == ["Lovely scent, lasts all day.", "Cheap and works."]
    assert configs[0].kind == "openai"
    assert configs[0].openai.base_url == "http://127.0.0.1:9/v1"
    assert len(out) == 4
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--run", str(lmmrec_run), "--user", "x", "--text", "y"])
    assert e.value.code == 2


def test_every_phrase_of_a_reason_is_grounded_in_its_own_reviews(recommender) -> None:
    """The shown phrases come from the user's (or item's) own training reviews or listing and
    pass the grounding rule, although the released v1 artifact holds phrases that do not
    (its example leak "formal cut" among them)."""
    from lmmrec.llm.grounding import is_grounded, is_verdict
    from lmmrec.text.artifact import load_reviews
    from lmmrec.text.profiles import amass, own_texts

    ds, p = recommender.ds, recommender.profiles
    assert p.stats["ungrounded_phrases_dropped"] > 0  # the artifact has some to drop
    raw = amass(ds, recommender.cfg.motivations)
    assert raw.stats.get("ungrounded_phrases_dropped") is None
    by_user, by_item, listing = own_texts(ds)
    art = load_reviews(recommender.cfg.motivations)
    shown = 0
    for user_id in recommender.user_ids:
        u = recommender.user_index(user_id)
        for rec in recommender.recommend(user_id, k=10):
            i = recommender.item_index(rec.item)
            for m in rec.matches:
                shown += 2
                assert any(is_grounded(m.user_phrase, t) for t in by_user.get(u, [])), (
                    user_id, m.user_phrase)
                sources = [*by_item.get(i, []), listing[i]]
                assert any(is_grounded(m.item_phrase, t) for t in sources), (
                    rec.item, m.item_phrase)
    assert shown >= 8
    assert p.stats["verdict_phrases_dropped"] > 0  # "works well" and kin: no reason
    assert not any(is_verdict(ph) for ph in p.phrases
                   if p.item[:, p.phrases.index(ph)].nnz or p.user_pos[:, p.phrases.index(ph)].nnz)
    assert "formal cut" in {p for lst in art["attr"] for p in lst}  # the leak exists ...
    assert not any(ph == "formal cut" for ph in p.phrases
                   if p.item[:, p.phrases.index(ph)].nnz)  # ... and never reaches a reason
