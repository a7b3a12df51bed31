"""`lmmrec data download NAME`: fetch a known dataset's public originals, verified.

Offline machines must fail fast: the host is resolved in a thread bounded by the connect
timeout (getaddrinfo has no timeout of its own), then connected with the same timeout.
Files land in a temporary folder that is renamed into place only when all are verified, so
a failed or mismatched download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from lmmrec.data.catalog import KNOWN, Archive, Known, embedded
from lmmrec.errors import DataError
from lmmrec.io import new_dir, sha256

CONNECT_TIMEOUT_S = 5.0


class Offline(DataError):
    """The source could not be reached at all (no network, no DNS, host down)."""


def _resolve_host(url: str, timeout: float) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[BaseException | None] = []

    def work() -> None:
        try:
            socket.getaddrinfo(host, port)
            result.append(None)
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        raise Offline(f"cannot resolve {host} within {timeout:.0f} s")
    if result[0] is not None:
        raise Offline(f"cannot resolve {host}: {result[0]}")


def _probe(url: str, timeout: float) -> None:
    """Resolve and connect to ``url``'s host, bounded by ``timeout``; Offline if it fails."""
    _resolve_host(url, timeout)
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
    except OSError as e:
        raise Offline(f"cannot connect to {parsed.hostname}:{port}: {e}") from e


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """Download ``url`` to ``dest``; return its sha256 (checked when ``sha256`` is given)."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except urllib.error.HTTPError as e:
        raise DataError(f"download failed: HTTP {e.code} {e.reason}", path=url) from e
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(f"download failed: {e}", path=url) from e
    digest = h.hexdigest()
    if sha256 and digest != sha256:
        raise DataError(f"checksum mismatch: expected sha256 {sha256}, got {digest}", path=url)
    return digest


def _from_archive(a: Archive, tmp: Path, timeout: float, say: Callable[[str], None]) -> None:
    """Fetch every part into one file, then keep only the members, each checked."""
    blob = tmp / ".archive.tar.gz"
    with open(blob, "wb") as out:
        for i, url in enumerate(a.parts):
            say(f"  part {i + 1}/{len(a.parts)}: {url}")
            part = tmp / ".part"
            fetch(url, part, None, timeout)
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
            part.unlink()
    wanted = {suffix: (fname, sha) for suffix, fname, sha in a.members}
    try:
        with tarfile.open(blob, "r:gz") as tar:
            for m in tar:
                hit = next((s for s in wanted if m.isfile() and
                            (m.name == s or m.name.endswith("/" + s))), None)
                if hit is None:
                    continue
                fname, sha = wanted.pop(hit)
                src = tar.extractfile(m)
                assert src is not None  # a regular file always has a stream
                with src, open(tmp / fname, "wb") as f:
                    shutil.copyfileobj(src, f)
                if sha256(tmp / fname) != sha:
                    raise DataError(f"checksum mismatch: expected sha256 {sha}",
                                    path=f"{a.parts[0]} [{m.name}]")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"not a readable tar.gz once its parts are joined: {e}",
                        path=a.parts[0]) from e
    finally:
        blob.unlink(missing_ok=True)
    if wanted:
        raise DataError(f"the archive lacks {', '.join(sorted(wanted))}", path=a.parts[0])


def _files(k: Known) -> list[str]:
    if k.archive is not None:
        return [fname for _, fname, _ in k.archive.members]
    return [fname for fname, _, _ in k.downloads]


def download(name: str, root: Path, timeout: float = CONNECT_TIMEOUT_S,
             say: Callable[[str], None] = lambda _: None) -> Path:
    """Fetch dataset ``name`` into ``root/<subdir>``; nothing is left there on failure."""
    if name not in KNOWN:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(KNOWN)}", field="name")
    k = KNOWN[name]
    target = root / k.subdir
    if target.exists():
        raise DataError("already present; remove it to download again", path=target)
    upstream = bool(k.downloads) or k.archive is not None
    shipped = None if upstream else embedded(name)
    if not upstream and shipped is None:
        raise DataError(f"{name} has no direct download: {k.note or 'copy it by hand'}")
    if upstream:
        first = k.archive.parts[0] if k.archive else k.downloads[0][1]
        try:  # fail fast offline, before creating anything
            _probe(first, timeout)
        except Offline as e:
            page = f" (originals: {k.page})" if k.page else ""
            raise Offline(f"{e}; offline? put {', '.join(_files(k))} into {target} by "
                          f"hand{page}") from e
    with new_dir(target) as tmp:  # in place only once every file is there and verified
        if shipped is not None:  # no public original: copy the package's own files
            say(f"  copying the copy shipped with lmmrec: {shipped}")
            for f in sorted(shipped.iterdir()):
                shutil.copy2(f, tmp / f.name)
        elif k.archive is not None:
            _from_archive(k.archive, tmp, timeout, say)
        else:
            for fname, url, sha in k.downloads:
                say(f"  {fname} <- {url}")
                digest = fetch(url, tmp / fname, sha, timeout)
                say(f"    sha256 {digest}" + (" (verified)" if sha else " (not pinned)"))
    return target
