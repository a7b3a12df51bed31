"""Profiles come from training interactions only; artifacts round-trip; bad artifacts fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lmmrec.align.build import wrap
from lmmrec.align.registry import ALIGNERS
from lmmrec.backbones import backbone_config, build_backbone
from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import DataError
from lmmrec.text.artifact import FORMAT, import_artifact, write_manifest
from lmmrec.text.profiles import amass


def marked_artifact(ds: PreparedDataset, out: Path) -> Path:
    """An artifact whose every review (all splits) carries phrases naming its split."""
    inter = ds.interactions
    users = ds.users["raw_id"].astype(str).to_numpy()[inter["user"].to_numpy()]
    items = ds.items["raw_id"].astype(str).to_numpy()[inter["item"].to_numpy()]
    rows, phrases = [], []
    for k, (u, i, split) in enumerate(zip(users, items, inter["split"], strict=True)):
        ph = [f"{split} marker {k}", f"{split} attribute {k}"]
        phrases += ph
        rows.append({"input_hash": f"h{k}", "user_id": u, "item_id": i, "status": "ok",
                     "why": "", "pos": [ph[0]], "neg": [], "attr": [ph[1]],
                     "prompt_tokens": 0, "output_tokens": 0, "cached_tokens": 0,
                     "latency_s": 0.0, "attempts": 1, "error": ""})
    out.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(out / "reviews.parquet", index=False)
    texts = sorted(set(phrases))
    pd.DataFrame({"text": texts}).to_parquet(out / "phrases.parquet", index=False)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(texts), 8)).astype(np.float32)
    np.save(out / "embeddings.npy", (emb / np.linalg.norm(emb, axis=1, keepdims=True))
            .astype(np.float16))
    write_manifest(out, {"format": FORMAT, "dataset": ds.name, "model_id": "test:marker",
                         "prompt_version": "test", "counts": {}})
    return out


def test_profiles_and_text_inputs_see_training_reviews_only(beauty_dir: Path,
                                                            tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    p = amass(ds, art)
    used = set()
    for m in (p.user_pos, p.user_neg, p.item, p.review_user_w, p.review_item_w):
        used.update(p.phrases[j] for j in np.unique(m.indices))
    assert used, "profiles should not be empty"
    assert all(ph.startswith("train ") for ph in used), sorted(
        ph for ph in used if not ph.startswith("train "))[:5]
    n_train = int((ds.interactions["split"] == "train").sum())
    assert p.stats["train_reviews_used"] == n_train
    assert p.stats["reviews_excluded_not_train"] == len(ds.interactions) - n_train
    # What training consumes: the aligner's inputs are built from these profiles only.
    backbone = build_backbone("lightgcn", ds.n_users, ds.n_items, ds.train,
                              backbone_config("lightgcn", {"dim": 8}))
    model = wrap(backbone, "lmmrec", ALIGNERS.config("lmmrec", {}), ds, art)
    inp = model.aligner.inputs
    cols = set(inp.user_rows.col.tolist()) | set(inp.item_rows.col.tolist())
    assert all(p.phrases[c].startswith("train ") for c in cols)
    assert inp.review_user_vec.shape[0] == n_train


def test_artifact_for_another_dataset_fails(beauty_dir: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    m = json.loads((art / "manifest.json").read_text())
    m["dataset"] = "steam-au"
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="steam-au"):
        amass(ds, art)


def test_artifact_with_foreign_ids_fails(beauty_dir: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    df = pd.read_parquet(art / "reviews.parquet")
    df["user_id"] = "X" + df["user_id"]
    df.to_parquet(art / "reviews.parquet", index=False)
    with pytest.raises(DataError, match="ids do not match"):
        amass(ds, art)


def test_artifact_without_embeddings_fails(beauty_dir: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    (art / "embeddings.npy").unlink()
    with pytest.raises(DataError, match="lmmrec embed"):
        amass(ds, art)


def test_embedding_dimension_mismatch_fails(beauty_dir: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    texts = pd.read_parquet(art / "phrases.parquet")
    np.save(art / "embeddings.npy", np.zeros((len(texts) + 3, 8), dtype=np.float16))
    with pytest.raises(DataError, match="rows"):
        amass(ds, art)


def test_real_fixture_import_export_round_trip(beauty_dir: Path, beauty_motivations: Path,
                                               tmp_path: Path) -> None:
    from lmmrec.text.artifact import export_artifact, load_reviews

    store = tmp_path / "store.sqlite"
    n = import_artifact(beauty_motivations, store)
    assert n > 0
    out = tmp_path / "again"
    manifest = export_artifact(store, out, beauty_dir, overwrite=True)
    from lmmrec.llm.store import Store

    with Store(store) as st:  # one count per request, however many reviews share it
        c = st.counts()
    assert manifest["tokens"]["prompt"] == c["prompt_tokens"] > 0
    assert manifest["tokens"]["output"] == c["output_tokens"]
    assert manifest["request_seconds_sum"] == pytest.approx(c["latency_s"], abs=0.1)
    a = load_reviews(beauty_motivations).sort_values(["user_id", "item_id"])
    b = load_reviews(out).sort_values(["user_id", "item_id"])
    assert a["input_hash"].tolist() == b["input_hash"].tolist()
    assert [list(x) for x in a["pos"]] == [list(x) for x in b["pos"]]
    # the copy beside it is untouched by the export
    shutil.rmtree(out)


def test_partial_artifact_is_reported_and_recorded(beauty_dir: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    n_train = int((ds.interactions["split"] == "train").sum())
    assert amass(ds, art).stats["train_coverage"] == 1.0
    df = pd.read_parquet(art / "reviews.parquet")
    train_rows = df.index[df["pos"].map(lambda x: x[0].startswith("train "))]
    df.drop(train_rows[: n_train // 2]).to_parquet(art / "reviews.parquet", index=False)
    p = amass(ds, art)
    assert p.stats["train_interactions"] == n_train
    assert p.stats["train_reviews_used"] == n_train - n_train // 2
    assert p.stats["train_coverage"] == round((n_train - n_train // 2) / n_train, 4)
    backbone = build_backbone("lightgcn", ds.n_users, ds.n_items, ds.train,
                              backbone_config("lightgcn", {"dim": 8}))
    with pytest.warns(UserWarning, match=f"cover {n_train - n_train // 2} of {n_train}"):
        model = wrap(backbone, "lmmrec", ALIGNERS.config("lmmrec", {}), ds, art)
    assert model.text_stats == p.stats  # what the trainer writes to metrics.json


def test_phrase_without_embedding_fails_instead_of_vanishing(beauty_dir: Path,
                                                             tmp_path: Path) -> None:
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    texts = pd.read_parquet(art / "phrases.parquet")["text"].tolist()
    emb = np.load(art / "embeddings.npy")
    gone = next(t for t in texts if t.startswith("train "))
    keep = [k for k, t in enumerate(texts) if t != gone]
    pd.DataFrame({"text": [texts[k] for k in keep]}).to_parquet(art / "phrases.parquet",
                                                                 index=False)
    np.save(art / "embeddings.npy", emb[keep])
    with pytest.raises(DataError, match="re-run `lmmrec embed"):
        amass(ds, art)


def test_export_keeps_embeddings_only_when_they_cover_every_phrase(
        beauty_dir: Path, beauty_motivations: Path, tmp_path: Path) -> None:
    from lmmrec.text.artifact import export_artifact, read_manifest

    store = tmp_path / "store.sqlite"
    import_artifact(beauty_motivations, store)
    out = tmp_path / "release"
    shutil.copytree(beauty_motivations, out)
    export_artifact(store, out, beauty_dir, overwrite=True)  # same reviews: the embeddings still fit
    assert "embedding" in read_manifest(out) and (out / "embeddings.npy").exists()
    amass(PreparedDataset.load(beauty_dir), out)

    texts = pd.read_parquet(out / "phrases.parquet")["text"].tolist()
    pd.DataFrame({"text": texts[1:]}).to_parquet(out / "phrases.parquet", index=False)
    np.save(out / "embeddings.npy", np.load(out / "embeddings.npy")[1:])
    export_artifact(store, out, beauty_dir, overwrite=True)  # stale embeddings: dropped, not carried over
    assert "embedding" not in read_manifest(out)
    assert not (out / "embeddings.npy").exists()
    with pytest.raises(DataError, match="lmmrec embed"):
        amass(PreparedDataset.load(beauty_dir), out)


def test_artifact_whose_ids_exist_but_pairs_do_not_fails(beauty_dir: Path, tmp_path: Path) -> None:
    """Ids of this dataset, paired wrongly (as numeric ids of another dataset would be)."""
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    df = pd.read_parquet(art / "reviews.parquet")
    df["item_id"] = np.roll(df["item_id"].to_numpy(), 7)
    df.to_parquet(art / "reviews.parquet", index=False)
    with pytest.raises(DataError, match="ids do not match"):
        amass(ds, art)


def test_export_parses_raw_answers_with_todays_rules(beauty_dir: Path, tmp_path: Path) -> None:
    """A phrase an older, stricter rule dropped from the stored parse comes back from the raw
    answer; a store without raw text (imported) keeps its parse; a failure stays empty."""
    from lmmrec.llm.inputs import review_inputs
    PROMPT_VERSION = "review_v1"  # no grounding filter: the phrase rules alone
    from lmmrec.llm.store import Record, Store
    from lmmrec.text.artifact import export_artifact, load_reviews

    ds = PreparedDataset.load(beauty_dir)
    a, b, c = review_inputs(ds, PROMPT_VERSION)[:3]
    raw = json.dumps({"why": "wanted clear steps", "pos": ["clear instructions", "mild scent"],
                      "neg": [], "attr": ["travel size bottle"]})
    old_parse = {"why": "wanted clear steps", "pos": ["mild scent"], "neg": [],
                 "attr": ["travel size bottle"]}
    store = tmp_path / "s.sqlite"
    with Store(store, "m", PROMPT_VERSION) as st:
        st.put(Record("m", PROMPT_VERSION, a.input_hash(), a.user_id, a.item_id, "ok",
                      raw=raw, parsed=old_parse))
        st.put(Record("m", PROMPT_VERSION, b.input_hash(), b.user_id, b.item_id, "ok",
                      raw=None, parsed=old_parse))
        st.put(Record("m", PROMPT_VERSION, c.input_hash(), c.user_id, c.item_id, "failed",
                      raw=raw, error="invalid output: x"))
    export_artifact(store, tmp_path / "art", beauty_dir)
    df = load_reviews(tmp_path / "art").set_index("input_hash")
    assert list(df.loc[a.input_hash(), "pos"]) == ["clear instructions", "mild scent"]
    assert list(df.loc[b.input_hash(), "pos"]) == ["mild scent"]
    every = pd.read_parquet(tmp_path / "art" / "reviews.parquet").set_index("input_hash")
    assert every.loc[c.input_hash(), "status"] == "failed"
    assert list(every.loc[c.input_hash(), "pos"]) == []


def test_export_of_a_grounded_prompt_counts_what_it_dropped(beauty_dir: Path,
                                                            tmp_path: Path) -> None:
    """review_v2: the export keeps only phrases with a word of their review, and the
    manifest counts the ungrounded ones and those made of the prompt's own words."""
    from lmmrec.llm.inputs import review_inputs
    from lmmrec.llm.store import Record, Store
    from lmmrec.text.artifact import export_artifact, load_reviews

    ds = PreparedDataset.load(beauty_dir)
    from lmmrec.llm.grounding import is_grounded

    a = next(i for i in review_inputs(ds, "review_v2") if len(i.text.split()) > 20
             and not any(is_grounded(p, i.review_text())
                         for p in ("formal cut", "none", "customer review features")))
    word = next(w for w in a.text.lower().split() if w.isalpha() and len(w) > 5)
    raw = json.dumps({"why": "x", "pos": [f"nice {word}", "formal cut"],
                      "neg": ["none"], "attr": ["customer review features"]})
    store = tmp_path / "s.sqlite"
    with Store(store, "m", "review_v2") as st:
        st.put(Record("m", "review_v2", a.input_hash(), a.user_id, a.item_id, "ok", raw=raw,
                      parsed=json.loads(raw)))
    manifest = export_artifact(store, tmp_path / "art", beauty_dir)
    row = load_reviews(tmp_path / "art").set_index("input_hash").loc[a.input_hash()]
    assert list(row["pos"]) == [f"nice {word}"]
    assert list(row["neg"]) == [] and list(row["attr"]) == []
    # "formal cut" and "none": no word of the review; "customer review features": the
    # prompt's own words
    assert manifest["phrases_dropped"] == {"ungrounded": 2, "copied": 1, "moved": 0}
    assert manifest["prompt_version"] == "review_v2"


