"""The own-reviews fixture (tests/fixtures/own-reviews/reviews.csv) taken from prepare to a
trained run, with a fake OpenAI-compatible LLM whose motivations are the review's clauses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llm.fake_openai import Reply, review_text

REVIEWS = Path(__file__).resolve().parents[1] / "fixtures" / "own-reviews" / "reviews.csv"
COLUMNS = "user=customer,item=product,rating=stars,time=date,text=review"
SMALL_K = ["--set", "eval.ks=[1,3,5]", "--set", "eval.select=recall@5"]


def clauses(text: str) -> list[str]:
    parts = re.split(r"[.,;!]+|\s+(?:and|but)\s+", text.lower())
    return [p.strip() for p in parts if p.strip()][:4]


def responder(body: dict[str, Any], attempt: int) -> Reply:
    """What a reasonable LLM would answer: each clause of the review is a motivation the
    reviewer had and an attribute of the item."""
    found = clauses(review_text(body)) or ["basic item"]
    return Reply(content=json.dumps({"why": "stated in the review", "pos": found, "neg": [],
                                     "attr": found}))
