"""Cold start by text: a new user's reviews -> motivation phrases (through the LLM) -> items.

An *extractor* is any callable ``text -> list of user-side motivation phrases``. The real one
wraps a :class:`~lmmrec.llm.backends.Backend` (local xllamacpp or OpenAI-compatible) and
builds it lazily on the first call, so loading a run or starting the service never loads a
model; tests inject a fake callable instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from lmmrec.errors import LmmrecError

Extract = Callable[[str], list[str]]

MAX_REVIEWS = 20


class ExtractionError(LmmrecError):
    """The LLM gave no usable motivation for any of the texts."""


def split_reviews(text: str) -> list[str]:
    """A text file's reviews: paragraphs (blank-line separated) if there are any, else lines."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    parts = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    return [" ".join(p.split()) for p in parts if p.strip()]


class BackendExtractor:
    """Motivations of one review through an LLM backend (built on first use, then reused).

    ``backend`` is a Backend instance, or a zero-argument factory returning one. Calls are
    serialised for backends that take one request at a time (the local model)."""

    def __init__(self, backend: Any, attempts: int = 2) -> None:
        self._backend = None if callable(backend) and not hasattr(backend, "complete") else backend
        self._factory = backend if self._backend is None else None
        self._attempts = attempts
        self._lock = threading.Lock()

    @property
    def backend(self) -> Any:
        with self._lock:
            if self._backend is None:
                self._backend = self._factory()
            return self._backend

    def motivations(self, text: str) -> dict[str, list[str]]:
        # local: this module loads with `lmmrec --help` (cli.serve's MAX_REVIEWS), and the
        # llm modules bring pandas and pydantic (here and below)
        from lmmrec.llm.job import extract_one
        from lmmrec.llm.prompts import ReviewInput

        inp = ReviewInput("new-user", "", text)
        backend = self.backend
        if getattr(backend, "concurrency", 1) <= 1:
            with self._lock:
                rec = extract_one(backend, inp, inp.input_hash(), self._attempts)
        else:
            rec = extract_one(backend, inp, inp.input_hash(), self._attempts)
        if rec.status != "ok" or not rec.parsed:
            raise ExtractionError(f"motivation extraction failed: {rec.error or 'no output'}")
        out = {k: list(rec.parsed.get(k) or []) for k in ("pos", "neg", "attr")}
        if not (out["pos"] or out["attr"]):  # the text names nothing its phrases can hold to
            raise ExtractionError("no motivation in the text: name what you look for")
        return out

    def __call__(self, text: str) -> list[str]:
        return self.motivations(text)["pos"]

    def close(self) -> None:
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()


def configured_extractor(cfg: Any = None) -> BackendExtractor:
    """The extractor of a BackendConfig (default: the local model), built lazily."""
    from lmmrec.llm.backends import BackendConfig, make_backend  # local: see motivations

    cfg = cfg or BackendConfig()
    return BackendExtractor(lambda: make_backend(cfg))


def extract_phrases(texts: list[str], extract: Extract) -> list[str]:
    """The distinct user-side motivation phrases of ``texts`` (most frequent first).

    A review the extractor fails on is skipped; if none gives a phrase: ExtractionError."""
    from lmmrec.llm.prompts import REVIEW_CHAR_CAP, fence  # local: see motivations
    from lmmrec.llm.schemas import normalise_phrase

    # untrusted like any review: its fence markers neutralised and its length capped before
    # any extractor (the LLM's prompt fences it again, as it does every review)
    texts = [t for t in (fence(str(t), REVIEW_CHAR_CAP) for t in texts) if t]
    if not texts:
        raise ExtractionError("no review text given")
    if len(texts) > MAX_REVIEWS:
        raise ExtractionError(f"at most {MAX_REVIEWS} reviews per request, got {len(texts)}")
    counts: dict[str, int] = {}
    errors: list[str] = []
    for t in texts:
        try:
            found = extract(t)
        except ExtractionError as e:
            errors.append(str(e))
            continue
        for p in found:
            norm = normalise_phrase(p)  # even a fake or remote extractor cannot pass junk
            if norm:
                counts[norm] = counts.get(norm, 0) + 1
    if not counts:
        why = f": {errors[0]}" if errors else ""
        raise ExtractionError(f"no motivation could be extracted from the text{why}")
    return sorted(counts, key=lambda p: -counts[p])