def test_export_counts_unanswered_requests_as_pending(beauty_dir: Path, tmp_path: Path) -> None:
    """A request the server never answered is not a failure of its review: the manifest
    counts it as pending, so an outage cannot make a release look complete."""
    from lmmrec.llm.inputs import review_inputs
    from lmmrec.llm.prompts import PROMPT_VERSION
    from lmmrec.llm.store import UNANSWERED, Record, Store
    from lmmrec.text.artifact import export_artifact

    ds = PreparedDataset.load(beauty_dir)
    inputs = review_inputs(ds)
    distinct = {i.input_hash(): i for i in inputs}
    a, b = list(distinct.values())[:2]
    n_a = sum(i.input_hash() == a.input_hash() for i in inputs)
    n_b = sum(i.input_hash() == b.input_hash() for i in inputs)
    store = tmp_path / "s.sqlite"
    with Store(store, "m", PROMPT_VERSION) as st:
        st.put(Record("m", PROMPT_VERSION, a.input_hash(), a.user_id, a.item_id, "failed",
                      error="invalid output: x"))
        st.put(Record("m", PROMPT_VERSION, b.input_hash(), b.user_id, b.item_id, "failed",
                      error=f"{UNANSWERED} after 3 tries: HTTP 503"))
        assert (st.counts()["failed"], st.counts()["unanswered"]) == (1, 1)
    counts = export_artifact(store, tmp_path / "art", beauty_dir)["counts"]
    assert (counts["extracted"], counts["failed"]) == (0, n_a)
    assert counts["pending"] == len(inputs) - n_a and n_b >= 1


