"""A training run's folder: what may be written into it, and by whom.

One writer at a time: the writer holds an exclusive `flock` on OUT/.lock, which the kernel
drops when the process dies, so a killed run never leaves a lock that blocks the next one.
A fresh `train` only writes into an empty folder, or replaces a run folder when asked
(`--overwrite`); the old run is moved aside and removed once the new one has finished, so
at every moment one of the two is whole.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.train.files import BEST, CHECKPOINT, CONFIG, LOG, METRICS, RESOLVED

LOCK = ".lock"
# every file `fit` writes; lmmrec.io writes each through a temp file ".NAME.<pid, random>.tmp"
# beside it (older versions: ".NAME.<random>.tmp"; both are cleaned)
RUN_FILES = (CONFIG, RESOLVED, LOG, CHECKPOINT, BEST, METRICS)


class RunBusy(LmmrecError):
    """Another process is writing this run folder."""


def _is_temp(name: str) -> bool:
    return name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RUN_FILES)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's write lock (created if missing) for the block; refuse if held."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunBusy(f"{folder}: another process{who} is writing this run folder; "
                          "wait for it to end or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def clean_temp(folder: Path) -> list[Path]:
    """Remove temp files a killed writer left (call while holding the lock)."""
    gone = [p for p in folder.iterdir() if p.is_file() and _is_temp(p.name)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def is_run_folder(folder: Path) -> bool:
    """Only what `fit` writes, its config included."""
    names = [p.name for p in folder.iterdir()]
    return CONFIG in names and all(
        n in RUN_FILES or n == LOCK or _is_temp(n) for n in names)


def aside(folder: Path) -> Path:
    """Where a replaced run waits until its replacement has finished."""
    return folder.parent / f".{folder.name}.replaced"


def claim(folder: Path, overwrite: bool) -> Path | None:
    """Make `folder` ready for a fresh run. Refuses a non-empty folder unless it is a run
    folder and `overwrite` is set; then moves the run aside and returns where to."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise ConfigError(f"--out {folder}: exists and is not a folder")
    names = sorted(p.name for p in folder.iterdir() if p.name != LOCK)
    if not names:
        return None
    if not is_run_folder(folder):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"--out {folder}: not empty and not a training run folder "
                          f"(holds {shown}); refusing to write into it")
    if not overwrite:
        raise ConfigError(f"--out {folder}: holds a training run; pass --resume to continue "
                          "it or --overwrite to replace it")
    old = aside(folder)
    with locked(folder):
        if old.exists() and not (folder / METRICS).exists():
            # an unfinished replacement of the run kept aside: the aside one stays
            shutil.rmtree(folder)
        else:
            shutil.rmtree(old, ignore_errors=True)
            os.rename(folder, old)
    return old


def drop_aside(folder: Path) -> None:
    """The run in `folder` has finished: the run it replaced can go."""
    shutil.rmtree(aside(folder), ignore_errors=True)
