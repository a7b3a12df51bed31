"""What to ask the LLM: every review (or item listing) of a prepared dataset as a request,
a budget's share of them, and how far a store is on them."""

from __future__ import annotations

from collections.abc import Iterable

from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.leakage import extraction_reviews, training_pairs
from lmmrec.llm.budget import budget_pairs
from lmmrec.llm.prompts import PROMPT_VERSION, ItemInput, ReviewInput, rating_line, review_prompt
from lmmrec.llm.store import Store

Input = ReviewInput | ItemInput


def review_inputs(ds: PreparedDataset, prompt: str = PROMPT_VERSION) -> list[ReviewInput]:
    """Every review of the dataset, training interactions first (split-independent), as
    requests of prompt version ``prompt``. A prompt that shows ratings gets each
    interaction's own rating (it is that interaction's training data, like its text)."""
    shows_rating = review_prompt(prompt).rating
    reviews = extraction_reviews(ds)
    titles = ds.items.set_index("raw_id")["title"] if "title" in ds.items else None
    ratings = None
    if shows_rating and "rating" in ds.interactions and ds.interactions["rating"].notna().any():
        r = ds.interactions[["user", "item", "rating"]]
        scale = float(r["rating"].max())
        keyed = reviews[["user", "item"]].merge(r, on=["user", "item"], how="left")
        ratings = [rating_line(v, scale) for v in keyed["rating"].tolist()]
    out = []
    for n, row in enumerate(reviews.itertuples(index=False)):
        text = str(row.text or "").strip()
        title = str(getattr(row, "title", "") or "").strip()
        if not text and not title:
            continue
        item_title = ""
        if titles is not None:
            t = titles.get(row.item_id)
            item_title = "" if t is None or t != t else str(t)  # t != t: NaN
        rating = ratings[n] if ratings is not None else ""
        out.append(ReviewInput(row.user_id, row.item_id, text, title, item_title, rating,
                               prompt))
    return out


def item_inputs(ds: PreparedDataset) -> list[ItemInput]:
    """Every item with a catalogue listing (title, description or tags). Metadata is not
    interaction data, so it belongs to no split and every profile may use it."""
    cols = [c for c in ("title", "description", "tags") if c in ds.items]
    out = []
    for row in ds.items.itertuples(index=False):
        vals = {c: str(getattr(row, c) or "").strip() for c in cols}
        vals = {c: ("" if v == "nan" else v) for c, v in vals.items()}
        if any(vals.values()):
            out.append(ItemInput(str(row.raw_id), **vals))
    return out


def inputs_for(ds: PreparedDataset, version: str) -> list[Input]:
    """The requests of prompt ``version`` for ``ds`` (item listings for an item prompt):
    what a store of that version holds answers to."""
    return item_inputs(ds) if version.startswith("item_") else review_inputs(ds, version)


def within_budget(ds: PreparedDataset, inputs: list[Input], share: float | None,
                  seed: int = 0) -> list[Input]:
    """The training reviews of the budget subsample at ``share`` (every training review at
    1; every review, validation and test too, at None: no budget): lmmrec.llm.budget's
    draw, the same one `align.review_share` uses in training."""
    if share is None:
        return inputs
    keep = training_pairs(ds) if share >= 1 else budget_pairs(ds, share, seed)
    return [i for i in inputs if (i.user_id, i.item_id) in keep]


def training_coverage(ds: PreparedDataset, inputs: Iterable[ReviewInput],
                      store: Store) -> dict[str, int]:
    """How far the store is on this split's training reviews (distinct requests among
    ``inputs``, i.e. ``review_inputs(ds)``): the split has its full text side once `pending`
    is 0."""
    keys = training_pairs(ds)
    hashes = {i.input_hash() for i in inputs if (i.user_id, i.item_id) in keys}
    statuses = store.statuses()
    done = sum(statuses.get(h) == "ok" for h in hashes)
    failed = sum(statuses.get(h) == "failed" for h in hashes)
    return {"total": len(hashes), "done": done, "failed": failed,
            "pending": len(hashes) - done - failed}


def unit_counts(inputs: Iterable[Input], statuses: dict[str, str],
                unit: str = "reviews") -> dict[str, dict[str, int]]:
    """Progress in both units, labelled: ``unit`` (each review, or item listing, of the
    dataset) and ``texts`` (distinct inputs, one LLM request each: identical reviews share
    one). `extract stats` and `extract export` both report this."""
    hashes = [i.input_hash() for i in inputs]

    def count(hs: list[str]) -> dict[str, int]:
        ok = sum(statuses.get(h) == "ok" for h in hs)
        failed = sum(statuses.get(h) == "failed" for h in hs)  # unanswered: still pending
        return {"total": len(hs), "extracted": ok, "failed": failed,
                "pending": len(hs) - ok - failed}

    return {unit: count(hashes), "texts": count(list(dict.fromkeys(hashes)))}