def test_embedding_cache_is_per_model_and_per_server(tmp_path: Path, monkeypatch) -> None:
    from lmmrec.text.embed import LOCAL_MODEL, EmbedConfig, cache_file

    monkeypatch.setenv("LMMREC_CACHE_DIR", str(tmp_path))
    local = cache_file(EmbedConfig())
    assert local == tmp_path / "embeddings" / f"local-{LOCAL_MODEL}.sqlite"  # as before
    a = cache_file(EmbedConfig(kind="openai", model="m", base_url="http://a:8000/v1"))
    b = cache_file(EmbedConfig(kind="openai", model="m", base_url="http://b:8000/v1"))
    assert len({local, a, b}) == 3 and a.parent == b.parent == local.parent


def test_listing_texts_join_title_description_and_tags(beauty_dir: Path) -> None:
    """Column by column, as the row-wise join it replaces (missing values as "")."""
    from types import SimpleNamespace

    from lmmrec.text.profiles import _listing_texts

    items = pd.DataFrame({"title": ["A", None, "C ü", ""], "description": ["d1", "d2", None, ""],
                          "tags": ["t", "", "x y", None]})
    ds = SimpleNamespace(items=items)
    rowwise = items.fillna("").astype(str).agg(" ".join, axis=1).tolist()
    assert _listing_texts(ds, np.array([2, 0, 3, 1])) == [rowwise[i] for i in (2, 0, 3, 1)]
    assert _listing_texts(ds, np.array([], dtype=np.int64)) == []
    assert _listing_texts(SimpleNamespace(items=items[[]]), np.array([1])) == [""]
    real = PreparedDataset.load(beauty_dir)
    cols = [c for c in ("title", "description", "tags") if c in real.items]
    ref = real.items[cols].fillna("").astype(str).agg(" ".join, axis=1).tolist()
    assert _listing_texts(real, np.arange(real.n_items)) == ref


