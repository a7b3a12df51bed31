"""Extraction loses no work and wastes none: SIGTERM/SIGINT land the requests in flight; two
processes on one store take disjoint reviews (and a dead one's are taken over); a server
refusing every request stops the run without marking the dataset failed; bad numbers and
bad stores are one-line errors that touch nothing and call no LLM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from llm.fake_openai import FakeOpenAI, Reply

from lmmrec.llm.store import Store

from .extract_helpers import (
    cli_env,
    fill_store,
    lmmrec_cmd,
    make_tiny,
    one_line_error,
    openai_sets,
    popen,
)


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-faults")
    data = make_tiny(data_dir, root / "raw", root / "tiny", slice(0, 6))
    fill_store(data, root / "full.sqlite")
    return data, root / "full.sqlite"


def _distinct_reviews(data: Path) -> int:
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm.inputs import review_inputs

    return len({i.input_hash() for i in review_inputs(PreparedDataset.load(data))})


def _rows(store: Path) -> int:
    with Store(store) as st:
        c = st.counts()
    return c["done"] + c["failed"] + c["unanswered"]


def _extract(data: Path, store: Path, url: str, *extra: object) -> list[object]:
    return ["extract", "--data", data, "--store", store, "--backend", "openai",
            *openai_sets(url, 4), *extra]


# -- signals ----------------------------------------------------------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lands_the_requests_in_flight(tiny, tmp_path: Path, sig: int) -> None:
    data, _ = tiny
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(delay_s=3.0) as fake:  # every answer takes 3 s
        p = popen(*_extract(data, store, fake.base_url))
        deadline = time.monotonic() + 60
        while fake.n_requests < 4:  # four requests in flight, none answered yet
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert _rows(store) == 0
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        sent = fake.n_requests
    assert p.returncode == 128 + sig, err
    assert "stopped by a signal" in err and "Traceback" not in err
    # every request the server received was answered, and every answer is stored
    assert sent >= 4 and _rows(store) == sent
    assert sent < _distinct_reviews(data)  # nothing new was sent after the signal
    # a rerun does the rest and nothing twice
    with FakeOpenAI() as fake:
        r = subprocess.run(lmmrec_cmd(*_extract(data, store, fake.base_url)), env=cli_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert fake.n_requests == _distinct_reviews(data) - sent
    assert _rows(store) == _distinct_reviews(data)


# -- two processes, one store -------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_two_processes_on_one_store_take_disjoint_reviews(tiny, tmp_path: Path) -> None:
    data, _ = tiny
    store = tmp_path / "s.sqlite"
    n = _distinct_reviews(data)
    with FakeOpenAI(delay_s=0.4) as fake:
        procs = [popen(*_extract(data, store, fake.base_url)) for _ in range(2)]
        outs = [p.communicate(timeout=150) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
        assert fake.n_requests == n  # no review was asked twice
        assert set(fake.attempts.values()) == {1}
    ran = [json.loads(o)["run"]["ok"] + json.loads(o)["run"]["failed"] for o, _ in outs]
    assert sum(ran) == n
    with Store(store) as st:
        assert st.counts()["done"] == n
        assert st.db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_claims_of_dead_or_expired_owners_are_taken_over(tmp_path: Path) -> None:
    from lmmrec.llm.store import claim_owner

    with Store(tmp_path / "s.sqlite", "m", "v") as st:
        hashes = [f"{i:064x}" for i in range(6)]
        now = time.time()
        host = os.uname().nodename
        st.db.executemany("INSERT INTO claims VALUES (?, ?, ?)", [
            (hashes[0], f"{host}:{2 ** 22 + 3}:dead", now + 600),  # its process is gone
            (hashes[1], "elsewhere:1:x", now - 1),  # another host's, expired
            (hashes[2], "elsewhere:1:x", now + 600),  # another host's, live
            (hashes[3], f"{host}:{os.getppid()}:live", now + 600),  # a live process here
        ])
        me = claim_owner()
        got = st.claim(hashes, me, want=10, since=now)
        assert got == [hashes[0], hashes[1], hashes[4], hashes[5]]
        other = claim_owner()
        assert st.claim(hashes, other, want=10, since=now) == []  # all held now
        st.release(me, [hashes[0]])
        assert st.claim(hashes, other, want=10, since=now) == [hashes[0]]
        assert st.drop_stale_claims() == 0


# -- a server that refuses everything ---------------------------------------------------------

def test_a_run_of_4xx_stops_without_marking_the_dataset_failed(tiny, tmp_path: Path) -> None:
    data, _ = tiny
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(lambda body, attempt: Reply(status=404)) as fake:
        r = subprocess.run(lmmrec_cmd(*_extract(data, store, fake.base_url)), env=cli_env(),
                           capture_output=True, text=True, timeout=120)
        asked = fake.n_requests
    line = one_line_error(r, progress=True)
    assert "refused 8 requests in a row" in line and "HTTP 404" in line
    assert asked < _distinct_reviews(data)  # it stopped early
    with Store(store) as st:
        c = st.counts()
    assert c["failed"] == 0 and c["done"] == 0  # nothing marked failed
    with FakeOpenAI() as fake:  # the right model: everything is still to do
        r = subprocess.run(lmmrec_cmd(*_extract(data, store, fake.base_url)), env=cli_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert fake.n_requests == _distinct_reviews(data)


# -- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value"), [("--limit", "-1"), ("--workers", "0"),
                                             ("--workers", "-2")])
def test_bad_numbers_are_refused_before_anything_runs(cli, tiny, tmp_path: Path, flag: str,
                                                      value: str) -> None:
    data, _ = tiny
    store = tmp_path / "s.sqlite"
    with FakeOpenAI() as fake:
        line = one_line_error(cli(*_extract(data, store, fake.base_url, flag, value)))
        assert flag in line
        assert fake.n_requests == 0
    assert not store.exists()


def test_embed_batch_size_zero_is_refused(cli, tmp_path: Path) -> None:
    assert "--batch-size" in one_line_error(cli("embed", tmp_path, "--batch-size", "0"))


# -- bad stores ------------------------------------------------------------------------------

def _store_commands(data: Path, store: Path, url: str, tmp: Path) -> dict[str, list[object]]:
    art = tmp / "art"
    return {
        "stats": ["extract", "stats", "--store", store, "--data", data],
        "extract": _extract(data, store, url),
        "export": ["extract", "export", "--store", store, "--data", data, "--out", art],
        "merge": ["extract", "merge", store, "--out", tmp / "merged.sqlite"],
        "merge-into": ["extract", "merge", tmp / "ok.sqlite", "--out", store],
        "import": ["extract", "import", tmp / "artifact", "--store", store],
    }


@pytest.fixture
def artifact(tiny, tmp_path: Path) -> Path:
    from lmmrec.text.artifact import export_artifact

    data, full = tiny
    export_artifact(full, tmp_path / "artifact", data)
    shutil.copy(full, tmp_path / "ok.sqlite")
    return tmp_path / "artifact"


@pytest.mark.parametrize("command", ["stats", "extract", "export", "merge", "merge-into",
                                     "import"])
def test_random_bytes_as_store(cli, tiny, artifact, tmp_path: Path, command: str) -> None:
    data, _ = tiny
    store = tmp_path / "junk.sqlite"
    junk = np.random.default_rng(0).bytes(8192)
    store.write_bytes(junk)
    with FakeOpenAI() as fake:
        line = one_line_error(cli(*_store_commands(data, store, fake.base_url,
                                                   tmp_path)[command]))
        assert fake.n_requests == 0
    assert str(store) in line and "not a readable extraction store" in line
    assert store.read_bytes() == junk
    assert not (tmp_path / "art").exists() and not (tmp_path / "merged.sqlite").exists()


@pytest.mark.parametrize("command", ["stats", "extract", "export", "merge", "merge-into",
                                     "import"])
def test_a_folder_as_store(cli, tiny, artifact, tmp_path: Path, command: str) -> None:
    data, _ = tiny
    store = tmp_path / "folder"
    store.mkdir()
    (store / "keep.txt").write_text("mine")
    with FakeOpenAI() as fake:
        line = one_line_error(cli(*_store_commands(data, store, fake.base_url,
                                                   tmp_path)[command]))
        assert fake.n_requests == 0
    assert str(store) in line and "folder" in line
    assert [p.name for p in store.iterdir()] == ["keep.txt"]


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for this process. Root writes through file modes, so as root the
    file is made immutable instead (chattr +i), and made mutable again afterwards."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        yield
        return
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a file read-only as root here: {r.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("command", ["extract", "import", "merge-into"])
def test_read_only_store_fails_before_any_llm_call(cli, tiny, artifact, tmp_path: Path,
                                                   command: str) -> None:
    data, _ = tiny
    store = tmp_path / "ro.sqlite"
    from lmmrec.llm.prompts import PROMPT_VERSION

    with Store(store, "openai:Qwen/Qwen2.5-1.5B-Instruct", PROMPT_VERSION):
        pass
    before = store.read_bytes()
    with read_only(store), FakeOpenAI() as fake:
        line = one_line_error(cli(*_store_commands(data, store, fake.base_url,
                                                   tmp_path)[command]))
        assert fake.n_requests == 0
    assert "read-only" in line and str(store) in line
    assert store.read_bytes() == before


def test_read_only_store_can_still_be_read(cli, tiny, tmp_path: Path) -> None:
    data, full = tiny
    store = tmp_path / "ro.sqlite"
    shutil.copy(full, store)
    with read_only(store):
        r = cli("extract", "stats", "--store", store, "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["done"] > 0
        r = cli("extract", "export", "--store", store, "--data", data, "--out", tmp_path / "a")
        assert r.code == 0, r.err


# -- corrupt inputs ---------------------------------------------------------------------------

def test_truncated_embeddings_are_a_one_line_error(cli, beauty_dir: Path,
                                                   beauty_motivations: Path,
                                                   tmp_path: Path) -> None:
    from lmmrec.errors import DataError
    from lmmrec.text.embed import load_embeddings

    art = tmp_path / "art"
    shutil.copytree(beauty_motivations, art)
    raw = (art / "embeddings.npy").read_bytes()
    (art / "embeddings.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="embeddings.npy"):
        load_embeddings(art)
    line = one_line_error(cli("train", "--out", tmp_path / "run", "--backbone", "lightgcn",
                              "--data", beauty_dir, "--method", "lmmrec", "--motivations", art,
                              "--set", "train.max_epochs=1", "--set", "train.progress=false"))
    assert "embeddings.npy" in line


def test_deeply_nested_json_inputs_are_one_line_errors(cli, tiny, artifact,
                                                       tmp_path: Path) -> None:
    data, _ = tiny
    deep = "[" * 200_000 + "]" * 200_000
    (artifact / "manifest.json").write_text(deep)
    line = one_line_error(cli("extract", "import", artifact, "--store", tmp_path / "s.sqlite"))
    assert "nested too deeply" in line and "manifest.json" in line
    cfg = tmp_path / "backend.yaml"
    cfg.write_text(deep)
    line = one_line_error(cli("extract", "--data", data, "--store", tmp_path / "t.sqlite",
                              "--backend", "openai", "--config", cfg))
    assert "nested too deeply" in line and str(cfg) in line
    line = one_line_error(cli("extract", "--data", data, "--store", tmp_path / "t.sqlite",
                              "--backend", "openai", "--set", f"openai.model={deep}"))
    assert "nested too deeply" in line


def test_store_reads_survive_sqlite_errors_as_one_line(tiny, tmp_path: Path) -> None:
    """A store whose results table is not ours (an unrelated SQLite database)."""
    from lmmrec.errors import LmmrecError

    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE results (x INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(LmmrecError, match="not a readable extraction store"):
        with Store(other) as st:
            st.counts()


def test_deeply_nested_llm_answer_is_an_invalid_output(tiny, tmp_path: Path) -> None:
    """The model's answer is untrusted too: nesting past Python's parser is a failed
    review, not a crashed run."""
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm import inputs as llm_inputs
    from lmmrec.llm import job
    from lmmrec.llm.backends import OpenAIBackend, OpenAIConfig
    from lmmrec.llm.prompts import PROMPT_VERSION

    data, _ = tiny
    inputs = llm_inputs.review_inputs(PreparedDataset.load(data))[:3]
    deep = "[" * 100_000 + "]" * 100_000
    with FakeOpenAI(lambda body, attempt: Reply(content=deep)) as fake:
        backend = OpenAIBackend(OpenAIConfig(base_url=fake.base_url, concurrency=2,
                                             max_retries=0))
        with Store(tmp_path / "s.sqlite", backend.model_id, PROMPT_VERSION) as st:
            summary = job.run(backend, st, job.plan(inputs, st))
            records = list(st.records())
        backend.close()
    assert summary.ok == 0 and summary.failed == len(records) > 0
    assert all(r.error.startswith("invalid output") for r in records)


def test_deeply_nested_dataset_manifest_is_a_one_line_error(cli, tiny, tmp_path: Path) -> None:
    data, _ = tiny
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    (bad / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    line = one_line_error(cli("extract", "--data", bad, "--store", tmp_path / "s.sqlite",
                              "--dry-run"))
    assert "nested too deeply" in line and "manifest.json" in line
