"""Pydantic schemas of every LLM output, and the phrase rules that make them safe to store.

Review text is untrusted: whatever a review says, only short, plain motivation phrases
survive validation (1-6 words, letters/digits/basic punctuation, no instruction-like text).
The prompt asks for 2-6 words; single words are kept because many are specific motivations
("acne", "affordability", "12ax7"), about 8 % of the released phrases.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

MAX_PHRASE_CHARS = 48
MIN_WORDS, MAX_WORDS = 1, 6
_ALLOWED = re.compile(r"^[a-z0-9][a-z0-9 '&+/\-.,]*$")
# Phrases that echo an injected instruction instead of describing a purchase. Patterns, not
# single words: "clear instructions", "sound system" and "prompt delivery" are real motivations.
_INSTRUCTION_WORDS = re.compile(
    r"\b(ignore|disregard|override|jailbreak|assistant|api key|password|http|https|www)\b"
    r"|\b(system|developer)\s+(prompt|message|instructions?)\b"
    r"|\b(previous|above|prior|earlier|new|following)\s+(instructions?|prompt)\b"
    r"|\bprompt\s+injection\b"
    # an order to move money ("wire money to attacker"), not a reason to buy
    r"|\b(wire|transfer|send|pay)\s+(\w+\s+)?(money|funds|cash|bitcoin|crypto)\b"
    r"|\battackers?\b")
# Web addresses: a scheme, or a dotted host name such as evil.com (not "2.5 oz").
_URLISH = re.compile(r"://|[a-z]\.[a-z]{2,}")


def normalise_phrase(raw: str) -> str | None:
    """Lowercase, trim and check one phrase; None if it is not a well-formed phrase."""
    text = " ".join(str(raw).lower().strip().strip(".,;:!\"'").split())
    if not text or len(text) > MAX_PHRASE_CHARS:
        return None
    if not _ALLOWED.match(text) or _INSTRUCTION_WORDS.search(text) or _URLISH.search(text):
        return None
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        return None
    return text


def safe_sentence(v: Any) -> str:
    """Free text, so kept only when it does not echo instructions, links or markup."""
    text = " ".join(str(v).split())[:200]
    low = text.lower()
    if _INSTRUCTION_WORDS.search(low) or _URLISH.search(low) or "<" in low or ">" in low:
        return ""
    return text


def clean_phrases(values: list[Any], limit: int) -> list[str]:
    out: list[str] = []
    for v in values:
        p = normalise_phrase(v) if isinstance(v, str) else None
        if p and p not in out:
            out.append(p)
    return out[:limit]


class ReviewMotivations(BaseModel):
    """What one review says about why the user chose the item (CoT sentence first)."""

    model_config = ConfigDict(extra="forbid")

    why: str = Field(default="", max_length=200)
    pos: list[str] = Field(default_factory=list)
    neg: list[str] = Field(default_factory=list)
    attr: list[str] = Field(default_factory=list)
    # what a grounded prompt dropped: {"ungrounded": n, "copied": n, "moved": n}
    dropped: dict[str, int] | None = None

    @field_validator("why", mode="before")
    @classmethod
    def _why(cls, v: Any) -> str:
        return safe_sentence(v)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if out.get("dropped") is None:  # v1 results keep their old shape
            out.pop("dropped", None)
        return out

    @field_validator("pos", "attr", mode="before")
    @classmethod
    def _four(cls, v: Any) -> list[str]:
        return clean_phrases(v if isinstance(v, list) else [], 4)

    @field_validator("neg", mode="before")
    @classmethod
    def _two(cls, v: Any) -> list[str]:
        return clean_phrases(v if isinstance(v, list) else [], 2)

    def is_empty(self) -> bool:
        return not (self.pos or self.attr)


class ItemOffer(BaseModel):
    """What an item's own metadata (title, description, tags) says it offers."""

    model_config = ConfigDict(extra="forbid")

    what: str = Field(default="", max_length=200)
    attr: list[str] = Field(default_factory=list)
    serves: list[str] = Field(default_factory=list)

    @field_validator("what", mode="before")
    @classmethod
    def _what(cls, v: Any) -> str:
        return safe_sentence(v)

    @field_validator("attr", mode="before")
    @classmethod
    def _five(cls, v: Any) -> list[str]:
        return clean_phrases(v if isinstance(v, list) else [], 5)

    @field_validator("serves", mode="before")
    @classmethod
    def _three(cls, v: Any) -> list[str]:
        return clean_phrases(v if isinstance(v, list) else [], 3)

    def is_empty(self) -> bool:
        return not (self.attr or self.serves)


def _phrase_schema() -> dict[str, Any]:
    return {"type": "string", "minLength": 3, "maxLength": MAX_PHRASE_CHARS}


def review_json_schema(reasoning: bool = True, min_items: int = 1) -> dict[str, Any]:
    """JSON schema for constrained decoding; key order puts the reasoning first.
    ``min_items`` 0 lets a review that names nothing answer with empty lists instead of
    being forced to invent a phrase."""
    props: dict[str, Any] = {"why": {"type": "string", "maxLength": 110}} if reasoning else {}
    props |= {
        "pos": {"type": "array", "items": _phrase_schema(), "minItems": min_items,
                "maxItems": 4},
        "neg": {"type": "array", "items": _phrase_schema(), "maxItems": 2},
        "attr": {"type": "array", "items": _phrase_schema(), "minItems": min_items,
                 "maxItems": 4},
    }
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def item_json_schema() -> dict[str, Any]:
    """JSON schema of an item's offer; the one-sentence description first (its reasoning)."""
    return {
        "type": "object",
        "properties": {
            "what": {"type": "string", "maxLength": 110},
            "attr": {"type": "array", "items": _phrase_schema(), "minItems": 1, "maxItems": 5},
            "serves": {"type": "array", "items": _phrase_schema(), "minItems": 1,
                       "maxItems": 3},
        },
        "required": ["what", "attr", "serves"],
        "additionalProperties": False,
    }
