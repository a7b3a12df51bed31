"""The extraction store: SQLite in WAL mode, one row per (model, prompt version, input).

Every result is committed as soon as it arrives, so SIGKILL loses at most the requests in
flight; SQLite's journal keeps the file consistent. A store belongs to one model and one
prompt version (recorded in its `meta` table), which is what makes merging safe.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmmrec.errors import LmmrecError
from lmmrec.sqlite import retry_locked

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
  model_id TEXT NOT NULL,
  prompt_version TEXT NOT NULL,
  input_hash TEXT NOT NULL,
  user_id TEXT NOT NULL,
  item_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
  raw TEXT,
  parsed TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  latency_s REAL NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 1,
  error TEXT,
  created_at REAL NOT NULL,
  PRIMARY KEY (model_id, prompt_version, input_hash)
);
CREATE INDEX IF NOT EXISTS results_pair ON results (user_id, item_id);
"""

# The error of a request the server never answered (time-outs, 5xx, 429 past every retry).
# It says nothing about its review, so it is not a failure of the review: `counts` reports
# it apart and the next run retries it without --retry-failed.
UNANSWERED = "backend: gave up"

COLUMNS = ("model_id", "prompt_version", "input_hash", "user_id", "item_id", "status", "raw",
           "parsed", "prompt_tokens", "output_tokens", "cached_tokens", "latency_s",
           "attempts", "error", "created_at")


@dataclass
class Record:
    model_id: str
    prompt_version: str
    input_hash: str
    user_id: str
    item_id: str
    status: str
    raw: str | None = None
    parsed: dict[str, Any] | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    created_at: float = 0.0

    def row(self) -> tuple[Any, ...]:
        parsed = json.dumps(self.parsed, sort_keys=True) if self.parsed is not None else None
        return (self.model_id, self.prompt_version, self.input_hash, self.user_id,
                self.item_id, self.status, self.raw, parsed, self.prompt_tokens,
                self.output_tokens, self.cached_tokens, self.latency_s, self.attempts,
                self.error, self.created_at or time.time())


class Store:
    """A thin, typed wrapper over one SQLite file."""

    def __init__(self, path: str | Path, model_id: str | None = None,
                 prompt_version: str | None = None, prompt_sha: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
        self.db.execute("PRAGMA synchronous=NORMAL")
        retry_locked(lambda: self.db.executescript(SCHEMA))
        if model_id is not None and prompt_version is not None:
            try:
                self._bind(model_id, prompt_version, prompt_sha)
            except BaseException:
                self.db.close()
                raise

    def _bind(self, model_id: str, prompt_version: str, prompt_sha: str | None = None) -> None:
        meta = self.meta()
        if not meta:
            rows = [("model_id", model_id), ("prompt_version", prompt_version)]
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                rows + ([("prompt_sha", prompt_sha)] if prompt_sha else []))
            self.db.execute("COMMIT")
            return
        if (meta.get("model_id"), meta.get("prompt_version")) != (model_id, prompt_version):
            raise LmmrecError(
                f"{self.path}: store was made with model {meta.get('model_id')!r} and prompt "
                f"{meta.get('prompt_version')!r}, not {model_id!r} / {prompt_version!r}; "
                "use another --store")
        if prompt_sha is None:
            return
        if "prompt_sha" not in meta:  # a store from before fingerprints: adopt this one
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('prompt_sha', ?)", (prompt_sha,))
        elif meta["prompt_sha"] != prompt_sha:
            raise LmmrecError(
                f"{self.path}: prompt {prompt_version!r} has changed since this store was made "
                f"(fingerprint {meta['prompt_sha']} -> {prompt_sha}): give the edited template "
                "a new version (PROMPT_VERSION) or use another --store")

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------

    def put(self, rec: Record) -> None:
        """Insert or replace one result; a later 'ok' replaces an earlier 'failed'."""
        placeholders = ", ".join("?" * len(COLUMNS))
        self.db.execute(
            f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
            "ON CONFLICT (model_id, prompt_version, input_hash) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in COLUMNS[3:])
            + " WHERE results.status != 'ok'", rec.row())

    # -- reads -------------------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        """input_hash -> 'ok', 'failed' (for good) or 'unanswered' (a failed request the
        server never answered: retried by the next run) for this store."""
        return dict(self.db.execute(
            "SELECT input_hash, CASE WHEN status = 'failed' AND substr(error, 1, ?) = ? "
            "THEN 'unanswered' ELSE status END FROM results",
            (len(UNANSWERED), UNANSWERED)).fetchall())

    def records(self, status: str | None = None) -> Iterator[Record]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM results"
        args: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY user_id, item_id, input_hash"
        for row in self.db.execute(sql, args):
            d = dict(zip(COLUMNS, row, strict=True))
            d["parsed"] = json.loads(d["parsed"]) if d["parsed"] else None
            yield Record(**d)

    def counts(self) -> dict[str, Any]:
        """done, failed (for good), unanswered (retried on the next run), tokens, latency."""
        row = self.db.execute(
            "SELECT SUM(status='ok'), SUM(status='failed'), COALESCE(SUM(prompt_tokens),0), "
            "COALESCE(SUM(output_tokens),0), COALESCE(SUM(cached_tokens),0), "
            "COALESCE(SUM(latency_s),0), SUM(status='failed' AND substr(error, 1, ?) = ?) "
            "FROM results", (len(UNANSWERED), UNANSWERED)).fetchone()
        unanswered = int(row[6] or 0)
        return {"done": int(row[0] or 0), "failed": int(row[1] or 0) - unanswered,
                "unanswered": unanswered,
                "prompt_tokens": int(row[2]), "output_tokens": int(row[3]),
                "cached_tokens": int(row[4]), "latency_s": float(row[5])}


def merge_stores(target: str | Path, sources: Iterable[str | Path]) -> dict[str, int]:
    """Join shard stores into ``target``; idempotent; refuses other model/prompt versions."""
    sources = [Path(s) for s in sources]
    metas = []
    for src in sources:
        if not src.exists():
            raise LmmrecError(f"{src}: store not found")
        with Store(src) as s:
            metas.append((src, s.meta()))
    bound = [(src, m) for src, m in metas if m]
    if not bound:
        raise LmmrecError("none of the stores has any results to merge")
    ref_src, ref = bound[0]
    for src, m in bound[1:]:
        if m != ref:
            raise LmmrecError(f"{src}: made with {m}, but {ref_src} with {ref}: "
                              "stores of different models or prompt versions cannot merge")
    added = 0
    with Store(target, ref["model_id"], ref["prompt_version"]) as out:
        for src, _ in bound:
            with Store(src) as s:
                out.db.execute("BEGIN IMMEDIATE")
                for rec in s.records():
                    before = out.db.total_changes
                    out.put(rec)
                    added += out.db.total_changes - before
                out.db.execute("COMMIT")
        total = out.counts()
    return {"changed": added, "done": total["done"], "failed": total["failed"]}
