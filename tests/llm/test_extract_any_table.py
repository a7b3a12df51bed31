"""Extraction on any review table: a split with no validation or test rows is no obstacle to
statistics, extraction or export (only training needs every split)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from .conftest import run_cli
from .fake_openai import FakeOpenAI

REVIEWS = [
    ("ann", "amp", 5, "The tube amp has a warm tone and loud clean channel."),
    ("ann", "cable", 2, "The cable crackles and the connector feels loose."),
    ("bob", "amp", 4, "Warm tone, heavy chassis, the reverb knob broke."),
    ("bob", "strap", 5, "Soft leather strap with sturdy stitching, very comfortable."),
    ("cid", "cable", 1, "Cheap cable, the plug snapped after a week of gigs."),
]


@pytest.mark.timeout(180)
def test_a_table_without_val_or_test_rows_can_be_extracted(tmp_path: Path) -> None:
    table = tmp_path / "reviews.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "rating", "text"])
        w.writerows(REVIEWS)
    prepared = tmp_path / "prepared"
    r = run_cli("data", "prepare", table, "--format", "table", "--kcore", "0", "--split",
                "1:0:0", "--out", prepared)
    assert r.returncode == 0, r.stderr
    r = run_cli("data", "stats", prepared, "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert (stats["n_train"], stats["n_val"], stats["n_test"]) == (5, 0, 0)

    store, art = tmp_path / "s.sqlite", tmp_path / "art"
    seen: list[str] = []

    def responder(body, attempt):
        from .fake_openai import Reply, valid_answer

        seen.append(next(m["content"] for m in body["messages"] if m["role"] == "user"))
        return Reply(content=json.dumps(valid_answer(body)))

    with FakeOpenAI(responder) as fake:
        r = run_cli("extract", "--backend", "openai", "--set",
                    f"openai.base_url={fake.base_url}", "--data", prepared, "--store", store)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["store"]["done"] == 5
    # prompt review_v2n by default, with each interaction's rating as context
    assert sum("Rating: 1 of 5 stars" in u for u in seen) == 1
    r = run_cli("extract", "stats", "--store", store, "--data", prepared, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prompt_version"] == "review_v2n"
    r = run_cli("extract", "export", "--store", store, "--data", prepared, "--out", art)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["counts"]["extracted"] == 5
    assert manifest["coverage"]["val"] == {"interactions": 0, "extracted": 0, "failed": 0}
