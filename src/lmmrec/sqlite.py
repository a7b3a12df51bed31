"""SQLite helpers shared by the extraction store and the embedding cache."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry_locked(op: Callable[[], T], wait_s: float = 30.0) -> T:
    """Run `op`, retrying while another process holds the lock.

    Switching a new file to WAL takes an exclusive lock and SQLite does not call the busy
    handler for it, so two workers opening a fresh store at once can get "database is
    locked" at once instead of waiting.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return op()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
