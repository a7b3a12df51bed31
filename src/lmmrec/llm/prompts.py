"""Versioned prompt templates. The instruction prefix is byte-identical across calls so
llama.cpp reuses its KV cache; only the fenced review varies.

Review prompts:

- ``review_v1``: one worked example, reasoning sentence first, every answer must hold a
  phrase. Kept so v1 stores and releases stay valid; its example leaks into answers.
- ``review_v2``: no example content the model could copy; the interaction's rating as
  context; empty lists allowed; after parsing, a phrase with no content word of the review
  (or made of the prompt's own words) is dropped and counted (:mod:`lmmrec.llm.grounding`).
- ``review_v2n``: ``review_v2`` without the reasoning sentence (fewer output tokens).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from lmmrec.errors import ConfigError
from lmmrec.llm.grounding import ground_fields
from lmmrec.llm.schemas import (
    ItemOffer,
    ReviewMotivations,
    item_json_schema,
    review_json_schema,
)

# What new stores, cold-start queries and the demo extract with; v1 stores keep their own.
# review_v2n: as good as review_v2 on the SemEval sample at half the tokens written
# (benchmarks/results/motivations.md), so the reasoning sentence does not earn its cost.
PROMPT_VERSION = "review_v2n"


@dataclass(frozen=True)
class ReviewPrompt:
    """What a review prompt version does besides its template text."""

    reasoning: bool = True  # the one-sentence reasoning ("why") comes first
    rating: bool = False  # the interaction's rating is shown before the review
    grounded: bool = False  # ungrounded or prompt-copied phrases are dropped after parsing
    allow_empty: bool = False  # an answer with no phrase is a valid "nothing stated"


REVIEW_PROMPTS: dict[str, ReviewPrompt] = {
    "review_v1": ReviewPrompt(),
    "review_v2": ReviewPrompt(rating=True, grounded=True, allow_empty=True),
    "review_v2n": ReviewPrompt(reasoning=False, rating=True, grounded=True, allow_empty=True),
}


def review_prompt(version: str) -> ReviewPrompt:
    try:
        return REVIEW_PROMPTS[version]
    except KeyError:
        raise ConfigError(f"unknown review prompt {version!r}; known: "
                          f"{', '.join(REVIEW_PROMPTS)}") from None
ITEM_PROMPT_VERSION = "item_v1"
# Long reviews are cut: past ~1,000 characters they repeat themselves and cost prompt time.
REVIEW_CHAR_CAP = 1000
TITLE_CHAR_CAP = 80
# An item listing: title, then description and tags, cut at this many characters in all.
ITEM_CHAR_CAP = 600
MAX_OUTPUT_TOKENS = 160


@cache
def system_prompt(version: str = PROMPT_VERSION) -> str:
    return resources.files("lmmrec.llm").joinpath("prompts", f"{version}.txt").read_text(
        encoding="utf-8")


def prompt_fingerprint(version: str = PROMPT_VERSION) -> str:
    """What a prompt version stands for: its template, caps and output schema. A store
    remembers it, so editing the template without bumping the version is caught instead of
    silently re-extracting everything (every input hash would change)."""
    if version.startswith("item_"):
        kind: dict[str, Any] = {"item_cap": ITEM_CHAR_CAP, "schema": item_json_schema()}
    else:
        spec = review_prompt(version)
        kind = {"review_cap": REVIEW_CHAR_CAP, "schema": _review_schema(spec)}
        if spec != ReviewPrompt():  # v1's fingerprint stays what its stores recorded
            kind["spec"] = [spec.reasoning, spec.rating, spec.grounded, spec.allow_empty]
    spec = {"system": system_prompt(version), "title_cap": TITLE_CHAR_CAP,
            "max_tokens": MAX_OUTPUT_TOKENS, **kind}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()[:16]


# Any spelling of a fence tag: <review>, </review>, </ REVIEW >, <Item/>, ...
_FENCE_TAG = re.compile(r"<\s*(/?)\s*(review|item)\s*(/?)\s*>", re.IGNORECASE)


def fence(text: str, cap: int) -> str:
    """Neutralise the fence markers inside untrusted text and cap its length."""
    text = " ".join(str(text).split())
    text = _FENCE_TAG.sub(lambda m: f"({m.group(1) or m.group(3)}{m.group(2).lower()})", text)
    if len(text) > cap:
        text = text[:cap].rsplit(" ", 1)[0] + " ..."
    return text


class _Prompted:
    """A request of one prompt version: messages, input hash and the output's schema."""

    VERSION: str = PROMPT_VERSION
    OUTPUT: type[BaseModel] = ReviewMotivations
    allow_empty: bool = False

    @property
    def version(self) -> str:
        return self.VERSION

    def user_message(self) -> str:
        raise NotImplementedError

    def messages(self, version: str | None = None) -> list[dict[str, str]]:
        return [{"role": "system", "content": system_prompt(version or self.version)},
                {"role": "user", "content": self.user_message()}]

    def input_hash(self, version: str | None = None) -> str:
        version = version or self.version
        payload = json.dumps({"v": version, "m": self.messages(version)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def json_schema(self) -> dict[str, Any]:
        return review_json_schema()

    def parse(self, data: Any) -> Any:
        """The validated output (an ``OUTPUT``) of a decoded JSON answer."""
        return self.OUTPUT.model_validate(data)


# Headlines a shop writes for a bare star rating ("Five Stars"): no content of the review.
_STOCK_HEADLINE = re.compile(r"^\s*(one|two|three|four|five|[1-5])\s+stars?\s*[.!]*\s*$",
                             re.IGNORECASE)


def rating_line(rating: float | None, scale: float = 5.0) -> str:
    """The rating as the prompt shows it: "4 of 5 stars", "recommended" / "not recommended"
    for a 0/1 scale (Steam), "" when unknown."""
    if rating is None or rating != rating:  # NaN
        return ""
    if scale <= 1:
        return "recommended" if rating >= 1 else "not recommended"
    return f"{rating:g} of {scale:g} stars"


@dataclass(frozen=True)
class ReviewInput(_Prompted):
    """One review to extract from; the key ties results back to its interaction."""

    user_id: str
    item_id: str
    text: str
    title: str = ""
    item_title: str = ""
    rating: str = ""  # rating_line() of the interaction, shown by prompts with spec.rating
    prompt: str = PROMPT_VERSION

    @property
    def version(self) -> str:
        return self.prompt

    @property
    def spec(self) -> ReviewPrompt:
        return review_prompt(self.prompt)

    @property
    def allow_empty(self) -> bool:  # type: ignore[override]
        return self.spec.allow_empty

    def _headline(self) -> str:
        if self.prompt != "review_v1" and _STOCK_HEADLINE.match(self.title):
            return ""
        return self.title

    def review_text(self) -> str:
        """What the review itself says (headline and text): the grounding reference."""
        return f"{self._headline()} {self.text}".strip()

    def user_message(self) -> str:
        parts = []
        if self.item_title:
            parts.append(f"Item: {fence(self.item_title, TITLE_CHAR_CAP)}")
        if self.rating and self.spec.rating:
            parts.append(f"Rating: {self.rating}")
        body = fence(self.text, REVIEW_CHAR_CAP)
        headline = self._headline()
        if headline:
            body = f"{fence(headline, TITLE_CHAR_CAP)}. {body}"
        parts.append(f"<review>{body}</review>")
        return "\n".join(parts)

    def json_schema(self) -> dict[str, Any]:
        return _review_schema(self.spec)

    def parse(self, data: Any) -> Any:
        """Schema-valid phrases; with a grounded prompt, only those the review supports
        (the counts of what was dropped ride along in ``dropped``)."""
        parsed = ReviewMotivations.model_validate(data)
        if not self.spec.grounded:
            return parsed
        asked = sum(len(data.get(k) or []) for k in ("pos", "neg", "attr")
                    if isinstance(data.get(k), list))
        if asked and not (parsed.pos or parsed.neg or parsed.attr):
            # phrases were given but none is well formed: a bad answer, asked again
            raise ValueError("no well-formed motivation phrases")
        fields = {"pos": parsed.pos, "neg": parsed.neg, "attr": parsed.attr}
        kept, dropped = ground_fields(fields, self.review_text(), system_prompt(self.prompt))
        return ReviewMotivations.model_validate({"why": parsed.why, **kept, "dropped": dropped})


@dataclass(frozen=True)
class ItemInput(_Prompted):
    """One item's catalogue listing; results are keyed by the item alone (user_id '')."""

    VERSION = ITEM_PROMPT_VERSION
    OUTPUT = ItemOffer

    item_id: str
    title: str = ""
    description: str = ""
    tags: str = ""
    user_id: str = ""

    def user_message(self) -> str:
        lines = []
        if self.title:
            lines.append(f"Title: {fence(self.title, TITLE_CHAR_CAP * 2)}")
        left = ITEM_CHAR_CAP - sum(len(x) for x in lines)
        for name, value in (("Description", self.description), ("Tags", self.tags)):
            if value and left > 40:
                text = fence(value, left)
                lines.append(f"{name}: {text}")
                left -= len(text)
        return "<item>" + "\n".join(lines) + "</item>"

    def json_schema(self) -> dict[str, Any]:
        return item_json_schema()


def _review_schema(spec: ReviewPrompt) -> dict[str, Any]:
    if spec == ReviewPrompt():
        return review_json_schema()
    return review_json_schema(reasoning=spec.reasoning, min_items=0 if spec.allow_empty else 1)


def request(inp: _Prompted, version: str | None = None) -> dict[str, Any]:
    """An OpenAI-style chat request with JSON-schema constrained output."""
    return {
        "messages": inp.messages(version),
        "max_tokens": MAX_OUTPUT_TOKENS,
        "temperature": 0.0,
        "response_format": {"type": "json_object", "schema": inp.json_schema()},
    }
