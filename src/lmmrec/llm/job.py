"""The extraction job: which requests still need the LLM, sharding, retries, progress.

What to ask (every review or item listing of a dataset, a budget's share of them) is
:mod:`lmmrec.llm.inputs`."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.llm.backends import Backend, BackendError
from lmmrec.llm.inputs import Input
from lmmrec.llm.prompts import PROMPT_VERSION, request, system_prompt
from lmmrec.llm.store import UNANSWERED, Record, Store, claim_owner

CHARS_PER_TOKEN = 4.0  # rough, for dry-run estimates only
DEFAULT_OUTPUT_TOKENS = 50
# This many unanswered requests in a row mean the server is down: stop instead of marking
# the rest of the dataset as failed.
MAX_UNANSWERED_IN_A_ROW = 8


class ServerUnreachable(LmmrecError):
    """The server stopped answering; what landed is stored and a rerun resumes."""


class ServerRejected(LmmrecError):
    """The server refused request after request (4xx): a setting is wrong, not the reviews."""


class Interrupted(LmmrecError):
    """A signal asked the run to stop; what was in flight has landed and a rerun resumes."""


_REJECTED = re.compile(r"backend: HTTP 4(?!29)\d\d\b")


def unanswered(error: str | None) -> bool:
    return bool(error) and str(error).startswith(UNANSWERED)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """'i/n' (0-based i) -> (i, n)."""
    if not spec:
        return 0, 1
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError as e:
        raise ConfigError(f"--shard {spec!r}: expected i/n, e.g. 0/4") from e
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {spec!r}: need 0 <= i < n")
    return i, n


def in_shard(input_hash: str, shard: tuple[int, int]) -> bool:
    i, n = shard
    return n == 1 or int(input_hash[:12], 16) % n == i


@dataclass
class Plan:
    todo: list[Input]
    hashes: list[str]
    n_total: int
    n_done: int
    n_failed: int
    n_other_shards: int

    def estimate(self, price_per_1k_prompt: float = 0.0, price_per_1k_output: float = 0.0,
                 output_tokens_per_call: float = DEFAULT_OUTPUT_TOKENS) -> dict[str, Any]:
        version = self.todo[0].version if self.todo else PROMPT_VERSION
        prefix = len(system_prompt(version)) / CHARS_PER_TOKEN
        variable = sum(len(i.user_message()) for i in self.todo) / CHARS_PER_TOKEN
        calls = len(self.todo)
        prompt_tokens = int(calls * (prefix + 12) + variable)
        output_tokens = int(calls * output_tokens_per_call)
        cost = (prompt_tokens * price_per_1k_prompt + output_tokens * price_per_1k_output) / 1000
        return {"calls": calls, "prompt_tokens": prompt_tokens,
                "uncached_prompt_tokens": int(prefix + variable + 12 * calls),
                "output_tokens": output_tokens, "cost": round(cost, 4),
                "already_done": self.n_done, "already_failed": self.n_failed,
                "other_shards": self.n_other_shards, "total_reviews": self.n_total}


def plan(inputs: Iterable[Input], store: Store, shard: tuple[int, int] = (0, 1),
         limit: int | None = None, retry_failed: bool = False) -> Plan:
    statuses = store.statuses()
    todo, hashes = [], []
    seen: set[str] = set()
    n_total = n_done = n_failed = n_other = 0
    for inp in inputs:
        n_total += 1
        h = inp.input_hash()
        if h in seen:  # an identical request (same review text and item) is sent once
            continue
        seen.add(h)
        if not in_shard(h, shard):
            n_other += 1
            continue
        status = statuses.get(h)
        if status == "ok":
            n_done += 1
            continue
        if status == "failed":  # for good; "unanswered" is asked again
            n_failed += 1
            if not retry_failed:
                continue
        todo.append(inp)
        hashes.append(h)
    if limit is not None:
        todo, hashes = todo[:limit], hashes[:limit]
    return Plan(todo, hashes, n_total, n_done, n_failed, n_other)


def extract_one(backend: Backend, inp: Input, input_hash: str,
                attempts: int = 2) -> Record:
    """One review (or item) -> one record; invalid output is retried, then recorded as a
    failure."""
    rec = Record(backend.model_id, inp.version, input_hash, inp.user_id, inp.item_id,
                 status="failed", attempts=0)
    req = request(inp)
    for attempt in range(1, attempts + 1):
        rec.attempts = attempt
        try:
            c = backend.complete(req)
        except BackendError as e:
            rec.error = f"backend: {e}"
            return rec  # the backend already retried transient errors
        rec.raw = c.text
        rec.prompt_tokens += c.prompt_tokens
        rec.output_tokens += c.output_tokens
        rec.cached_tokens += c.cached_tokens
        rec.latency_s += c.latency_s
        try:
            if c.finish_reason == "length":
                raise ValueError("answer truncated at max_tokens")
            parsed = inp.parse(json.loads(c.text))
            if parsed.is_empty() and not inp.allow_empty:
                raise ValueError("no well-formed motivation phrases")
        except (ValueError, ValidationError, RecursionError) as e:  # the answer is untrusted
            rec.error = f"invalid output: {(str(e) or type(e).__name__)[:300]}"
            continue
        rec.status, rec.parsed, rec.error = "ok", parsed.model_dump(), None
        return rec
    return rec


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, rec: Record) -> None:
        if rec.status == "ok":
            self.ok += 1
        else:
            self.failed += 1
            kind = (rec.error or "unknown").split(":")[0]
            self.errors[kind] = self.errors.get(kind, 0) + 1
        self.prompt_tokens += rec.prompt_tokens
        self.output_tokens += rec.output_tokens
        self.cached_tokens += rec.cached_tokens

    def as_dict(self) -> dict[str, Any]:
        calls = self.ok + self.failed
        s = max(self.seconds, 1e-9)
        return {"ok": self.ok, "failed": self.failed, "seconds": round(self.seconds, 2),
                "reviews_per_minute": round(60 * calls / s, 2),
                "prompt_tokens_per_s": round(self.prompt_tokens / s, 2),
                "output_tokens_per_s": round(self.output_tokens / s, 2),
                "prefix_cache_hit_rate": round(self.cached_tokens / max(1, self.prompt_tokens), 4),
                "errors": self.errors}


def rejected(error: str | None) -> bool:
    """A request the server refused (HTTP 4xx other than 429: a wrong model name, a bad
    key, ...): once is the review's fault, many in a row the run's."""
    return bool(error) and _REJECTED.match(str(error)) is not None


def run(backend: Backend, store: Store, p: Plan,
        on_result: Callable[[Record], None] | None = None,
        max_unanswered: int = MAX_UNANSWERED_IN_A_ROW,
        stop: threading.Event | None = None) -> RunSummary:
    """Send every planned request; each result is committed to the store as it lands.

    Requests are claimed in the store first, so processes sharing a store take disjoint
    ones. Raises :class:`ServerUnreachable` after ``max_unanswered`` unanswered requests in a
    row, :class:`ServerRejected` after as many refused (4xx) ones - those are not stored, so
    the dataset is not marked failed - and :class:`Interrupted` once ``stop`` is set (by a
    signal), after the requests in flight have landed."""
    t0 = time.perf_counter()
    s = _Sender(backend, store, p, on_result, max_unanswered, stop)
    store.drop_stale_claims()
    try:
        if backend.concurrency <= 1:
            for inp, h in s.claimed():
                s.land(extract_one(backend, inp, h))
        else:
            s.send_pooled()
        s.commit_refused()  # fewer than max_unanswered at the end: the reviews' own
    finally:
        s.summary.seconds = time.perf_counter() - t0
        store.release(s.owner)
    if s.cut_short:
        raise Interrupted(
            f"stopped by a signal after the requests in flight landed: {s.summary.ok} ok and "
            f"{s.summary.failed} failed this run are stored; rerun to continue")
    return s.summary


class _Sender:
    """The state of one `run`: what is left to claim, and the streaks that stop it."""

    def __init__(self, backend: Backend, store: Store, p: Plan,
                 on_result: Callable[[Record], None] | None, max_unanswered: int,
                 stop: threading.Event | None) -> None:
        self.backend, self.store, self.on_result = backend, store, on_result
        self.max_unanswered, self.stop = max_unanswered, stop
        self.summary = RunSummary()
        self.since = time.time()
        self.owner = claim_owner()
        self.by_hash = dict(zip(p.hashes, p.todo, strict=True))
        self.left = list(p.hashes)
        self.chunk = max(8, 2 * backend.concurrency)
        self.in_a_row = 0
        self.refused: list[Record] = []  # 4xx answers in a row, held back until it breaks
        self.cut_short = False

    def stopping(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            self.cut_short = True
            return True
        return False

    def claimed(self) -> Iterator[tuple[Input, str]]:
        while self.left:
            if self.stopping():
                return
            got = self.store.claim(self.left, self.owner, self.chunk, self.since)
            if not got:
                return
            # those skipped on the way are another live process's (or done already)
            self.left = self.left[self.left.index(got[-1]) + 1:]
            for h in got:
                if self.stopping():
                    return
                yield self.by_hash[h], h

    def commit(self, rec: Record) -> None:
        self.store.put(rec)
        self.store.release(self.owner, [rec.input_hash])
        self.summary.add(rec)
        if self.on_result:
            self.on_result(rec)

    def commit_refused(self) -> None:
        for r in self.refused:
            self.commit(r)
        self.refused.clear()

    def land(self, rec: Record) -> None:
        if rejected(rec.error):
            self.refused.append(rec)
            if len(self.refused) >= self.max_unanswered:
                raise ServerRejected(
                    f"stopped: the server refused {len(self.refused)} requests in a row (last: "
                    f"{rec.error}); check the model name, key and URL. Refused requests were "
                    f"not recorded; {self.summary.ok} ok and {self.summary.failed} failed this "
                    "run are stored")
            return
        self.commit_refused()  # the streak broke: those were the reviews' own failures
        self.commit(rec)
        self.in_a_row = self.in_a_row + 1 if unanswered(rec.error) else 0
        if self.in_a_row >= self.max_unanswered:
            raise ServerUnreachable(
                f"stopped: the server did not answer {self.in_a_row} requests in a row (last: "
                f"{rec.error}). {self.summary.ok} ok and {self.summary.failed} failed this run "
                "are stored; rerun when the server is back: unanswered requests are retried")

    def send_pooled(self) -> None:
        """``backend.concurrency`` requests in flight, at most twice as many queued."""
        n = self.backend.concurrency
        with ThreadPoolExecutor(n) as pool:
            pending: set[Future[Record]] = set()
            try:
                for inp, h in self.claimed():
                    pending.add(pool.submit(extract_one, self.backend, inp, h))
                    if len(pending) >= 2 * n:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            self.land(f.result())
                if self.stop is not None and self.stop.is_set():
                    # queued ones are not sent; those in flight are paid for: land them
                    kept = {f for f in pending if not f.cancel()}
                    self.cut_short = self.cut_short or len(kept) < len(pending)
                    pending = kept
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        self.land(f.result())
            except BaseException:
                for f in pending:  # queued ones never start; running ones are dropped
                    f.cancel()
                raise


def store_fingerprint(store: Store) -> str:
    """Hash of keys + parsed results: equal stores give equal fingerprints."""
    h = hashlib.sha256()
    for rec in store.records():
        h.update(f"{rec.input_hash}|{rec.status}|{json.dumps(rec.parsed, sort_keys=True)}\n"
                 .encode())
    return h.hexdigest()
