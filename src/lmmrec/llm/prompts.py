"""Versioned prompt templates. The instruction prefix is byte-identical across calls so
llama.cpp reuses its KV cache; only the fenced review varies."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from lmmrec.llm.schemas import (
    ItemOffer,
    ReviewMotivations,
    item_json_schema,
    review_json_schema,
)

PROMPT_VERSION = "review_v1"
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
    kind = ({"item_cap": ITEM_CHAR_CAP, "schema": item_json_schema()}
            if version.startswith("item_") else
            {"review_cap": REVIEW_CHAR_CAP, "schema": review_json_schema()})
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

    def user_message(self) -> str:
        raise NotImplementedError

    def messages(self, version: str | None = None) -> list[dict[str, str]]:
        return [{"role": "system", "content": system_prompt(version or self.VERSION)},
                {"role": "user", "content": self.user_message()}]

    def input_hash(self, version: str | None = None) -> str:
        version = version or self.VERSION
        payload = json.dumps({"v": version, "m": self.messages(version)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def json_schema(self) -> dict[str, Any]:
        return review_json_schema()

    def parse(self, data: Any) -> Any:
        """The validated output (an ``OUTPUT``) of a decoded JSON answer."""
        return self.OUTPUT.model_validate(data)


@dataclass(frozen=True)
class ReviewInput(_Prompted):
    """One review to extract from; the key ties results back to its interaction."""

    user_id: str
    item_id: str
    text: str
    title: str = ""
    item_title: str = ""

    def user_message(self) -> str:
        parts = []
        if self.item_title:
            parts.append(f"Item: {fence(self.item_title, TITLE_CHAR_CAP)}")
        body = fence(self.text, REVIEW_CHAR_CAP)
        if self.title:
            body = f"{fence(self.title, TITLE_CHAR_CAP)}. {body}"
        parts.append(f"<review>{body}</review>")
        return "\n".join(parts)


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


def request(inp: _Prompted, version: str | None = None) -> dict[str, Any]:
    """An OpenAI-style chat request with JSON-schema constrained output."""
    return {
        "messages": inp.messages(version),
        "max_tokens": MAX_OUTPUT_TOKENS,
        "temperature": 0.0,
        "response_format": {"type": "json_object", "schema": inp.json_schema()},
    }
