"""The extraction store: SQLite in WAL mode, one row per (model, prompt version, input).

Every result is committed as soon as it arrives, so SIGKILL loses at most the requests in
flight; SQLite's journal keeps the file consistent. A store belongs to one model and one
prompt version (recorded in its `meta` table), which is what makes merging safe.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
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
CREATE TABLE IF NOT EXISTS claims (
  input_hash TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires REAL NOT NULL
);
"""
# A claim on a request lasts this long unless its owner renews it (each new claim does): a
# claimer that died elsewhere frees its requests after this; one on this host at once.
CLAIM_LEASE_S = 600.0

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


def check_store_path(path: str | Path, writable: bool = False) -> None:
    """A store is a file: refuse a folder (or a path under a file) before opening it, and
    with ``writable`` a file (or folder, which holds SQLite's journal) that cannot be
    written - before a model is loaded or a request sent."""
    path = Path(path)
    if path.is_dir():
        raise LmmrecError(f"{path}: is a folder; --store names an SQLite file")
    if path.parent.exists() and not path.parent.is_dir():
        raise LmmrecError(f"{path}: {path.parent} is not a folder")
    if not writable:
        return
    if path.exists() and not os.access(path, os.W_OK):
        raise LmmrecError(f"{path}: the store is read-only; make it writable or use another "
                          "--store")
    if path.parent.exists() and not os.access(path.parent, os.W_OK):
        raise LmmrecError(f"{path}: its folder is read-only (SQLite writes its journal "
                          "beside the store)")


def _not_a_store(path: Path, e: sqlite3.Error) -> LmmrecError:
    msg = str(e)
    if "readonly" in msg or "read-only" in msg:
        return LmmrecError(f"{path}: the store is read-only ({msg}); make it writable or "
                           "use another --store")
    return LmmrecError(f"{path}: not a readable extraction store ({msg})")


class Store:
    """A thin, typed wrapper over one SQLite file. Opened with a model and prompt version,
    it is for writing: a read-only file is refused here, before any request is sent."""

    def __init__(self, path: str | Path, model_id: str | None = None,
                 prompt_version: str | None = None, prompt_sha: str | None = None) -> None:
        self.path = Path(path)
        check_store_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
        except sqlite3.Error as e:
            raise _not_a_store(self.path, e) from e
        try:
            retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
            self.db.execute("PRAGMA synchronous=NORMAL")
            retry_locked(lambda: self.db.executescript(SCHEMA))
            if model_id is not None and prompt_version is not None:
                check_store_path(self.path, writable=True)
                self._bind(model_id, prompt_version, prompt_sha)
                self._check_writable()
        except sqlite3.Error as e:
            self.db.close()
            raise _not_a_store(self.path, e) from e
        except BaseException:
            self.db.close()
            raise

    def _check_writable(self) -> None:
        """Fail now, not after the first answer, when the file cannot be written."""
        check_store_path(self.path, writable=True)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE meta SET value = value")
        finally:
            self.db.execute("ROLLBACK")

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

    # -- claims: several processes on one store take disjoint requests -------------------

    def claim(self, hashes: Iterable[str], owner: str, want: int, since: float,
              lease_s: float = CLAIM_LEASE_S) -> list[str]:
        """Claim up to ``want`` of ``hashes`` for ``owner``, in order, skipping requests
        another live process holds and those answered ok, or answered at all since
        ``since`` (this run's start). Renews ``owner``'s other claims."""
        now = time.time()
        got: list[str] = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE claims SET expires = ? WHERE owner = ?",
                            (now + lease_s, owner))
            for h in hashes:
                row = self.db.execute("SELECT owner, expires FROM claims WHERE input_hash = ?",
                                      (h,)).fetchone()
                if row is not None and row[0] != owner and not _stale(row[0], row[1], now):
                    continue
                done = self.db.execute(
                    "SELECT 1 FROM results WHERE input_hash = ? AND (status = 'ok' OR "
                    "created_at >= ?)", (h, since)).fetchone()
                if done:
                    continue
                self.db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                                (h, owner, now + lease_s))
                got.append(h)
                if len(got) >= want:
                    break
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return got

    def release(self, owner: str, hashes: Iterable[str] | None = None) -> None:
        """Drop ``owner``'s claims (all of them, or those of ``hashes``)."""
        if hashes is None:
            self.db.execute("DELETE FROM claims WHERE owner = ?", (owner,))
        else:
            self.db.executemany("DELETE FROM claims WHERE input_hash = ? AND owner = ?",
                                [(h, owner) for h in hashes])

    def drop_stale_claims(self) -> int:
        """Forget claims of processes that are gone (expired, or dead on this host)."""
        now = time.time()
        rows = self.db.execute("SELECT input_hash, owner, expires FROM claims").fetchall()
        stale = [(h,) for h, owner, exp in rows if _stale(owner, exp, now)]
        if stale:
            self.db.executemany("DELETE FROM claims WHERE input_hash = ?", stale)
        return len(stale)

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


def claim_owner() -> str:
    """This process, as a claim owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _stale(owner: str, expires: float, now: float) -> bool:
    if expires < now:
        return True
    host, _, rest = owner.partition(":")
    pid_s = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_s.isdigit():
        return False
    pid = int(pid_s)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # its process died: the claim is free now, not when it expires
    except PermissionError:
        return False
    return False


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