def test_grounded_lists_keep_each_lists_grounded_phrases() -> None:
    """Several parallel lists against one text each: what each list alone would keep."""
    from lmmrec.llm.grounding import is_grounded
    from lmmrec.text.profiles import _grounded_lists

    texts = ["Soft fabric, keeps warm", "Battery died fast", ""]
    pos = [["soft fabric", "loud"], ["battery life"], ["anything"]]
    attr = [["warmth", "cheap"], [], ["nothing"]]
    (kept_pos, kept_attr), dropped = _grounded_lists([pos, attr], texts)
    for lists, kept in ((pos, kept_pos), (attr, kept_attr)):
        assert kept == [[p for p in ph if is_grounded(p, t)] for ph, t in zip(lists, texts,
                                                                              strict=True)]
    assert kept_pos == [["soft fabric"], ["battery life"], []]
    assert dropped == sum(map(len, pos + attr)) - sum(map(len, kept_pos + kept_attr))


def test_verdicts_are_dropped_and_counted_when_asked(beauty_dir: Path, tmp_path: Path) -> None:
    """Verdict phrases ("works great") leave the profiles and the text side only when asked,
    and the count says how many."""
    from lmmrec.llm.grounding import is_verdict

    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    reviews = pd.read_parquet(art / "reviews.parquet")
    reviews["pos"] = [[*p, "works great"] for p in reviews["pos"]]
    reviews["attr"] = [[*a, "love it"] for a in reviews["attr"]]
    reviews.to_parquet(art / "reviews.parquet", index=False)
    texts = pd.read_parquet(art / "phrases.parquet")["text"].tolist() + ["works great",
                                                                        "love it"]
    pd.DataFrame({"text": texts}).to_parquet(art / "phrases.parquet", index=False)
    emb = np.load(art / "embeddings.npy")
    np.save(art / "embeddings.npy", np.concatenate([emb, emb[:2]]))

    def used(p) -> set[str]:
        cols = set()
        for m in (p.user_pos, p.item, p.review_user_w, p.review_item_w):
            cols.update(np.unique(m.indices).tolist())
        return {p.phrases[j] for j in cols}

    kept = amass(ds, art)
    assert {"works great", "love it"} <= used(kept)
    assert "verdict_phrases_dropped" not in kept.stats
    dropped = amass(ds, art, drop_verdicts=True)
    assert not any(is_verdict(ph) for ph in used(dropped))
    assert used(dropped) == used(kept) - {"works great", "love it"}
    assert dropped.stats["verdict_phrases_dropped"] == 2 * dropped.stats["train_reviews_used"]
    backbone = build_backbone("lightgcn", ds.n_users, ds.n_items, ds.train,
                              backbone_config("lightgcn", {"dim": 8}))
    model = wrap(backbone, "lmmrec", ALIGNERS.config("lmmrec", {"drop_verdicts": True}), ds,
                 art)
    cols = set(model.aligner.inputs.user_rows.col.tolist())
    assert cols and not any(is_verdict(dropped.phrases[c]) for c in cols)


