"""The HTTP service: every route and every error case, through FastAPI's TestClient."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lmmrec.cli.main import main
from lmmrec.serve.app import MAX_K, ServeSettings, create_app

MAX_BODY = 2048
KEY = "s3cret-key"


def fake_extract(text: str) -> list[str]:
    """Stands in for the LLM: fixed phrases of the artifact's vocabulary per review."""
    if "nothing" in text:
        return []
    return ["smooth skin", "decent results"] if "skin" in text else ["good quality"]


# cold start on, and a rate no test here reaches (the limits have tests of their own)
OPEN = {"cold_start": True, "cold_start_per_minute": 6000, "cold_start_burst": 100}


@pytest.fixture(scope="module")
def client(recommender):
    app = create_app(recommender, ServeSettings(max_body_bytes=MAX_BODY, **OPEN),
                     extract=fake_extract)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def keyed(recommender):
    app = create_app(recommender, ServeSettings(api_key=KEY, **OPEN), extract=fake_extract)
    with TestClient(app) as c:
        yield c


def profiled_users(rec) -> list[str]:
    return [rec.user_ids[int(u)] for u in np.flatnonzero(rec.profiles.user_pos.getnnz(axis=1))]


def test_health(client, recommender):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["users"] == recommender.ds.n_users and body["items"] == recommender.ds.n_items
    assert body["motivations"] is True and body["precomputed_k"] == MAX_K
    assert set(body["cache"]) == {"entries", "bytes", "max_bytes", "hits", "misses"}


def test_health_counts_cache_hits_and_misses(recommender):
    app = create_app(recommender)
    uid = recommender.user_ids[0]
    with TestClient(app) as c:
        for _ in range(3):
            assert c.get(f"/users/{uid}/recommendations?k=7").status_code == 200
        c.get(f"/users/{uid}/recommendations?k=8")
        cache = c.get("/health").json()["cache"]
    assert (cache["hits"], cache["misses"], cache["entries"]) == (2, 2, 2)
    assert 0 < cache["bytes"] <= cache["max_bytes"] == ServeSettings().cache_bytes


def test_docs_and_openapi(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/health", "/users/{user_id}/recommendations", "/recommendations",
            "/items/{item_id}"} <= set(spec["paths"])
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])


def test_user_recommendations(client, recommender):
    rec = recommender
    for uid in profiled_users(rec)[:5] + [rec.user_ids[0]]:
        r = client.get(f"/users/{uid}/recommendations", params={"k": 20})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["user"] == uid and body["k"] == 20 and len(body["items"]) == 20
        u = rec.user_index(uid)
        seen = set(rec.seen(u).tolist())
        expected = [x.as_dict() for x in rec.recommend(uid, 20)]
        assert body["items"] == expected
        for it in body["items"]:
            assert rec.item_index(it["item"]) not in seen
            assert set(it) >= {"item", "score", "reason", "matches"}
        # served again from the rendered cache: identical
        assert client.get(f"/users/{uid}/recommendations?k=20").json() == body
    default = client.get(f"/users/{rec.user_ids[0]}/recommendations").json()
    assert len(default["items"]) == 10
    assert len(client.get(f"/users/{rec.user_ids[0]}/recommendations?k=100").json()["items"]) \
        == 100


def test_served_phrases_are_grounded(client, recommender):
    rec = recommender
    p = rec.profiles
    n = 0
    for uid in profiled_users(rec):
        u = rec.user_index(uid)
        user_ph = {p.phrases[j] for j in p.user_pos.getrow(u).indices}
        for it in client.get(f"/users/{uid}/recommendations?k=50").json()["items"]:
            item_ph = {p.phrases[j] for j in p.item.getrow(rec.item_index(it["item"])).indices}
            for m in it["matches"]:
                assert m["user_phrase"] in user_ph and m["item_phrase"] in item_ph
                n += 1
    assert n > 0


@pytest.mark.parametrize("k", ["0", "-1", str(MAX_K + 1), "1000", "abc", "2.5"])
def test_k_out_of_bounds_is_422(client, recommender, k):
    r = client.get(f"/users/{recommender.user_ids[0]}/recommendations", params={"k": k})
    assert r.status_code == 422


