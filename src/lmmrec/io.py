"""Crash-safe writes: whole files and whole folders are replaced, never half-written.

Every file and folder lmmrec writes goes through here. Temp names are unique per process
(pid and a random part) and live beside their target, so a rename is atomic (one file
system) and two writers never share a temp file. A writer killed mid-way leaves only temp
names, which :func:`clean_orphans` removes on the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from lmmrec.errors import DataError, LmmrecError

# Temp names beside a target NAME: .NAME.tmp-PID-RANDOM (new content; files end in .tmp),
# .NAME.old-PID-RANDOM (the previous folder, set aside while the new one moves in).
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[^/]*$")


class WriteError(LmmrecError, OSError):
    """A file could not be written (full disk, no permission); the old one is kept."""


def _step(name: str) -> None:
    """Called between the steps of a write. A no-op; the crash tests replace it to kill the
    writer exactly there (tests/reliability/test_io.py)."""


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_path(target: Path, kind: str = "tmp") -> str:
    """A prefix for a unique temp name beside ``target`` (see :func:`clean_orphans`)."""
    return f".{target.name}.{kind}-{os.getpid()}-"


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place: a
    reader sees the old file or the new one, never a part. An OSError of the write (full
    disk, no permission) becomes a :class:`WriteError` naming ``path``; the old file is
    kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        _step("file:created")
        with os.fdopen(fd, "wb") as f:
            write(f)
            _step("file:written")
            f.flush()
            os.fsync(f.fileno())
        _step("file:synced")
        with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its own mode
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # an error naming another file (a source ``write`` read from) is not this write's
        if isinstance(e, OSError) and not isinstance(e, LmmrecError) and (
                e.filename in (None, tmp, str(path))):
            raise _write_error(path, e) from e
        raise
    _step("file:replaced")
    _fsync_dir(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, unique temp file beside ``path``, created with mode 0666 so the umask applies
    as to a plain ``open(path, "w")`` (mkstemp's 0600 would make a released artifact
    unreadable to a service running as another user)."""
    while True:
        tmp = str(path.parent / f"{temp_path(path)}{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _write_error(path: Path, e: OSError) -> WriteError:
    err = WriteError(f"{path}: could not write it ({e.strerror or e}); "
                     "the previous version, if any, is unchanged")
    err.errno = e.errno
    return err


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: object, sort_keys: bool = False) -> None:
    """``obj`` as indented JSON with a final newline (the form of every JSON file here)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(tmp: str | Path, dest: str | Path) -> None:
    """Move the finished folder ``tmp`` to ``dest``, replacing what is there.

    At every instant ``dest`` holds the old folder or the new one: the two are swapped in one
    step where the kernel can; otherwise the old one is renamed aside first, the new one moved
    in, and only then is the old one deleted. A process killed between those two renames
    leaves the old folder aside, and :func:`recover_dir` (run by the next writer) puts it back.
    """
    tmp, dest = Path(tmp), Path(dest)
    if not dest.exists():
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        return
    if _exchange(tmp, dest):  # tmp now holds the old folder
        _step("dir:exchanged")
        _fsync_dir(dest.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    aside = Path(tempfile.mkdtemp(prefix=temp_path(dest, "old"), dir=dest.parent))
    aside.rmdir()  # a unique free name
    _step("dir:named")
    os.replace(dest, aside)
    _step("dir:aside")
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(aside, dest)  # put the old folder back
        raise
    _step("dir:moved")
    _fsync_dir(dest.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temps(dest: Path) -> Iterator[tuple[Path, str, int]]:
    if not dest.parent.is_dir():
        return
    for p in dest.parent.iterdir():
        m = _TEMP.match(p.name)
        if m and m["name"] == dest.name:
            yield p, m["kind"], int(m["pid"])


def recover_dir(dest: str | Path) -> None:
    """Undo a replacement cut short: if ``dest`` is missing and an old copy of it lies aside
    (its writer dead), move that back."""
    dest = Path(dest)
    if dest.exists():
        return
    asides = sorted((p for p, kind, pid in _temps(dest) if kind == "old" and not _alive(pid)),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    if asides:
        os.replace(asides[0], dest)


def clean_orphans(dest: str | Path) -> list[Path]:
    """Recover ``dest`` if a replacement was cut short, then delete temp files and folders
    beside it left by writers that are gone; returns what was deleted."""
    dest = Path(dest)
    recover_dir(dest)
    gone = []
    for p, _, pid in list(_temps(dest)):
        if _alive(pid):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        gone.append(p)
    return gone


@contextlib.contextmanager
def new_dir(dest: str | Path) -> Iterator[Path]:
    """A fresh temp folder beside ``dest`` that replaces ``dest`` (by :func:`replace_dir`)
    when the block succeeds, and is deleted when it fails."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(dest)
    tmp = Path(tempfile.mkdtemp(prefix=temp_path(dest), dir=dest.parent))
    # mkdtemp makes 0700; the folder that replaces ``dest`` keeps dest's mode, or gets what
    # a plain mkdir gives under the umask (read off a probe: no global umask change)
    try:
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except FileNotFoundError:
        probe = Path(f"{tmp}.mode")
        probe.mkdir()
        mode = stat.S_IMODE(probe.stat().st_mode)
        probe.rmdir()
    os.chmod(tmp, mode)
    try:
        yield tmp
        _step("dir:built")
        replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(dest: str | Path, overwrite: bool, is_own: bool, what: str) -> None:
    """Refuse to write over ``dest`` unless it is this command's own kind of output
    (``is_own``) and ``overwrite`` was given. Never deletes anything."""
    dest = Path(dest)
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        return  # an empty folder: nothing to lose
    if not dest.is_dir():
        raise DataError(f"exists and is not a folder; refusing to replace it with {what}",
                        path=dest)
    if not is_own:
        raise DataError(f"folder exists and is not {what}; refusing to replace it (choose "
                        "another --out)", path=dest)
    if not overwrite:
        raise DataError(f"{what} exists; pass --overwrite to replace it", path=dest)


def parse_json(text: str | bytes, path: object = None) -> Any:
    """Decoded JSON, or a :class:`DataError` naming the file and line: invalid text, bad
    UTF-8, and nesting too deep for Python's parser all end here, not as a traceback."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from e
    except UnicodeDecodeError as e:
        raise DataError(f"invalid JSON: not UTF-8 ({e.reason})", path=path) from e
    except RecursionError as e:
        raise DataError("invalid JSON: nested too deeply", path=path) from e


def read_json(path: str | Path) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror}", path=path) from e
    return parse_json(data, path)


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