def _tiny_profiles():
    """3 reviews by users 0, 0, 1 of items 0, 1, 1; "great" in every review, "true bypass"
    in review 0's user side, "strings" in review 2's item side."""
    import scipy.sparse as sp

    from lmmrec.text.profiles import Profiles, _row_normalise

    phrases = ["great", "true bypass", "strings"]
    ru = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0]], np.float32))
    ri = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 0, 1]], np.float32))
    users, items = np.array([0, 0, 1]), np.array([0, 1, 1])
    to_u = sp.csr_matrix((np.ones(3, np.float32), (users, np.arange(3))), shape=(2, 3))
    to_i = sp.csr_matrix((np.ones(3, np.float32), (items, np.arange(3))), shape=(2, 3))
    emb = np.eye(3, 4, dtype=np.float32)
    return Profiles(phrases, emb, _row_normalise(to_u @ ru), sp.csr_matrix((2, 3)),
                    _row_normalise(to_i @ ri), users, items, _row_normalise(ru),
                    _row_normalise(ri))


def test_idf_weights_favour_phrases_that_set_an_entity_apart() -> None:
    from lmmrec.text.profiles import idf_weighted

    p = _tiny_profiles()
    q = idf_weighted(p)
    idf_great, idf_rare = np.log1p(3 / 3), np.log1p(3 / 1)
    # user 0: "great" twice, "true bypass" once; counts 2:1, idf-weighted 2*0.69 : 1*1.39
    u0 = q.user_pos.toarray()[0]
    want = np.array([2 * idf_great, idf_rare, 0]) / (2 * idf_great + idf_rare)
    assert np.allclose(u0, want, atol=1e-6)
    assert np.allclose(p.user_pos.toarray()[0], [2 / 3, 1 / 3, 0])  # the input is untouched
    for m in (q.user_pos, q.item, q.review_user_w, q.review_item_w):
        s = np.asarray(m.sum(axis=1)).ravel()
        assert np.allclose(s[s > 0], 1.0)
    assert q.item.toarray()[1, 2] > p.item.toarray()[1, 2]  # "strings" gains on "great"
    assert q.stats["phrase_weight"] == "idf"


