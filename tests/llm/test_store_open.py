"""Several processes opening one fresh store at once (what `extract --workers N` does)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

from lmmrec.llm.store import Store
from lmmrec.text.embed import embed_texts


def _open(path: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    try:
        with Store(path, "model", "v1") as st:
            st.counts()
    except Exception as e:  # noqa: BLE001 - the test reports whatever went wrong
        errors.put(repr(e))


def test_concurrent_first_open_never_reports_locked(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    n = 4
    for k in range(80):
        barrier = ctx.Barrier(n)
        path = str(tmp_path / f"s{k}.sqlite")
        procs = [ctx.Process(target=_open, args=(path, barrier, errors)) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
        with Store(path) as st:
            assert st.meta() == {"model_id": "model", "prompt_version": "v1"}
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []


def _embed(cache: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    os.environ["LMMREC_CACHE_DIR"] = cache
    barrier.wait()
    try:
        embed_texts([])
    except Exception as e:  # noqa: BLE001
        errors.put(repr(e))


def test_concurrent_first_open_of_the_embedding_cache(tmp_path: Path) -> None:
    """Parallel experiment processes share one embedding cache file."""
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    n = 4
    for k in range(80):
        barrier = ctx.Barrier(n)
        cache = str(tmp_path / f"cache{k}")
        procs = [ctx.Process(target=_embed, args=(cache, barrier, errors)) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
