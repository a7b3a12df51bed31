"""Several processes opening one fresh SQLite file at once: the extraction store (what
`extract --workers N` does) and the embedding cache (parallel experiment processes)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lmmrec.llm.store import Store
from lmmrec.text.embed import embed_texts

ROUNDS, PROCS = 80, 4  # without the retry, 80 rounds of 4 fail reliably here


def _guarded(fn: Callable[[str], None], path: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()  # all processes open at the same moment
    try:
        fn(path)
    except Exception as e:  # noqa: BLE001 - the test reports whatever went wrong
        errors.put(repr(e))


def _race(fn: Callable[[str], None], paths: list[str]) -> list[str]:
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for path in paths:
        barrier = ctx.Barrier(PROCS)
        procs = [ctx.Process(target=_guarded, args=(fn, path, barrier, errors))
                 for _ in range(PROCS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def _open_store(path: str) -> None:
    with Store(path, "model", "v1") as st:
        st.counts()


def _open_cache(path: str) -> None:
    os.environ["LMMREC_CACHE_DIR"] = path
    embed_texts([])


@pytest.mark.slow
def test_concurrent_first_open_never_reports_locked(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"s{k}.sqlite") for k in range(ROUNDS)]
    assert _race(_open_store, paths) == []
    for path in paths:
        with Store(path) as st:
            assert st.meta() == {"model_id": "model", "prompt_version": "v1"}


@pytest.mark.slow
def test_concurrent_first_open_of_the_embedding_cache(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"cache{k}") for k in range(ROUNDS)]
    assert _race(_open_cache, paths) == []
    assert all((Path(p) / "embeddings").is_dir() for p in paths)


def test_store_remembers_the_prompt_and_refuses_an_edited_one(tmp_path: Path) -> None:
    import pytest

    from lmmrec.errors import LmmrecError
    from lmmrec.llm.prompts import PROMPT_VERSION, prompt_fingerprint

    sha = prompt_fingerprint(PROMPT_VERSION)
    assert len(sha) == 16 and sha == prompt_fingerprint(PROMPT_VERSION)
    path = tmp_path / "s.sqlite"
    with Store(path, "m", PROMPT_VERSION) as st:  # a store from before fingerprints
        assert "prompt_sha" not in st.meta()
    with Store(path, "m", PROMPT_VERSION, sha) as st:  # adopts the current one
        assert st.meta()["prompt_sha"] == sha
    with Store(path, "m", PROMPT_VERSION, sha) as st:
        assert st.meta()["prompt_sha"] == sha
    with pytest.raises(LmmrecError, match="has changed since this store was made"):
        Store(path, "m", PROMPT_VERSION, "0" * 16)  # the template edited, same version
    fresh = tmp_path / "t.sqlite"
    with Store(fresh, "m", PROMPT_VERSION, sha) as st:
        assert st.meta() == {"model_id": "m", "prompt_version": PROMPT_VERSION,
                             "prompt_sha": sha}
