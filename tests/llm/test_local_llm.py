"""The real local model (Qwen2.5 1.5B GGUF via xllamacpp) on two real reviews.

Slow (~10-30 s per review on 2 busy cores): marked `llm`, run with `pytest -m llm`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmmrec.llm.schemas import normalise_phrase


@pytest.mark.llm
@pytest.mark.timeout(600)
def test_local_model_extracts_two_reviews(beauty_inputs, tmp_path: Path) -> None:
    from lmmrec.llm import job
    from lmmrec.llm.backends import LocalBackend, LocalConfig
    from lmmrec.llm.prompts import PROMPT_VERSION
    from lmmrec.llm.store import Store

    backend = LocalBackend(LocalConfig(threads=1))
    try:
        with Store(tmp_path / "s.sqlite", backend.model_id, PROMPT_VERSION) as st:
            p = job.plan(beauty_inputs, st, limit=2)
            summary = job.run(backend, st, p)
            assert summary.ok + summary.failed == 2 and summary.ok >= 1, summary.errors
            assert st.counts()["done"] == summary.ok
            for rec in st.records("ok"):
                assert rec.prompt_tokens > 0 and rec.output_tokens > 0
                for ph in rec.parsed["pos"] + rec.parsed["neg"] + rec.parsed["attr"]:
                    assert normalise_phrase(ph) == ph
    finally:
        backend.close()


@pytest.mark.llm
@pytest.mark.timeout(600)
def test_local_model_describes_two_item_listings(beauty_dir: Path, tmp_path: Path) -> None:
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm import inputs as llm_inputs
    from lmmrec.llm import job
    from lmmrec.llm.backends import LocalBackend, LocalConfig
    from lmmrec.llm.prompts import ITEM_PROMPT_VERSION
    from lmmrec.llm.store import Store

    listed = llm_inputs.item_inputs(PreparedDataset.load(beauty_dir))
    backend = LocalBackend(LocalConfig(threads=1))
    try:
        with Store(tmp_path / "i.sqlite", backend.model_id, ITEM_PROMPT_VERSION) as st:
            summary = job.run(backend, st, job.plan(listed, st, limit=2))
            assert summary.ok == 2, summary.errors
            for rec in st.records("ok"):
                assert rec.parsed["attr"] and rec.parsed["serves"]
                for ph in rec.parsed["attr"] + rec.parsed["serves"]:
                    assert normalise_phrase(ph) == ph
    finally:
        backend.close()