def test_unknown_ids_are_404(client):
    for path in ("/users/no-such-user/recommendations", "/users/no-such-user",
                 "/items/no-such-item"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "unknown" in r.json()["detail"]


def test_item_and_user_profiles(client, recommender):
    rec = recommender
    p = rec.profiles
    i = int(np.flatnonzero(p.item.getnnz(axis=1))[0])
    body = client.get(f"/items/{rec.item_ids[i]}").json()
    assert body["item"] == rec.item_ids[i] and body["title"] == rec.item_titles[i]
    assert body["motivations"] and body["summary"].startswith("Valued for")
    row = {p.phrases[j] for j in p.item.getrow(i).indices}
    assert {m["phrase"] for m in body["motivations"]} <= row
    assert body["n_train_interactions"] == int((rec.train.indices == i).sum())
    uid = profiled_users(rec)[0]
    ub = client.get(f"/users/{uid}").json()
    assert ub["user"] == uid and ub["motivations"]


def test_cold_start_by_text(client, recommender):
    r = client.post("/recommendations", json={"text": "keeps my skin soft", "k": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["motivations"] == ["smooth skin", "decent results"]
    assert body["k"] == 30 and len(body["items"]) == 30
    p = recommender.profiles
    for it in body["items"]:
        row = {p.phrases[j] for j in p.item.getrow(recommender.item_index(it["item"])).indices}
        for m in it["matches"]:
            assert m["user_phrase"] in body["motivations"] and m["item_phrase"] in row
    r2 = client.post("/recommendations", json={"texts": ["soft skin", "fine"], "k": 5})
    assert r2.status_code == 200
    assert r2.json()["motivations"] == ["smooth skin", "decent results", "good quality"]


@pytest.mark.parametrize("payload", [
    {}, {"text": ""}, {"texts": []}, {"text": "ok", "k": 0}, {"text": "ok", "k": MAX_K + 1},
    {"text": "ok", "extra": 1}, {"texts": "not a list"}, [1, 2],
])
def test_cold_start_invalid_body_is_422(client, payload):
    assert client.post("/recommendations", json=payload).status_code == 422


def test_malformed_json_is_422(client):
    for raw in (b"{not json", b'{"text": "a",}', b"\xff\xfe"):
        r = client.post("/recommendations", content=raw,
                        headers={"content-type": "application/json"})
        assert r.status_code == 422, raw


def test_nothing_extracted_is_422(client):
    r = client.post("/recommendations", json={"text": "nothing to see"})
    assert r.status_code == 422
    assert "no motivation" in r.json()["detail"]


def test_oversized_body_is_413(client):
    big = {"text": "soft skin " * 400}  # > MAX_BODY bytes
    r = client.post("/recommendations", json=big)
    assert r.status_code == 413
    assert "larger than" in r.json()["detail"]

    def chunks():  # streamed without Content-Length: counted as it arrives
        for _ in range(10):
            yield b'{"text": "' + b"a" * 500

    r = client.post("/recommendations", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    # just under the limit still goes through
    ok = client.post("/recommendations", json={"text": "skin " * 300})
    assert ok.status_code == 200


def test_api_key(keyed, recommender):
    uid = recommender.user_ids[0]
    item = recommender.item_ids[0]
    for method, path, kw in (("get", f"/users/{uid}/recommendations", {}),
                             ("get", f"/items/{item}", {}),
                             ("get", f"/users/{uid}", {}),
                             ("post", "/recommendations", {"json": {"text": "soft skin"}})):
        call = getattr(keyed, method)
        assert call(path, **kw).status_code == 401, path
        assert call(path, headers={"X-API-Key": "wrong"}, **kw).status_code == 401, path
        assert call(path, headers={"X-API-Key": KEY + "x"}, **kw).status_code == 401, path
        assert call(path, headers={"X-API-Key": KEY}, **kw).status_code == 200, path
    # an unknown id with a wrong key is still 401: nothing leaks before authentication
    assert keyed.get("/items/no-such-item").status_code == 401
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/docs").status_code == 200


def test_no_key_configured_means_open(client, recommender):
    r = client.get(f"/items/{recommender.item_ids[0]}", headers={"X-API-Key": "anything"})
    assert r.status_code == 200


def test_serve_command_builds_the_app_once_with_the_key(lmmrec_run, recommender,
                                                         monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setenv("MY_KEY", "from-env")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    # the loaded run is frozen out of the cyclic collector before serving (not here: a
    # test process must stay collectable)
    monkeypatch.setattr(gc, "freeze", lambda: started.setdefault("frozen_before_run",
                                                                 "app" not in started))
    main(["serve", "--run", str(lmmrec_run), "--port", "8123", "--api-key-env", "MY_KEY"])
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    assert started["frozen_before_run"] is True
    with TestClient(started["app"]) as c:
        uid = recommender.user_ids[0]
        assert c.get(f"/users/{uid}/recommendations").status_code == 401
        r = c.get(f"/users/{uid}/recommendations", headers={"X-API-Key": "from-env"})
        assert r.status_code == 200
        assert r.json()["items"] == [x.as_dict() for x in recommender.recommend(uid, 10)]


def test_run_without_motivations_serves_cf_reasons_and_no_text(base_recommender):
    calls = []
    rec = base_recommender
    with TestClient(create_app(rec, ServeSettings(**OPEN),
                               extract=lambda t: calls.append(t) or ["soft skin"])) as c:
        uid = rec.user_ids[0]
        body = c.get(f"/users/{uid}/recommendations?k=5").json()
        assert len(body["items"]) == 5
        assert all(it["matches"] == [] and "tastes like yours" in it["reason"]
                   for it in body["items"])
        assert c.get(f"/items/{rec.item_ids[0]}").json()["motivations"] == []
        assert c.get("/health").json()["motivations"] is False
        assert c.post("/recommendations", json={"text": "soft"}).status_code == 501
    assert calls == []  # the LLM is never asked when the run cannot use its answer
