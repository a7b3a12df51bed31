"""Acceptance 3-5 through the `lmmrec extract` CLI against the fake server: SIGKILL and
resume, shard + merge, dry-run and stats."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from lmmrec.data.dataset import PreparedDataset
from lmmrec.llm import job
from lmmrec.llm.backends import OpenAIBackend, OpenAIConfig
from lmmrec.llm.prompts import PROMPT_VERSION
from lmmrec.llm.store import Record, Store, merge_stores

from .conftest import TWIN_USERS, cli_env, lmmrec_cmd, run_cli
from .fake_openai import FakeOpenAI, valid_answer

MODEL_ID = "openai:" + OpenAIConfig().model


def _reference_store(inputs, path: Path, url: str) -> Path:
    """An uninterrupted, unsharded run, in-process."""
    backend = OpenAIBackend(OpenAIConfig(base_url=url, concurrency=8, timeout_s=10))
    with Store(path, backend.model_id, PROMPT_VERSION) as st:
        summary = job.run(backend, st, job.plan(inputs, st))
        assert summary.failed == 0
    backend.close()
    return path


def _rows(path: Path) -> list[tuple[str, str, str, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT input_hash, status, user_id, item_id FROM results").fetchall()
    finally:
        db.close()


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        return len(_rows(path))
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _parsed(path: Path) -> dict[str, dict]:
    with Store(path) as st:
        return {r.input_hash: r.parsed for r in st.records()}


def _fingerprint(path: Path) -> str:
    with Store(path) as st:
        return job.store_fingerprint(st)


def test_small_dataset_has_twin_reviews(small_inputs) -> None:
    """Sanity of the fixture: identical reviews by two raw users share one request."""
    twins = [i for i in small_inputs if i.user_id in TWIN_USERS]
    assert len(twins) == 8
    assert len({i.input_hash() for i in twins}) == 4
    assert 30 <= len(small_inputs) <= 60


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_mid_run_then_resume(small_dir: Path, small_inputs, tmp_path: Path) -> None:
    hashes = {i.input_hash() for i in small_inputs}
    store = tmp_path / "killed.sqlite"
    with FakeOpenAI(delay_s=0.2) as fake:
        args = ["extract", "--backend", "openai", "--set", f"openai.base_url={fake.base_url}",
                "--set", "openai.concurrency=2", "--data", small_dir, "--store", store]
        proc = subprocess.Popen(lmmrec_cmd(*args), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=cli_env())
        try:
            deadline = time.monotonic() + 60
            while _count(store) < 8 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        before = _rows(store)
        assert 8 <= len(before) < len(hashes), "kill should land mid-run"
        assert all(s == "ok" for _, s, _, _ in before)
        # a request the killed process sent may still be landing in the server: wait for quiet
        requests_before, quiet_since = fake.n_requests, time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            time.sleep(0.05)
            if fake.n_requests != requests_before:
                requests_before, quiet_since = fake.n_requests, time.monotonic()

        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        # the rerun sent only what was missing (plus nothing for what was committed)
        assert summary["run"]["ok"] == len(hashes) - len(before)
        assert fake.n_requests - requests_before == len(hashes) - len(before)

        rows = _rows(store)
        keys = [h for h, _, _, _ in rows]
        assert len(keys) == len(set(keys)) == len(hashes)  # no duplicates
        assert set(keys) == hashes  # none missing
        assert all(s == "ok" for _, s, _, _ in rows)
        ref = _reference_store(small_inputs, tmp_path / "ref.sqlite", fake.base_url)
    assert _parsed(store) == _parsed(ref)
    assert _fingerprint(store) == _fingerprint(ref)
    # and every answer is the server's deterministic function of the request
    by_hash = {i.input_hash(): i for i in small_inputs}
    for h, parsed in _parsed(store).items():
        expected = valid_answer({"messages": by_hash[h].messages()})
        assert parsed["pos"] == expected["pos"] and parsed["attr"] == expected["attr"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_shards_merge_to_the_unsharded_store(small_dir: Path, small_inputs, tmp_path: Path,
                                             cli) -> None:
    hashes = {i.input_hash() for i in small_inputs}
    a, b, m = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "merged.sqlite"
    with FakeOpenAI() as fake:
        base = ["extract", "--backend", "openai", "--set", f"openai.base_url={fake.base_url}",
                "--data", small_dir]
        for shard, path in (("0/2", a), ("1/2", b)):
            r = cli(*base, "--store", path, "--shard", shard)
            assert r.code == 0, r.err
        ref = _reference_store(small_inputs, tmp_path / "ref.sqlite", fake.base_url)
        assert fake.n_requests == 2 * len(hashes)  # each shard did its share, once
    ka, kb = {h for h, *_ in _rows(a)}, {h for h, *_ in _rows(b)}
    assert ka and kb and not ka & kb and ka | kb == hashes
    assert ka == {h for h in hashes if job.in_shard(h, (0, 2))}

    r = cli("extract", "merge", a, b, "--out", m)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"changed": len(hashes), "done": len(hashes), "failed": 0}
    assert _fingerprint(m) == _fingerprint(ref)
    assert _parsed(m) == _parsed(ref)
    with Store(m) as st:
        assert st.meta() == {"model_id": MODEL_ID, "prompt_version": PROMPT_VERSION}

    # merging again changes nothing
    r = cli("extract", "merge", a, b, "--out", m)
    assert r.code == 0, r.err
    assert json.loads(r.out)["changed"] == 0
    assert _fingerprint(m) == _fingerprint(ref)

    # a store of another prompt version is refused, and the target is left as it was
    other = tmp_path / "other.sqlite"
    some = next(iter(Store(a).records()))
    with Store(other, MODEL_ID, "other_version") as st:
        st.put(Record(MODEL_ID, "other_version", "f" * 64, some.user_id, some.item_id, "ok",
                      raw="{}", parsed={"why": "", "pos": ["x y"], "neg": [], "attr": []}))
    r = cli("extract", "merge", a, other, "--out", m)
    assert r.code == 2 and "prompt" in r.err and "cannot merge" in r.err, r.err
    with pytest.raises(Exception, match="cannot merge"):
        merge_stores(tmp_path / "fresh.sqlite", [a, other])
    assert not (tmp_path / "fresh.sqlite").exists()
    # nor can a store of another version be merged into this target
    r = cli("extract", "merge", other, "--out", m)
    assert r.code == 2 and "other_version" in r.err, r.err
    assert _fingerprint(m) == _fingerprint(ref)
    r = cli("extract", "merge", tmp_path / "missing.sqlite", "--out", m)
    assert r.code == 2 and "not found" in r.err


@pytest.mark.slow
def test_dry_run_and_stats(small_dir: Path, small_inputs, tmp_path: Path, cli) -> None:
    n = len({i.input_hash() for i in small_inputs})
    store = tmp_path / "s.sqlite"
    with FakeOpenAI() as fake:
        base = ["extract", "--backend", "openai", "--set", f"openai.base_url={fake.base_url}",
                "--data", small_dir, "--store", store]
        r = cli(*base, "--dry-run", "--price-prompt", "0.5", "--price-output", "2")
        assert r.code == 0, r.err
        est = json.loads(r.out)
        assert est["calls"] == n and est["total_reviews"] == len(small_inputs)
        assert est["prompt_tokens"] > n * 100 and est["output_tokens"] > 0
        assert est["cost"] == pytest.approx(
            (est["prompt_tokens"] * 0.5 + est["output_tokens"] * 2) / 1000, abs=1e-3)
        assert not store.exists() and fake.n_requests == 0  # nothing created, nothing sent

        r = cli(*base, "--limit", "10")
        assert r.code == 0, r.err
        assert fake.n_requests == 10
        r = cli(*base, "--dry-run")
        est = json.loads(r.out)
        assert (est["calls"], est["already_done"]) == (n - 10, 10)  # distinct requests
        assert fake.n_requests == 10 and len(_rows(store)) == 10

    r = cli("extract", "stats", "--store", store, "--json", "--data", small_dir)
    assert r.code == 0, r.err
    stats = json.loads(r.out)
    for key in ("done", "failed", "pending", "prompt_tokens", "output_tokens"):
        assert key in stats, key
    assert (stats["done"], stats["failed"], stats["pending"]) == (10, 0, n - 10)
    # training reviews of this split: extraction goes training first, so the 10 are training
    ds = PreparedDataset.load(small_dir)
    tr = ds.interactions[ds.interactions["split"] == "train"]
    train_keys = set(zip(ds.users["raw_id"].astype(str).to_numpy()[tr["user"].to_numpy()],
                         ds.items["raw_id"].astype(str).to_numpy()[tr["item"].to_numpy()],
                         strict=True))
    n_train = len({i.input_hash() for i in small_inputs if (i.user_id, i.item_id) in train_keys})
    assert 10 < n_train < n
    assert stats["train"] == {"total": n_train, "done": 10, "failed": 0, "pending": n_train - 10}
    with Store(store) as st:
        c = st.counts()
    assert (stats["prompt_tokens"], stats["output_tokens"]) == (c["prompt_tokens"],
                                                                c["output_tokens"])
    assert stats["prompt_tokens"] > 0 and stats["output_tokens"] > 0
    r = cli("extract", "stats", "--store", store, "--json")
    assert json.loads(r.out)["pending"] is None
    r = cli("extract", "stats", "--store", tmp_path / "nope.sqlite")
    assert r.code == 2 and "not found" in r.err and not (tmp_path / "nope.sqlite").exists()
    r = cli("extract", "--data", small_dir)
    assert r.code == 2 and "--store" in r.err



def test_identical_reviews_are_requested_once(small_inputs, tmp_path: Path) -> None:
    """Twin reviews (same text, same item, two raw users) make one request, not two."""
    n = len({i.input_hash() for i in small_inputs})
    assert n < len(small_inputs)
    with FakeOpenAI() as fake:
        backend = OpenAIBackend(OpenAIConfig(base_url=fake.base_url, concurrency=4))
        with Store(tmp_path / "s.sqlite", backend.model_id, PROMPT_VERSION) as st:
            p = job.plan(small_inputs, st)
            assert len(p.todo) == len(set(p.hashes)) == n and p.n_total == len(small_inputs)
            summary = job.run(backend, st, p)
            assert summary.ok == n and fake.n_requests == n
            assert st.counts()["done"] == n
            assert job.plan(small_inputs, st).todo == []
        backend.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_workers_fill_one_store_like_an_unsharded_run(small_dir: Path, small_inputs,
                                                      tmp_path: Path) -> None:
    """`--workers 2`: two shard processes write one store; it equals the unsharded store."""
    store = tmp_path / "workers.sqlite"
    with FakeOpenAI() as fake:
        ref = _reference_store(small_inputs, tmp_path / "ref.sqlite", fake.base_url)
        res = run_cli("extract", "--backend", "openai", "--set",
                      f"openai.base_url={fake.base_url}", "--data", small_dir, "--store", store,
                      "--workers", "2")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    hashes = {i.input_hash() for i in small_inputs}
    assert summary["store"]["done"] == len(hashes) == summary["reviews"]
    rows = _rows(store)
    assert len(rows) == len({r[0] for r in rows}) == len(hashes)
    assert _fingerprint(store) == _fingerprint(ref)
    for i in range(2):
        assert (tmp_path / f"workers.sqlite.worker{i}.log").exists()


def test_workers_refuse_shard(small_dir: Path, tmp_path: Path, cli) -> None:
    r = cli("extract", "--data", small_dir, "--store", tmp_path / "s.sqlite", "--workers", "2",
            "--shard", "0/2")
    assert r.code == 2 and "--workers" in r.err