def test_each_reviews_phrases_join_into_one_text(beauty_dir: Path, beauty_motivations: Path
                                                 ) -> None:
    """align.text_input=phrase-reviews: one text a review, its user side's phrases first
    (heaviest first), then the item side's others; embedded as raw reviews are."""
    from lmmrec.text.embed import embed_texts
    from lmmrec.text.inputs import phrase_review_inputs, review_phrase_texts

    keep, texts = review_phrase_texts(_tiny_profiles())
    assert keep.tolist() == [True, True, True]
    assert texts == ["great, true bypass", "great", "great, strings"]
    ds = PreparedDataset.load(beauty_dir)
    cfg = ALIGNERS.config("lmmrec", {"text_input": "phrase-reviews"})
    inp = phrase_review_inputs(ds, beauty_motivations, cfg, "lmmrec")
    p = amass(ds, beauty_motivations)
    keep, texts = review_phrase_texts(p)
    joined = [t for t, k in zip(texts, keep, strict=True) if k]
    assert inp.phrases.shape[0] == len(joined) == inp.review_user_vec.shape[0]
    assert np.allclose(inp.phrases[:5].numpy(), embed_texts(joined[:5]), atol=1e-5)
    # review r is owned by its own user and item, each pooling its reviews uniformly
    order = np.argsort(inp.user_rows.col.numpy())
    assert inp.user_rows.row.numpy()[order].tolist() == p.review_user[keep].tolist()
    assert inp.stats["text_input"] == "phrase-reviews"


def test_shared_sides_pool_every_phrase_on_both_sides(beauty_dir: Path, tmp_path: Path) -> None:
    """align.profile_sides=shared: a user pools its reviews' attributes too, an item its
    reviews' motivations at full weight; each review is one phrase set on both sides."""
    ds = PreparedDataset.load(beauty_dir)
    art = marked_artifact(ds, tmp_path / "art")
    split, shared = amass(ds, art), amass(ds, art, shared_sides=True)

    def names(m, row: int) -> set[str]:
        r = m.getrow(row)
        return {shared.phrases[j] for j in r.indices}

    u = int(split.review_user[0])
    assert all(" marker " in ph for ph in names(split.user_pos, u))
    assert {" marker ", " attribute "} <= {ph[5:ph.rindex(" ") + 1] for ph in
                                            names(shared.user_pos, u)}
    assert (shared.review_user_w != shared.review_item_w).nnz == 0
    i = int(split.review_item[0])
    w = shared.item.getrow(i)
    assert np.allclose(sorted(w.data), sorted(w.data)[0])  # pos and attr weigh the same
    assert split.user_neg.nnz == shared.user_neg.nnz


