"""benchmarks/bench_budget.py on a real tiny budget grid: LLM calls per variant come from
the runs, the paired tests line up by seed, and the report and plot are written."""

from __future__ import annotations

import json

import pytest

from lmmrec.experiment.grid import run_experiment
from lmmrec.experiment.spec import experiment_from_dict

from .bench_module import load_bench

FAST = ["train.max_epochs=2", "train.eval_every=1", "train.progress=false",
        "train.threads=1", "eval.ks=[20]"]


@pytest.mark.slow
def test_budget_report_from_a_real_grid(beauty_dir, beauty_motivations, tmp_path):
    bb = load_bench("bench_budget")
    variants = {"base": {"method": "base"},
                "share-50": {"method": "lmmrec", "set": ["align.review_share=0.5"]},
                "share-100": {"method": "lmmrec"},
                "raw-50": {"method": "lmmrec", "set": ["align.review_share=0.5",
                                                      "align.text_input=reviews"]}}
    exp = experiment_from_dict({
        "out": str(tmp_path / "out"),
        "datasets": {"beauty": {"path": str(beauty_dir), "motivations": str(beauty_motivations)}},
        "backbones": ["mf"], "variants": variants, "seeds": [1, 2], "common": FAST}, tmp_path)
    assert not run_experiment(exp)["failed"]
    s = bb.budget_summary(tmp_path / "out", ["recall@20"])
    rows = {r["variant"]: r for r in s["rows"]}
    used = {v: {json.loads(m.read_text())["text"]["train_reviews_used"]
                for m in (tmp_path / "out").glob(f"beauty/mf/{v}/seed*/metrics.json")}
            for v in ("share-50", "share-100")}
    assert rows["base"]["llm_calls"] == 0
    assert {rows["share-50"]["llm_calls"]} == used["share-50"]
    assert {rows["share-100"]["llm_calls"]} == used["share-100"]
    assert 0 < rows["share-50"]["llm_calls"] < rows["share-100"]["llm_calls"]
    # phrases by calls, then the raw reviews: no LLM call, the same budget's reviews read
    assert [r["variant"] for r in s["rows"]] == ["base", "share-50", "share-100", "raw-50"]
    raw = rows["raw-50"]
    assert raw["text"] == "reviews" and raw["llm_calls"] == 0
    # the fixture's motivations cover few reviews; the raw text side reads the budget's all
    raw_m = [json.loads(m.read_text())["text"]
             for m in (tmp_path / "out").glob("beauty/mf/raw-50/seed*/metrics.json")]
    assert {raw["reviews_read"]} == {m["train_reviews_used"] for m in raw_m}
    assert 0 < raw_m[0]["train_reviews_used"] <= raw_m[0]["budget_reviews"]
    assert rows["share-50"]["reviews_read"] == rows["share-50"]["llm_calls"]
    assert rows["base"]["text"] == "none" and rows["base"]["reviews_read"] == 0
    full = rows["share-100"]["metrics"]["recall@20"]
    assert full["vs_full_pct"] is None and rows["base"]["metrics"]["recall@20"][
        "vs_base_t_p"] is None
    half = rows["share-50"]["metrics"]["recall@20"]
    vals = [json.loads(m.read_text())["test"]["recall@20"]
            for m in sorted((tmp_path / "out").glob("beauty/mf/share-50/seed*/metrics.json"))]
    assert half["mean"] == pytest.approx(sum(vals) / 2)
    md = bb.to_markdown(s, "beauty", "python benchmarks/bench_budget.py")
    n50 = rows["share-50"]["llm_calls"]
    assert f"| mf | share-50 | phrases | {n50} | {n50} | 2 |" in md
    assert f"| mf | raw-50 | reviews | 0 | {raw['reviews_read']} | 2 |" in md
    png = bb.plot(s, "beauty", "recall@20", tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
