"""merge_stores refuses a store of another model (the CLI test covers prompt versions)."""

from __future__ import annotations

import pytest

from lmmrec.errors import LmmrecError
from lmmrec.llm.store import Record, Store, merge_stores

PARSED = {"why": "", "pos": ["gentle on skin"], "neg": [], "attr": []}


def _store(path, model: str, key: str) -> None:  # noqa: ANN001
    with Store(path, model, "review_v1") as st:
        st.put(Record(model, "review_v1", key * 64, "u1", "i1", "ok", raw="{}", parsed=PARSED))


def test_merge_refuses_another_model_and_is_idempotent(tmp_path) -> None:  # noqa: ANN001
    a, b, c = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    _store(a, "openai:qwen2.5-7b", "a")
    _store(b, "openai:qwen2.5-7b", "b")
    _store(c, "openai:llama-3-8b", "c")
    out = tmp_path / "all.sqlite"
    assert merge_stores(out, [a, b]) == {"changed": 2, "done": 2, "failed": 0}
    assert merge_stores(out, [b, a]) == {"changed": 0, "done": 2, "failed": 0}
    with pytest.raises(LmmrecError, match="cannot merge"):
        merge_stores(out, [a, c])
    with pytest.raises(LmmrecError):  # nor into a target bound to another model
        merge_stores(out, [c])
    with Store(out) as st:
        assert st.meta() == {"model_id": "openai:qwen2.5-7b", "prompt_version": "review_v1"}
        assert st.counts()["done"] == 2