def test_negative_motivations_pool_against_their_user() -> None:
    """align.text_input=phrases-neg: user 0 (pos "great" 2/3, "true bypass" 1/3) put off by
    "strings" pools to (pos - 0.5 neg) / 1.5; user 1, with no neg phrase, as before; a user
    with only neg phrases gets a text side; items are unchanged."""
    import dataclasses

    import scipy.sparse as sp

    from lmmrec.align.encoders import TextEncoder
    from lmmrec.text.inputs import build_inputs, signed_inputs

    p = _tiny_profiles()
    neg = sp.csr_matrix(np.array([[0, 0, 1], [0, 0, 0]], np.float32))
    base = build_inputs(p)
    signed = signed_inputs(base, neg, 0.5)
    enc = TextEncoder(4, 1)
    with torch.no_grad():
        before, after = enc.pool(base.user_rows, base.phrases), enc.pool(signed.user_rows,
                                                                          signed.phrases)
        items = enc.pool(signed.item_rows, signed.phrases)
    e = np.eye(3, 4, dtype=np.float32)
    want0 = (2 / 3 * e[0] + 1 / 3 * e[1] - 0.5 * e[2]) / 1.5
    assert np.allclose(after[0].numpy(), want0, atol=1e-6)
    assert np.allclose(after[1].numpy(), before[1].numpy())
    assert np.allclose(items.numpy(), enc.pool(base.item_rows, base.phrases).numpy())
    assert signed_inputs(base, neg, 0.0).user_rows is base.user_rows
    # a third user with a neg phrase only: text side = the negated phrase
    q = dataclasses.replace(p, user_pos=sp.vstack([p.user_pos, sp.csr_matrix((1, 3))]).tocsr())
    only_neg = sp.csr_matrix(np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]], np.float32))
    s3 = signed_inputs(build_inputs(q), only_neg, 0.5)
    assert s3.user_has_text.tolist() == [True, True, True]
    with torch.no_grad():
        assert np.allclose(enc.pool(s3.user_rows, s3.phrases)[2].numpy(), -e[1], atol=1e-6)


def test_lmmrec_trains_with_negative_motivations(beauty_dir: Path, beauty_motivations: Path,
                                                 tmp_path: Path) -> None:
    from lmmrec.text.inputs import phrase_neg_inputs

    ds = PreparedDataset.load(beauty_dir)
    cfg = ALIGNERS.config("lmmrec", {"text_input": "phrases-neg", "neg_weight": 1.0})
    inp = phrase_neg_inputs(ds, beauty_motivations, cfg, "lmmrec")
    p = amass(ds, beauty_motivations)
    assert inp.phrases.shape[0] == 2 * len(p.phrases)
    assert inp.stats["users_with_neg"] == int((np.diff(p.user_neg.indptr) > 0).sum()) > 0
    n_neg = int((inp.user_rows.col >= len(p.phrases)).sum())
    assert n_neg == p.user_neg.nnz
    assert np.allclose(inp.user_rows.val[inp.user_rows.col >= len(p.phrases)].numpy(),
                       p.user_neg.tocoo().data)  # weight 1.0
    # and a run trains on it, the side's stats in its metrics
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    run = resolve_config("lightgcn", [], ["train.max_epochs=1", "train.progress=false",
                                          "train.threads=1", "align.text_input=phrases-neg"],
                         base={"data": str(beauty_dir), "method": "lmmrec",
                               "motivations": str(beauty_motivations)})
    out = fit(run, tmp_path / "run")
    assert out["test"]["recall@20"] > 0
    assert out["text"]["text_input"] == "phrases-neg" and out["text"]["users_with_neg"] > 0
