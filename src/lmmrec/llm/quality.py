"""How good are extracted motivations? Scores against human aspect labels and checks on
released artifacts that need no labels (used by ``benchmarks/bench_motivations.py``).

Against labels (SemEval-2014 Task 4 sentences, aspect terms with polarity):

- **aspect recall**: a gold aspect term is *found* when some extracted phrase (pos, neg or
  attr) contains every content word of the term (word matching of
  :mod:`lmmrec.llm.grounding`: "battery life" is found in "long battery life");
- **polarity accuracy**: over the gold positive and negative terms found in a pos or neg
  phrase, the share found on their own side only (a positive term in pos and not in neg);
  terms found only in attr carry no polarity and are counted apart;
- **grounded share**: the share of extracted phrases that share a content word with their
  sentence (:func:`lmmrec.llm.grounding.is_grounded`);
- **prompt copies**: phrases not grounded in the sentence and made only of the prompt's
  own content words (:func:`lmmrec.llm.grounding.is_copied`).

On artifacts (no labels): the same grounding and copy checks against each review's text,
the share of verdict phrases ("great", "works well": :func:`lmmrec.llm.grounding.is_verdict`)
per field, the share of reviews with a negative motivation by rating (low: 1-2 stars or "not
recommended"; high: 5 stars or "recommended"), distinct phrases and the most frequent
phrases per field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmmrec.errors import DataError
from lmmrec.llm.grounding import Grounding, content_words, is_verdict

FIELDS = ("pos", "neg", "attr")


@dataclass(frozen=True)
class Aspect:
    term: str
    polarity: str  # positive | negative | neutral | conflict


@dataclass(frozen=True)
class Sentence:
    sid: str
    text: str
    aspects: tuple[Aspect, ...] = field(default_factory=tuple)


def read_semeval(path: str | Path) -> list[Sentence]:
    """Sentences of a SemEval-2014 Task 4 XML file, with their aspect terms."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"unreadable SemEval XML: {e}", path=path) from e
    out = []
    for s in root.iter("sentence"):
        text = (s.findtext("text") or "").strip()
        aspects = tuple(Aspect(a.get("term", ""), a.get("polarity", ""))
                        for a in s.iter("aspectTerm"))
        out.append(Sentence(str(s.get("id")), text, aspects))
    if not out:
        raise DataError("no <sentence> elements", path=path)
    return out


def _found_in(term: str, phrases: Iterable[str]) -> bool:
    return any(Grounding(p).covers(term) for p in phrases)


def score_labelled(sentences: Iterable[Sentence],
                   extracted: Mapping[str, Mapping[str, list[str]]],
                   prompt: str = "") -> dict[str, Any]:
    """Aspect recall, polarity accuracy, grounded share and prompt copies of ``extracted``
    ({sentence id: {"pos": [...], "neg": [...], "attr": [...]}}); a sentence with no entry
    counts as extracted with nothing found."""
    instructions = Grounding(prompt)
    terms = found = polar = polar_right = attr_only = 0
    phrases = grounded = copied = 0
    n = empty = 0
    for s in sentences:
        n += 1
        got = {f: list((extracted.get(s.sid) or {}).get(f) or []) for f in FIELDS}
        if not any(got.values()):
            empty += 1
        review = Grounding(s.text)
        for f in FIELDS:
            for p in got[f]:
                phrases += 1
                if review.grounded(p):
                    grounded += 1
                elif instructions.covers(p):
                    copied += 1
        for a in s.aspects:
            if not content_words(a.term):
                continue
            terms += 1
            in_pos, in_neg = _found_in(a.term, got["pos"]), _found_in(a.term, got["neg"])
            if in_pos or in_neg or _found_in(a.term, got["attr"]):
                found += 1
            if a.polarity in ("positive", "negative"):
                if in_pos or in_neg:
                    polar += 1
                    right = in_pos if a.polarity == "positive" else in_neg
                    wrong = in_neg if a.polarity == "positive" else in_pos
                    polar_right += int(right and not wrong)
                elif _found_in(a.term, got["attr"]):
                    attr_only += 1
    return {
        "sentences": n, "empty_answers": empty, "aspect_terms": terms, "aspects_found": found,
        "aspect_recall": _rate(found, terms),
        "polar_terms_found_in_pos_or_neg": polar, "polar_right_side": polar_right,
        "polarity_accuracy": _rate(polar_right, polar), "polar_terms_found_only_in_attr":
        attr_only, "phrases": phrases, "phrases_per_sentence": _rate(phrases, n),
        "grounded": grounded, "grounded_share": _rate(grounded, phrases),
        "prompt_copies": copied,
    }


def _rate(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def rating_band(rating: float | None, scale: float) -> str | None:
    """"low" (1-2 of 5, or not recommended), "high" (5 of 5, or recommended), else None."""
    if rating is None or rating != rating:
        return None
    if scale <= 1:
        return "high" if rating >= 1 else "low"
    if rating <= 2:
        return "low"
    return "high" if rating >= scale else None


def score_artifact(rows: Iterable[Mapping[str, Any]], prompt: str, scale: float = 5.0,
                   top: int = 10) -> dict[str, Any]:
    """Label-free checks of extracted reviews. Each row: ``text`` (what the model read of the
    review: headline and text), ``rating`` (may be None), and the fields' phrase lists."""
    instructions = Grounding(prompt)
    per_field = {f: Counter() for f in FIELDS}
    grounded = {f: 0 for f in FIELDS}
    copied = {f: 0 for f in FIELDS}
    empty_phrase = {f: 0 for f in FIELDS}
    verdicts = {f: 0 for f in FIELDS}
    band_reviews: Counter[str] = Counter()
    band_with_neg: Counter[str] = Counter()
    n = 0
    for r in rows:
        n += 1
        review = Grounding(str(r.get("text") or ""))
        for f in FIELDS:
            for p in list(r.get(f) or []):
                per_field[f][p] += 1
                if not content_words(p):
                    empty_phrase[f] += 1
                verdicts[f] += is_verdict(p)
                if review.grounded(p):
                    grounded[f] += 1
                elif instructions.covers(p):
                    copied[f] += 1
        band = rating_band(r.get("rating"), scale)
        if band:
            band_reviews[band] += 1
            band_with_neg[band] += int(bool(list(r.get("neg") or [])))
    phrases = {f: sum(c.values()) for f, c in per_field.items()}
    total = sum(phrases.values())
    return {
        "reviews": n, "phrases": total,
        "grounded_share": _rate(sum(grounded.values()), total),
        "grounded_share_by_field": {f: _rate(grounded[f], phrases[f]) for f in FIELDS},
        "prompt_copies": sum(copied.values()), "prompt_copies_by_field": copied,
        "contentless_phrases_by_field": empty_phrase,
        "verdict_share_by_field": {f: _rate(verdicts[f], phrases[f]) for f in FIELDS},
        "neg_share_by_rating": {b: _rate(band_with_neg[b], band_reviews[b])
                                for b in ("low", "high")},
        "reviews_by_rating": dict(band_reviews),
        "distinct_phrases": {f: len(c) for f, c in per_field.items()},
        "top_phrases": {f: c.most_common(top) for f, c in per_field.items()},
    }
